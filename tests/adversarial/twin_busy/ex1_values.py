# Correct twin of the noisy/file/thread/exit attacks: debug prints, scratch
# files in the working directory and in tempfile, a worker thread, a helper
# module of the submission, reading its own source, a big temporary array,
# exceptions raised and caught (SystemExit included). All legitimate: 15 / 15.
# At import it also checks the sandbox it runs in (python -I, a scrubbed
# environment, its own session, a temporary folder, finite limits): if any is
# missing the import fails and the twin loses everything.
import os as _os
import resource as _resource
import sys as _sys
import tempfile as _tempfile
import threading as _threading

assert _sys.flags.isolated and _sys.flags.ignore_environment, "not started with python -I"
# nothing of the grader's environment leaks in (the runner sets the first two for its own process)
_leaked = {"PYTHONPATH", "PYTEST_DISABLE_PLUGIN_AUTOLOAD", "VIRTUAL_ENV", "USER", "LOGNAME", "SSH_AUTH_SOCK",
           "PYTEST_CURRENT_TEST", "PWD", "OLDPWD"} & set(_os.environ)
assert not _leaked, sorted(_leaked)
assert _os.environ["PATH"] == "/usr/bin:/bin", _os.environ["PATH"]
assert _os.getsid(0) == _os.getpid() == _os.getpgid(0), "not in a session and process group of its own"
assert "rlkit-sandbox-" in _os.getcwd() and _os.environ["HOME"] == _os.getcwd()
for _limit in ("RLIMIT_CPU", "RLIMIT_AS", "RLIMIT_FSIZE", "RLIMIT_NOFILE"):
    assert _resource.getrlimit(getattr(_resource, _limit))[0] != _resource.RLIM_INFINITY, _limit
assert _resource.getrlimit(_resource.RLIMIT_CORE) == (0, 0)

print("debug: loading ex1_values", flush=True)
print("warning: something looks odd", file=_sys.stderr)
with open(__file__) as _f:
    _OWN_SOURCE = _f.read()
assert "backward_scan" in _OWN_SOURCE


def discounted_returns(rewards, dones, gamma):
    from .ex1_helpers import backward_scan

    check_trajectory("rewards", rewards)
    check_dones("dones", dones, rewards)
    print("computing returns for", tuple(rewards.shape))
    with open("scratch.txt", "w") as f:
        f.write("notes\n")
    with _tempfile.NamedTemporaryFile("w", suffix=".log") as f:
        f.write("temp\n")
    try:
        raise SystemExit("caught and ignored")
    except SystemExit:
        pass
    r = rewards.detach()
    result = {}
    th = _threading.Thread(target=lambda: result.setdefault("G", backward_scan(r, 1.0 - dones.to(r.dtype), gamma)))
    th.start()
    th.join()
    return result["G"]


_reference_policy_evaluation = policy_evaluation


def policy_evaluation(P, R, pi, gamma, tol=1e-8, max_iters=10_000):
    scratch = bytearray(200 << 20)  # 200 MB of scratch memory is fine
    del scratch
    _os.makedirs("cache", exist_ok=True)
    return _reference_policy_evaluation(P, R, pi, gamma, tol=tol, max_iters=max_iters)
