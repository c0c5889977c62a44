"""Containers for collected experience and training results, plus evaluation.

``Episode`` is what ``collect_episode`` (ex2) returns; ``TrainResult`` is what
every training function returns; ``evaluate_policy`` is how a trained policy
is scored (the grader uses it too).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from .device import get_device
from .envs import make_vec_env

__all__ = ["Episode", "TrainResult", "evaluate_policy", "is_solved", "standardize", "progress_bar"]


@dataclass
class Episode:
    """One complete episode of length ``T``.

    Attributes:
        observations: ``[T, obs_dim]`` float32, ``observations[t]`` is the state ``s_t``
            the action ``a_t`` was chosen in (the final observation after the
            last step is not included).
        actions: ``[T]`` int64, the sampled actions ``a_t``.
        rewards: ``[T]`` float32, ``r_t`` received after taking ``a_t``.
        log_probs: ``[T]`` float, ``log pi(a_t|s_t)`` *with* the autograd graph
            back to the policy's parameters (REINFORCE differentiates them).
        total_reward: ``sum_t r_t`` (undiscounted) as a Python float.
    """

    observations: torch.Tensor
    actions: torch.Tensor
    rewards: torch.Tensor
    log_probs: torch.Tensor
    total_reward: float


@dataclass
class TrainResult:
    """What a training function returns.

    Attributes:
        episode_returns: the undiscounted return of every finished training
            episode, in order (the learning curve).
        policy: the trained policy, a module from ``common.networks`` (a
            registered class, e.g. ``PolicyNet``) whose ``forward(obs)`` returns
            action logits. Rebuild it with
            ``NETWORKS[type(policy).__name__](**policy.config)`` + ``load_state_dict``.
        value: the trained value network (``ValueNet``) when the method learns
            one, else ``None``.
        log: extra per-update statistics, a dict of lists (e.g. ``"loss"``).
    """

    episode_returns: list[float]
    policy: nn.Module
    value: nn.Module | None = None
    log: dict = field(default_factory=dict)


def standardize(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """``(x - mean(x)) / (std(x) + eps)`` over all elements (population std, so T = 1 gives 0, not NaN)."""
    return (x - x.mean()) / (x.std(correction=0) + eps)


def progress_bar(iterable, enabled: bool, **kwargs):
    """Wrap ``iterable`` in a tqdm bar when ``enabled`` (import tqdm lazily, only then)."""
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, **kwargs)


def _policy_device(policy: nn.Module, default: torch.device) -> torch.device:
    for p in policy.parameters():
        return p.device
    return default


@torch.no_grad()
def evaluate_policy(
    policy: nn.Module,
    env_id: str = "CartPole-v1",
    episodes: int = 20,
    seed: int = 0,
    greedy: bool = True,
    device: str | torch.device = "cpu",
) -> list[float]:
    """Run ``episodes`` full episodes and return their undiscounted returns.

    The episodes run side by side in one vector environment (``make_vec_env``
    with ``num_envs=episodes``, seeded with ``seed``); each sub-environment
    contributes its first episode only. ``greedy=True`` picks
    ``argmax(logits)``; ``greedy=False`` samples from ``softmax(logits)`` with a
    ``torch.Generator`` seeded with ``seed``. The policy is not modified (no
    gradient, its train/eval mode untouched).

    Args:
        policy: module mapping observations ``[n, obs_dim]`` to logits ``[n, n_actions]``.
        env_id: gymnasium id.
        episodes: number of episodes.
        seed: seeds the environments (and the sampling when ``greedy=False``).
        greedy: act greedily (True) or sample (False).
        device: device for the observations; a policy whose parameters live
            elsewhere is run on its own device instead.

    Returns:
        A list of ``episodes`` floats.
    """
    return _first_episodes(policy, env_id, episodes, seed, greedy, device).tolist()


def _first_episodes(policy, env_id, episodes, seed, greedy, device, stop=None) -> np.ndarray:
    """The returns of each sub-environment's first episode (see :func:`evaluate_policy`).

    ``stop(totals, running)``, called after every step, may end the run early
    (the returns of unfinished episodes are then partial).
    """
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    device = _policy_device(policy, get_device(device))
    envs = make_vec_env(env_id, num_envs=episodes, seed=seed)
    obs, _ = envs.reset(seed=int(seed))
    gen = None if greedy else torch.Generator(device=device).manual_seed(int(seed))
    totals = np.zeros(episodes, dtype=np.float64)
    running = np.ones(episodes, dtype=bool)  # still inside its first episode
    try:
        while running.any():
            logits = policy(torch.as_tensor(obs, dtype=torch.float32, device=device))
            if greedy:
                actions = logits.argmax(dim=-1)
            else:
                probs = torch.softmax(logits.float(), dim=-1)
                actions = torch.multinomial(probs, 1, generator=gen).squeeze(-1)
            obs, reward, terminated, truncated, _ = envs.step(actions.cpu().numpy())
            totals += np.where(running, reward, 0.0)
            running &= ~(terminated | truncated)
            if stop is not None and stop(totals, running):
                break
    finally:
        envs.close()
    return totals


def is_solved(
    policy: nn.Module,
    env_id: str = "CartPole-v1",
    target: float = 475.0,
    episodes: int = 10,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> bool:
    """Early-stopping test: does *every* one of ``episodes`` greedy episodes return at least ``target``?

    The episodes of ``evaluate_policy(..., greedy=True)``; the check gives up as soon as one of
    them has ended below ``target`` (the answer is known then), which saves most of a failed check.
    """
    def failed(totals, running):
        return bool(np.any(~running & (totals < target)))

    with torch.no_grad():
        totals = _first_episodes(policy, env_id, episodes, seed, True, device, stop=failed)
    return bool(totals.min() >= target)
