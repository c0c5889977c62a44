"""Answers for the ex5_rlhf suite: the reference and every named-mistake variant (never shipped)."""
from __future__ import annotations

import torch

from solutions.ex5_rlhf import kl_penalty, preference_loss, rlhf_rewards, token_advantages  # noqa: F401 (the seam's)


def pref_variants(c, r) -> dict:
    """The preference loss with each classic mistake, keyed like the suite's messages."""
    logsigmoid = torch.nn.functional.logsigmoid
    return {"swapped": -logsigmoid(r - c).mean(), "sum": -logsigmoid(c - r).sum(),
            "no_log": -torch.sigmoid(c - r).mean(), "positive": logsigmoid(c - r).mean()}


def kl_variants(lp, rl) -> dict:
    return {"sign": rl - lp, "ratio": torch.exp(lp - rl), "abs": (lp - rl).abs()}


def last_index(mask):
    m = mask.bool()
    pos = torch.arange(m.shape[1])
    return torch.where(m, pos, -1).amax(1)


def rewards_variants(scores, lp, rl, mask, beta) -> dict:
    m = mask.bool()
    kl = (lp - rl).double()
    z = torch.zeros_like(kl)
    base = torch.where(m, -beta * kl, z)
    last = last_index(mask)

    def score_at(idx_per_row, where_ok, values=scores):
        out = torch.zeros_like(kl)
        for b in range(kl.shape[0]):
            i = int(idx_per_row[b])
            if where_ok[b] and 0 <= i < kl.shape[1]:
                out[b, i] = float(values[b])
        return out

    has = m.any(1)
    first = torch.where(m, torch.arange(m.shape[1]), m.shape[1]).amin(1)
    length = m.sum(1)
    seq_kl = torch.where(m, kl, z).sum(1)
    return {
        "kl_sign": torch.where(m, beta * kl, z) + score_at(last, has),
        "score_first": base + score_at(first, has),
        "score_end": base + score_at(torch.full_like(last, kl.shape[1] - 1), has),
        "score_at_length": base + score_at(length - 1, has),
        "score_replaces_kl": torch.where(m & (torch.arange(m.shape[1]) == last[:, None]),
                                         scores.double()[:, None].expand_as(kl), base),
        "sequence_kl": score_at(last, has, scores.double() - beta * seq_kl),
        "score_everywhere": base + torch.where(m, scores.double()[:, None].expand_as(kl), z),
        "no_mask": -beta * kl + score_at(last, has),
        "no_score": base,
        "beta_on_score": base + beta * score_at(last, has),
    }


def adv_variant(rewards, values, mask, lam, *, cut=True, gamma=1.0, use_lam=True):
    m = mask.bool()
    B, T = rewards.shape
    r = torch.where(m, rewards, torch.zeros_like(rewards)).double()
    v = torch.where(m, values, torch.zeros_like(values)).double()
    adv = torch.zeros_like(r)
    for b in range(B):
        a = 0.0
        for t in reversed(range(T)):
            if not m[b, t]:
                a = 0.0
                continue
            nxt_in = t + 1 < T and bool(m[b, t + 1])
            v_next = float(v[b, t + 1]) if (t + 1 < T and (nxt_in or not cut)) else 0.0
            delta = float(r[b, t]) + gamma * v_next - float(v[b, t])
            a_next = a if nxt_in else 0.0
            a = delta + gamma * (lam if use_lam else 1.0) * a_next
            adv[b, t] = a
    ret = torch.where(m, adv + v, torch.zeros_like(adv))
    return adv, ret


def _normalized(adv, mask):
    m = mask.bool()
    a = adv[m]
    out = (adv - a.mean()) / (a.std() + 1e-8)
    return torch.where(m, out, torch.zeros_like(out))


def adv_variants(rewards, values, mask, lam) -> dict:
    right = adv_variant(rewards, values, mask, lam)
    v = torch.where(mask.bool(), values.double(), torch.zeros_like(values.double()))
    return {
        "returns_reward_to_go": (right[0], adv_variant(rewards, values, mask, 1.0)[0] + v),
        "normalized": (_normalized(right[0], mask), right[1]),
        "bootstrap_past_end": adv_variant(rewards, values, mask, lam, cut=False),
        "no_lambda": adv_variant(rewards, values, mask, lam, use_lam=False),
        "gamma": adv_variant(rewards, values, mask, lam, gamma=0.99),
    }
