"""Correct implementations of ex2_reinforce written differently from the reference get full marks.

Each variant replaces the solution regions of solutions/ex2_reinforce.py with
other correct code (Gumbel-max or inverse-CDF sampling, torch.distributions,
float64 log(softmax), hand-written or reverse-cumsum returns, the sample
standard deviation, zero_grad after the step, loops written another way) and
must pass every non-learning test of the hidden suite.
"""
from __future__ import annotations


import pytest

from conftest import assert_full_marks, with_regions

MODULE = "ex2_reinforce"

GUMBEL = {
    "sample_action": """
        u = torch.rand(logits.shape, generator=generator, device=logits.device, dtype=torch.float32)
        u = u.clamp_min(torch.finfo(torch.float32).tiny)
        gumbel = -torch.log(-torch.log(u))
        actions = torch.argmax(logits.detach() + gumbel.to(logits.dtype), dim=-1)
        log_z = torch.logsumexp(logits, dim=-1)
        log_probs = torch.gather(logits, -1, actions[..., None])[..., 0] - log_z
        return actions, log_probs
    """,
    "reinforce_loss": """
        weights = returns.detach()
        return -(log_probs * weights).sum() / log_probs.numel()
    """,
    "collect_episode": """
        terminated = truncated = False
        while not (terminated or truncated):
            x = torch.as_tensor(obs).float().to(device)
            a, lp = sample_action(policy(x), generator=generator)
            observations.append(x)
            obs, reward, terminated, truncated, info = env.step(int(a))
            actions.append(a)
            rewards.append(reward)
            log_probs.append(lp)
    """,
    "reinforce_update": """
        r = episode.rewards
        G = torch.empty_like(r)
        running = torch.zeros((), dtype=r.dtype, device=r.device)
        for t in range(r.shape[0] - 1, -1, -1):
            running = r[t] + gamma * running
            G[t] = running
        if normalize_returns:
            G = (G - G.mean()) / (G.std() + 1e-8)  # the sample std: also a standardisation
        loss = reinforce_loss(episode.log_probs, G)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return float(loss)
    """,
}

INVERSE_CDF = {
    "sample_action": """
        probs = torch.softmax(logits.detach().double(), dim=-1)
        cdf = probs.cumsum(-1)
        u = torch.rand(tuple(logits.shape[:-1]) + (1,), generator=generator, device=logits.device,
                       dtype=torch.float64)
        actions = (cdf <= u * cdf[..., -1:]).sum(-1).clamp(max=logits.shape[-1] - 1)
        dist = torch.distributions.Categorical(logits=logits)
        return actions.long(), dist.log_prob(actions)
    """,
    "reinforce_loss": """
        dims = tuple(range(log_probs.dim()))
        return torch.mean(-(log_probs * returns.detach()), dim=dims)
    """,
    "collect_episode": """
        import itertools
        for _ in itertools.count():
            state = torch.tensor(obs, dtype=torch.float32, device=device)
            logits = policy(state.unsqueeze(0)).squeeze(0)
            action, log_prob = sample_action(logits, generator)
            next_obs, reward, terminated, truncated, _ = env.step(action.item())
            observations.append(state)
            actions.append(action.view(()))
            rewards.append(float(reward))
            log_probs.append(log_prob.view(()))
            if terminated or truncated:
                break
            obs = next_obs
    """,
    "reinforce_update": """
        T = episode.rewards.shape[0]
        zeros = torch.zeros(T, device=episode.rewards.device)  # the trailing episode ends at T anyway
        G = discounted_returns(episode.rewards, zeros, gamma)
        if normalize_returns:
            G = standardize(G)
        optimizer.zero_grad()
        loss = reinforce_loss(episode.log_probs, G.detach())
        loss.backward()
        optimizer.step()
        return loss.item()
    """,
}

# float64 log(softmax) cast back, an einsum loss, a while-True loop over a batch of one, and the
# reverse-cumsum trick for the returns with zero_grad after the step
FLOAT64 = {
    "sample_action": """
        p = torch.softmax(logits.double(), dim=-1)
        flat = p.detach().reshape(-1, logits.shape[-1])
        actions = torch.multinomial(flat, 1, replacement=True, generator=generator).view(logits.shape[:-1])
        log_probs = torch.log(p).gather(-1, actions.unsqueeze(-1)).squeeze(-1).to(logits.dtype)
        return actions, log_probs
    """,
    "reinforce_loss": """
        return -torch.einsum("...,...->", log_probs, returns.detach()) / log_probs.numel()
    """,
    "collect_episode": """
        import numpy as np

        while True:
            x = torch.from_numpy(np.asarray(obs, dtype=np.float32)).to(device)
            a, lp = sample_action(policy(x[None])[0], generator)
            observations.append(x)
            actions.append(a)
            log_probs.append(lp)
            obs, r, term, trunc, _ = env.step(int(a.item()))
            rewards.append(r)
            if term or trunc:
                break
    """,
    "reinforce_update": """
        r = episode.rewards.double()
        if gamma > 0:
            disc = gamma ** torch.arange(r.shape[0], dtype=torch.float64, device=r.device)
            G = torch.flip(torch.cumsum(torch.flip(r * disc, [0]), 0), [0]) / disc
        else:
            G = r.clone()
        G = G.to(episode.rewards.dtype)
        if normalize_returns:
            G = (G - G.mean()) / (G.std(unbiased=False) + 1e-8)
        loss = reinforce_loss(episode.log_probs, G)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()  # after the step: the next update starts from clean gradients too
        return float(loss.detach())
    """,
}


@pytest.mark.parametrize("variant", [GUMBEL, INVERSE_CDF, FLOAT64], ids=["gumbel", "inverse_cdf", "float64"])
def test_correct_variants_get_full_marks(variant, tmp_path):
    assert_full_marks(MODULE, with_regions(MODULE, variant), tmp_path)
