# Student version, generated from the reference by `make assignments`.
# Fill in every TODO: replace each `raise NotImplementedError(...)` with your code.
"""Exercise 1 (warm-up): returns, value functions and the Bellman equation.

Four small functions, from sampled trajectories to exact dynamic programming:

1. ``discounted_returns``  G_t = r_t + γ (1 − d_t) G_{t+1}, computed backwards.
2. ``policy_evaluation``   V^π of a tabular MDP by repeating the Bellman
                           expectation backup until it stops changing.
3. ``action_values``       Q^π(s, a) from V^π with one backup.
4. ``monte_carlo_value``   V^π(s0) estimated by averaging sampled returns;
                           it should agree with ``policy_evaluation``.

Conventions (shared by every exercise):
- time is dimension 0; a trajectory tensor is ``[T]`` (one environment) or
  ``[T, N]`` (N environments side by side);
- ``dones[t] = 1`` (or True) means the episode ended at step t: nothing from
  t + 1 flows back into t;
- results live on the device of the inputs and have their float dtype;
- no function changes its inputs.

Tabular MDP notation (S states, A actions):
    P[s, a, s'] = P(s' | s, a)     transition probabilities, float64 [S, A, S]
    R[s, a]     = E[r | s, a]      expected immediate reward, float64 [S, A]
    pi[s, a]    = π(a | s)         action probabilities,      float64 [S, A]
An absorbing terminal state is a state whose actions all lead back to itself
with reward 0.
"""

from __future__ import annotations

import math

import torch

from common.validate import (
    check_dones,
    check_finite,
    check_probabilities,
    check_same_device,
    check_scalar,
    check_tensor,
    check_trajectory,
    shape_str,
)

__all__ = ["discounted_returns", "policy_evaluation", "action_values", "monte_carlo_value"]


def discounted_returns(rewards: torch.Tensor, dones: torch.Tensor, gamma: float) -> torch.Tensor:
    """Discounted return of every step, restarting at episode ends.

        G_t = r_t + γ · (1 − d_t) · G_{t+1},      G_T = 0

    so within one episode G_t = r_t + γ r_{t+1} + γ² r_{t+2} + ... up to the
    step where the episode ends. A trailing episode that is still running at
    the last step T−1 is *not* bootstrapped (its return just stops there).

    Args:
        rewards: ``[T]`` or ``[T, N]`` float, r_t.
        dones: same shape as ``rewards``, float 0/1 or bool; 1 where the
            episode ended at step t.
        gamma: discount factor γ in [0, 1].

    Returns:
        returns: same shape, dtype and device as ``rewards``. The returns are
        *targets*: they carry no gradient even if ``rewards`` requires one.
    """
    check_trajectory("rewards", rewards)
    check_dones("dones", dones, rewards)
    gamma = check_scalar("gamma", gamma, low=0.0, high=1.0)
    # TODO: loop t = T-1, ..., 0 keeping a running return G; reset it with (1 - d_t); return detached returns.
    raise NotImplementedError('discounted_returns: loop t = T-1, ..., 0 keeping a running return G; reset it with (1 - d_t); return detached returns.')


def _check_mdp(P: torch.Tensor, R: torch.Tensor) -> tuple[int, int]:
    check_tensor("P", P, dims=3, dim_names="S, A, S'", floating=True, min_size=1)
    S, A, S2 = P.shape
    if S2 != S:
        raise ValueError(f"P must have shape [S, A, S], got {shape_str(P.shape)}")
    check_tensor("R", R, dims=2, dim_names="S, A", floating=True)
    if R.shape != (S, A):
        raise ValueError(f"R must have shape [S, A] = [{S}, {A}] to match P, got {shape_str(R.shape)}")
    check_same_device(P=P, R=R)
    check_finite("P", P)
    check_finite("R", R)
    check_probabilities("P", P)
    return S, A


def _check_policy(pi: torch.Tensor, P: torch.Tensor, S: int, A: int) -> None:
    check_tensor("pi", pi, dims=2, dim_names="S, A", floating=True)
    if pi.shape != (S, A):
        raise ValueError(f"pi must have shape [S, A] = [{S}, {A}] to match P, got {shape_str(pi.shape)}")
    check_same_device(P=P, pi=pi)
    check_finite("pi", pi)
    check_probabilities("pi", pi)


def policy_evaluation(
    P: torch.Tensor,
    R: torch.Tensor,
    pi: torch.Tensor,
    gamma: float,
    tol: float = 1e-8,
    max_iters: int = 10_000,
) -> torch.Tensor:
    """State values V^π of a tabular MDP by iterative policy evaluation.

    Start from V = 0 and apply the Bellman expectation backup to every state
    at once (a synchronous sweep):

        V_new(s) = Σ_a π(a|s) [ R(s,a) + γ Σ_s' P(s'|s,a) V(s') ]

    until max_s |V_new(s) − V(s)| < tol (return V_new), or ``max_iters``
    sweeps have been made (return the last V_new). For γ < 1 the backup is a
    γ-contraction, so this converges to the unique solution of
    V = R_π + γ P_π V.

    Args:
        P: ``[S, A, S]`` transition probabilities (float64).
        R: ``[S, A]`` expected rewards (float64).
        pi: ``[S, A]`` policy probabilities (float64).
        gamma: discount γ in [0, 1).
        tol: stopping threshold on the largest change of one sweep.
        max_iters: maximum number of sweeps.

    Returns:
        V: ``[S]``, dtype and device of ``P``.
    """
    S, A = _check_mdp(P, R)
    _check_policy(pi, P, S, A)
    gamma = check_scalar("gamma", gamma, low=0.0, high=1.0)
    tol = check_scalar("tol", tol, low=0.0, low_open=True)
    max_iters = check_scalar("max_iters", max_iters, low=1, integer=True)
    # TODO: build R_pi[s] and P_pi[s, s'] (average over a with pi), then repeat V <- R_pi + gamma * P_pi @ V until the largest change < tol.
    raise NotImplementedError("policy_evaluation: build R_pi[s] and P_pi[s, s'] (average over a with pi), then repeat V <- R_pi + gamma * P_pi @ V until the largest change < tol.")


def action_values(P: torch.Tensor, R: torch.Tensor, V: torch.Tensor, gamma: float) -> torch.Tensor:
    """Action values from state values with one Bellman backup.

        Q(s, a) = R(s, a) + γ Σ_s' P(s'|s, a) V(s')

    Args:
        P: ``[S, A, S]`` transition probabilities (float64).
        R: ``[S, A]`` expected rewards (float64).
        V: ``[S]`` state values (float64), e.g. from ``policy_evaluation``.
        gamma: discount γ in [0, 1].

    Returns:
        Q: ``[S, A]``, dtype and device of ``R``.
    """
    S, A = _check_mdp(P, R)
    check_tensor("V", V, dims=1, dim_names="S", floating=True)
    if V.shape[0] != S:
        raise ValueError(f"V must have shape [S] = [{S}] to match P, got {shape_str(V.shape)}")
    check_same_device(P=P, V=V)
    check_finite("V", V)
    gamma = check_scalar("gamma", gamma, low=0.0, high=1.0)
    # TODO: return R + gamma * (expected V of the next state), the expectation taken with P[s, a, :].
    raise NotImplementedError('action_values: return R + gamma * (expected V of the next state), the expectation taken with P[s, a, :].')


def _sample_rows(probs: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """One categorical sample per row of ``probs [E, K]`` -> int64 ``[E]`` (inverse CDF).

    Draw u ~ U[0, 1) and return the first k with u < cdf[k]; that is the
    number of entries with cdf[k] <= u (zero-probability entries are never
    picked). Equivalent to ``torch.multinomial(probs, 1, generator=generator)[:, 0]``.
    """
    cdf = probs.cumsum(dim=-1)
    u = torch.rand(probs.shape[0], 1, dtype=probs.dtype, device=probs.device, generator=generator)
    return (u >= cdf).sum(dim=-1).clamp_(max=probs.shape[-1] - 1)  # clamp: rounding of cdf[-1]


def default_horizon(gamma: float, eps: float = 1e-6) -> int:
    """Smallest h with γ^h < eps: rewards after h steps change a return by less than eps · max|r| / (1 − γ)."""
    if gamma == 0.0:
        return 1
    return max(1, math.floor(math.log(eps) / math.log(gamma)) + 1)


def monte_carlo_value(
    P: torch.Tensor,
    R: torch.Tensor,
    pi: torch.Tensor,
    gamma: float,
    start_state: int,
    num_episodes: int = 1000,
    horizon: int | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Monte Carlo estimate of V^π(start_state): the average sampled discounted return.

    Every episode starts in ``start_state`` and runs for ``horizon`` steps:

        a_t ~ π(· | s_t),   reward R[s_t, a_t],   s_{t+1} ~ P(· | s_t, a_t)
        G   = Σ_{t < horizon} γ^t R[s_t, a_t]

    and the estimate is the mean of G over episodes. Truncating at the horizon
    is harmless because γ^horizon is tiny; absorbing terminal states simply
    keep adding 0. Sampling is vectorised over episodes: each step draws the
    actions of all episodes at once, then all their next states. (Any correct
    categorical sampler that uses ``generator`` is fine, e.g.
    ``torch.multinomial(pi[states], 1, generator=generator)``; the reference
    uses the inverse-CDF trick below, which is several times faster when
    there are thousands of episodes.)

    Args:
        P: ``[S, A, S]`` transition probabilities (float64).
        R: ``[S, A]`` expected rewards (float64).
        pi: ``[S, A]`` policy probabilities (float64).
        gamma: discount γ; must be < 1 unless ``horizon`` is given.
        start_state: index of s_0.
        num_episodes: number of sampled episodes.
        horizon: steps per episode; default ``default_horizon(gamma)``, the
            smallest h with γ^h < 1e-6.
        generator: ``torch.Generator`` on the device of ``P`` (global RNG if None).

    Returns:
        A 0-d tensor, dtype and device of ``P``. Random: agrees with
        ``policy_evaluation(P, R, pi, gamma)[start_state]`` up to sampling
        noise of order std(G) / sqrt(num_episodes).
    """
    S, A = _check_mdp(P, R)
    _check_policy(pi, P, S, A)
    start_state = check_scalar("start_state", start_state, low=0, high=S - 1, integer=True)
    num_episodes = check_scalar("num_episodes", num_episodes, low=1, integer=True)
    if horizon is None:
        if isinstance(gamma, (int, float)) and gamma >= 1.0:
            raise ValueError(f"gamma must be < 1 when horizon is None (episodes need a finite length), got {gamma}")
        gamma = check_scalar("gamma", gamma, low=0.0, high=1.0, high_open=True)
        horizon = default_horizon(gamma)
    else:
        gamma = check_scalar("gamma", gamma, low=0.0, high=1.0)
        horizon = check_scalar("horizon", horizon, low=1, integer=True)
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
    # TODO: keep a state index per episode; each step: actions = _sample_rows(pi[states], generator), add gamma^t * R[states, actions], states = _sample_rows(P[states, actions], generator); return the mean return.
    raise NotImplementedError('monte_carlo_value: keep a state index per episode; each step: actions = _sample_rows(pi[states], generator), add gamma^t * R[states, actions], states = _sample_rows(P[states, actions], generator); return the mean return.')
