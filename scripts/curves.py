"""REINFORCE with and without a baseline: learning curves over seeds and the gradient variance.

Run it with ``make curves`` or ``python -m scripts.curves --help``.

This is the comparison of the chapter's Exercise 2 ("add a baseline, compare
the variance"), done with the kit's training functions:

- **REINFORCE** (``train_reinforce`` of ex2) weights log pi(a_t|s_t) by the
  return G_t. Run as ``--plain`` (raw returns, no baseline at all) and, by
  default also, with each episode's returns standardised (ex2's default:
  subtracting the episode's mean return is a crude, constant baseline).
- **REINFORCE with a learned baseline** (``train_actor_critic`` of ex3 with
  lambda = 1) weights it by G_t - V(s_t), where the critic V is trained
  alongside the policy.

Each variant trains on ``--seeds`` seeds for ``--episodes`` episodes
(without early stopping, so every curve has the same length), in parallel
over the CPU cores. The left panel of ``plots/curves.png`` shows the mean
learning curve and the spread across seeds (mean +- one standard deviation
of the smoothed curves); the legend and the printed table give each
variant's final level (mean return of the last 50 episodes) and its spread
across seeds. While the curves rise the bands are wide for every variant
(seeds take off at different episodes); the baseline shows at the end,
where its seeds agree much more closely.

The right panel measures what the baseline is for. For each seed, the
actor-critic's policy and critic are taken at two points of training (after
``--early`` episodes and at the end); the policy plays a batch of
``--batch`` episodes; ``gradient_variance`` (ex3) computes the variance
across episodes of the single-episode policy gradient on that *same* batch,
once with raw returns G_t and once with G_t - V(s_t). The table printed at
the end gives both numbers and their ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np

VARIANTS = {
    "plain": ("REINFORCE, raw returns", "train_reinforce", {"normalize_returns": False}),
    "standardized": ("REINFORCE, standardised returns", "train_reinforce", {"normalize_returns": True}),
    "baseline": ("REINFORCE + learned baseline V(s)", "train_actor_critic", {"lam": 1.0}),
}


def train_curve(variant: str, episodes: int, seed: int) -> dict:
    """One training run without early stopping (in a worker process): its per-episode returns."""
    import torch

    from solutions.ex2_reinforce import train_reinforce
    from solutions.ex3_baseline import train_actor_critic

    torch.set_num_threads(1)
    _, fn, kwargs = VARIANTS[variant]
    train = {"train_reinforce": train_reinforce, "train_actor_critic": train_actor_critic}[fn]
    start = time.perf_counter()
    result = train("CartPole-v1", episodes=episodes, seed=seed, target_return=None, **kwargs)
    return {"variant": variant, "seed": seed, "returns": result.episode_returns, "seconds": time.perf_counter() - start}


def measure_variance(seed: int, episodes: int, batch: int, gamma: float) -> dict:
    """Gradient variance without and with the learned baseline, on one batch of episodes (in a worker)."""
    import torch

    from common.envs import make_env
    from solutions.ex1_values import discounted_returns
    from solutions.ex2_reinforce import collect_episode
    from solutions.ex3_baseline import gradient_variance, train_actor_critic

    torch.set_num_threads(1)
    # Training is reproducible from its seed, so this run *is* the first `episodes` episodes of the full one.
    result = train_actor_critic("CartPole-v1", episodes=episodes, seed=seed, gamma=gamma, target_return=None, lam=1.0)
    policy, critic = result.policy, result.value
    env = make_env("CartPole-v1", seed=10_000 + seed)
    gen = torch.Generator().manual_seed(10_000 + seed)
    obs, acts, rets, bls, lengths = [], [], [], [], []
    with torch.no_grad():
        for _ in range(batch):
            ep = collect_episode(env, policy, "cpu", gen)
            dones = torch.zeros_like(ep.rewards)
            dones[-1] = 1.0
            obs.append(ep.observations)
            acts.append(ep.actions)
            rets.append(discounted_returns(ep.rewards, dones, gamma))
            bls.append(critic(ep.observations))
            lengths.append(len(ep.rewards))
    env.close()
    without = float(gradient_variance(policy, obs, acts, rets, None))
    with_b = float(gradient_variance(policy, obs, acts, rets, bls))
    return {"seed": seed, "episodes": episodes, "without": without, "with": with_b,
            "mean_length": float(np.mean(lengths))}


def final_stats(runs: list[list[float]], last: int = 50) -> tuple[float, float]:
    """Mean over seeds and standard deviation across seeds of each run's mean return over its last episodes."""
    finals = [float(np.mean(r[-last:])) for r in runs]
    return float(np.mean(finals)), float(np.std(finals))


def plot(curves: dict, variances: list[dict], args, path: Path) -> Path:
    from common.plotting import curve_band, plt, save_figure

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 4.8), gridspec_kw={"width_ratios": [1.6, 1]})
    for variant, runs in curves.items():
        x, mean, low, high = curve_band(runs, args.window, "std")
        m, sd = final_stats(runs)
        (line,) = ax1.plot(x, mean, label=f"{VARIANTS[variant][0]}: last 50 episodes {m:.0f} +- {sd:.0f} across seeds")
        ax1.fill_between(x, low, high, color=line.get_color(), alpha=0.2)
    ax1.axhline(475, color="gray", ls="--", lw=1)
    ax1.set(xlabel="episode", ylabel=f"episode return (moving average of {args.window})", ylim=(0, 640),
            title=f"CartPole-v1: mean and spread (+-1 std) over {args.seeds} seeds")
    ax1.grid(alpha=0.3)
    ax1.legend(fontsize=8, loc="upper left")

    stages = sorted({v["episodes"] for v in variances})
    width = 0.38
    for k, stage in enumerate(stages):
        vs = [v for v in variances if v["episodes"] == stage]
        for j, (key, label, color) in enumerate((("without", "G_t (no baseline)", "C0"),
                                                 ("with", "G_t - V(s_t) (learned baseline)", "C2"))):
            vals = np.array([v[key] for v in vs])
            xpos = k + (j - 0.5) * width
            ax2.bar(xpos, np.exp(np.mean(np.log(vals))), width, color=color, alpha=0.6,
                    label=label if k == 0 else None)
            ax2.plot(np.full(len(vals), xpos), vals, "k.", ms=4)
        ratio = np.exp(np.mean(np.log([v["without"] / v["with"] for v in vs])))
        note = f"{ratio:.1f}x lower" if ratio >= 1 else f"{1 / ratio:.1f}x higher"
        ax2.text(k, max(v["without"] for v in vs) * 1.5, note, ha="center", fontsize=8)
    ax2.set_yscale("log")
    ax2.set_xticks(range(len(stages)), [f"after {s} episodes" for s in stages])
    ax2.set(ylabel="variance of the per-episode gradient",
            title=f"Gradient variance on the same {args.batch} episodes\n"
                  "(bars: geometric mean over seeds, dots: seeds)")
    ax2.grid(alpha=0.3, axis="y", which="both")
    ax2.legend(fontsize=8, loc="upper left")
    ymin, ymax = ax2.get_ylim()
    ax2.set_ylim(ymin, ymax * 4)
    fig.tight_layout()
    return save_figure(fig, path)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="REINFORCE with and without a baseline over seeds, plus gradient variance.")
    p.add_argument("--seeds", type=int, default=5, help="seeds per variant (default 5)")
    p.add_argument("--episodes", type=int, default=200, help="training episodes per run (default 200)")
    p.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS),
                   help="which variants to train (default all three)")
    p.add_argument("--early", type=int, default=30, help="early measuring point of the gradient variance (default 30)")
    p.add_argument("--batch", type=int, default=20, help="episodes per gradient-variance batch (default 20)")
    p.add_argument("--window", type=int, default=20, help="moving-average window of the curves (default 20)")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="parallel processes (default: all cores)")
    p.add_argument("--from-json", metavar="PATH", help="redraw the plot from a previous run's JSON (no training)")
    p.add_argument("--out", default="plots/curves.png", help="PNG path (default plots/curves.png; JSON beside it)")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    start = time.perf_counter()
    if args.from_json:  # redraw a previous run without training again
        saved = json.loads(Path(args.from_json).read_text())
        runs, variances, seeds = saved["runs"], saved["gradient_variance"], saved["seeds"]
        args.episodes, args.seeds = saved["episodes"], len(seeds)
        args.batch = saved.get("batch", args.batch)
        args.variants = [v for v in VARIANTS if any(r["variant"] == v for r in runs)]
    else:
        seeds = list(range(args.seeds))
        stages = sorted({min(args.early, args.episodes), args.episodes})
        with ProcessPoolExecutor(max_workers=args.jobs, mp_context=get_context("spawn")) as pool:
            run_jobs = [pool.submit(train_curve, v, args.episodes, s) for v in args.variants for s in seeds]
            var_jobs = [pool.submit(measure_variance, s, e, args.batch, 0.99) for e in stages for s in seeds]
            runs = [f.result() for f in run_jobs]
            variances = [f.result() for f in var_jobs]

    curves = {v: [r["returns"] for r in runs if r["variant"] == v] for v in args.variants}
    print(f"learning curves: {args.seeds} seeds x {args.episodes} episodes (no early stopping); "
          f"mean return of each run's last 50 episodes:")
    print(f"{'variant':<36} {'mean over seeds':>16} {'std across seeds':>17}  per seed")
    for v, rs in curves.items():
        m, sd = final_stats(rs)
        per_seed = " ".join(f"{np.mean(r[-50:]):.0f}" for r in rs)
        print(f"{VARIANTS[v][0]:<36} {m:>16.1f} {sd:>17.1f}  {per_seed}")

    print(f"\ngradient variance on the same batch of {args.batch} episodes (actor-critic's policy and critic):")
    print(f"{'episodes trained':>16} {'seed':>5} {'mean length':>12} {'without baseline':>17} {'with V(s)':>12} "
          f"{'ratio':>7}")
    for v in sorted(variances, key=lambda v: (v["episodes"], v["seed"])):
        print(f"{v['episodes']:>16} {v['seed']:>5} {v['mean_length']:>12.1f} {v['without']:>17.4g} "
              f"{v['with']:>12.4g} {v['without'] / v['with']:>6.1f}x")

    path = plot(curves, variances, args, Path(args.out))
    js = Path(args.out).with_suffix(".json")
    if not args.from_json:
        js.write_text(json.dumps({"episodes": args.episodes, "seeds": seeds, "batch": args.batch, "runs": runs,
                                  "gradient_variance": variances}, indent=1))
    print(f"\nwrote {path}" + ("" if args.from_json else f" and {js}") + f" in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
