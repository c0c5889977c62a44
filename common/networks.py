"""Small MLPs used by every exercise.

Every network class takes only JSON-able constructor arguments and keeps them
in ``self.config``, so any trained network can be rebuilt from plain data::

    net2 = NETWORKS[type(net).__name__](**net.config)
    net2.load_state_dict(net.state_dict())

The grader rebuilds the ``policy`` of a ``TrainResult`` this way and evaluates
its weights in a trusted process, which is why every training function must
return an instance of a class registered in ``NETWORKS``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["mlp", "PolicyNet", "ValueNet", "ActorCritic", "NETWORKS", "ACTIVATIONS", "rebuild"]

ACTIVATIONS: dict[str, type[nn.Module]] = {"tanh": nn.Tanh, "relu": nn.ReLU, "gelu": nn.GELU}


def mlp(
    in_dim: int,
    out_dim: int,
    hidden: Sequence[int] = (64, 64),
    activation: str = "tanh",
    out_gain: float = 1.0,
) -> nn.Sequential:
    """A plain multilayer perceptron ``in_dim -> hidden... -> out_dim`` (no output activation).

    Weights are orthogonal with gain sqrt(2) in the hidden layers and
    ``out_gain`` in the last one; biases are zero. A small ``out_gain`` (0.01)
    for a policy head makes the initial policy almost uniform, which helps
    exploration at the start of training.

    Args:
        in_dim: input features.
        out_dim: output features.
        hidden: widths of the hidden layers (may be empty: a linear model).
        activation: ``"tanh"``, ``"relu"`` or ``"gelu"``.
        out_gain: orthogonal-init gain of the last layer.
    """
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
    layers: list[nn.Module] = []
    sizes = [int(in_dim), *[int(h) for h in hidden]]
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [_init(nn.Linear(a, b), math.sqrt(2.0)), ACTIVATIONS[activation]()]
    layers.append(_init(nn.Linear(sizes[-1], int(out_dim)), out_gain))
    return nn.Sequential(*layers)


def _init(layer: nn.Linear, gain: float) -> nn.Linear:
    nn.init.orthogonal_(layer.weight, gain=gain)
    nn.init.zeros_(layer.bias)
    return layer


class PolicyNet(nn.Module):
    """Categorical policy: ``forward(obs [..., obs_dim]) -> logits [..., n_actions]``.

    ``softmax(logits)`` over the last dimension gives ``pi(a|s)``.
    """

    def __init__(self, obs_dim: int, n_actions: int, hidden: Sequence[int] = (64, 64), activation: str = "tanh"):
        super().__init__()
        self.config = {
            "obs_dim": int(obs_dim),
            "n_actions": int(n_actions),
            "hidden": [int(h) for h in hidden],
            "activation": str(activation),
        }
        self.net = mlp(obs_dim, n_actions, hidden, activation, out_gain=0.01)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(obs)


class ValueNet(nn.Module):
    """State-value function: ``forward(obs [..., obs_dim]) -> V(s) [...]`` (last dim squeezed)."""

    def __init__(self, obs_dim: int, hidden: Sequence[int] = (64, 64), activation: str = "tanh"):
        super().__init__()
        self.config = {
            "obs_dim": int(obs_dim),
            "hidden": [int(h) for h in hidden],
            "activation": str(activation),
        }
        self.net = mlp(obs_dim, 1, hidden, activation, out_gain=1.0)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(obs).squeeze(-1)


class ActorCritic(nn.Module):
    """Separate actor (``PolicyNet``) and critic (``ValueNet``) in one module.

    ``forward(obs)`` and ``logits(obs)`` return the actor's logits, so the whole
    module can also be used (and evaluated) as a policy; ``value(obs)`` returns
    the critic's ``V(s)``.
    """

    def __init__(
        self,
        obs_dim: int,
        n_actions: int,
        hidden: Sequence[int] = (64, 64),
        activation: str = "tanh",
        critic_hidden: Sequence[int] | None = None,
    ):
        super().__init__()
        critic_hidden = hidden if critic_hidden is None else critic_hidden
        self.config = {
            "obs_dim": int(obs_dim),
            "n_actions": int(n_actions),
            "hidden": [int(h) for h in hidden],
            "activation": str(activation),
            "critic_hidden": [int(h) for h in critic_hidden],
        }
        self.actor = PolicyNet(obs_dim, n_actions, hidden, activation)
        self.critic = ValueNet(obs_dim, critic_hidden, activation)

    def logits(self, obs: torch.Tensor) -> torch.Tensor:
        return self.actor(obs)

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        return self.critic(obs)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.actor(obs)


NETWORKS: dict[str, type[nn.Module]] = {
    "PolicyNet": PolicyNet,
    "ValueNet": ValueNet,
    "ActorCritic": ActorCritic,
}


def rebuild(name: str, config: dict, state_dict: dict | None = None) -> nn.Module:
    """Rebuild a registered network from its class name, ``config`` and (optionally) weights."""
    if name not in NETWORKS:
        raise ValueError(f"unknown network class {name!r}; registered: {sorted(NETWORKS)}")
    net = NETWORKS[name](**config)
    if state_dict is not None:
        net.load_state_dict(state_dict)
    return net
