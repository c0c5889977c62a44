"""The given ppo_loss (solutions/ex4_ppo.py, copied into the stubs): its loss, gradient and statistics
follow its docstring's formula for any entropy weight (with ent_coef = 0 the entropy is kept out of
the graph, which must change neither the loss nor the gradient)."""

from __future__ import annotations

import pytest
import torch

from common.networks import ActorCritic
from solutions.ex4_ppo import ppo_loss, ppo_policy_loss
from solutions.ex3_baseline import value_loss


def _grads(agent, loss):
    agent.zero_grad(set_to_none=True)
    loss.backward()
    return [p.grad.clone() for p in agent.parameters()]


@pytest.mark.parametrize("ent_coef", [0.0, 0.05])
def test_ppo_loss_follows_its_formula(ent_coef):
    torch.manual_seed(0)
    agent = ActorCritic(4, 3, hidden=(8,))
    obs, act = torch.randn(16, 4), torch.randint(0, 3, (16,))
    old, adv, ret = -torch.rand(16) - 0.5, torch.randn(16), torch.randn(16)

    loss, stats = ppo_loss(agent, obs, act, old, adv, ret, 0.2, 0.5, ent_coef)
    got = _grads(agent, loss)

    log_pi = torch.log_softmax(agent.logits(obs), dim=-1)
    entropy = -(log_pi.exp() * log_pi).sum(-1).mean()
    want_loss = (ppo_policy_loss(log_pi.gather(1, act[:, None]).squeeze(1), old, adv, 0.2)
                 + 0.5 * value_loss(agent.value(obs), ret) - ent_coef * entropy)
    want = _grads(agent, want_loss)

    torch.testing.assert_close(loss, want_loss.detach())
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w)
    torch.testing.assert_close(stats["entropy"], entropy.detach())
    assert all(not s.requires_grad for s in stats.values())


def test_the_entropy_bonus_moves_the_actor():
    torch.manual_seed(1)
    agent = ActorCritic(4, 2, hidden=(8,))
    args = (torch.randn(8, 4), torch.randint(0, 2, (8,)), -torch.rand(8) - 0.5, torch.randn(8), torch.randn(8), 0.2, 0.5)
    g0 = _grads(agent, ppo_loss(agent, *args, 0.0)[0])
    g1 = _grads(agent, ppo_loss(agent, *args, 0.1)[0])
    actor = [i for i, (n, _) in enumerate(agent.named_parameters()) if n.startswith("actor")]
    assert any(not torch.equal(g0[i], g1[i]) for i in actor)
