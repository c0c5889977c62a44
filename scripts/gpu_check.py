"""Check the kit on a CUDA GPU: ``make gpu-check`` (or ``python -m scripts.gpu_check``).

Every CUDA path of the kit (``get_device``, ``--device cuda`` in the grader and
the scripts, the training loops) is written for GPUs too. This script is the
one command that shows whether it works, on a machine with an NVIDIA GPU:

1. ``--install`` (optional, first): puts the CUDA build of the pinned torch
   (the version of ``TORCH_SPEC`` in the Makefile) into the environment this
   Python runs in, then starts the check again in a fresh process. Where the
   wheel comes from:

   - by default from the index pip is configured with, i.e. PyPI, as
     ``torch===<version>``. PyPI's Linux x86_64 wheel of torch 2.13.0 *is* a
     CUDA build (CUDA 13.0; it pulls the ``cuda-toolkit`` and ``nvidia-*-cu13``
     wheels, a few GB, and needs an NVIDIA driver that supports CUDA 13). The
     ``===`` asks for exactly that version string, so pip cannot settle for a
     local CPU build such as ``2.13.0+cpu`` found in a wheel cache or a
     ``find-links`` folder. PyPI is the one index the lent GPU machines reach.
   - ``--torch-index URL``: from PyTorch's own wheel index, e.g.
     ``https://download.pytorch.org/whl/cu126`` (CUDA 12.6; use it for an
     older driver). The spec is then ``torch==<version>+cu126``, taken from the
     URL's last part (``--torch-spec`` overrides it). That index is *not*
     reachable from the lent GPU machines, only from a machine with internet.

2. **Grade** ``solutions/`` and ``assignments/`` with
   ``python -m autograder ... --device cuda --json``: the references must get
   full marks (120/120) and the stubs 0.
3. **Compare** every deterministic reference function (and its gradients,
   and one optimizer step of the two update functions) on CUDA with the same
   call on the CPU, on small fixed inputs, with the tolerances the hidden
   suites use for that function. Random functions (sampling, episodes) are
   listed as skipped: the grade covers them.
4. **Train** ``train_reinforce``, ``train_actor_critic`` and ``train_ppo``
   once each with the learning tests' settings (seeds, budgets, evaluation
   seeds and thresholds are read from ``autograder/suites/``), on CUDA and, for
   comparison, on the CPU: env steps, wall time, greedy mean, threshold met.
5. **Scripts**: ``python -m demos.ppo_cartpole --impl solutions --device cuda`` and the
   kit side of ``python -m scripts.bench --sb3-seeds 0 --device cuda``, each
   beside the same run on the CPU (env steps/s, steps and seconds to 475).
6. Writes ``report.json`` and ``report.md`` (plus every log and the files the
   steps write) into ``--out`` (default ``build/gpu-check/``).

Exit status:

- 0  every check passed;
- 1  something did not: a grade, a CPU/CUDA difference beyond tolerance, a
     training run that missed its threshold on every suite seed, a script
     that failed (``report.md`` says which);
- 2  bad command line;
- 3  CUDA is not available here (the message says whether torch is a CPU
     build or finds no GPU); nothing else runs;
- 4  ``--install`` failed, or what it installed is not a CUDA build.

``--simulate-on-cpu`` runs every step with the CPU standing in for CUDA. It
only tests this script (a run here and in the kit's tests); its report says
so in its first line and proves nothing about CUDA.
"""

from __future__ import annotations

import argparse
import ast
import copy
import datetime
import json
import math
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "build" / "gpu-check"

EXIT_OK = 0
EXIT_MISMATCH = 1
EXIT_USAGE = 2
EXIT_NO_CUDA = 3
EXIT_INSTALL = 4

STEPS = ("grade", "compare", "train", "scripts")

# Wall-clock budgets of the learning tests' sandbox calls (timeout=... in autograder/suites/):
# a training run on CUDA that takes longer than this would fail its test on a GPU grader.
SUITE_BUDGET_S = {"train_reinforce": 150.0, "train_actor_critic": 240.0, "train_ppo": 120.0}


# ---------------------------------------------------------------------------
# Torch, CUDA and the install
# ---------------------------------------------------------------------------


def pinned_torch_version(makefile: Path = ROOT / "Makefile") -> str:
    """The version in the Makefile's ``TORCH_SPEC ?= torch==X`` (the kit's one pin of torch)."""
    m = re.search(r"^TORCH_SPEC\s*\?=\s*torch\s*==\s*([0-9][^\s+]*)\s*$", makefile.read_text(), re.M)
    if not m:
        raise RuntimeError(f"no 'TORCH_SPEC ?= torch==VERSION' line in {makefile}")
    return m.group(1)


def install_spec(version: str, index: str | None) -> str:
    """The requirement ``--install`` passes to pip (see the module docstring)."""
    if index is None:
        return f"torch==={version}"
    tag = index.rstrip("/").rsplit("/", 1)[-1]
    if re.fullmatch(r"cu\d+", tag):
        return f"torch=={version}+{tag}"
    return f"torch=={version}"


def install_command(spec: str, index: str | None, python: str = sys.executable) -> list[str]:
    cmd = [python, "-m", "pip", "install", "--upgrade", spec]
    if index is not None:
        cmd += ["--index-url", index]
    return cmd


def torch_build(torch_module) -> str:
    cuda = getattr(torch_module.version, "cuda", None)
    return f"built for CUDA {cuda}" if cuda else "built for CPU"


def cuda_problem(torch_module) -> str | None:
    """None when CUDA works in this process; else the one-line message ``gpu-check`` exits with."""
    try:
        available = bool(torch_module.cuda.is_available())
    except Exception as exc:  # a broken driver can raise here
        available, why = False, f"; torch.cuda.is_available() raised {type(exc).__name__}: {exc}"
    else:
        why = ""
    if available:
        return None
    build = torch_build(torch_module)
    if getattr(torch_module.version, "cuda", None):
        detail = f"torch {torch_module.__version__}, {build}, finds no usable GPU or driver{why}"
        hint = "run it on a machine with an NVIDIA GPU and a driver for that CUDA version"
    else:
        detail = f"torch {torch_module.__version__}, {build}"
        hint = ("run it on a machine with an NVIDIA GPU (there `make gpu-check ARGS=--install` first installs "
                "the CUDA build of the pinned torch)")
    return f"gpu-check: CUDA is not available on this machine ({detail}); {hint}"


def do_install(args: argparse.Namespace, argv: list[str]) -> int:
    """Install the CUDA torch into this environment, check it is one, then re-run without --install."""
    version = pinned_torch_version()
    spec = args.torch_spec or install_spec(version, args.torch_index)
    cmd = install_command(spec, args.torch_index)
    print(f"gpu-check: installing {spec}" + (f" from {args.torch_index}" if args.torch_index else
                                               " from the configured index (PyPI)"), flush=True)
    print("  $ " + " ".join(cmd), flush=True)
    rc = subprocess.call(cmd, cwd=ROOT)
    if rc != 0:
        print(f"gpu-check: the install failed (pip exit {rc})", file=sys.stderr)
        return EXIT_INSTALL
    probe = subprocess.run([sys.executable, "-c", "import torch; print(torch.__version__); print(torch.version.cuda)"],
                           capture_output=True, text=True, cwd=ROOT)
    lines = probe.stdout.split()
    if probe.returncode != 0 or len(lines) < 2 or lines[1] == "None":
        got = " ".join(lines) or probe.stderr[-500:]
        print(f"gpu-check: after the install torch is still not a CUDA build ({got})", file=sys.stderr)
        return EXIT_INSTALL
    print(f"gpu-check: torch {lines[0]} for CUDA {lines[1]} installed; starting the check", flush=True)
    rest = [a for a in argv if a != "--install"]
    sys.stdout.flush()
    os.chdir(ROOT)  # `-m scripts.gpu_check` resolves from the repository root
    os.execv(sys.executable, [sys.executable, "-m", "scripts.gpu_check", *rest])
    return EXIT_OK  # not reached


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------


def _tail(text: str, n: int = 2000) -> str:
    return text if len(text) <= n else "..." + text[-n:]


def run_logged(cmd: list[str], log: Path, timeout: float) -> tuple[int, float, str]:
    """Run ``cmd`` in the repository root; stdout+stderr go to ``log``. Returns (rc, seconds, output tail)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
        rc, out = proc.returncode, proc.stdout + proc.stderr
    except subprocess.TimeoutExpired as exc:
        rc = 124
        parts = [p.decode(errors="replace") if isinstance(p, bytes) else (p or "") for p in (exc.stdout, exc.stderr)]
        out = "".join(parts) + f"\n[gpu-check: killed after {timeout:.0f} s]"
    seconds = time.perf_counter() - t0
    log.write_text("$ " + " ".join(cmd) + "\n" + out)
    return rc, seconds, _tail(out, 1500)


def suite_constants(module: str, names: tuple[str, ...]) -> dict:
    """Top-level ``NAME = literal`` assignments of a hidden suite, read without importing it."""
    tree = ast.parse((ROOT / "autograder" / "suites" / f"test_{module}.py").read_text())
    found = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name = node.targets[0].id
            if name in names:
                found[name] = ast.literal_eval(node.value)
    missing = set(names) - set(found)
    if missing:
        raise RuntimeError(f"autograder/suites/test_{module}.py has no {', '.join(sorted(missing))}")
    return found


def _f(x, spec: str = ".3g", none: str = "-") -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return none
    return format(x, spec)


# ---------------------------------------------------------------------------
# 2. Grades
# ---------------------------------------------------------------------------


def grade_folder(folder: str, device: str, out: Path, expect: str) -> dict:
    """``python -m autograder FOLDER --device DEVICE --json``; ``expect`` is "full" or "zero"."""
    js = out / f"grade_{folder}_{device.replace(':', '')}.json"
    cmd = [sys.executable, "-m", "autograder", folder, "--device", device, "--json", str(js)]
    rc, seconds, tail = run_logged(cmd, out / "logs" / f"grade_{folder}.txt", timeout=1800)
    row = {"folder": folder, "device": device, "rc": rc, "seconds": round(seconds, 1), "expect": expect,
           "total": None, "max_total": None, "ok": False, "problems": []}
    if not js.exists():
        row["problems"].append(f"no JSON report (exit {rc}): {tail}")
        return row
    report = json.loads(js.read_text())
    row["total"], row["max_total"] = report.get("total"), report.get("max_total")
    tests = [(ex["name"], t) for ex in report.get("exercises", []) for t in ex.get("tests", [])]
    if expect == "full":
        row["problems"] += [f"{ex}::{t['name']} ({t['score']}/{t['max_score']}): {t.get('feedback', '')}"
                            for ex, t in tests if not t.get("passed")]
        ok_score = row["total"] is not None and row["total"] == row["max_total"]
    else:
        row["problems"] += [f"{ex}::{t['name']} passed on a stub" for ex, t in tests if t.get("passed")]
        ok_score = row["total"] == 0
    if report.get("errors"):
        row["problems"].append(f"grader errors: {report['errors']}")
    row["ok"] = rc == 0 and ok_score and not report.get("errors")
    return row


# ---------------------------------------------------------------------------
# 3. CPU vs CUDA on the reference functions
# ---------------------------------------------------------------------------


@dataclass
class Case:
    """One call of a reference function, run once per device on the same inputs.

    ``run(device)`` builds its inputs on the CPU from a fixed seed, moves them
    to ``device``, calls the reference and returns its named outputs (results,
    gradients, parameter steps) as tensors.
    """

    exercise: str
    function: str
    label: str
    run: Callable
    rtol: float = 1e-4
    atol: float = 1e-5
    tolerances: dict = field(default_factory=dict)  # output name prefix -> (rtol, atol); "exact" for 0
    step_tol: float | None = None  # outputs "step.*": |d| <= step_tol * max|step_cpu| + 1e-7 (suites' _close_updates)


def _np_rng(seed: int):
    import numpy as np

    return np.random.default_rng(seed)


def _t(a, dtype=None):
    import torch

    return torch.tensor(a, dtype=dtype if dtype is not None else torch.float32)


def _weights_like(x):
    """Fixed weights for a backward pass: the same on every device."""
    import torch

    n = max(x.numel(), 1)
    return torch.linspace(0.5, 1.5, n, dtype=x.dtype).reshape(x.shape).to(x.device)


def _call_with_grads(fn, dev, args: tuple, kwargs: dict, outputs: tuple[str, ...], grad_args: dict[int, str]):
    """Call ``fn`` on ``args`` moved to ``dev``; gradients of sum_k <w_k, out_k> w.r.t. ``grad_args``."""
    import torch

    moved = []
    for i, a in enumerate(args):
        if isinstance(a, torch.Tensor):
            a = a.detach().clone().to(dev)
            if i in grad_args:
                a.requires_grad_(True)
        moved.append(a)
    res = fn(*moved, **kwargs)
    res = res if isinstance(res, tuple) else (res,)
    named = dict(zip(outputs, res))
    out = {k: v.detach() for k, v in named.items()}
    if grad_args:
        total = sum((v * _weights_like(v)).sum() for v in named.values()
                    if v.dtype.is_floating_point and v.requires_grad)
        if isinstance(total, torch.Tensor):
            grads = torch.autograd.grad(total, [moved[i] for i in grad_args], allow_unused=True)
            for (i, name), g in zip(grad_args.items(), grads):
                out[f"grad.{name}"] = torch.zeros_like(moved[i]) if g is None else g
    return out


def _mdp(rng, S, A):
    """A random tabular MDP and policy in float64, built like the ex1 suite's."""
    import torch

    P = rng.random((S, A, S)) ** 3
    P /= P.sum(-1, keepdims=True)
    R = rng.normal(size=(S, A))
    pi = rng.random((S, A)) + 0.05
    pi /= pi.sum(-1, keepdims=True)
    return _t(P, torch.float64), _t(R, torch.float64), _t(pi, torch.float64)


def _policy(seed: int, obs_dim=4, n_actions=2, hidden=(16,)):
    import torch

    from common.networks import PolicyNet

    torch.manual_seed(seed)
    return PolicyNet(obs_dim, n_actions, hidden=hidden)


def _param_steps(net_before: dict, net) -> dict:
    return {f"step.{k}": (v.detach() - net_before[k]) for k, v in net.state_dict().items()}


def reference_cases() -> tuple[list[Case], list[dict]]:
    """Every deterministic reference function, on small fixed inputs; and the functions left out (and why)."""
    import torch

    from common.networks import ActorCritic, ValueNet
    from common.rollout import Episode
    from solutions import ex1_values as e1
    from solutions import ex2_reinforce as e2
    from solutions import ex3_baseline as e3
    from solutions import ex4_ppo as e4
    from solutions import ex5_rlhf as e5

    cases: list[Case] = []

    def add(exercise, function, label, run, **kw):
        cases.append(Case(exercise, function, label, run, **kw))

    def traj(seed, shape, p_done=0.2):
        rng = _np_rng(seed)
        return _t(rng.normal(size=shape)), _t(rng.random(shape) < p_done)

    # ---- ex1
    for seed, shape in ((1, (40,)), (2, (30, 5))):
        r, d = traj(seed, shape)
        add("ex1_values", "discounted_returns", f"{list(shape)} float32",
            lambda dev, r=r, d=d: _call_with_grads(e1.discounted_returns, dev, (r, d, 0.97), {}, ("returns",), {}))
    r, d = traj(3, (25, 3))
    add("ex1_values", "discounted_returns", "[25, 3] float64",
        lambda dev: _call_with_grads(e1.discounted_returns, dev, (r.double(), d.bool(), 0.9), {}, ("returns",), {}))
    P, R, pi = _mdp(_np_rng(4), 6, 3)
    add("ex1_values", "policy_evaluation", "S=6, A=3, gamma=0.9",
        lambda dev: _call_with_grads(e1.policy_evaluation, dev, (P, R, pi, 0.9), {}, ("V",), {}), rtol=1e-6, atol=1e-6)
    V = e1.policy_evaluation(P, R, pi, 0.9)
    add("ex1_values", "action_values", "S=6, A=3, gamma=0.9",
        lambda dev: _call_with_grads(e1.action_values, dev, (P, R, V, 0.9), {}, ("Q",), {}), rtol=1e-9, atol=1e-9)

    # ---- ex2
    rng = _np_rng(5)
    lp, G = _t(-rng.random((20, 4)) * 2), _t(rng.normal(size=(20, 4)) * 3)
    add("ex2_reinforce", "reinforce_loss", "[20, 4]",
        lambda dev: _call_with_grads(e2.reinforce_loss, dev, (lp, G), {}, ("loss",), {0: "log_probs"}))

    def episode_for(policy, dev, seed, T):
        rng = _np_rng(seed)
        obs = _t(rng.normal(size=(T, 4))).to(dev)
        acts = torch.tensor(rng.integers(0, 2, size=T), dtype=torch.long, device=dev)
        rew = _t(rng.random(T) + 0.5).to(dev)
        log_pi = torch.log_softmax(policy(obs), dim=-1)
        return Episode(obs, acts, rew, log_pi.gather(-1, acts.unsqueeze(-1)).squeeze(-1), float(rew.sum()))

    def reinforce_update_run(dev):
        policy = _policy(6).to(dev)
        start = {k: v.detach().clone() for k, v in policy.state_dict().items()}
        opt = torch.optim.Adam(policy.parameters(), lr=1e-2)
        losses = [e2.reinforce_update(opt, episode_for(policy, dev, 60 + i, 12 + 5 * i), 0.99, True) for i in range(3)]
        return {"losses": torch.tensor(losses, dtype=torch.float64), **_param_steps(start, policy)}

    add("ex2_reinforce", "reinforce_update", "3 updates, Adam", reinforce_update_run, step_tol=2e-3)

    # ---- ex3
    rng = _np_rng(7)
    ret, val = _t(rng.normal(size=(15, 3)) * 2), _t(rng.normal(size=(15, 3)))
    lp3 = _t(-rng.random((15, 3)) * 2)
    add("ex3_baseline", "advantages", "[15, 3]",
        lambda dev: _call_with_grads(e3.advantages, dev, (ret, val), {}, ("advantages",), {}))
    add("ex3_baseline", "value_loss", "[15, 3]",
        lambda dev: _call_with_grads(e3.value_loss, dev, (val, ret), {}, ("loss",), {0: "values"}))
    add("ex3_baseline", "reinforce_baseline_loss", "[15, 3]",
        lambda dev: _call_with_grads(e3.reinforce_baseline_loss, dev, (lp3, ret, val), {},
                                     ("policy_loss", "value_loss"), {0: "log_probs", 2: "values"}))
    rew, dn = traj(8, (20, 4))
    nxt = _t(_np_rng(9).normal(size=(20, 4)))
    val4 = _t(_np_rng(10).normal(size=(20, 4)))
    add("ex3_baseline", "td_errors", "[20, 4]",
        lambda dev: _call_with_grads(e3.td_errors, dev, (rew, val4, nxt, dn, 0.99), {}, ("delta",), {1: "values"}))
    for lam in (0.0, 0.95, 1.0):
        add("ex3_baseline", "compute_gae", f"[20, 4], lambda={lam}",
            lambda dev, lam=lam: _call_with_grads(e3.compute_gae, dev, (rew, val4, dn, nxt[-1], 0.99, lam), {},
                                                  ("advantages", "returns"), {}))
    r1, d1 = traj(11, (30,))
    v1 = _t(_np_rng(12).normal(size=30))
    add("ex3_baseline", "compute_gae", "[30], last_value []",
        lambda dev: _call_with_grads(e3.compute_gae, dev, (r1, v1, d1, _t(0.7), 0.98, 0.9), {},
                                     ("advantages", "returns"), {}))

    def gv_run(dev, baselines: bool):
        policy = _policy(13, n_actions=3).to(dev)
        rng = _np_rng(14)
        lens = (6, 11, 9, 14)
        obs = [_t(rng.normal(size=(T, 4))).to(dev) for T in lens]
        acts = [torch.tensor(rng.integers(0, 3, size=T), dtype=torch.long, device=dev) for T in lens]
        rets = [_t(rng.normal(size=T) * 3 + 5).to(dev) for T in lens]
        bls = [_t(rng.normal(size=T) + 5).to(dev) for T in lens] if baselines else None
        return {"variance": e3.gradient_variance(policy, obs, acts, rets, bls).detach()}

    add("ex3_baseline", "gradient_variance", "4 episodes, no baselines", lambda dev: gv_run(dev, False),
        rtol=1e-4, atol=1e-7)
    add("ex3_baseline", "gradient_variance", "4 episodes, with baselines", lambda dev: gv_run(dev, True),
        rtol=1e-4, atol=1e-7)

    def ac_run(dev):
        policy = _policy(15).to(dev)
        torch.manual_seed(16)
        value_net = ValueNet(4, hidden=(16,)).to(dev)
        start_p = {k: v.detach().clone() for k, v in policy.state_dict().items()}
        start_v = {k: v.detach().clone() for k, v in value_net.state_dict().items()}
        opt_p = torch.optim.Adam(policy.parameters(), lr=1e-2)
        opt_v = torch.optim.Adam(value_net.parameters(), lr=1e-2)
        losses = [e3.actor_critic_update(opt_p, opt_v, value_net, episode_for(policy, dev, 70 + i, 10 + 4 * i),
                                         0.99, 0.95, True) for i in range(3)]
        steps = {f"step.policy.{k[5:]}": v for k, v in _param_steps(start_p, policy).items()}
        steps.update({f"step.value.{k[5:]}": v for k, v in _param_steps(start_v, value_net).items()})
        return {"losses": torch.tensor(losses, dtype=torch.float64), **steps}

    add("ex3_baseline", "actor_critic_update", "3 updates, lambda=0.95, Adam", ac_run, step_tol=2e-3)

    # ---- ex4
    rng = _np_rng(17)
    new = _t(-rng.random((12, 4)) * 2)
    old = new + _t(rng.normal(size=(12, 4)) * 0.3)
    ratio = _t(1.0 + rng.normal(size=(12, 4)) * 0.3).clamp(min=0.05)
    adv = _t(rng.normal(size=(12, 4)))
    add("ex4_ppo", "probability_ratio", "[12, 4]",
        lambda dev: _call_with_grads(e4.probability_ratio, dev, (new, old), {}, ("ratio",), {0: "new_log_probs"}))
    add("ex4_ppo", "probability_ratio", "[12, 4] float64",
        lambda dev: _call_with_grads(e4.probability_ratio, dev, (new.double(), old.double()), {}, ("ratio",),
                                     {0: "new_log_probs"}))
    add("ex4_ppo", "clipped_surrogate", "[12, 4], eps=0.2",
        lambda dev: _call_with_grads(e4.clipped_surrogate, dev, (ratio, adv, 0.2), {},
                                     ("unclipped", "clipped", "objective"), {0: "ratio"}))
    add("ex4_ppo", "clip_active", "[12, 4], eps=0.2",
        lambda dev: _call_with_grads(e4.clip_active, dev, (ratio, adv, 0.2), {}, ("active",), {}))
    add("ex4_ppo", "ppo_policy_loss", "[12, 4], eps=0.2",
        lambda dev: _call_with_grads(e4.ppo_policy_loss, dev, (new, old, adv, 0.2), {}, ("loss",),
                                     {0: "new_log_probs"}))

    def ppo_loss_run(dev):
        torch.manual_seed(18)
        agent = ActorCritic(4, 2, hidden=(16, 16)).to(dev)
        rng = _np_rng(19)
        B = 32
        obs = _t(rng.normal(size=(B, 4))).to(dev)
        acts = torch.tensor(rng.integers(0, 2, size=B), dtype=torch.long, device=dev)
        with torch.no_grad():
            lp_now = torch.log_softmax(agent.logits(obs), -1).gather(-1, acts.unsqueeze(-1)).squeeze(-1)
        old_lp = lp_now + _t(rng.normal(size=B) * 0.2).to(dev)
        a = _t(rng.normal(size=B)).to(dev)
        g = _t(rng.normal(size=B)).to(dev)
        loss, stats = e4.ppo_loss(agent, obs, acts, old_lp, a, g, 0.2, 0.5, 0.01)
        grads = torch.autograd.grad(loss, list(agent.parameters()))
        out = {"loss": loss.detach(), **{f"stats.{k}": v for k, v in stats.items()}}
        out.update({f"grad.{n}": gr for (n, _), gr in zip(agent.named_parameters(), grads)})
        return out

    add("ex4_ppo", "ppo_loss", "B=32 (given code)", ppo_loss_run)

    # ---- ex5
    rng = _np_rng(20)
    rc, rr = _t(rng.normal(size=16) * 2), _t(rng.normal(size=16) * 2)
    add("ex5_rlhf", "preference_loss", "[16]",
        lambda dev: _call_with_grads(e5.preference_loss, dev, (rc, rr), {}, ("loss",),
                                     {0: "r_chosen", 1: "r_rejected"}))
    big_c, big_r = _t([600.0, -600.0, 300.0, -5.0]), _t([-600.0, 600.0, -300.0, 5.0])
    add("ex5_rlhf", "preference_loss", "gaps of +-600",
        lambda dev: _call_with_grads(e5.preference_loss, dev, (big_c, big_r), {}, ("loss",), {0: "r_chosen"}),
        rtol=1e-4, atol=1e-3)
    lpb, refb = _t(-rng.random((5, 9)) * 3), _t(-rng.random((5, 9)) * 3)
    add("ex5_rlhf", "kl_penalty", "[5, 9]",
        lambda dev: _call_with_grads(e5.kl_penalty, dev, (lpb, refb), {}, ("kl",), {0: "log_probs"}))
    mask = torch.zeros(5, 9)
    for b, (s, e) in enumerate(((2, 7), (3, 9), (1, 2), (4, 4), (0, 6))):
        mask[b, s:e] = 1.0
    scores = _t(rng.normal(size=5))
    add("ex5_rlhf", "rlhf_rewards", "[5, 9], beta=0.1",
        lambda dev: _call_with_grads(e5.rlhf_rewards, dev, (scores, lpb, refb, mask, 0.1), {}, ("rewards",), {}))
    rw, vv = _t(rng.normal(size=(5, 9))), _t(rng.normal(size=(5, 9)))
    for lam in (0.0, 0.95, 1.0):
        add("ex5_rlhf", "token_advantages", f"[5, 9], lambda={lam}",
            lambda dev, lam=lam: _call_with_grads(e5.token_advantages, dev, (rw, vv, mask.bool(), lam), {},
                                                  ("advantages", "returns"), {}))

    skipped = [
        {"exercise": "ex1_values", "function": "monte_carlo_value",
         "why": "random: CUDA and CPU generators give different streams (the grade checks it on CUDA)"},
        {"exercise": "ex2_reinforce", "function": "sample_action", "why": "random (the grade checks it on CUDA)"},
        {"exercise": "ex2_reinforce", "function": "collect_episode",
         "why": "random actions in an environment (the grade checks it on CUDA)"},
        {"exercise": "ex2_reinforce", "function": "train_reinforce", "why": "training: see the training table"},
        {"exercise": "ex3_baseline", "function": "train_actor_critic", "why": "training: see the training table"},
        {"exercise": "ex4_ppo", "function": "train_ppo", "why": "training: see the training table"},
    ]
    return cases, skipped


def _tolerance(case: Case, name: str) -> tuple[float, float]:
    for prefix, tol in case.tolerances.items():
        if name.startswith(prefix):
            return tol
    return case.rtol, case.atol


def compare_case(case: Case, device: str, base: str = "cpu") -> list[dict]:
    """Run ``case`` on ``base`` and ``device``; one row per output: largest differences and the verdict."""
    import torch

    try:
        want = case.run(torch.device(base))
        got = case.run(torch.device(device))
    except Exception as exc:  # a crash on one device is a finding, not a crash of the check
        return [{"exercise": case.exercise, "function": case.function, "case": case.label, "output": "-",
                 "ok": False, "problem": f"{type(exc).__name__}: {exc}"}]
    rows = []
    step_scale = None
    if case.step_tol is not None:
        steps = [v.double().abs().max().item() for k, v in want.items() if k.startswith("step.") and v.numel()]
        step_scale = max(steps, default=0.0) + 1e-12
    for name, w in want.items():
        row = {"exercise": case.exercise, "function": case.function, "case": case.label, "output": name,
               "dtype": str(w.dtype).replace("torch.", ""), "max_abs_diff": None, "max_rel_diff": None,
               "rtol": None, "atol": None, "ok": False, "problem": None}
        rows.append(row)
        g = got.get(name)
        if g is None:
            row["problem"] = f"missing on {device}"
            continue
        if g.device.type != torch.device(device).type:
            row["problem"] = f"result on {g.device}, expected on {device}"
            continue
        if g.dtype != w.dtype or g.shape != w.shape:
            row["problem"] = f"{g.dtype} {tuple(g.shape)} on {device}, {w.dtype} {tuple(w.shape)} on {base}"
            continue
        g, w = g.detach().cpu(), w.detach().cpu()
        if not w.dtype.is_floating_point:
            row["rtol"] = row["atol"] = 0.0
            diff = (g != w).sum().item() if w.dtype == torch.bool else (g - w).abs().max().item() if w.numel() else 0
            row["max_abs_diff"] = float(diff)
            row["ok"] = diff == 0
            if not row["ok"]:
                row["problem"] = f"{int(diff)} element(s) differ" if w.dtype == torch.bool else "values differ"
            continue
        g64, w64 = g.double(), w.double()
        if not (torch.isfinite(g64).all() and torch.isfinite(w64).all()):
            same = torch.equal(torch.isnan(g64), torch.isnan(w64)) and torch.equal(
                torch.nan_to_num(g64, nan=0.0), torch.nan_to_num(w64, nan=0.0))
            row["ok"] = bool(same)
            row["problem"] = None if same else "non-finite values differ"
            continue
        d = (g64 - w64).abs()
        row["max_abs_diff"] = d.max().item() if d.numel() else 0.0
        nonzero = w64.abs() > 0  # relative to the CPU value, where it is not 0
        row["max_rel_diff"] = (d[nonzero] / w64.abs()[nonzero]).max().item() if nonzero.any() else 0.0
        if name.startswith("step.") and step_scale is not None:
            rtol, atol = 0.0, case.step_tol * step_scale + 1e-7
        else:
            rtol, atol = _tolerance(case, name)
        row["rtol"], row["atol"] = rtol, atol
        row["ok"] = bool((d <= atol + rtol * w64.abs()).all())
        if not row["ok"]:
            row["problem"] = f"beyond rtol={rtol:g}, atol={atol:.3g}"
    return rows


def compare_references(device: str, base: str = "cpu") -> dict:
    """All cases on ``device`` against ``base``: rows, a per-function summary and the skipped functions."""
    cases, skipped = reference_cases()
    rows = [row for case in cases for row in compare_case(case, device, base)]
    return {"device": device, "base": base, "rows": rows, "summary": summarize_comparison(rows), "skipped": skipped}


def summarize_comparison(rows: list[dict]) -> list[dict]:
    """One line per function: its largest difference over every case and output, and whether all passed."""
    by: dict[tuple[str, str], dict] = {}
    for r in rows:
        s = by.setdefault((r["exercise"], r["function"]), {
            "exercise": r["exercise"], "function": r["function"], "outputs": 0, "max_abs_diff": 0.0,
            "max_rel_diff": 0.0, "worst": None, "tolerance": None, "ok": True, "problems": []})
        s["outputs"] += 1
        s["ok"] = s["ok"] and r["ok"]
        if r.get("problem"):
            s["problems"].append(f"{r['case']} / {r['output']}: {r['problem']}")
        if r.get("max_abs_diff") is not None and r["max_abs_diff"] >= s["max_abs_diff"]:
            s["max_abs_diff"] = r["max_abs_diff"]
            s["worst"] = f"{r['case']} / {r['output']}"
            s["tolerance"] = f"rtol={r['rtol']:g}, atol={r['atol']:.3g}" if r.get("rtol") is not None else None
        if r.get("max_rel_diff") is not None:
            s["max_rel_diff"] = max(s["max_rel_diff"], r["max_rel_diff"])
    return list(by.values())


# ---------------------------------------------------------------------------
# 4. Training runs
# ---------------------------------------------------------------------------


def training_specs() -> list[dict]:
    """The learning tests' settings, read from the hidden suites."""
    r = suite_constants("ex2_reinforce", ("LEARN_SEEDS", "LEARN_EPISODES", "LEARN_EVAL_SEED", "LEARN_EVAL_EPISODES",
                                          "LEARN_THRESHOLD"))
    a = suite_constants("ex3_baseline", ("LEARN_SEED", "LEARN_EPISODES", "LEARN_EVAL_SEED", "LEARN_EVAL_EPISODES",
                                         "LEARN_THRESHOLD"))
    p = suite_constants("ex4_ppo", ("LEARN_SEEDS", "LEARN_STEPS", "LEARN_EVAL_SEED", "LEARN_EVAL_EPISODES",
                                    "LEARN_THRESHOLD"))
    return [
        {"function": "train_reinforce", "module": "ex2_reinforce", "seeds": list(r["LEARN_SEEDS"]),
         "kwargs": dict(env_id="CartPole-v1", episodes=r["LEARN_EPISODES"], lr=1e-2, gamma=0.99,
                        normalize_returns=True),
         "eval_seed": r["LEARN_EVAL_SEED"], "eval_episodes": r["LEARN_EVAL_EPISODES"],
         "threshold": r["LEARN_THRESHOLD"], "budget": f"{r['LEARN_EPISODES']} episodes"},
        {"function": "train_actor_critic", "module": "ex3_baseline", "seeds": [a["LEARN_SEED"]],
         "kwargs": dict(env_id="CartPole-v1", episodes=a["LEARN_EPISODES"]),
         "eval_seed": a["LEARN_EVAL_SEED"], "eval_episodes": a["LEARN_EVAL_EPISODES"],
         "threshold": a["LEARN_THRESHOLD"], "budget": f"{a['LEARN_EPISODES']} episodes"},
        {"function": "train_ppo", "module": "ex4_ppo", "seeds": list(p["LEARN_SEEDS"]),
         "kwargs": dict(env_id="CartPole-v1", total_steps=p["LEARN_STEPS"]),
         "eval_seed": p["LEARN_EVAL_SEED"], "eval_episodes": p["LEARN_EVAL_EPISODES"],
         "threshold": p["LEARN_THRESHOLD"], "budget": f"{p['LEARN_STEPS']} env steps"},
    ]


def train_once(spec: dict, device: str, seed: int, overrides: dict | None = None) -> dict:
    """One training run as the learning test makes it; the greedy policy is evaluated on the CPU, as the grader does."""
    import importlib

    import numpy as np
    import torch

    from common.rollout import evaluate_policy

    fn = getattr(importlib.import_module(f"solutions.{spec['module']}"), spec["function"])
    kwargs = {**spec["kwargs"], **(overrides or {})}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in the grader's sandbox
    try:
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        result = fn(seed=seed, device=device, **kwargs)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        seconds = time.perf_counter() - t0
        policy = copy.deepcopy(result.policy).cpu()
        param_device = str(next(result.policy.parameters()).device)
        scores = evaluate_policy(policy, "CartPole-v1", episodes=spec["eval_episodes"], seed=spec["eval_seed"],
                                 greedy=True)
    finally:
        torch.set_num_threads(threads)
    mean = float(np.mean(scores))
    steps = result.log.get("steps") or [0]
    return {"function": spec["function"], "device": device, "seed": seed, "seconds": round(seconds, 2),
            "env_steps": int(steps[-1]), "updates": len(steps), "greedy_mean": mean,
            "threshold": spec["threshold"], "met": mean >= spec["threshold"], "policy_device": param_device}


def run_training(device: str, cpu_baseline: bool, overrides: dict | None = None) -> list[dict]:
    """Each training function on ``device`` (suite seeds in order until one meets the threshold), and on the CPU."""
    rows = []
    for spec in training_specs():
        for dev in [device] + (["cpu"] if cpu_baseline and device != "cpu" else []):
            runs = []
            for seed in spec["seeds"]:
                try:
                    runs.append(train_once(spec, dev, seed, (overrides or {}).get(spec["function"])))
                except Exception as exc:
                    runs.append({"function": spec["function"], "device": dev, "seed": seed, "met": False,
                                 "error": f"{type(exc).__name__}: {exc}"})
                if runs[-1]["met"]:
                    break
            last = runs[-1]
            dev_ok = bool(last.get("met")) and not last.get("error")
            if dev == device and last.get("policy_device") and torch_device_type(last["policy_device"]) != \
                    torch_device_type(device):
                dev_ok = False
                last["error"] = f"the trained policy lives on {last['policy_device']}, not on {device}"
            rows.append({"function": spec["function"], "device": dev, "budget": spec["budget"],
                         "threshold": spec["threshold"], "runs": runs, "ok": dev_ok,
                         "suite_budget_s": SUITE_BUDGET_S.get(spec["function"]),
                         "counts": dev == device})
    return rows


def torch_device_type(name: str) -> str:
    return name.split(":", 1)[0]


# ---------------------------------------------------------------------------
# 5. The scripts
# ---------------------------------------------------------------------------


def first_at_least(rows: list[dict], key: str, threshold: float, time_key: str) -> tuple[int | None, float | None]:
    for r in rows:
        v = r.get(key)
        if v is not None and not (isinstance(v, float) and math.isnan(v)) and v >= threshold:
            return r.get("steps"), r.get(time_key)
    return None, None


def run_ppo_script(device: str, out: Path, total_steps: int | None) -> dict:
    stem = out / f"ppo_cartpole_{device.replace(':', '')}"
    cmd = [sys.executable, "-m", "demos.ppo_cartpole", "--impl", "solutions", "--device", device, "--out", str(stem)]
    if total_steps:
        cmd += ["--total-steps", str(total_steps)]
    rc, seconds, tail = run_logged(cmd, out / "logs" / f"ppo_cartpole_{device.replace(':', '')}.txt", timeout=900)
    row = {"script": "ppo_cartpole", "device": device, "rc": rc, "seconds": round(seconds, 1), "ok": rc == 0}
    js = stem.with_suffix(".json")
    if rc == 0 and js.exists():
        log = json.loads(js.read_text())
        steps, secs = first_at_least(log.get("updates", []), "greedy", 475.0, "train_time")
        row.update(steps_per_s=log.get("train_steps_per_s"), train_s=log.get("train_time_s"),
                   steps_to_475=steps, seconds_to_475=secs, final_mean=log.get("final_eval", {}).get("mean"),
                   solved=log.get("final_eval", {}).get("solved"))
    else:
        row["ok"] = False
        row["problem"] = tail
    return row


def run_bench_kit(device: str, out: Path, seeds: int) -> dict:
    js = out / f"bench_kit_{device.replace(':', '')}.json"
    cmd = [sys.executable, "-m", "scripts.bench", "--sb3-seeds", "0", "--kit-seeds", str(seeds), "--device", device,
           "--out", str(js)]
    rc, seconds, tail = run_logged(cmd, out / "logs" / f"bench_kit_{device.replace(':', '')}.txt", timeout=1800)
    row = {"script": "bench (kit)", "device": device, "rc": rc, "seconds": round(seconds, 1), "ok": rc == 0,
           "seeds": seeds}
    if rc == 0 and js.exists():
        kit = json.loads(js.read_text()).get("summaries", {}).get("kit", {})
        row.update(steps_per_s=kit.get("median_steps_per_second"), steps_to_475=kit.get("median_first_steps"),
                   seconds_to_475=kit.get("median_first_seconds"), reached=f"{kit.get('reached')}/{kit.get('runs')}",
                   final_ok=f"{kit.get('final_ok')}/{kit.get('runs')}")
    else:
        row["ok"] = False
        row["problem"] = tail
    return row


def run_scripts(device: str, out: Path, cpu_baseline: bool, bench_seeds: int, ppo_steps: int | None) -> list[dict]:
    rows = []
    for dev in [device] + (["cpu"] if cpu_baseline and device != "cpu" else []):
        rows.append({**run_ppo_script(dev, out, ppo_steps), "counts": dev == device})
        rows.append({**run_bench_kit(dev, out, bench_seeds), "counts": dev == device})
    return rows


# ---------------------------------------------------------------------------
# 6. Report
# ---------------------------------------------------------------------------


def environment(device: str, simulated: bool) -> dict:
    import numpy as np
    import torch

    env = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "numpy": np.__version__,
        "device": device,
        "simulated_on_cpu": simulated,
    }
    try:
        env["git_commit"] = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
                                           text=True).stdout.strip() or None
    except OSError:
        env["git_commit"] = None
    if not simulated and torch.cuda.is_available():
        idx = torch.device(device).index or 0
        props = torch.cuda.get_device_properties(idx)
        env.update(gpu=torch.cuda.get_device_name(idx), gpu_capability=f"{props.major}.{props.minor}",
                   gpu_memory_gib=round(props.total_memory / 2**30, 1),
                   cudnn=torch.backends.cudnn.version(), gpu_count=torch.cuda.device_count())
        if shutil.which("nvidia-smi"):
            q = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                               capture_output=True, text=True)
            env["driver"] = q.stdout.strip().splitlines()[0] if q.returncode == 0 and q.stdout.strip() else None
    return env


def verdict(report: dict) -> tuple[bool, list[str]]:
    """(all passed, what did not) over the steps that ran."""
    bad = []
    for g in report.get("grades", []):
        if not g["ok"]:
            bad.append(f"grade {g['folder']} on {g['device']}: {g['total']}/{g['max_total']} "
                       f"(expected {'full marks' if g['expect'] == 'full' else '0'})")
    for s in (report.get("comparison") or {}).get("summary", []):
        if not s["ok"]:
            bad.append(f"{s['function']}: CPU/{report['environment']['device']} difference "
                       f"({'; '.join(s['problems'][:3])})")
    for t in report.get("training", []):
        if t["counts"] and not t["ok"]:
            last = t["runs"][-1]
            why = last.get("error") or f"greedy mean {last.get('greedy_mean', float('nan')):.1f} < {t['threshold']:g}"
            bad.append(f"{t['function']} on {t['device']}: {why} (seeds {[r['seed'] for r in t['runs']]})")
    for s in report.get("scripts", []):
        if s["counts"] and not s["ok"]:
            bad.append(f"{s['script']} on {s['device']}: exit {s['rc']}")
    for e in report.get("errors", []):
        bad.append(e)
    return not bad, bad


def markdown(report: dict) -> str:
    env = report["environment"]
    lines = []
    if env.get("simulated_on_cpu"):
        lines += ["**SIMULATED ON THE CPU (`--simulate-on-cpu`): this run tests the script only and proves nothing "
                  "about CUDA.**", ""]
    lines += ["# gpu-check", ""]
    where = env.get("gpu") or "no GPU (simulated)"
    lines.append(f"{env['date']}; {where}" + (f" (compute {env['gpu_capability']}, {env['gpu_memory_gib']} GiB, "
                                               f"driver {env.get('driver') or '?'}, cuDNN {env.get('cudnn')})"
                                               if env.get("gpu") else "")
                 + f"; torch {env['torch']} (CUDA {env['torch_cuda'] or '-'}), Python {env['python']}, "
                   f"{env['cpu_count']} CPUs; commit {(env.get('git_commit') or '?')[:12]}.")
    ok, bad = verdict(report)
    lines += ["", f"**Result: {'all checks passed' if ok else 'FAILED'}**" + ("" if ok else ":"), ""]
    lines += [f"- {b}" for b in bad]
    if report.get("grades"):
        lines += ["", "## Grades", "", "| folder | device | score | expected | s | ok |",
                  "|---|---|---:|---|---:|:---:|"]
        for g in report["grades"]:
            lines.append(f"| `{g['folder']}/` | {g['device']} | {_f(g['total'], 'g')}/{_f(g['max_total'], 'g')} | "
                         f"{'full marks' if g['expect'] == 'full' else '0'} | {g['seconds']:.0f} | "
                         f"{'yes' if g['ok'] else '**no**'} |")
        for g in report["grades"]:
            for p in g["problems"][:20]:
                lines.append(f"- `{g['folder']}` {p}")
    comp = report.get("comparison")
    if comp:
        lines += ["", f"## Reference functions: {comp['device']} against {comp['base']}", "",
                  "Largest difference per function over all its cases and outputs (results, gradients, parameter "
                  "steps), and the tolerance of that output (the hidden suite's).", "",
                  "| exercise | function | outputs | max abs diff | max rel diff | at | tolerance | ok |",
                  "|---|---|---:|---:|---:|---|---|:---:|"]
        for s in comp["summary"]:
            lines.append(f"| {s['exercise']} | `{s['function']}` | {s['outputs']} | {_f(s['max_abs_diff'], '.3g')} | "
                         f"{_f(s['max_rel_diff'], '.3g')} | {s['worst'] or '-'} | {s['tolerance'] or '-'} | "
                         f"{'yes' if s['ok'] else '**no**'} |")
        if comp["skipped"]:
            skipped = "; ".join(f"`{k['function']}` ({k['why']})" for k in comp["skipped"])
            lines += ["", f"Not compared: {skipped}."]
    if report.get("training"):
        lines += ["", "## Training (the learning tests' settings)", "",
                  "| function | device | seed | budget | env steps | updates | wall s | suite budget s | greedy mean | "
                  "threshold | met |", "|---|---|---:|---|---:|---:|---:|---:|---:|---:|:---:|"]
        for t in report["training"]:
            for r in t["runs"]:
                if r.get("error"):
                    lines.append(f"| `{t['function']}` | {t['device']} | {r['seed']} | {t['budget']} | - | - | - | "
                                 f"{_f(t['suite_budget_s'], '.0f')} | - | {t['threshold']:g} | "
                                 f"**error**: {r['error']} |")
                    continue
                lines.append(f"| `{t['function']}` | {t['device']} | {r['seed']} | {t['budget']} | {r['env_steps']} | "
                             f"{r['updates']} | {r['seconds']:.1f} | {_f(t['suite_budget_s'], '.0f')} | "
                             f"{r['greedy_mean']:.1f} | {t['threshold']:g} | {'yes' if r['met'] else 'no'} |")
    if report.get("scripts"):
        lines += ["", "## Scripts", "",
                  "| script | device | exit | env steps/s | steps to 475 | s to 475 | final / reached | wall s |",
                  "|---|---|---:|---:|---:|---:|---|---:|"]
        for s in report["scripts"]:
            final = (f"final mean {_f(s.get('final_mean'), '.1f')}" if s["script"] == "ppo_cartpole"
                     else f"reached {s.get('reached', '-')}, final {s.get('final_ok', '-')}")
            lines.append(f"| {s['script']} | {s['device']} | {s['rc']} | {_f(s.get('steps_per_s'), '.0f')} | "
                         f"{_f(s.get('steps_to_475'), '.0f', 'never')} | "
                         f"{_f(s.get('seconds_to_475'), '.2f', 'never')} | "
                         f"{final} | {s['seconds']:.0f} |")
    lines += ["", f"Files: `{report['out']}` (report.json, logs/)."]
    return "\n".join(lines) + "\n"


def _jsonable(x):
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    return x


def write_report(report: dict, out: Path) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    ok, bad = verdict(report)
    report = {**report, "ok": ok, "failures": bad}
    js, md = out / "report.json", out / "report.md"
    js.write_text(json.dumps(_jsonable(report), indent=1, allow_nan=False))
    md.write_text(markdown(report))
    return js, md


# ---------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m scripts.gpu_check",
        description="Check the kit on a CUDA GPU: grades, CPU/CUDA differences of the references, training and "
                    "scripts on CUDA. Exit 0 all passed, 1 a check failed, 3 no CUDA here, 4 --install failed.")
    p.add_argument("--out", default=str(DEFAULT_OUT), help="output folder (default build/gpu-check)")
    p.add_argument("--device", default="cuda", help="the CUDA device to check (default cuda)")
    p.add_argument("--install", action="store_true",
                   help="first install the CUDA build of the pinned torch into this environment (default: "
                        "torch===VERSION from the configured index, PyPI, whose Linux wheel is a CUDA 13.0 build)")
    p.add_argument("--torch-index", default=None, metavar="URL",
                   help="with --install: take torch from this index instead, e.g. "
                        "https://download.pytorch.org/whl/cu126 (needs internet; the lent GPU machines reach "
                        "PyPI only)")
    p.add_argument("--torch-spec", default=None, help="with --install: the exact requirement to install")
    p.add_argument("--skip", action="append", choices=STEPS, default=[], help="skip a step (repeatable)")
    p.add_argument("--no-cpu-baseline", action="store_true",
                   help="do not repeat the training runs and scripts on the CPU for comparison")
    p.add_argument("--bench-seeds", type=int, default=3, help="kit seeds of the benchmark run (default 3)")
    p.add_argument("--ppo-steps", type=int, default=None,
                   help="--total-steps of the ppo_cartpole run (default: its own)")
    p.add_argument("--simulate-on-cpu", action="store_true",
                   help="test this script where there is no GPU: the CPU stands in for CUDA (proves nothing "
                        "about CUDA)")
    return p.parse_args(argv)


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    if args.install:
        if args.simulate_on_cpu:
            print("gpu-check: --install and --simulate-on-cpu do not go together", file=sys.stderr)
            return EXIT_USAGE
        return do_install(args, argv)

    import torch

    if args.simulate_on_cpu:
        device = "cpu"
        print("gpu-check: --simulate-on-cpu: the CPU stands in for CUDA; this tests the script, not CUDA", flush=True)
    else:
        problem = cuda_problem(torch)
        if problem:
            print(problem, file=sys.stderr)
            return EXIT_NO_CUDA
        device = args.device
        try:
            from common.device import get_device

            if get_device(device).type != "cuda":
                raise ValueError("not a CUDA device (to test the script on the CPU use --simulate-on-cpu)")
        except (RuntimeError, ValueError) as exc:
            print(f"gpu-check: --device {device}: {exc}", file=sys.stderr)
            return EXIT_USAGE

    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    report: dict = {"environment": environment(device, args.simulate_on_cpu), "out": str(out), "errors": []}
    t_start = time.perf_counter()

    def step(name: str, fn):
        if name in args.skip:
            print(f"gpu-check: [{name}] skipped", flush=True)
            return None
        print(f"gpu-check: [{name}] ...", flush=True)
        t0 = time.perf_counter()
        try:
            result = fn()
        except Exception as exc:
            report["errors"].append(f"step {name} crashed: {type(exc).__name__}: {exc}")
            result = None
        print(f"gpu-check: [{name}] done in {time.perf_counter() - t0:.0f} s", flush=True)
        write_report(report, out)  # keep what is there if a later step hangs
        return result

    report["grades"] = step("grade", lambda: [grade_folder("solutions", device, out, "full"),
                                              grade_folder("assignments", device, out, "zero")]) or []
    report["comparison"] = step("compare", lambda: compare_references(device))
    report["training"] = step("train", lambda: run_training(device, not args.no_cpu_baseline)) or []
    report["scripts"] = step("scripts", lambda: run_scripts(device, out, not args.no_cpu_baseline, args.bench_seeds,
                                                            args.ppo_steps)) or []
    report["seconds"] = round(time.perf_counter() - t_start, 1)
    js, md = write_report(report, out)
    print()
    print(md.read_text())
    ok, _ = verdict(report)
    print(f"gpu-check: wrote {md} and {js}; {'all checks passed' if ok else 'FAILED'}")
    return EXIT_OK if ok else EXIT_MISMATCH


if __name__ == "__main__":
    sys.exit(main())
