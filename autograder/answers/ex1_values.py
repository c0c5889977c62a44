"""Answers for the ex1_values suite: the reference and every named-mistake variant (never shipped)."""
from __future__ import annotations

import numpy as np
import torch

from solutions.ex1_values import action_values, default_horizon, discounted_returns  # noqa: F401 (the seam's)


def returns_variant(rewards, dones, gamma, *, reset=True, backwards=True, discount=True, shift=0, disc_r=False):
    """Discounted returns with one switch flipped (each switch is a classic mistake)."""
    r = rewards.double()
    d = dones.double()
    g = gamma if discount else 1.0
    out = torch.zeros_like(r)
    run_ = torch.zeros_like(r[0])
    T = r.shape[0]
    order = reversed(range(T)) if backwards else range(T)
    for t in order:
        if shift and backwards:
            nd = 1.0 - d[t + 1] if t + 1 < T else torch.ones_like(d[t])
        else:
            nd = 1.0 - d[t]
        if not reset:
            nd = torch.ones_like(nd)
        run_ = (g * (r[t] + nd * run_)) if disc_r else (r[t] + g * nd * run_)
        out[t] = run_
    return out


def _pe_solve(R_pi, P_pi, gamma):
    return torch.linalg.solve(torch.eye(P_pi.shape[0], dtype=torch.float64) - gamma * P_pi, R_pi)


def exact_values(P, R, pi, gamma):
    """V = (I - gamma P_pi)^-1 R_pi."""
    return _pe_solve((pi * R).sum(1), torch.einsum("sa,sat->st", pi, P), gamma)


def policy_values(P, R, pi, gamma, **_options):
    """The exact values, whatever tolerance the call asks of the student."""
    return exact_values(P, R, pi, gamma)


def value_iteration(P, R, gamma):
    V = torch.zeros(P.shape[0], dtype=torch.float64)
    for _ in range(5000):
        V = (R + gamma * torch.einsum("sat,t->sa", P, V)).max(1).values
    return V


def pe_one_sweep(P, R, pi):
    return (pi * R).sum(1)


def pe_transposed(P, R, pi, gamma):
    return exact_values(P.permute(2, 1, 0), R, pi, gamma)


def pe_P_pi_transposed(P, R, pi, gamma):
    return _pe_solve((pi * R).sum(1), torch.einsum("sa,sat->st", pi, P).T, gamma)


def av_variant(P, R, V, gamma, kind: str):
    """Q with one classic mistake: no_gamma, transposed, no_reward, current_state."""
    if kind == "no_gamma":
        return R + torch.einsum("sat,t->sa", P, V)
    if kind == "transposed":
        return R + gamma * torch.einsum("tas,t->sa", P, V)
    if kind == "no_reward":
        return gamma * torch.einsum("sat,t->sa", P, V)
    if kind == "current_state":
        return R + gamma * V[:, None].expand_as(R)
    raise ValueError(kind)


def mc_std(P, R, pi, gamma, s0, n=4000, seed=0, horizon=None):
    """Standard deviation of one sampled return (a numpy simulation)."""
    g = np.random.default_rng(seed)
    Pn, Rn, pin = P.numpy(), R.numpy(), pi.numpy()
    S, A = Rn.shape
    h = default_horizon(gamma) if horizon is None else horizon
    s = np.full(n, s0)
    G = np.zeros(n)
    disc = 1.0
    for _ in range(h):
        a = (g.random(n)[:, None] > np.cumsum(pin[s], 1)).sum(1).clip(0, A - 1)
        G += disc * Rn[s, a]
        s = (g.random(n)[:, None] > np.cumsum(Pn[s, a], 1)).sum(1).clip(0, S - 1)
        disc *= gamma
    return float(G.std())


def finite_horizon_values(P, R, pi, gamma, horizon):
    """E[sum_{t < horizon} gamma^t r_t] from every start state: ``horizon`` backups from V = 0."""
    R_pi = (pi * R).sum(1)
    P_pi = torch.einsum("sa,sat->st", pi, P)
    V = torch.zeros(P.shape[0], dtype=torch.float64)
    for _ in range(horizon):
        V = R_pi + gamma * (P_pi @ V)
    return V
