# Segfault through ctypes (read address 0) and, failing that, an attempt to
# call libc directly. ctypes is denied in the child; if it were not, the
# process would crash or, for the libc call, return the reference answer.
_reference_policy_evaluation = policy_evaluation


def policy_evaluation(P, R, pi, gamma, tol=1e-8, max_iters=10_000):
    import ctypes

    escaped = False
    try:
        libc = ctypes.CDLL(None)
        escaped = libc.getpid() > 0
    except BaseException:
        pass
    try:
        escaped = escaped or ctypes.pythonapi.Py_GetVersion is not None
    except BaseException:
        pass
    if escaped:
        return _reference_policy_evaluation(P, R, pi, gamma, tol=tol, max_iters=max_iters)
    ctypes.string_at(0)  # segfault, if ctypes were allowed
    return torch.zeros(P.shape[0], dtype=P.dtype)
