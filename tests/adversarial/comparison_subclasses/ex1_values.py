# Comparison-defeating subclasses, even when they hold the right numbers:
# - discounted_returns: a numpy.ndarray subclass (correct values, __eq__ True);
# - action_values: a torch.Tensor subclass (correct values) overriding
#   __eq__, __sub__, __abs__ and __torch_function__ (every torch op returns 0);
# - monte_carlo_value: a float subclass equal to everything, value 0.
# A subclass earns nothing, whatever its data: 4 / 15.
import numpy as _np

_reference_discounted_returns = discounted_returns
_reference_action_values = action_values


class _YesArray(_np.ndarray):
    def __eq__(self, other):
        return _np.ones(self.shape, dtype=bool)

    def __sub__(self, other):
        return _np.zeros(self.shape)

    def __abs__(self):
        return _np.zeros(self.shape)


class _YesTensor(torch.Tensor):
    def __eq__(self, other):
        return True

    def __sub__(self, other):
        return torch.zeros(())

    def __abs__(self):
        return torch.zeros(())

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        with torch._C.DisableTorchFunctionSubclass():
            out = func(*args, **(kwargs or {}))
        if isinstance(out, torch.Tensor) and out.is_floating_point():
            return torch.zeros_like(out)
        return out


class _YesFloat(float):
    def __eq__(self, other):
        return True

    def __ne__(self, other):
        return False

    def __sub__(self, other):
        return 0.0

    __rsub__ = __sub__

    def __abs__(self):
        return 0.0

    __hash__ = float.__hash__


def discounted_returns(rewards, dones, gamma):
    return _reference_discounted_returns(rewards, dones, gamma).numpy().view(_YesArray)


def action_values(P, R, V, gamma):
    return _reference_action_values(P, R, V, gamma).as_subclass(_YesTensor)


def monte_carlo_value(P, R, pi, gamma, start_state, num_episodes=1000, horizon=None, generator=None):
    return _YesFloat(0.0)
