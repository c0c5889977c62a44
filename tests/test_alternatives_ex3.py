"""Correct ex3_baseline implementations written differently from the reference get full marks.

Each alternative replaces the solution regions of solutions/ex3_baseline.py with
another correct body (vectorised instead of loops, torch.where / bool masks,
F.mse_loss, torch.distributions, a different variance formula, the sample std
in the standardisation, separate backward passes, float64 GAE cast back,
torch.cov, zero_grad after the steps...). The learning test is
skipped (the reference run covers it).
"""
from __future__ import annotations

import re

import pytest

from autograder.runner import grade

from conftest import ROOT, make_submission

_REGION = re.compile(r"(    ### BEGIN SOLUTION\n)(.*?)(    ### END SOLUTION\n)", re.S)


def with_bodies(bodies: dict[str, str]) -> str:
    """The reference module with the solution region of each named function replaced."""
    src = (ROOT / "solutions" / "ex3_baseline.py").read_text()
    out, pos = [], 0
    for m in _REGION.finditer(src):
        name = re.findall(r"^def (\w+)\(", src[: m.start()], re.M)[-1]
        out.append(src[pos: m.start()])
        body = bodies.get(name)
        out.append(m.group(0) if body is None else body.strip("\n") + "\n")
        pos = m.end()
    out.append(src[pos:])
    text = "".join(out)
    missing = set(bodies) - set(re.findall(r"^def (\w+)\(", src, re.M))
    assert not missing, missing
    assert "from torch import nn\n" in text
    return text.replace("from torch import nn\n", "from torch import nn\nimport torch.nn.functional as F\n", 1)


VECTORISED = {
    "advantages": """
    return torch.sub(returns.detach(), values.detach())
""",
    "value_loss": """
    return F.mse_loss(values, targets.detach())
""",
    "reinforce_baseline_loss": """
    weight = (returns - values).detach()
    return -(weight * log_probs).sum() / log_probs.numel(), F.mse_loss(values, returns.detach(), reduction="mean")
""",
    "td_errors": """
    boot = torch.where(dones.bool(), torch.zeros_like(next_values), next_values.detach())
    return rewards.detach() - values + gamma * boot
""",
    "compute_gae": """
    with torch.no_grad():
        v = values.detach()
        nxt = torch.cat([v[1:], torch.broadcast_to(last_value.to(v.dtype), v[:1].shape)], dim=0)
        keep = ~dones.bool()
        deltas = rewards + gamma * torch.where(keep, nxt, torch.zeros_like(nxt)) - v
        pieces = [None] * v.shape[0]
        acc = torch.zeros_like(v[0])
        for t in range(v.shape[0] - 1, -1, -1):
            acc = deltas[t] + torch.where(keep[t], gamma * lam * acc, torch.zeros_like(acc))
            pieces[t] = acc
        adv = torch.stack(pieces)
        return adv, v + adv
""",
    "gradient_variance": """
    from torch.distributions import Categorical

    rows = []
    for obs, act, ret, b in zip(observations, actions, returns,
                                baselines if baselines is not None else [None] * len(observations)):
        w = ret if b is None else ret - b
        lp = Categorical(logits=policy(obs)).log_prob(act)
        gs = torch.autograd.grad((lp * w.detach()).sum(), params, allow_unused=True)
        rows.append(torch.cat([(torch.zeros_like(p) if g is None else g).flatten() for g, p in zip(gs, params)]))
    G = torch.stack(rows)
    n = G.shape[0]
    centred = G - G.mean(dim=0, keepdim=True)
    return (centred.pow(2).sum() / (n - 1)).detach()
""",
    "actor_critic_update": """
    V = value_net(episode.observations)
    T = V.shape[0]
    with torch.no_grad():
        v = V.detach()
        adv = torch.zeros(T, dtype=v.dtype)
        running = 0.0
        for t in reversed(range(T)):
            nxt = v[t + 1] if t + 1 < T else 0.0
            live = 0.0 if t == T - 1 else 1.0
            delta = episode.rewards[t] + gamma * live * nxt - v[t]
            running = delta + gamma * lam * live * running
            adv[t] = running
        targets = adv + v
        if normalize_advantages:
            adv = (adv - adv.mean()) / (adv.std() + 1e-8)  # sample std: also accepted
    policy_loss = -(episode.log_probs * adv).mean()
    critic_loss = F.mse_loss(V, targets)
    policy_optimizer.zero_grad(set_to_none=False)
    policy_loss.backward()
    policy_optimizer.step()
    value_optimizer.zero_grad()
    critic_loss.backward()
    value_optimizer.step()
    return float(policy_loss), float(critic_loss)
""",
}


MATRIX = {
    "advantages": """
    out = returns.clone() - values.clone()
    return out.detach()
""",
    "value_loss": """
    diff = values - targets.detach()
    return (diff * diff).sum() / diff.numel()
""",
    "reinforce_baseline_loss": """
    from .ex2_reinforce import reinforce_loss

    return reinforce_loss(log_probs, advantages(returns, values)), value_loss(values, returns)
""",
    "td_errors": """
    mask = (1 - dones.float()).to(values.dtype)
    return torch.addcmul(rewards, mask, next_values.detach(), value=gamma).detach() - values
""",
    "compute_gae": """
    # closed form: A = M @ delta with M[t, k] = prod_{t <= j < k} gamma*lam*(1 - d_j)
    v = values.detach().double()
    T = v.shape[0]
    squeeze = v.dim() == 1
    v2 = v.reshape(T, -1)
    d2 = dones.reshape(T, -1).double()
    r2 = rewards.detach().double().reshape(T, -1)
    last = last_value.detach().double().reshape(-1).expand(v2.shape[1])
    nxt = torch.cat([v2[1:], last.unsqueeze(0)])
    delta = r2 + gamma * (1 - d2) * nxt - v2
    c = gamma * lam * (1 - d2)  # [T, N]
    adv = torch.zeros_like(v2)
    for k in range(T):  # contribution of delta_k to every A_t, t <= k
        coef = torch.ones_like(v2[0])
        for t in range(k, -1, -1):
            if t < k:
                coef = coef * c[t]
            adv[t] += coef * delta[k]
    adv = adv.to(values.dtype).reshape(values.shape)
    ret = adv + values.detach()
    return adv, ret
""",
    "gradient_variance": """
    E = len(observations)
    total = None
    grads = []
    for i in range(E):
        logp = torch.log_softmax(policy(observations[i]), -1)
        chosen = logp[torch.arange(len(actions[i])), actions[i]]
        w = returns[i].detach() - (0 if baselines is None else baselines[i].detach())
        grads.append(flat_grad(torch.dot(chosen, w), params))
    G = torch.stack(grads)
    mean_sq = (G ** 2).mean(0)
    sq_mean = G.mean(0) ** 2
    return ((mean_sq - sq_mean) * E / (E - 1)).sum().detach()
""",
    "actor_critic_update": """
    values = value_net(episode.observations)
    dones = torch.zeros(values.shape, dtype=torch.bool, device=values.device)
    dones[-1] = True
    adv, returns = compute_gae(episode.rewards, values, dones, values.new_zeros(()), gamma, lam)
    if normalize_advantages:
        adv = standardize(adv)
    losses = reinforce_baseline_loss(episode.log_probs, returns, values)
    p_loss = -(episode.log_probs * adv).mean()
    v_loss = losses[1]
    for opt in (policy_optimizer, value_optimizer):
        opt.zero_grad()
    torch.autograd.backward([p_loss, v_loss])
    for opt in (value_optimizer, policy_optimizer):
        opt.step()
    return p_loss.item(), v_loss.item()
""",
}


# no_grad blocks, mean of row means, float64 GAE cast back, ~bool masks, the trace of torch.cov,
# critic stepped first with its own backward, zero_grad after the steps
FLOAT64 = {
    "advantages": """
    with torch.no_grad():
        return returns - values
""",
    "value_loss": """
    return torch.square(targets.detach() - values).mean(dim=-1).mean()
""",
    "reinforce_baseline_loss": """
    critic = torch.mean((returns.detach() - values) ** 2)
    actor = torch.mean(-log_probs * advantages(returns, values))
    return actor, critic
""",
    "td_errors": """
    alive = (~dones.bool()).to(values.dtype)
    return -values + rewards + gamma * alive * next_values.detach()
""",
    "compute_gae": """
    v = values.detach().double()
    r = rewards.detach().double()
    alive = (~dones.bool()).double()
    boot = torch.broadcast_to(last_value.detach().double(), v[0].shape)
    nxt = torch.cat([v[1:], boot.unsqueeze(0)], dim=0)
    delta = r + gamma * alive * nxt - v
    out, acc = [], torch.zeros_like(v[0])
    for d_t, a_t in zip(delta.flip(0), alive.flip(0)):
        acc = d_t + gamma * lam * a_t * acc
        out.append(acc)
    adv = torch.stack(out[::-1]).to(values.dtype)
    return adv, (adv.double() + v).to(values.dtype)
""",
    "gradient_variance": """
    rows = []
    for i in range(E):
        logp = policy(observations[i]).log_softmax(dim=-1)
        chosen = torch.take_along_dim(logp, actions[i].long()[:, None], dim=-1)[:, 0]
        w = returns[i] if baselines is None else returns[i] - baselines[i]
        rows.append(flat_grad((chosen * w.detach()).sum(), params))
    G = torch.stack(rows).double()  # [E, P]
    return torch.cov(G.T, correction=1).diagonal().sum().to(rows[0].dtype).detach()
""",
    "actor_critic_update": """
    V = value_net(episode.observations)
    dones = torch.zeros_like(V)  # the episode ends at T anyway: bootstrap from last_value = 0
    adv, ret = compute_gae(episode.rewards, V, dones, torch.tensor(0.0), gamma, lam)
    if normalize_advantages:
        adv = (adv - adv.mean()) / (adv.std(correction=0) + 1e-8)
    v_loss = value_loss(V, ret)
    v_loss.backward()
    value_optimizer.step()
    value_optimizer.zero_grad()
    p_loss = reinforce_loss(episode.log_probs, adv)
    p_loss.backward()
    policy_optimizer.step()
    policy_optimizer.zero_grad()
    return float(p_loss.detach()), float(v_loss.detach())
""",
}


@pytest.mark.parametrize("bodies", [VECTORISED, MATRIX, FLOAT64], ids=["vectorised", "matrix", "float64"])
def test_alternative_gets_full_marks(bodies, tmp_path):
    folder = make_submission(tmp_path / "sub", {"ex3_baseline.py": with_bodies(bodies)})
    report = grade(folder, ["ex3_baseline"], jobs=1, skip_learning=True)
    assert report["errors"] == []
    failed = [(t["id"], t["feedback"]) for ex in report["exercises"] for t in ex["tests"] if not t["passed"]]
    assert failed == []
