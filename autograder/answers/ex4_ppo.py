"""Answers for the ex4_ppo suite: the reference and every named-mistake variant (never shipped)."""
from __future__ import annotations

import torch

from solutions.ex4_ppo import clip_active, clipped_surrogate, ppo_policy_loss, probability_ratio  # noqa: F401


def _d(x) -> torch.Tensor:
    return x.detach().double() if isinstance(x, torch.Tensor) else torch.as_tensor(x, dtype=torch.float64)


def _surrogate(r, a, eps, *, clip=lambda r, eps: r.clamp(1 - eps, 1 + eps), reduce=torch.minimum):
    r, a = _d(r), _d(a)
    u = r * a
    c = clip(r, eps) * a
    return u, c, reduce(u, c)


def _terms(r, a, eps, clipped):
    u = _d(r) * _d(a)
    return u, clipped, torch.minimum(u, clipped)


def ratio_variants(new, old) -> dict:
    new, old = _d(new), _d(old)
    return {"inverted": torch.exp(old - new), "log_ratio": new - old, "ratio_of_logs": new / old,
            "probs_only": torch.exp(new)}


def surrogate_variants(r, a, eps) -> dict:
    lo, hi = 1 - eps, 1 + eps
    rd, ad = _d(r), _d(a)
    return {
        "max": _surrogate(r, a, eps, reduce=torch.maximum),
        "min_of_ratios": (rd * ad, rd.clamp(lo, hi) * ad, torch.minimum(rd, rd.clamp(lo, hi)) * ad),
        "clip_adv": _terms(r, a, eps, rd * ad.clamp(lo, hi)),
        "clip_product": _terms(r, a, eps, (rd * ad).clamp(lo, hi)),
        "bounds_eps": _surrogate(r, a, eps, clip=lambda r, e: r.clamp(-e, e)),
        "bounds_swapped": _surrogate(r, a, eps, clip=lambda r, e: torch.clamp(r, 1 + e, 1 - e)),
        "bounds_one_side": _surrogate(r, a, eps, clip=lambda r, e: r.clamp(e, 1 + e)),
        "bounds_shifted": _surrogate(r, a, eps, clip=lambda r, e: (r - 1).clamp(-e, e)),
        "no_adv": _terms(r, a, eps, rd.clamp(lo, hi)),
        "log_clip": _surrogate(r, a, eps, clip=lambda r, e: r.log().clamp(-e, e).exp()),
    }


def active_variants(r, a, eps) -> dict:
    r, a = _d(r), _d(a)
    act = ((a > 0) & (r > 1 + eps)) | ((a < 0) & (r < 1 - eps))
    return {
        "abs": (r - 1).abs() > eps,
        "inverted": ~act,
        "swapped": ((a > 0) & (r < 1 - eps)) | ((a < 0) & (r > 1 + eps)),
        "ties": r.clamp(1 - eps, 1 + eps) * a <= r * a,
        "zero_adv": ((a >= 0) & (r > 1 + eps)) | ((a <= 0) & (r < 1 - eps)),
        "upper_only": (a > 0) & (r > 1 + eps),
        "lower_only": (a < 0) & (r < 1 - eps),
        "log_band": ((a > 0) & (r.log() > eps)) | ((a < 0) & (r.log() < -eps)),
    }


def _loss(new, old, a, eps, *, ratio=None, reduce=torch.minimum, clip=True, sign=-1.0, mean=True):
    new, old, a = _d(new), _d(old), _d(a)
    r = torch.exp(new - old) if ratio is None else ratio(new, old)
    u = r * a
    obj = reduce(u, r.clamp(1 - eps, 1 + eps) * a) if clip else u
    return sign * (obj.mean() if mean else obj.sum())


def loss_variants(new, old, a, eps) -> dict:
    return {
        "plus": _loss(new, old, a, eps, sign=1.0),
        "max": _loss(new, old, a, eps, reduce=torch.maximum),
        "sum": _loss(new, old, a, eps, mean=False),
        "no_clip": _loss(new, old, a, eps, clip=False),
        "inverted": _loss(new, old, a, eps, ratio=lambda n, o: torch.exp(o - n)),
        "log_ratio": _loss(new, old, a, eps, ratio=lambda n, o: n - o),
        "plus_max": _loss(new, old, a, eps, sign=1.0, reduce=torch.maximum),
        "len": _loss(new, old, a, eps, mean=False) / new.shape[0],
    }


def grad_through_clip(a, w):
    """The objective's gradient if it passed through the clipped term too: A * w everywhere."""
    return a.double().numpy() * w
