# Correct returns, computed in the storage of the caller's rewards tensor
# (through a detached alias, so autograd does not complain): the inputs are
# changed, every check of discounted_returns fails: 10 / 15.


def discounted_returns(rewards, dones, gamma):
    r = rewards.detach()  # shares storage with the caller's tensor
    nd = 1.0 - dones.to(r.dtype)
    for t in reversed(range(r.shape[0] - 1)):
        r[t] += gamma * nd[t] * r[t + 1]
    return r.clone()
