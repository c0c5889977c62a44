# monte_carlo_value kills its own process with SIGSEGV (no ctypes needed).
import faulthandler as _faulthandler


def monte_carlo_value(P, R, pi, gamma, start_state, num_episodes=1000, horizon=None, generator=None):
    _faulthandler._sigsegv()
