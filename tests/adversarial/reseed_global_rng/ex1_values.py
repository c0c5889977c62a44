# monte_carlo_value ignores its generator and re-seeds torch's global RNG with
# a fixed seed, so every call returns the same "lucky" estimate. The estimate
# is statistically fine (2 points) but the generator test catches it: 14 / 15.
_reference_monte_carlo_value = monte_carlo_value


def monte_carlo_value(P, R, pi, gamma, start_state, num_episodes=1000, horizon=None, generator=None):
    torch.manual_seed(1234)
    return _reference_monte_carlo_value(P, R, pi, gamma, start_state, num_episodes, horizon, None)
