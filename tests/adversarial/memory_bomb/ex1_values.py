# policy_evaluation grabs memory until the address-space limit stops it
# (MemoryError, or a kill), then asks for 64 GiB at once; it must cost only
# its own points. The first call really touches ~3 GiB page by page; later
# calls (a marker file in the sandbox says so) skip to the 64 GiB request,
# which fails at once: same defence, less time for the corpus.
import os as _os

_reference_policy_evaluation = policy_evaluation


def policy_evaluation(P, R, pi, gamma, tol=1e-8, max_iters=10_000):
    if not _os.path.exists("memory-bomb-marker"):
        open("memory-bomb-marker", "w").close()
        hoard = []
        try:
            while True:
                hoard.append(bytearray(64 << 20))  # zero-filled: really touched
        except MemoryError:
            pass
    hoard = torch.ones(1 << 36, dtype=torch.uint8)  # 64 GiB in one go
    return _reference_policy_evaluation(P, R, pi, gamma, tol=tol, max_iters=max_iters)
