"""Correct implementations of ex1_values written differently from the reference get full marks.

Each variant replaces the solution regions of solutions/ex1_values.py with
other correct code (float64 accumulation cast back, torch.stack of a list,
torch.where on the dones, in-place Gauss-Seidel sweeps, an explicit state
loop, ``P @ V``, torch.multinomial or searchsorted sampling, ``gamma ** t``)
and must pass every non-learning test of the hidden suite. Both variants are
graded in one session each (two grades in all).
"""
from __future__ import annotations


import pytest

from conftest import assert_full_marks, with_regions

MODULE = "ex1_values"

# float64 inside then cast back; in-place Gauss-Seidel (converges to the same V, and with the
# same reward everywhere it makes the same sweeps as the synchronous backup); multinomial.
GAUSS_SEIDEL = {
    "discounted_returns": """
        r = rewards.detach().double()
        nd = 1.0 - dones.double()
        G = torch.zeros_like(r[0])
        out = []
        for t in range(r.shape[0] - 1, -1, -1):
            G = r[t] + gamma * nd[t] * G
            out.append(G)
        return torch.stack(out[::-1]).to(rewards.dtype)
    """,
    "policy_evaluation": """
        V = torch.zeros(S, dtype=P.dtype, device=P.device)
        for _ in range(max_iters):
            delta = 0.0
            for s in range(S):
                v_s = (pi[s] * (R[s] + gamma * (P[s] @ V))).sum()
                delta = max(delta, abs(float(v_s - V[s])))
                V[s] = v_s  # in place: later states already see the new value (Gauss-Seidel)
            if delta < tol:
                break
        return V
    """,
    "action_values": """
        return R + gamma * (P @ V)
    """,
    "monte_carlo_value": """
        states = torch.full((num_episodes,), start_state, dtype=torch.long, device=P.device)
        G = torch.zeros(num_episodes, dtype=torch.float64, device=P.device)
        for t in range(horizon):
            a = torch.multinomial(pi[states], 1, generator=generator).squeeze(1)
            G = G + (gamma ** t) * R[states, a].double()
            states = torch.multinomial(P[states, a], 1, generator=generator).squeeze(1)
        return G.mean().to(P.dtype)
    """,
}

# torch.where on bool dones with zeros_like buffers; Jacobi with an explicit convergence flag and
# P_pi built by broadcasting; loops over (s, a); inverse CDF with searchsorted and a running discount.
EXPLICIT = {
    "discounted_returns": """
        ended = dones.bool()
        out = torch.zeros_like(rewards).detach()
        G = torch.zeros_like(rewards[0]).detach()
        for t in range(rewards.shape[0] - 1, -1, -1):
            G = rewards[t].detach() + gamma * torch.where(ended[t], torch.zeros_like(G), G)
            out[t] = G
        return out
    """,
    "policy_evaluation": """
        P_pi = (pi.unsqueeze(-1) * P).sum(dim=1)
        R_pi = torch.sum(pi * R, dim=-1)
        V = torch.zeros_like(R_pi)
        it = 0
        done = False
        while not done and it < max_iters:
            new = R_pi + gamma * torch.mv(P_pi, V)
            done = bool(torch.max(torch.abs(new - V)) < tol)
            V = new
            it += 1
        return V
    """,
    "action_values": """
        Q = torch.empty_like(R)
        for s in range(S):
            for a in range(A):
                Q[s, a] = R[s, a] + gamma * torch.dot(P[s, a], V)
        return Q
    """,
    "monte_carlo_value": """
        def draw(probs):
            cdf = torch.cumsum(probs, dim=-1)
            u = torch.rand(probs.shape[0], 1, generator=generator, dtype=probs.dtype, device=probs.device)
            return torch.searchsorted(cdf, u, right=True).squeeze(1).clamp(max=probs.shape[-1] - 1)

        s = torch.full((num_episodes,), start_state, device=P.device)
        total = torch.zeros(num_episodes, dtype=P.dtype, device=P.device)
        w = 1.0
        for _ in range(horizon):
            a = draw(pi[s])
            total = total + w * R[s, a]
            s = draw(P[s, a])
            w = w * gamma
        return torch.mean(total)
    """,
}


@pytest.mark.parametrize("variant", [GAUSS_SEIDEL, EXPLICIT], ids=["gauss_seidel", "explicit"])
def test_correct_variants_get_full_marks(variant, tmp_path):
    assert_full_marks(MODULE, with_regions(MODULE, variant), tmp_path)
