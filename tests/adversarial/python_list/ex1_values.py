# discounted_returns returns the right numbers as a (nested) Python list: 10 / 15.
_reference_discounted_returns = discounted_returns


def discounted_returns(rewards, dones, gamma):
    return _reference_discounted_returns(rewards, dones, gamma).tolist()
