"""Correct implementations of ex5_rlhf written differently from the reference get full marks.

Each variant replaces the solution regions of solutions/ex5_rlhf.py with
other correct code (softplus or BCE-with-logits for the preference loss,
float64 inside then cast back, multiplying by the mask instead of
torch.where, the last response token found by flip/argmax or by a cumsum,
GAE written as a loop per row or vectorised over rows) and must pass every
non-learning test of the hidden suite. Two grades in all.
"""
from __future__ import annotations


import pytest

from conftest import assert_full_marks, with_regions

MODULE = "ex5_rlhf"

# -softplus instead of logsigmoid; the last token by flip + argmax; a per-row loop in float64.
SOFTPLUS_LOOPS = {
    "preference_loss": """
        return F.softplus(r_rejected - r_chosen).mean()
    """,
    "kl_penalty": """
        return torch.sub(log_probs, ref_log_probs.detach())
    """,
    "rlhf_rewards": """
        m = mask.to(log_probs.dtype)
        rewards = (-beta * (log_probs - ref_log_probs) * m).detach().clone()  # finite * 0 = 0 off the response
        T = m.shape[1]
        last = T - 1 - torch.flip(m, dims=[1]).argmax(dim=1)
        rows = (m.sum(dim=1) > 0).nonzero().squeeze(1)
        rewards[rows, last[rows]] += scores.detach()[rows].to(rewards.dtype)
        return rewards
    """,
    "token_advantages": """
        B, T = rewards.shape
        m = mask.bool()
        r = rewards.detach().double()
        v = values.detach().double()
        adv = torch.zeros(B, T, dtype=torch.float64, device=rewards.device)
        for b in range(B):
            a = 0.0
            for t in range(T - 1, -1, -1):
                if not m[b, t]:
                    a = 0.0
                    continue
                inside = t + 1 < T and bool(m[b, t + 1])
                v_next = v[b, t + 1] if inside else 0.0
                a = r[b, t] + v_next - v[b, t] + lam * (a if inside else 0.0)
                adv[b, t] = a
        ret = torch.where(m, adv + v, torch.zeros_like(adv))
        return adv.to(rewards.dtype), ret.to(rewards.dtype)
    """,
}

# BCE with logits; float64 inside the KL then cast back; the last token by a cumsum and the score
# added by multiplication; GAE vectorised over rows with the mask as a multiplier.
BCE_CUMSUM = {
    "preference_loss": """
        d = r_chosen - r_rejected
        return F.binary_cross_entropy_with_logits(d, torch.ones_like(d))
    """,
    "kl_penalty": """
        return (log_probs.double() - ref_log_probs.detach().double()).to(log_probs.dtype)
    """,
    "rlhf_rewards": """
        m = mask.bool()
        kl = log_probs.detach() - ref_log_probs.detach()
        c = m.long().cumsum(dim=1)
        is_last = m & (c == c[:, -1:])
        per_token = torch.where(m, -beta * kl, torch.zeros_like(kl))
        return per_token + is_last.to(kl.dtype) * scores.detach().to(kl.dtype)[:, None]
    """,
    "token_advantages": """
        m = mask.to(rewards.dtype)
        r = rewards.detach() * m
        v = values.detach().to(rewards.dtype) * m
        B, T = r.shape
        adv = torch.zeros_like(r)
        A = torch.zeros(B, dtype=r.dtype, device=r.device)
        zero = torch.zeros(B, dtype=r.dtype, device=r.device)
        for t in reversed(range(T)):
            v_next = v[:, t + 1] if t + 1 < T else zero
            m_next = m[:, t + 1] if t + 1 < T else zero
            A = (r[:, t] + v_next - v[:, t] + lam * m_next * A) * m[:, t]
            adv[:, t] = A
        return adv, (adv + v) * m
    """,
}


@pytest.mark.parametrize("variant", [SOFTPLUS_LOOPS, BCE_CUMSUM], ids=["softplus_loops", "bce_cumsum"])
def test_correct_variants_get_full_marks(variant, tmp_path):
    assert_full_marks(MODULE, with_regions(MODULE, variant), tmp_path)
