"""Answers for the ex3_baseline suite: the reference and every named-mistake variant (never shipped).

Each ``*_variants`` function returns {key: value} for the classic mistakes; the
suite keeps the feedback message of each key.
"""
from __future__ import annotations

import copy

import numpy as np
import torch

from common.rollout import Episode
from solutions.ex3_baseline import (  # noqa: F401 (the seam's)
    actor_critic_update,
    advantages,
    compute_gae,
    gradient_variance,
    reinforce_baseline_loss,
    td_errors,
    value_loss,
)


def _d(x) -> torch.Tensor:
    return x.detach().double()


# ---------------------------------------------------------------- advantages, value_loss
def advantage_variants(returns, values) -> dict:
    return {"sign": _d(values) - _d(returns)}


def mse_variants(values, targets) -> dict:
    v, t = _d(values), _d(targets)
    return {
        "sum": ((v - t) ** 2).sum(),
        "rmse": ((v - t) ** 2).mean().sqrt(),
        "half": 0.5 * ((v - t) ** 2).mean(),
        "abs": (v - t).abs().mean(),
        "time_mean_only": ((v - t) ** 2).mean(0).sum(),
        "mean_error_squared": (v - t).mean() ** 2,
    }


def value_loss_grad_variants(values, targets, weight) -> dict:
    """d(weight * loss)/d values for the losses with a classic mistake."""
    w = float(np.asarray(weight))
    v, t = _d(values), _d(targets)
    n = v.numel()
    return {"sum": w * 2 * (v - t), "half": w * (v - t) / n, "sign": -w * 2 * (v - t) / n}


# ---------------------------------------------------------------- reinforce_baseline_loss
def rbl_variants(log_probs, returns, values) -> dict:
    """(policy_loss, value_loss) with one of the two losses wrong."""
    lp, G, V = _d(log_probs), _d(returns), _d(values)
    vl = ((V - G) ** 2).mean()
    out = {
        "no_baseline": (-(lp * G).mean(), vl),
        "adv_sign": (-(lp * (V - G)).mean(), vl),
        "loss_sign": ((lp * (G - V)).mean(), vl),
        "policy_sum": (-(lp * (G - V)).sum(), vl),
    }
    pl = -(lp * (G - V)).mean()
    out.update({k: (pl, wrong) for k, wrong in mse_variants(V, G).items()})
    return out


# ---------------------------------------------------------------- td_errors
def _td_variant(r, v, nv, d, gamma, *, use_dones=True, discount=True, sign=1.0, mask_reward=False):
    r, v, nv = _d(r), _d(v), _d(nv)
    nd = 1.0 - d.double() if use_dones else torch.ones_like(r)
    g = gamma if discount else 1.0
    if mask_reward:
        return sign * (nd * (r + g * nv) - v)
    return sign * (r + g * nd * nv - v)


def td_variants(r, v, nv, d, gamma) -> dict:
    return {
        "no_dones": _td_variant(r, v, nv, d, gamma, use_dones=False),
        "no_gamma": _td_variant(r, v, nv, d, gamma, discount=False),
        "sign": _td_variant(r, v, nv, d, gamma, sign=-1.0),
        "mask_reward": _td_variant(r, v, nv, d, gamma, mask_reward=True),
    }


def td_grad_variants(weight) -> dict:
    """d<w, delta>/d values with the wrong sign (+w instead of -w)."""
    return {"sign": torch.as_tensor(weight)}


# ---------------------------------------------------------------- compute_gae
def _gae_variant(rewards, values, dones, last_value, gamma, lam, *, done_rec=True, done_boot=True,
                 use_last=True, next_is_current=False, gamma_in_rec=True, lam_in_rec=True, forward=False,
                 add_values=True, shift_done=False):
    r, v = _d(rewards), _d(values)
    d = dones.double()
    T = r.shape[0]
    last = _d(last_value).expand_as(v[0]) if use_last else torch.zeros_like(v[0])
    adv = torch.zeros_like(v)
    running = torch.zeros_like(v[0])
    coef = (gamma if gamma_in_rec else 1.0) * (lam if lam_in_rec else 1.0)
    order = range(T) if forward else reversed(range(T))
    for t in order:
        if next_is_current:
            nxt = v[t]
        else:
            nxt = v[t + 1] if t + 1 < T else last
        if shift_done:
            dt = d[t + 1] if t + 1 < T else torch.zeros_like(d[t])
        else:
            dt = d[t]
        nd_boot = 1.0 - dt if done_boot else torch.ones_like(dt)
        nd_rec = 1.0 - dt if done_rec else torch.ones_like(dt)
        delta = r[t] + gamma * nd_boot * nxt - v[t]
        running = delta + coef * nd_rec * running
        adv[t] = running
    return adv, (adv + v if add_values else adv.clone())


def gae_variants(rewards, values, dones, last_value, gamma, lam) -> dict:
    """(advantages, returns) with one classic mistake each."""
    switches = {
        "no_dones": dict(done_rec=False, done_boot=False),
        "no_done_recursion": dict(done_rec=False),
        "no_done_bootstrap": dict(done_boot=False),
        "no_last_value": dict(use_last=False),
        "current_value": dict(next_is_current=True),
        "no_gamma_recursion": dict(gamma_in_rec=False),
        "no_lam_recursion": dict(lam_in_rec=False),
        "forward": dict(forward=True),
        "shifted_done": dict(shift_done=True),
        "returns_are_advantages": dict(add_values=False),
    }
    return {k: _gae_variant(rewards, values, dones, last_value, gamma, lam, **kw) for k, kw in switches.items()}


def _bootstrapped_returns(r, d, last, gamma):
    r, d = r.double(), d.double()
    G = torch.zeros_like(r)
    running = last.double().expand_as(r[0]).clone()
    for t in reversed(range(r.shape[0])):
        running = r[t] + gamma * (1.0 - d[t]) * running
        G[t] = running
    return G


def gae_lambda_limit(rewards, values, dones, last_value, gamma, lam):
    """(advantages, returns) from the closed forms: lam = 0 gives the TD errors, lam = 1 the
    bootstrapped discounted returns minus the values."""
    r, v, d = rewards, values, dones
    if lam == 0.0:
        last = last_value.reshape(v[:1].shape) if v.dim() == 1 else last_value.reshape(1, -1)
        nv = torch.cat([v[1:], last])
        want = _d(r) + gamma * (1.0 - d.double()) * _d(nv) - _d(v)
    elif lam == 1.0:
        want = _bootstrapped_returns(r, d, last_value, gamma) - _d(v)
    else:
        raise ValueError(f"no closed form for lam={lam}")
    return want, want + _d(v)


# ---------------------------------------------------------------- gradient_variance
def _episode_grads(policy, obs, acts, weights, per_step=False, mean=False):
    """Per-episode (or per-step) flattened gradients of sum_t log pi(a_t|s_t) w_t, in float64."""
    net = copy.deepcopy(policy).double()
    params = [p for p in net.parameters()]
    rows = []
    for o, a, w in zip(obs, acts, weights):
        lp = torch.log_softmax(net(o.double()), -1).gather(-1, a.long().unsqueeze(-1)).squeeze(-1)
        terms = lp * w.double()
        if per_step:
            for t in range(terms.shape[0]):
                gs = torch.autograd.grad(terms[t], params, retain_graph=True)
                rows.append(torch.cat([g.reshape(-1) for g in gs]))
        else:
            s = terms.mean() if mean else terms.sum()
            gs = torch.autograd.grad(s, params)
            rows.append(torch.cat([g.reshape(-1) for g in gs]))
    return torch.stack(rows)


def gv_variants(policy, obs, acts, rets, bls) -> dict:
    """gradient_variance with one classic mistake each (floats), in the order they are tried."""
    w = [r.double() - (b.double() if bls is not None else 0.0) for r, b in zip(rets, bls or rets)]
    G = _episode_grads(policy, obs, acts, w)
    out = {}
    if bls is not None:
        out["no_baseline"] = _episode_grads(policy, obs, acts, [r.double() for r in rets]).var(0).sum()
    out.update({
        "population": G.var(0, correction=0).sum(),
        "mean_params": G.var(0).mean(),
        "per_step": _episode_grads(policy, obs, acts, w, per_step=True).var(0).sum(),
        "mean_over_time": _episode_grads(policy, obs, acts, w, mean=True).var(0).sum(),
        "norm_variance": G.norm(dim=1).var(),
        "std": G.std(0).sum(),
    })
    return {k: float(v) for k, v in out.items()}


# ---------------------------------------------------------------- actor_critic_update
from autograder.plain_sgd import PlainSGD  # noqa: E402  (the suite's driver runs the same class)


def _gae_diff(rewards, values, gamma, lam, detach=True):
    """GAE for one finished episode (last_value 0), differentiable in values unless detached."""
    v = values.detach() if detach else values
    T = v.shape[0]
    adv = []
    running = torch.zeros((), dtype=v.dtype)
    for t in reversed(range(T)):
        nxt = v[t + 1] if t + 1 < T else torch.zeros((), dtype=v.dtype)
        nd = 0.0 if t == T - 1 else 1.0
        delta = rewards[t].to(v.dtype) + gamma * nd * nxt - v[t]
        running = delta + gamma * lam * nd * running
        adv.append(running)
    adv = torch.stack(adv[::-1])
    return adv, adv + v


def _trusted_update(popt, vopt, value_net, ep, gamma, lam, normalize, *, std_correction=0, zero_grad=(True, True),
                    detach_adv=True, critic_target="returns", step_policy=True, step_value=True,
                    policy_sign=1.0, adv_minus_values=False):
    """actor_critic_update written out, with switches that reproduce known mistakes."""
    values = value_net(ep.observations)
    adv, ret = _gae_diff(ep.rewards, values, gamma, lam, detach=detach_adv)
    ret = ret.detach()
    if adv_minus_values:  # A = G - V with the critic's graph kept
        adv = ret - values
    if normalize:
        adv = (adv - adv.mean()) / (adv.std(correction=std_correction) + 1e-8)
    p_loss = -policy_sign * (ep.log_probs * adv).mean()
    target = {"returns": ret, "advantages": adv.detach()}[critic_target]
    v_loss = ((values - target) ** 2).mean()
    if zero_grad[0]:
        popt.zero_grad()
    if zero_grad[1]:
        vopt.zero_grad()
    (p_loss + v_loss).backward()
    if step_policy:
        popt.step()
    if step_value:
        vopt.step()
    return p_loss.item(), v_loss.item()


def _run_updates(update, pol0, val0, episodes, gamma, lam, normalize, lr, **kw):
    """The suite driver's loop, with ``update`` in place of the student's function:
    (losses [n, 2], policy weights, value weights), in float64."""
    pol, val = copy.deepcopy(pol0), copy.deepcopy(val0)
    popt = PlainSGD(pol.parameters(), lr=lr)
    vopt = PlainSGD(val.parameters(), lr=lr)
    losses = []
    for obs, act, rew in episodes:
        lp = torch.log_softmax(pol(obs), -1).gather(-1, act.unsqueeze(-1)).squeeze(-1)
        ep = Episode(observations=obs, actions=act, rewards=rew, log_probs=lp, total_reward=float(rew.sum()))
        losses.append(update(popt, vopt, val, ep, gamma, lam, normalize, **kw))

    def state(m):
        return {k: v.detach().double().numpy() for k, v in m.state_dict().items()}

    return np.asarray(losses, dtype=np.float64), state(pol), state(val)


def ac_updates(pol0, val0, episodes, gamma, lam, normalize, lr):
    """The reference's updates, one per episode, with one PlainSGD per network."""
    return _run_updates(actor_critic_update, pol0, val0, episodes, gamma, lam, normalize, lr)


def ac_sample_std(pol0, val0, episodes, gamma, lam, normalize, lr):
    """An accepted alternative: standardising with the sample std (torch.std's default)."""
    return _run_updates(_trusted_update, pol0, val0, episodes, gamma, lam, normalize, lr, std_correction=1)


def ac_variants(pol0, val0, episodes, gamma, lam, normalize, lr) -> dict:
    """The updates with one classic mistake each, in the order they are tried."""
    switches = {
        "no_zero_grad": dict(zero_grad=(False, False)),
        "no_policy_zero_grad": dict(zero_grad=(False, True)),
        "no_value_zero_grad": dict(zero_grad=(True, False)),
        "normalize_flag": dict(normalize=not normalize),
        "adv_not_detached": dict(detach_adv=False),
        "adv_minus_values": dict(adv_minus_values=True),
        "critic_on_advantages": dict(critic_target="advantages"),
        "policy_sign": dict(policy_sign=-1.0),
        "lam_ignored": dict(lam=1.0),
    }
    out = {}
    for key, kw in switches.items():
        kw = dict(kw)
        l, n = kw.pop("lam", lam), kw.pop("normalize", normalize)
        out[key] = _run_updates(_trusted_update, pol0, val0, episodes, gamma, l, n, lr, **kw)
    return out
