"""common.adam.Adam: the steps of torch.optim.Adam, bit for bit, without importing torch._dynamo."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from common.adam import Adam

ROOT = Path(__file__).resolve().parents[1]


DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU"))]


def _train(make, fused: bool, steps: int = 40, device: str = "cpu") -> torch.Tensor:
    """A small network trained with a learning-rate schedule. Some steps leave one layer without a
    gradient (it must be skipped, its moments untouched) and some zero the gradients in place."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3)).to(device)
    side = torch.nn.Linear(4, 2).to(device)  # gets a gradient on even steps only
    opt = make(list(net.parameters()) + list(side.parameters()), fused)
    for i in range(steps):
        opt.zero_grad(set_to_none=i % 3 != 0)
        x = torch.randn(8, 4).to(device)
        loss = net(x).pow(2).mean()
        if i % 2 == 0:
            loss = loss + side(x).abs().mean()
        elif i % 3 != 0:
            for p in side.parameters():  # set_to_none left it None: no step for it
                assert p.grad is None
        loss.backward()
        opt.param_groups[0]["lr"] = 3e-2 * (1 - i / steps)
        opt.step()
    return torch.cat([p.detach().flatten() for p in [*net.parameters(), *side.parameters()]])


@pytest.mark.parametrize("fused", [False, True])
@pytest.mark.parametrize("betas, eps", [((0.9, 0.999), 1e-8), ((0.5, 0.9), 1e-5)])
def test_the_kits_adam_takes_torch_optims_steps_bit_for_bit(fused, betas, eps):
    ours = _train(lambda ps, f: Adam(ps, lr=3e-2, betas=betas, eps=eps, fused=f), fused)
    theirs = _train(lambda ps, f: torch.optim.Adam(ps, lr=3e-2, betas=betas, eps=eps, fused=f), fused)
    assert torch.equal(ours, theirs)


@pytest.mark.parametrize("device", DEVICES)
def test_the_kits_adam_on_each_device(device):
    """Fused: torch's very kernel, so bit for bit on any device that has it. The plain loop against
    torch.optim's single-tensor loop (foreach=False: on a GPU its default is the multi-tensor one)."""
    fused = _train(lambda ps, f: Adam(ps, lr=3e-2, fused=f), True, device=device)
    assert torch.equal(fused, _train(lambda ps, f: torch.optim.Adam(ps, lr=3e-2, fused=f), True, device=device))
    plain = _train(lambda ps, f: Adam(ps, lr=3e-2), False, device=device)
    single = _train(lambda ps, f: torch.optim.Adam(ps, lr=3e-2, foreach=False), False, device=device)
    assert torch.equal(plain, single)


def test_a_step_follows_the_formula():
    """One step from zero moments: m = (1 - b1) g, v = (1 - b2) g^2, so the bias-corrected update
    is lr * g / (|g| + eps) per entry."""
    p = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64, requires_grad=True)
    g = torch.tensor([0.3, -4.0, 0.0], dtype=torch.float64)
    opt = Adam([p], lr=0.1, eps=1e-8)
    p.grad = g.clone()
    opt.step()
    expected = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64) - 0.1 * g / (g.abs() + 1e-8)
    assert torch.allclose(p.detach(), expected, rtol=0, atol=1e-12)
    assert opt.state[p]["step"].item() == 1


def test_bad_arguments_get_errors_that_name_them():
    w = torch.zeros(2, requires_grad=True)
    with pytest.raises(ValueError, match="empty parameter list"):
        Adam([])
    with pytest.raises(ValueError, match="lr"):
        Adam([w], lr=-1.0)
    with pytest.raises(ValueError, match="betas"):
        Adam([w], betas=(0.9, 1.0))
    with pytest.raises(TypeError, match="require grad"):
        Adam([torch.zeros(2)])
    with pytest.raises(TypeError, match="closure"):
        Adam([w]).step(lambda: 0.0)


def test_the_kits_training_loops_never_import_torch_dynamo():
    """The point of the class: torch.optim's first optimizer imports torch._dynamo (1.3 s of CPU in
    every fresh process); the kit's loops (short runs of each) must not."""
    code = """
import sys
from solutions.ex2_reinforce import train_reinforce
from solutions.ex3_baseline import train_actor_critic
from solutions.ex4_ppo import train_ppo
from demos.rlhf_pipeline import run_toy_rlhf
train_reinforce(episodes=3, seed=1)
train_actor_critic(episodes=3, seed=1)
train_ppo(total_steps=512, seed=1, target_return=None)
run_toy_rlhf(0.1, updates=2, impl="solutions", sft_steps=5, rm_steps=5, rm_pairs=64, rm_heldout_pairs=32)
print("torch._dynamo" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "False"
