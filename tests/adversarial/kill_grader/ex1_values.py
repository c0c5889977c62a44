# monte_carlo_value tries to kill the grader: its parent (the worker
# zygote), every ancestor, process group and session it can name, then
# returns the reference answer if some signal went through (it could then
# have killed the grader). Signals are denied
# outside the child's own group: 12 / 15, and the report has no grader error.
import os as _os
import signal as _signal

_reference_monte_carlo_value = monte_carlo_value


def _ancestors():
    pids, pid = [], _os.getppid()
    for _ in range(6):
        if pid <= 1:
            break
        pids.append(pid)
        try:
            with open(f"/proc/{pid}/stat") as f:
                pid = int(f.read().rsplit(")", 1)[1].split()[1])
        except Exception:
            break
    return pids


def monte_carlo_value(P, R, pi, gamma, start_state, num_episodes=1000, horizon=None, generator=None):
    hurt = False
    for pid in _ancestors():
        # signal 0 only checks permission: had any of these gone through, a
        # real attacker would have sent SIGKILL instead (this case stays polite
        # so that a broken defence fails the test instead of killing the run)
        for kill in (lambda: _os.kill(pid, 0),
                     lambda: _os.killpg(_os.getpgid(pid), 0),
                     lambda: _signal.pidfd_send_signal(_os.pidfd_open(pid), 0)):
            try:
                kill()
                hurt = True
            except BaseException:
                pass
    if hurt:
        return _reference_monte_carlo_value(P, R, pi, gamma, start_state, num_episodes, horizon, generator)
    return torch.zeros((), dtype=P.dtype)
