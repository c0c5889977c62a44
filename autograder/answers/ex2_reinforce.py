"""Answers for the ex2_reinforce suite: the reference and every named-mistake variant (never shipped).

Sampling is random, so answers about sampled actions are tables over every action
(``[..., K]``, or ``[..., K, K]`` for gradients): the suite indexes them with the
actions the submission drew.
"""
from __future__ import annotations

import copy

import numpy as np
import torch

from solutions.ex1_values import discounted_returns
from solutions.ex2_reinforce import reinforce_loss  # noqa: F401 (the seam's)


# ------------------------------------------------------------------ sample_action
def log_pi_table(logits):
    """log pi(a | s) for every action a: ``[..., K]`` (float64)."""
    return torch.log_softmax(logits.double(), dim=-1)


def log_pi_variants(logits) -> dict:
    """Per-action tables of the classic wrong log_probs, keyed like the suite's messages."""
    x = logits.double()
    out = {"probs": torch.softmax(x, -1), "raw_logits": x, "negated": -torch.log_softmax(x, -1)}
    if x.dim() >= 2:
        out["wrong_dim"] = torch.log_softmax(x, dim=0)
    return out


def action_probs(logits):
    """pi(. | s) = softmax(logits), float64."""
    return torch.softmax(logits.double(), -1)


def greedy_actions(logits):
    """The argmax actions (what a sampler that never explores returns)."""
    return logits.argmax(-1)


def _per_action_gradients(logits, w, log_prob):
    """``[..., a, k]`` = d sum(w * log_prob(x)[..., a]) / d x[..., k] for every action a."""
    K = logits.shape[-1]
    rows = []
    for a in range(K):
        x = logits.detach().double().requires_grad_(True)
        (g,) = torch.autograd.grad((log_prob(x)[..., a] * torch.as_tensor(w)).sum(), [x])
        rows.append(g)
    return torch.stack(rows, dim=-2)


def log_pi_gradients(logits, w):
    """The gradient of sum(w * log pi(a)) w.r.t. the logits, for every action a: ``[..., K, K]``."""
    return _per_action_gradients(logits, w, lambda x: torch.log_softmax(x, -1))


def log_pi_gradient_variants(logits, w) -> dict:
    # the normaliser detached: only the logit of the action itself receives gradient
    return {"lse_detached": _per_action_gradients(logits, w, lambda x: x - torch.logsumexp(x.detach(), -1, True))}


# ------------------------------------------------------------------ reinforce_loss
def loss_variants(lp, G) -> dict:
    lp64, G64 = lp.double(), G.double()
    return {
        "sign": (lp64 * G64).mean(),
        "sum": -(lp64 * G64).sum(),
        "sum_sign": (lp64 * G64).sum(),
        "product_of_means": -(lp64.mean() * G64.mean()),
        "standardized": -(lp64 * (G64 - G64.mean()) / (G64.std(correction=0) + 1e-8)).mean(),
    }


def loss_grad_variants(G, w) -> dict:
    """d(w * loss)/d log_probs for a summed loss and a loss of the wrong sign."""
    return {"sum": -w * G.double(), "sign": w * G.double() / G.numel()}


# ------------------------------------------------------------------ reinforce_update
def _update(params, lr, log_probs, rewards, gamma, normalize, *, std_correction=0, zero_grad=True, sign=1.0,
            reduce="mean", total=False, step=True) -> float:
    """One REINFORCE update with plain SGD (p <- p - lr * grad), with switches that reproduce known mistakes."""
    if total:
        G = torch.full_like(rewards, float(rewards.sum()))
    else:
        dones = torch.zeros_like(rewards)
        dones[-1] = 1.0
        G = discounted_returns(rewards, dones, gamma)
    if normalize:
        G = (G - G.mean()) / (G.std(correction=std_correction) + 1e-8)
    prod = log_probs * G.detach()
    loss = -sign * (prod.mean() if reduce == "mean" else prod.sum())
    if zero_grad:
        for p in params:
            p.grad = None
    loss.backward()
    if step:
        with torch.no_grad():
            for p in params:
                if p.grad is not None:
                    p.add_(p.grad, alpha=-lr)
    return loss.item()


def run_updates(policy, episodes, gamma, normalize, lr, **switches):
    """The suite's driver loop with the reference update: (losses [n] float64, final weights float64)."""
    pol = copy.deepcopy(policy)
    params = list(pol.parameters())
    losses = []
    for obs, act, rew in episodes:
        log_probs = torch.distributions.Categorical(logits=pol(obs)).log_prob(act)  # as the driver builds them
        losses.append(_update(params, lr, log_probs, rew, gamma, normalize, **switches))
    return np.asarray(losses, dtype=np.float64), {k: v.detach().double().numpy() for k, v in pol.state_dict().items()}


def update_alternatives(policy, episodes, gamma, normalize, lr) -> dict:
    """Correct updates written differently: the sample standard deviation (torch.std's default)."""
    return {"sample_std": run_updates(policy, episodes, gamma, normalize, lr, std_correction=1)} if normalize else {}


def update_variants(policy, episodes, gamma, normalize, lr) -> dict:
    """Each known mistake of reinforce_update, run through the same loop, keyed like the suite's messages."""
    def run(g=gamma, n=normalize, **switches):
        return run_updates(policy, episodes, g, n, lr, **switches)

    out = {"normalize_flag": run(n=not normalize), "no_zero_grad": run(zero_grad=False), "sign": run(sign=-1.0),
           "sum": run(reduce="sum"), "no_step": run(step=False)}
    if gamma < 1.0:
        out["no_discount"] = run(g=1.0)
    if not normalize:  # standardised, a constant weight is 0 for every step (the "no step" message covers it)
        out["total_reward"] = run(total=True)
    return out
