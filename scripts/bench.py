"""Side-by-side benchmark: the kit's ``train_ppo`` against Stable-Baselines3 PPO on CartPole-v1.

Run it with ``make bench`` (which installs the pinned ``stable-baselines3`` of
the ``bench`` extra first) or ``python -m scripts.bench --help``.

All rows run in this process, one after the other, on one torch
thread (``torch.set_num_threads(1)``: on a small shared machine a second
thread gains nothing for networks this size and collapses under other load;
the thread count also changes the floating-point trajectory, so it is
printed beside the results). Their runs are interleaved (SB3 seed 0, kit
seed 0, kit-early seed 0, SB3 seed 1, ...) so that a drift of the machine's
speed hits all of them.

The contenders (one protocol for all of them):

- **kit**: ``solutions.ex4_ppo.train_ppo`` with the default ``PPOConfig``
  except ``target_return=None``: it trains the whole ``--steps`` budget,
  exactly like SB3, so "stable from" means stable to the end of the same
  budget for both. ``--kit-override FIELD=VALUE`` sets any other field (or
  ``target_return`` itself) for this row.
- **kit-early**: the default ``PPOConfig`` as it is, *with* its early stop
  (``target_return``: its own greedy check says solved, training ends there
  and that last policy is the one finally evaluated; the check counts as
  training time). This is what the hidden suite's learning test runs; it is
  reported as its own, separately labelled row (``--early-seeds``, default
  the number of kit seeds; 0 skips it) and is not what the targets compare,
  since a run that stops cannot show that it stays solved.
- **SB3**: ``stable_baselines3.PPO("MlpPolicy")`` with the rl-baselines3-zoo
  hyperparameters for CartPole-v1: 8 environments, n_steps 32, batch 256,
  20 epochs, gamma 0.98, gae_lambda 0.8, ent_coef 0, learning rate 1e-3 and
  clip range 0.2 both decayed linearly to 0, 100k steps.

The protocol, identical for all:

- every ``--eval-every`` (2,048) environment steps, and once more at the end
  of training, the greedy (argmax) policy plays ``--eval-episodes`` (20)
  episodes of a separate CartPole-v1 (the k-th evaluation uses the same
  environment seeds for every implementation); the evaluation is not timed;
- per run: the env steps and training wall seconds at which the mean
  evaluation return first reaches ``--threshold`` (475); the step and seconds
  from which *every* later evaluation stays at or above it ("stable from": a
  first hit can be a lucky evaluation); whether the final evaluation is at or
  above it; training steps per second;
- then per implementation the medians (a run that never gets there counts
  as worse than every run that does), and the ratios kit / SB3 (and
  kit-early / SB3) of the median steps and seconds to the first 475 and to
  "stable from";
- the targets: the kit's median "stable from" at most half SB3's env steps
  and at most 0.2x SB3's seconds, and every kit seed stable to the end of
  the budget.

Output: a Markdown report on stdout and every number (with each run's
evaluation curve) in ``plots/bench.json`` (``--out``).
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import platform
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from common.device import get_device
from common.rollout import evaluate_policy

from scripts.machine import load_average, machine

ENV_ID = "CartPole-v1"
EVAL_SEED_BASE = 900_000  # the k-th evaluation plays environment seeds EVAL_SEED_BASE + 1000 k + (0..episodes-1)

# rl-baselines3-zoo, hyperparams/ppo.yml, CartPole-v1
SB3_ZOO = dict(n_envs=8, n_steps=32, batch_size=256, n_epochs=20, gamma=0.98, gae_lambda=0.8, ent_coef=0.0,
               learning_rate=1e-3, clip_range=0.2)


# ---------------------------------------------------------------------------
# The protocol: evaluation points and what is read off them
# ---------------------------------------------------------------------------


@dataclass
class EvalPoint:
    steps: int  # environment steps of training so far
    seconds: float  # training wall seconds so far (evaluations excluded)
    mean: float  # mean greedy return over the evaluation episodes


def first_hit(points: list[EvalPoint], threshold: float) -> EvalPoint | None:
    """The first evaluation whose mean is at least ``threshold`` (None if there is none)."""
    for p in points:
        if p.mean >= threshold:
            return p
    return None


def stable_from(points: list[EvalPoint], threshold: float) -> EvalPoint | None:
    """The earliest evaluation from which every evaluation, itself and all later ones, is >= ``threshold``.

    None when the last evaluation is below the threshold (the run did not end
    solved) or there are no evaluations.
    """
    start = None
    for p in reversed(points):
        if p.mean < threshold:
            break
        start = p
    return start


def median_or_inf(values: list[float | None]) -> float:
    """Median where None (never reached) counts as +inf, i.e. worse than every reached value."""
    if not values:
        return math.nan
    return float(np.median([math.inf if v is None else v for v in values]))


class Evaluator:
    """Times training and evaluates the greedy policy every ``every`` steps (untimed).

    ``train_seconds()`` is the wall time since ``start()`` minus the time spent
    in evaluations. ``maybe_evaluate(steps, policy)`` evaluates when ``steps``
    has reached the next multiple of ``every``; ``final(steps, policy)``
    evaluates the policy at the end of training (unless that exact step count
    was just evaluated).
    """

    def __init__(self, every: int, episodes: int):
        self.every, self.episodes = every, episodes
        self.points: list[EvalPoint] = []
        self.next_at = every
        self.eval_seconds = 0.0
        self.t0 = time.perf_counter()

    def start(self) -> None:
        self.t0 = time.perf_counter()
        self.eval_seconds = 0.0

    def train_seconds(self) -> float:
        return time.perf_counter() - self.t0 - self.eval_seconds

    def _evaluate(self, steps: int, policy: nn.Module) -> None:
        seconds = self.train_seconds()
        t = time.perf_counter()
        seed = EVAL_SEED_BASE + 1000 * len(self.points)
        mean = float(np.mean(evaluate_policy(policy, ENV_ID, self.episodes, seed=seed, greedy=True)))
        self.points.append(EvalPoint(int(steps), seconds, mean))
        self.eval_seconds += time.perf_counter() - t

    def maybe_evaluate(self, steps: int, policy: nn.Module) -> None:
        if steps >= self.next_at:
            self._evaluate(steps, policy)
            self.next_at = (steps // self.every + 1) * self.every

    def final(self, steps: int, policy: nn.Module) -> tuple[float, float]:
        """Evaluate at the end; returns (final mean, total training seconds)."""
        seconds = self.train_seconds()
        if not self.points or self.points[-1].steps != steps:
            self._evaluate(steps, policy)
        return self.points[-1].mean, seconds


@dataclass
class RunResult:
    impl: str
    seed: int
    steps: int  # environment steps trained
    train_seconds: float
    steps_per_second: float
    final_mean: float
    first_steps: int | None = None
    first_seconds: float | None = None
    stable_steps: int | None = None
    stable_seconds: float | None = None
    curve: list[dict] = field(default_factory=list)


def summarize_run(impl: str, seed: int, ev: Evaluator, steps: int, seconds: float, final_mean: float,
                  threshold: float) -> RunResult:
    hit, stable = first_hit(ev.points, threshold), stable_from(ev.points, threshold)
    return RunResult(
        impl=impl, seed=seed, steps=steps, train_seconds=seconds,
        steps_per_second=steps / seconds if seconds > 0 else math.nan, final_mean=final_mean,
        first_steps=hit.steps if hit else None, first_seconds=hit.seconds if hit else None,
        stable_steps=stable.steps if stable else None, stable_seconds=stable.seconds if stable else None,
        curve=[asdict(p) for p in ev.points],
    )


# ---------------------------------------------------------------------------
# The two contenders
# ---------------------------------------------------------------------------


KIT_OVERRIDES: dict = {}  # PPOConfig fields set with --kit-override (the "kit" row only)
FULL_BUDGET = {"target_return": None}  # the "kit" row trains the whole budget, like SB3
KIT_DEVICE = "cpu"  # --device: where the kit's networks and buffers live (SB3 stays on the CPU)


def parse_override(text: str) -> tuple[str, object]:
    """``"name=value"`` -> (name, value); the value is a Python literal (``None``, ``1e-3``, ``(64, 64)``)."""
    import ast

    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    try:
        return name.strip(), ast.literal_eval(value.strip())
    except (ValueError, SyntaxError):
        raise argparse.ArgumentTypeError(f"{text!r}: the value must be a Python literal") from None


def kit_overrides(impl: str) -> dict:
    """PPOConfig fields of a kit row: "kit" trains the whole budget (plus --kit-override); "kit-early" is the
    default PPOConfig untouched, early stop included."""
    return {**FULL_BUDGET, **KIT_OVERRIDES} if impl == "kit" else {}


def run_kit(seed: int, total_steps: int, every: int, episodes: int, threshold: float,
            impl: str = "kit") -> RunResult:
    from solutions.ex4_ppo import train_ppo

    ev = Evaluator(every, episodes)

    def callback(steps: int, policy: nn.Module) -> bool:
        ev.maybe_evaluate(steps, policy)
        return False

    ev.start()
    result = train_ppo(ENV_ID, total_steps=total_steps, seed=seed, device=KIT_DEVICE, callback=callback,
                       **kit_overrides(impl))
    steps = int(result.log["steps"][-1])
    final_mean, seconds = ev.final(steps, result.policy)
    return summarize_run(impl, seed, ev, steps, seconds, final_mean, threshold)


def run_kit_early(seed: int, total_steps: int, every: int, episodes: int, threshold: float) -> RunResult:
    return run_kit(seed, total_steps, every, episodes, threshold, impl="kit-early")


class _SB3Logits(nn.Module):
    """An SB3 ``ActorCriticPolicy`` seen as ``obs -> action logits``, for the shared evaluation."""

    def __init__(self, policy):
        super().__init__()
        self.policy = policy

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.policy.get_distribution(obs).distribution.logits


def run_sb3(seed: int, total_steps: int, every: int, episodes: int, threshold: float) -> RunResult:
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env

    def linear(start: float):
        return lambda progress_remaining: progress_remaining * start  # rl-zoo's "lin_<start>"

    ev = Evaluator(every, episodes)

    class EvalCallback(BaseCallback):
        # A rollout starts after the previous update: the policy then has been
        # trained on exactly num_timesteps steps, like the kit's after-update callback.
        def _on_rollout_start(self) -> None:
            ev.maybe_evaluate(self.num_timesteps, _SB3Logits(self.model.policy))

        def _on_step(self) -> bool:
            return True

    z = SB3_ZOO
    ev.start()
    env = make_vec_env(ENV_ID, n_envs=z["n_envs"], seed=seed)
    model = PPO("MlpPolicy", env, n_steps=z["n_steps"], batch_size=z["batch_size"], n_epochs=z["n_epochs"],
                gamma=z["gamma"], gae_lambda=z["gae_lambda"], ent_coef=z["ent_coef"],
                learning_rate=linear(z["learning_rate"]), clip_range=linear(z["clip_range"]),
                seed=seed, device="cpu", verbose=0)
    model.learn(total_timesteps=total_steps, callback=EvalCallback())
    steps = int(model.num_timesteps)
    final_mean, seconds = ev.final(steps, _SB3Logits(model.policy))
    env.close()
    return summarize_run("sb3", seed, ev, steps, seconds, final_mean, threshold)


RUNNERS = {"sb3": run_sb3, "kit": run_kit, "kit-early": run_kit_early}
IMPLS = ("sb3", "kit", "kit-early")
LABELS = {
    "sb3": "sb3: rl-zoo hyperparameters, whole budget",
    "kit": "kit: whole budget (target_return=None), like SB3",
    "kit-early": "kit-early: default PPOConfig, stops at its own solved check (not compared in the targets)",
}


# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------


def _f(x, spec: str = ".1f", none: str = "never") -> str:
    if x is None:
        return none
    if isinstance(x, float) and math.isinf(x):
        return none
    if isinstance(x, float) and math.isnan(x):
        return "-"
    return format(x, spec)


def summarize(runs: list[RunResult], impl: str, threshold: float) -> dict:
    rs = [r for r in runs if r.impl == impl]
    return {
        "impl": impl,
        "runs": len(rs),
        "reached": sum(r.first_steps is not None for r in rs),
        "stable": sum(r.stable_steps is not None for r in rs),
        "final_ok": sum(r.final_mean >= threshold for r in rs),
        "median_first_steps": median_or_inf([r.first_steps for r in rs]),
        "median_first_seconds": median_or_inf([r.first_seconds for r in rs]),
        "median_stable_steps": median_or_inf([r.stable_steps for r in rs]),
        "median_stable_seconds": median_or_inf([r.stable_seconds for r in rs]),
        "median_steps_per_second": float(np.median([r.steps_per_second for r in rs])) if rs else math.nan,
    }


def ratio(a: float, b: float) -> float:
    if any(math.isnan(x) or math.isinf(x) for x in (a, b)) or b == 0:
        return math.nan
    return a / b


def report(runs: list[RunResult], meta: dict, threshold: float) -> tuple[str, dict]:
    lines = [f"## PPO on {ENV_ID}: kit vs Stable-Baselines3", ""]
    lines.append(f"{meta['date']} on {meta['machine']}; torch {meta['torch']} with "
                 f"**{meta['threads']} thread(s)**, kit on {meta.get('kit_device', 'cpu')}, SB3 {meta['sb3']}, "
                 f"gymnasium {meta['gymnasium']}; "
                 f"load average before {meta['load_before']}, after {meta.get('load_after', '?')}.")
    lines.append(f"Protocol: greedy evaluation on {meta['eval_episodes']} episodes every {meta['eval_every']} steps "
                 f"and at the end; budget {meta['steps']} steps for every row; threshold {threshold:g}.")
    kc = meta.get("kit_config") or {}
    if kc:
        extra = f", plus {kc['overrides']}" if kc.get("overrides") else ""
        lines.append(f"kit: PPOConfig ({kc.get('num_envs')} envs x {kc.get('num_steps')} steps, "
                     f"{kc.get('update_epochs')} epochs x {kc.get('num_minibatches')} minibatches, lr {kc.get('lr')}) "
                     f"with target_return=None{extra}; kit-early: the same default PPOConfig with its early stop "
                     f"(target_return={kc.get('default_target_return')}); ex4_ppo.py sha256 "
                     f"{kc.get('source_sha256')}; SB3: rl-zoo CartPole-v1 hyperparameters.")
    present = [impl for impl in IMPLS if any(r.impl == impl for r in runs)]
    lines += ["", "Rows: " + "; ".join(LABELS[impl] for impl in present) + "."]
    lines += ["", "| impl | seed | first >= 475: steps | first: s | stable from: steps | stable: s | final eval | "
                  "final >= 475 | train s | steps/s |",
              "|---|---:|---:|---:|---:|---:|---:|:---:|---:|---:|"]
    for r in runs:
        lines.append(f"| {r.impl} | {r.seed} | {_f(r.first_steps, 'd')} | {_f(r.first_seconds, '.2f')} | "
                     f"{_f(r.stable_steps, 'd')} | {_f(r.stable_seconds, '.2f')} | {r.final_mean:.1f} | "
                     f"{'yes' if r.final_mean >= threshold else 'no'} | {r.train_seconds:.1f} | "
                     f"{r.steps_per_second:.0f} |")
    summaries = {impl: summarize(runs, impl, threshold) for impl in present}
    lines += ["", "| impl | runs | reached 475 | stable at the end | final >= 475 | median steps to 475 | "
                  "median s to 475 | median stable from (steps) | median stable from (s) | median steps/s |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for s in summaries.values():
        lines.append(f"| {s['impl']} | {s['runs']} | {s['reached']}/{s['runs']} | {s['stable']}/{s['runs']} | "
                     f"{s['final_ok']}/{s['runs']} | {_f(s['median_first_steps'], '.0f')} | "
                     f"{_f(s['median_first_seconds'], '.2f')} | {_f(s['median_stable_steps'], '.0f')} | "
                     f"{_f(s['median_stable_seconds'], '.2f')} | {_f(s['median_steps_per_second'], '.0f')} |")
    by_row: dict = {}  # row -> its ratios to SB3
    keys = ("median_first_steps", "median_first_seconds", "median_stable_steps", "median_stable_seconds",
            "median_steps_per_second")
    if "sb3" in summaries and len(summaries) > 1:
        b = summaries["sb3"]
        lines += ["", "| ratio of the medians, / SB3 | steps to 475 | s to 475 | stable from (steps) | "
                      "stable from (s) | steps/s |",
                  "|---|---:|---:|---:|---:|---:|"]
        for impl in present[1:]:
            by_row[impl] = {key: ratio(summaries[impl][key], b[key]) for key in keys}
            lines.append(f"| {impl} / sb3 | " + " | ".join(_f(by_row[impl][key], ".2f", "-") for key in keys) + " |")
    if "kit" in by_row:
        k, kr = summaries["kit"], by_row["kit"]
        kit_n = k["runs"]
        checks = [
            ("kit median 'stable from' env steps <= 0.5x SB3's", kr["median_stable_steps"] <= 0.5,
             f"ratio {_f(kr['median_stable_steps'], '.2f', '-')}"),
            ("kit median 'stable from' seconds <= 0.2x SB3's", kr["median_stable_seconds"] <= 0.2,
             f"ratio {_f(kr['median_stable_seconds'], '.2f', '-')}"),
            ("kit: every seed stable to the end of the budget", k["stable"] == kit_n, f"{k['stable']}/{kit_n}"),
        ]
        lines += ["", "| target (kit row, whole budget) | met | measured |", "|---|:---:|---:|"]
        lines += [f"| {name} | {'yes' if ok else 'no'} | {value} |" for name, ok, value in checks]
    # "ratios": the kit row (whole budget) / SB3, the compared one; "ratios_early": the kit-early row / SB3
    return "\n".join(lines), {"summaries": summaries, "ratios": by_row.get("kit", {}),
                              "ratios_early": by_row.get("kit-early", {})}


def finite_or_none(x):
    """JSON has no inf/nan: map them to null (recursively)."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: finite_or_none(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [finite_or_none(v) for v in x]
    return x


def kit_config() -> dict:
    """The PPOConfig the kit runs with, and a fingerprint of the source (the reference is still being tuned)."""
    import hashlib
    from dataclasses import asdict as _asdict

    from solutions import ex4_ppo

    source = Path(ex4_ppo.__file__).read_bytes()
    default = _asdict(ex4_ppo.PPOConfig())
    return {**default, **FULL_BUDGET, **KIT_OVERRIDES, "overrides": dict(KIT_OVERRIDES),
            "default_target_return": default["target_return"],
            "source_sha256": hashlib.sha256(source).hexdigest()[:16]}


# ---------------------------------------------------------------------------


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Benchmark the kit's train_ppo against SB3 PPO (rl-zoo) on CartPole-v1.")
    p.add_argument("--kit-seeds", type=int, default=20, help="number of kit seeds (default 20)")
    p.add_argument("--sb3-seeds", type=int, default=5, help="number of SB3 seeds (default 5)")
    p.add_argument("--first-seed", type=int, default=0, help="seeds are first-seed, first-seed + 1, ... (default 0)")
    p.add_argument("--steps", type=int, default=100_000, help="training budget in env steps (default 100000)")
    p.add_argument("--eval-every", type=int, default=2048, help="env steps between evaluations (default 2048)")
    p.add_argument("--eval-episodes", type=int, default=20, help="episodes per evaluation (default 20)")
    p.add_argument("--threshold", type=float, default=475.0, help="solved threshold (default 475)")
    p.add_argument("--threads", type=int, default=1, help="torch threads for both (default 1)")
    p.add_argument("--early-seeds", type=int, default=None,
                   help="number of seeds of the kit-early row (default PPOConfig with its early stop; "
                        "default: as many as --kit-seeds; 0 skips the row)")
    p.add_argument("--kit-override", type=parse_override, action="append", default=[], metavar="FIELD=VALUE",
                   help="set a PPOConfig field for the kit row (which trains the whole budget: target_return=None "
                        "unless overridden), e.g. lr=3e-3; repeatable")
    p.add_argument("--no-warmup", action="store_true", help="skip the untimed warm-up run of each implementation")
    p.add_argument("--device", default="cpu",
                   help="device of the kit's runs: cpu, cuda or auto (SB3 always runs on the CPU; default cpu)")
    p.add_argument("--out", default="plots/bench.json", help="JSON output (default plots/bench.json)")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    KIT_OVERRIDES.clear()
    KIT_OVERRIDES.update(dict(args.kit_override))
    global KIT_DEVICE
    try:
        KIT_DEVICE = str(get_device(args.device))
    except RuntimeError as exc:
        print(f"--device {args.device}: {exc}", file=sys.stderr)
        return 2
    early_seeds = args.kit_seeds if args.early_seeds is None else args.early_seeds
    counts = {"sb3": args.sb3_seeds, "kit": args.kit_seeds, "kit-early": early_seeds}
    impls = [name for name in IMPLS if counts[name] > 0]
    sb3_version = "-"
    if "sb3" in impls:
        try:
            import stable_baselines3
        except ImportError:
            print("stable-baselines3 is not installed: run `make bench` (installs the pinned bench extra) "
                  "or pass --sb3-seeds 0", file=sys.stderr)
            return 2
        sb3_version = stable_baselines3.__version__
    import gymnasium

    meta = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "machine": machine(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "sb3": sb3_version,
        "gymnasium": gymnasium.__version__,
        "threads": torch.get_num_threads(),
        "kit_device": KIT_DEVICE,
        "load_before": load_average(),
        "steps": args.steps,
        "eval_every": args.eval_every,
        "eval_episodes": args.eval_episodes,
        "threshold": args.threshold,
        "sb3_hyperparameters": SB3_ZOO,
        "kit_config": kit_config(),
    }
    print(f"torch threads: {torch.get_num_threads()}; load average: {meta['load_before']}; {meta['machine']}",
          flush=True)
    if not args.no_warmup:  # pay the lazy imports and first-call costs outside the timed runs
        for impl in impls:
            RUNNERS[impl](seed=12345, total_steps=2048, every=args.eval_every, episodes=2, threshold=args.threshold)

    runs: list[RunResult] = []
    for i in range(max(counts.values())):
        for impl in impls:
            if i >= counts[impl]:
                continue
            seed = args.first_seed + i
            r = RUNNERS[impl](seed, args.steps, args.eval_every, args.eval_episodes, args.threshold)
            runs.append(r)
            print(f"{impl:>9} seed {seed:>3}: first >= {args.threshold:g} at {_f(r.first_steps, 'd')} steps "
                  f"({_f(r.first_seconds, '.2f')} s), stable from {_f(r.stable_steps, 'd')} "
                  f"({_f(r.stable_seconds, '.2f')} s), final {r.final_mean:.1f}, {r.train_seconds:.1f} s, "
                  f"{r.steps_per_second:.0f} steps/s  [load {load_average()}]", flush=True)
    meta["load_after"] = load_average()
    text, summary = report(runs, meta, args.threshold)
    print()
    print(text)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    payload = finite_or_none({"meta": meta, **summary, "runs": [asdict(r) for r in runs]})
    out.write_text(json.dumps(payload, indent=1, allow_nan=False))
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
