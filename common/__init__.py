"""Shared, trusted helpers of rlkit: devices, environments, networks, rollouts, checks, plots."""

from .device import get_device, seed_everything
from .envs import make_env, make_vec_env
from .networks import NETWORKS, ActorCritic, PolicyNet, ValueNet, rebuild
from .rollout import Episode, TrainResult, evaluate_policy, is_solved, progress_bar, standardize

__all__ = [
    "get_device",
    "seed_everything",
    "make_env",
    "make_vec_env",
    "NETWORKS",
    "PolicyNet",
    "ValueNet",
    "ActorCritic",
    "rebuild",
    "Episode",
    "TrainResult",
    "evaluate_policy",
    "is_solved",
    "progress_bar",
    "standardize",
]
