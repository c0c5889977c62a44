"""Margin check of the hidden suites' learning tests: does the reference pass on other seeds?

Run it with ``make seeds`` (not part of CI: a few minutes) or
``python -m scripts.seeds --help``.

Each training function has one learning test in its hidden suite: train with
the suite's budget on the suite's fixed seed, rebuild the returned policy,
and let the grader's own greedy evaluation (``evaluate_policy`` on the
suite's evaluation seed and episode count) decide against the suite's
threshold. A threshold with no margin would fail an honest student whose
code consumes randomness in a different order. So this script runs the very
same check for the reference solution on ``--seeds`` (20) *other* training
seeds, in parallel over the CPU cores (one torch thread per process, as in
the grader's sandbox), and requires at least 19 passes per function.

Budgets, thresholds, evaluation seeds and the evaluation function are read
from the suite modules themselves (``autograder/suites/test_ex*.py``), so
this check follows the suites when they change. The keyword arguments of
each training call mirror the suite's call (see ``CHECKS``).

Prints a table and writes it, with the date and the machine, to
``docs/SEEDS.md`` (``--doc``; ``--no-doc`` to skip).
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import os
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Check:
    """One learning test: the training function, its suite module, and how the suite calls it."""

    function: str  # "module.function" in solutions/
    suite: str  # the suite module holding LEARN_* constants
    budget_name: str  # the suite constant holding the budget
    budget_kwarg: str  # the keyword the budget is passed as
    extra: tuple = ()  # further keyword arguments of the suite's call, as (name, value) pairs

    def suite_module(self):
        return importlib.import_module(self.suite)

    def budget(self) -> int:
        return int(getattr(self.suite_module(), self.budget_name))

    def budget_text(self) -> str:
        unit = "episodes" if self.budget_kwarg == "episodes" else "env steps"
        return f"{self.budget():,} {unit}"


# The keyword arguments mirror the Call(...) of each suite's learning test.
CHECKS = {
    "train_reinforce": Check("solutions.ex2_reinforce.train_reinforce", "autograder.suites.test_ex2_reinforce",
                             "LEARN_EPISODES", "episodes",
                             (("lr", 1e-2), ("gamma", 0.99), ("normalize_returns", True))),
    "train_actor_critic": Check("solutions.ex3_baseline.train_actor_critic", "autograder.suites.test_ex3_baseline",
                                "LEARN_EPISODES", "episodes"),
    "train_ppo": Check("solutions.ex4_ppo.train_ppo", "autograder.suites.test_ex4_ppo",
                       "LEARN_STEPS", "total_steps"),
}


def run_one(name: str, seed: int) -> dict:
    """Train with the suite's budget on ``seed`` and grade like the suite does (in a worker process)."""
    import torch

    from common.networks import rebuild

    torch.set_num_threads(1)  # as in the grader's sandbox
    check = CHECKS[name]
    suite = check.suite_module()
    module, fn_name = check.function.rsplit(".", 1)
    train = getattr(importlib.import_module(module), fn_name)
    kwargs = {"env_id": "CartPole-v1", check.budget_kwarg: check.budget(), "seed": seed, "device": "cpu",
              **dict(check.extra)}
    start = time.perf_counter()
    result = train(**kwargs)
    seconds = time.perf_counter() - start
    # the grader rebuilds the policy from (class name, config, weights) and evaluates it itself
    policy = rebuild(type(result.policy).__name__, result.policy.config, result.policy.state_dict())
    scores = suite.evaluate_policy(policy, "CartPole-v1", episodes=suite.LEARN_EVAL_EPISODES,
                                   seed=suite.LEARN_EVAL_SEED, greedy=True)
    mean = float(np.mean(scores))
    return {"function": name, "seed": seed, "mean": mean, "passed": mean >= suite.LEARN_THRESHOLD,
            "seconds": seconds, "episodes": len(result.episode_returns)}


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}"


def load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Run each hidden suite's learning check on 20 other seeds.")
    p.add_argument("--seeds", type=int, default=20, help="number of seeds per function (default 20)")
    p.add_argument("--first-seed", type=int, default=1000, help="seeds first-seed ... (default 1000)")
    p.add_argument("--functions", nargs="+", choices=sorted(CHECKS), default=list(CHECKS),
                   help="which training functions (default all)")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="parallel processes (default: all cores)")
    p.add_argument("--doc", default=str(ROOT / "docs" / "SEEDS.md"), help="Markdown file to write (default docs/SEEDS.md)")
    p.add_argument("--no-doc", action="store_true", help="print only")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    suite_seeds = {name: int(CHECKS[name].suite_module().LEARN_SEED) for name in args.functions}
    seeds = {}
    for name in args.functions:  # other seeds than the suite's own
        s = [x for x in range(args.first_seed, args.first_seed + args.seeds + 1) if x != suite_seeds[name]]
        seeds[name] = s[: args.seeds]
    required = args.seeds - args.seeds // 20  # 19 of 20
    load_before, started = load_average(), time.perf_counter()
    print(f"{len(args.functions)} functions x {args.seeds} seeds on {args.jobs} processes; {machine()}; "
          f"load average {load_before}", flush=True)

    results: list[dict] = []
    tasks = [(name, s) for name in args.functions for s in seeds[name]]
    tasks.sort(key=lambda t: (t[0] != "train_ppo", t[1]))  # the longest runs first: better packing
    with ProcessPoolExecutor(max_workers=args.jobs, mp_context=get_context("spawn")) as pool:
        futures = {pool.submit(run_one, name, s): (name, s) for name, s in tasks}
        for fut in as_completed(futures):
            r = fut.result()
            results.append(r)
            print(f"  {r['function']:<19} seed {r['seed']:>5}: greedy mean {r['mean']:6.1f}  "
                  f"{'pass' if r['passed'] else 'FAIL'}  ({r['seconds']:.1f} s)", flush=True)
    wall = time.perf_counter() - started

    rows = []
    for name in args.functions:
        check, suite = CHECKS[name], CHECKS[name].suite_module()
        rs = sorted((r for r in results if r["function"] == name), key=lambda r: r["seed"])
        passed = sum(r["passed"] for r in rs)
        rows.append({
            "function": name,
            "threshold": f">= {suite.LEARN_THRESHOLD:g} (greedy mean of {suite.LEARN_EVAL_EPISODES} episodes)",
            "budget": check.budget_text(),
            "passed": f"{passed}/{len(rs)}",
            "ok": passed >= required,
            "median_time": float(np.median([r["seconds"] for r in rs])),
            "worst": min(rs, key=lambda r: r["mean"]),
            "failed": [r for r in rs if not r["passed"]],
            "suite_seed": suite_seeds[name],
            "seeds": f"{rs[0]['seed']}..{rs[-1]['seed']}" if rs else "-",
        })

    header = ("| function | threshold | budget | seeds passed | median time (s) | worst seed (mean) | "
              f"meets >= {required}/{args.seeds} |")
    table = [header, "|---|---|---|---:|---:|---|:---:|"]
    for r in rows:
        table.append(f"| `{r['function']}` | {r['threshold']} | {r['budget']} | {r['passed']} | "
                     f"{r['median_time']:.1f} | {r['worst']['seed']} ({r['worst']['mean']:.1f}) | "
                     f"{'yes' if r['ok'] else 'NO'} |")
    print()
    print("\n".join(table))
    for r in rows:
        if r["failed"]:
            print(f"{r['function']}: failed seeds " + ", ".join(f"{f['seed']} ({f['mean']:.1f})" for f in r["failed"]))

    if not args.no_doc:
        date = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
        lines = [
            "# Learning-test margins: the reference on 20 other seeds",
            "",
            "Generated by `make seeds` (`python -m scripts.seeds`); rerun it after changing a training",
            "function or a suite's learning test. Each hidden suite checks that its training function,",
            "trained on the suite's fixed seed within the suite's budget, yields a greedy policy whose mean",
            "return over the suite's evaluation episodes (evaluated by the grader) reaches the threshold.",
            "This table runs exactly that check for the reference solution on other training seeds; the",
            f"requirement is at least {required} of {args.seeds} per function, so that an honest solution",
            "that consumes randomness differently still passes.",
            "",
            f"Measured {date} on {machine()}, {args.jobs} processes with one torch thread each;",
            f"load average {load_before} at the start, {load_average()} at the end (the machine is",
            f"shared: times vary with other jobs); {wall:.0f} s in all.",
            "",
            *table,
            "",
            "Seeds tried: " + "; ".join(f"`{r['function']}` {r['seeds']} (the suite's own seed "
                                         f"{r['suite_seed']} excluded)" for r in rows) + ".",
            "",
        ]
        for r in rows:
            if r["failed"]:
                lines.append(f"- `{r['function']}` failed on seed(s) "
                             + ", ".join(f"{f['seed']} (mean {f['mean']:.1f})" for f in r["failed"]) + ".")
        per_seed = ["", "Per-seed greedy means:", ""]
        for name in args.functions:
            rs = sorted((r for r in results if r["function"] == name), key=lambda r: r["seed"])
            per_seed.append(f"- `{name}`: " + ", ".join(f"{r['seed']}: {r['mean']:.0f}" for r in rs))
        Path(args.doc).write_text("\n".join(lines + per_seed) + "\n")
        print(f"\nwrote {args.doc}")
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
