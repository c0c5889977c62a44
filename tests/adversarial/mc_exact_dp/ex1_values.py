# Games the statistical test: monte_carlo_value returns the exact dynamic
# programming value (no sampling at all). It ignores the horizon argument (the
# agreement test has finite-horizon cases) and does not depend on the
# generator: 0 of monte_carlo_value's 3 points, 12 / 15.


def monte_carlo_value(P, R, pi, gamma, start_state, num_episodes=1000, horizon=None, generator=None):
    V = policy_evaluation(P, R, pi, gamma, tol=1e-12)
    return V[start_state].clone()
