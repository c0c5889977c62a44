"""Correct implementations of ex4_ppo written differently from the reference get full marks.

Each variant replaces the solution regions of solutions/ex4_ppo.py with other
correct code (a ratio of probabilities, max/min or where instead of clamp and
minimum, min(a, b) = a - relu(a - b) or (a + b - |a - b|) / 2, the per-sign
form of the objective, a mask from comparing the two terms or from
sign(A) * (r - 1) > eps, a stability clamp on the log-ratio, float64
internally, Python loops) and must pass every non-learning test of the
hidden suite.
"""
from __future__ import annotations


import pytest

from conftest import assert_full_marks, with_regions

MODULE = "ex4_ppo"

WHERE = {
    "probability_ratio": """
        return torch.exp(new_log_probs) / torch.exp(old_log_probs).detach()
    """,
    "clipped_surrogate": """
        lo = torch.full_like(ratio, 1.0 - clip_eps)
        hi = torch.full_like(ratio, 1.0 + clip_eps)
        unclipped = advantages * ratio
        clipped = advantages * torch.max(torch.min(ratio, hi), lo)
        objective = torch.where(unclipped < clipped, unclipped, clipped)
        return unclipped, clipped, objective
    """,
    "clip_active": """
        unclipped, clipped, _ = clipped_surrogate(ratio.detach(), advantages.detach(), clip_eps)
        return clipped < unclipped
    """,
    "ppo_policy_loss": """
        r = probability_ratio(new_log_probs, old_log_probs)
        A = advantages.detach()
        mask = clip_active(r, A, clip_eps)
        objective = torch.where(mask, torch.clamp(r, 1 - clip_eps, 1 + clip_eps) * A, r * A)
        return -objective.sum() / objective.numel()
    """,
}

RELU64 = {
    "probability_ratio": """
        log_ratio = new_log_probs - old_log_probs.detach()
        return log_ratio.exp()
    """,
    "clipped_surrogate": """
        unclipped = ratio * advantages
        clipped = ratio.clamp(min=1 - clip_eps).clamp(max=1 + clip_eps) * advantages
        objective = unclipped - torch.relu(unclipped - clipped)  # min(a, b) = a - relu(a - b)
        return unclipped, clipped, objective
    """,
    "clip_active": """
        r, A = ratio.detach(), advantages.detach()
        up = torch.logical_and(A > 0, r > 1 + clip_eps)
        down = torch.logical_and(A < 0, r < 1 - clip_eps)
        return torch.logical_or(up, down)
    """,
    "ppo_policy_loss": """
        r = (new_log_probs.double() - old_log_probs.detach().double()).exp()
        A = advantages.detach().double()
        objective = torch.min(r * A, r.clamp(1 - clip_eps, 1 + clip_eps) * A)
        return (-objective.mean()).to(new_log_probs.dtype)
    """,
}

PER_SIGN_LOOPS = {
    "probability_ratio": """
        old = old_log_probs.detach().clone()
        return torch.exp(new_log_probs) * torch.exp(-old)
    """,
    "clipped_surrogate": """
        unclipped = ratio * advantages
        clipped = torch.clamp(ratio, 1 - clip_eps, 1 + clip_eps) * advantages
        # A >= 0: min(r, clip(r)) A = min(r, 1 + eps) A;  A < 0: max(r, 1 - eps) A
        bounded = torch.where(advantages >= 0, torch.clamp(ratio, max=1 + clip_eps),
                              torch.clamp(ratio, min=1 - clip_eps))
        return unclipped, clipped, bounded * advantages
    """,
    "clip_active": """
        r = ratio.detach().reshape(-1).tolist()
        a = advantages.detach().reshape(-1).tolist()
        flags = [(ai > 0 and ri > 1 + clip_eps) or (ai < 0 and ri < 1 - clip_eps) for ri, ai in zip(r, a)]
        return torch.tensor(flags, dtype=torch.bool, device=ratio.device).reshape(ratio.shape)
    """,
    "ppo_policy_loss": """
        surr = clipped_surrogate(torch.exp(new_log_probs - old_log_probs.detach()), advantages.detach(), clip_eps)[2]
        return -torch.mean(surr, dim=tuple(range(surr.dim())))
    """,
}


SIGN_BAND = {
    "probability_ratio": """
        # a stability clamp on the log-ratio (never active for the ratios PPO sees), then exp
        log_ratio = torch.clamp(new_log_probs - old_log_probs.detach(), min=-30.0, max=30.0)
        return torch.exp(log_ratio)
    """,
    "clipped_surrogate": """
        hi = torch.full_like(ratio, 1.0 + clip_eps)
        lo = torch.full_like(ratio, 1.0 - clip_eps)
        clipped_ratio = torch.where(ratio > hi, hi, torch.where(ratio < lo, lo, ratio))
        unclipped = ratio * advantages
        clipped = clipped_ratio * advantages
        objective = 0.5 * (unclipped + clipped - (unclipped - clipped).abs())  # min(a, b)
        return unclipped, clipped, objective
    """,
    "clip_active": """
        # the sign of A says which side of the band stops the sample (A = 0: never)
        return torch.sign(advantages.detach()) * (ratio.detach() - 1.0) > clip_eps
    """,
    "ppo_policy_loss": """
        dtype = new_log_probs.dtype
        r = torch.exp(new_log_probs.double() - old_log_probs.detach().double()).to(dtype)  # float64 inside
        A = advantages.detach()
        mask = clip_active(r, A, clip_eps)
        objective = torch.where(mask, torch.clamp(r, 1 - clip_eps, 1 + clip_eps).detach() * A, r * A)
        return (-objective).mean()
    """,
}


@pytest.mark.parametrize("variant", [WHERE, RELU64, PER_SIGN_LOOPS, SIGN_BAND],
                         ids=["where", "relu_float64", "per_sign_loops", "sign_band"])
def test_correct_variants_get_full_marks(variant, tmp_path):
    assert_full_marks(MODULE, with_regions(MODULE, variant), tmp_path)
