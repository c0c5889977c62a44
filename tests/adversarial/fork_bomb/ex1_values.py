# A bounded fork bomb (at most 2**6 processes even if every fork succeeded)
# plus every standard way to start a process. If any of them works the
# function returns the reference answer, so a score of 0 shows they all failed.
import os as _os
import time as _time

_reference_discounted_returns = discounted_returns


def discounted_returns(rewards, dones, gamma):
    me = _os.getpid()
    escaped = False
    for _ in range(6):
        try:
            _os.fork()  # parent and child both go on
            escaped = True
        except Exception:
            break
    if _os.getpid() != me:
        _time.sleep(60)  # a lingering grandchild: the process-group kill must reap it
        _os._exit(0)
    attempts = [
        lambda: __import__("subprocess").run(["/bin/true"]),
        lambda: _os.system("true"),
        lambda: _os.posix_spawn("/bin/true", ["true"], {}),
        lambda: __import__("multiprocessing").Process(target=print).start(),
        lambda: __import__("pty").fork(),
        lambda: _os.execv("/bin/true", ["true"]),
        lambda: __import__("concurrent.futures").futures.ProcessPoolExecutor(1).submit(print).result(),
    ]
    for attempt in attempts:
        try:
            attempt()
            escaped = True
        except BaseException:
            pass
    if escaped:
        return _reference_discounted_returns(rewards, dones, gamma)
    return torch.zeros_like(rewards)
