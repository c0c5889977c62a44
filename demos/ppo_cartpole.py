"""PPO on CartPole-v1: the chapter's ``ppo_cartpole.py``.

Run it with ``make ppo`` or ``python -m demos.ppo_cartpole --help``.

This script drives ``train_ppo`` from exercise 4 and shows what a PPO run
looks like from the inside. ``--impl`` picks whose ``train_ppo``:
``assignments`` (the default) runs *your* version, built on your
``compute_gae`` and ``ppo_policy_loss``; ``--impl solutions`` runs the
reference (``make ppo IMPL=solutions``). It reads top to bottom:

1. **Train.** ``train_ppo`` alternates a rollout of ``num_envs`` CartPoles for
   ``num_steps`` steps with a few epochs of clipped-objective updates over
   minibatches of that rollout. After every update it calls our callback,
   which times the update and (optionally) plays a few greedy episodes, so
   the curve shows the deterministic policy as well as the noisy training
   returns. When ``PPOConfig.target_return`` is set, ``train_ppo`` stops as
   soon as its own greedy check says CartPole is solved; ``--no-early-stop``
   trains for the whole budget, to see what PPO does after solving.
2. **Report.** One line per update, from the log ``train_ppo`` returns:

   =========  ===============================================================
   steps      environment steps so far (all sub-environments together)
   return     mean return of the training episodes that ended in this rollout
              (the stochastic policy; ``-`` when no episode ended)
   greedy     mean return of the greedy (argmax) policy on a few fresh episodes
   v_loss     the critic's regression loss; it rises while returns grow (the
              targets move) and falls once the task is solved
   approx_kl  estimate of KL(pi_old || pi_theta), averaged over the update's
              minibatch steps: how far the update moved the policy; clipping
              keeps it small (around 0.01 or below)
   clip       fraction of samples whose ratio left [1 - eps, 1 + eps] in the
              direction the advantage favours (they no longer pull), averaged
              the same way
   expl_var   explained variance of the critic, 1 - Var(G - V) / Var(G): 1 is
              a perfect critic, 0 is no better than a constant, < 0 is worse.
              Once every episode runs to the 500-step limit the targets G
              hardly vary, Var(G) is tiny and the ratio turns noisy (often
              negative) although the critic's loss keeps falling
   sps        training steps per second (the greedy evaluations excluded)
   =========  ===============================================================

3. **Plot and save.** ``plots/ppo_cartpole.png`` (returns against steps, and
   the diagnostics above) and ``plots/ppo_cartpole.json`` (everything logged).
4. **Evaluate.** The final greedy policy plays ``--final-episodes`` episodes
   it has never seen; CartPole-v1 counts as solved at an average of 475.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

from common.plotting import plt, save_figure
from common.rollout import evaluate_policy

from demos import add_impl_argument, exercise, impl_from_argv

ENV_ID = "CartPole-v1"
SOLVED = 475.0  # CartPole-v1's reward threshold


def parse_args(argv=None) -> argparse.Namespace:
    # --impl first: the default of --total-steps is that implementation's PPOConfig.total_steps
    total_steps = exercise(impl_from_argv(argv), "ex4_ppo").PPOConfig.total_steps
    p = argparse.ArgumentParser(description="Train PPO on CartPole-v1 and plot the run.")
    add_impl_argument(p)
    p.add_argument("--seed", type=int, default=0, help="training seed (default 0)")
    p.add_argument("--total-steps", type=int, default=total_steps,
                   help=f"environment steps (default {total_steps})")
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto (default cpu)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads (default 1: these networks are too small to gain from more)")
    p.add_argument("--no-early-stop", action="store_true",
                   help="train for all --total-steps even once solved (PPOConfig.target_return = None)")
    p.add_argument("--eval-episodes", type=int, default=10,
                   help="greedy episodes after every update for the curve (0: skip; default 10)")
    p.add_argument("--final-episodes", type=int, default=100,
                   help="greedy episodes of the final evaluation (default 100)")
    p.add_argument("--out", default="plots/ppo_cartpole",
                   help="output path without suffix: writes OUT.png and OUT.json (default plots/ppo_cartpole)")
    return p.parse_args(argv)


# ---------------------------------------------------------------------------
# 1. Train
# ---------------------------------------------------------------------------


class Monitor:
    """The ``callback(steps, policy)`` for ``train_ppo``.

    ``train_ppo`` calls it after each update. It keeps the training wall time
    (time spent in this callback is excluded) and, every update, the mean
    return of ``eval_episodes`` greedy episodes on environment seeds that
    training never uses.
    """

    def __init__(self, eval_episodes: int, seed: int):
        self.eval_episodes = eval_episodes
        self.seed = seed
        self.train_time: list[float] = []  # cumulative training seconds after each update
        self.greedy: list[float] = []  # greedy mean return after each update (nan if skipped)
        self._elapsed = 0.0
        self._resumed = time.perf_counter()

    def start(self) -> None:
        self._resumed = time.perf_counter()

    def __call__(self, steps: int, policy: torch.nn.Module) -> bool:
        self._elapsed += time.perf_counter() - self._resumed
        self.train_time.append(self._elapsed)
        if self.eval_episodes > 0:
            eval_seed = 10_000_000 + 1_000 * self.seed + len(self.greedy)
            scores = evaluate_policy(policy, ENV_ID, self.eval_episodes, seed=eval_seed, greedy=True)
            self.greedy.append(float(np.mean(scores)))
        else:
            self.greedy.append(float("nan"))
        self._resumed = time.perf_counter()
        return False  # never stop early: show the whole run


# ---------------------------------------------------------------------------
# 2. Report
# ---------------------------------------------------------------------------

COLUMNS = ("update", "steps", "return", "greedy", "v_loss", "approx_kl", "clip", "expl_var", "sps")


def _fmt(x: float, spec: str) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, spec)


def update_rows(log: dict, monitor: Monitor) -> list[dict]:
    """One dict per update: the columns of the table, also saved in the JSON."""
    rows = []
    for i, steps in enumerate(log["steps"]):
        rows.append({
            "update": i + 1,
            "steps": int(steps),
            "return": log["mean_return"][i],
            "greedy": monitor.greedy[i],
            "v_loss": log["value_loss"][i],
            "approx_kl": log["approx_kl"][i],
            "clip": log["clip_frac"][i],
            "expl_var": log["explained_variance"][i],
            "sps": steps / monitor.train_time[i] if monitor.train_time[i] > 0 else float("nan"),
            "train_time": monitor.train_time[i],
        })
    return rows


def print_rows(rows: list[dict]) -> None:
    widths = (6, 8, 7, 7, 8, 9, 6, 8, 7)
    print("  ".join(f"{c:>{w}}" for c, w in zip(COLUMNS, widths)))
    specs = ("d", "d", ".1f", ".1f", ".4f", ".4f", ".3f", ".3f", ".0f")
    for r in rows:
        print("  ".join(f"{_fmt(r[c], s):>{w}}" for c, s, w in zip(COLUMNS, specs, widths)))


# ---------------------------------------------------------------------------
# 3. Plot and save
# ---------------------------------------------------------------------------


def plot_run(rows: list[dict], title: str, path: Path, reward_scale: float = 1.0) -> Path:
    steps = np.array([r["steps"] for r in rows])
    col = {c: np.array([np.nan if r[c] is None else r[c] for r in rows], dtype=float) for c in COLUMNS[2:]}
    fig, axes = plt.subplots(2, 2, figsize=(11, 7), sharex=True)

    ax = axes[0, 0]
    for name, label in (("return", "training episodes (sampled actions)"), ("greedy", "greedy policy, fresh episodes")):
        ok = ~np.isnan(col[name])  # no episode ended in that rollout / evaluation skipped
        if ok.any():
            ax.plot(steps[ok], col[name][ok], ".-", label=label)
    ax.axhline(SOLVED, color="gray", ls="--", lw=1, label=f"solved ({SOLVED:.0f})")
    ax.set(title="Return", ylabel="episode return", ylim=(0, 520))
    ax.legend(loc="lower right", fontsize=8)

    ax = axes[0, 1]
    ax.plot(steps, col["v_loss"], ".-", color="C2")
    ax.set(title=f"Critic loss (rewards x {reward_scale:g})", ylabel="value loss", yscale="log")

    ax = axes[1, 0]
    ax.plot(steps, col["approx_kl"], ".-", color="C3", label="approx. KL(old || new)")
    ax.set(title="How far each update moves the policy", ylabel="approx. KL", xlabel="environment steps")
    twin = ax.twinx()
    twin.plot(steps, col["clip"], ".-", color="C4", label="clip fraction")
    twin.set_ylabel("clip fraction")
    lines = ax.get_lines() + twin.get_lines()
    ax.legend(lines, [line.get_label() for line in lines], loc="upper right", fontsize=8)

    ax = axes[1, 1]
    ax.plot(steps, np.clip(col["expl_var"], -1.0, None), ".-", color="C5")
    ax.axhline(1.0, color="gray", ls="--", lw=1)
    ax.axhline(0.0, color="gray", lw=1)
    ax.set(title="Explained variance of the critic (clipped at -1)", xlabel="environment steps", ylim=(-1.05, 1.05))
    ax.text(0.98, 0.04, "once every episode lasts 500 steps the targets barely vary,\n"
            "so Var(G) is tiny and this ratio turns noisy", transform=ax.transAxes,
            ha="right", va="bottom", fontsize=7, color="gray")

    for ax in axes.flat:
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, path)


# ---------------------------------------------------------------------------
# 4. The whole run
# ---------------------------------------------------------------------------


def main(argv=None) -> int:
    args = parse_args(argv)
    ex4 = exercise(args.impl, "ex4_ppo")  # train_ppo and PPOConfig: yours or the reference
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    png, js = out.with_suffix(".png"), out.with_suffix(".json")

    config = ex4.PPOConfig(total_steps=args.total_steps)
    if args.no_early_stop:
        config.target_return = None
    print(f"PPO on {ENV_ID}: {args.total_steps} steps, seed {args.seed}, device {args.device}, "
          f"{torch.get_num_threads()} thread(s)")
    print(f"  {config.num_envs} envs x {config.num_steps} steps per rollout, {config.update_epochs} epochs x "
          f"{config.num_minibatches} minibatches, lr {config.lr:g}, clip {config.clip_eps}, "
          f"gamma {config.gamma}, lambda {config.gae_lambda}, early stop at {config.target_return}")

    monitor = Monitor(args.eval_episodes, args.seed)
    monitor.start()
    result = ex4.train_ppo(ENV_ID, seed=args.seed, device=args.device, progress=sys.stdout.isatty(),
                       config=config, callback=monitor)
    # train_ppo's callback only receives (steps, policy), so the statistics of
    # each update are read from the returned log and printed afterwards.
    rows = update_rows(result.log, monitor)
    print()
    print_rows(rows)

    final_seed = 20_000_000 + args.seed
    final = evaluate_policy(result.policy, ENV_ID, args.final_episodes, seed=final_seed, greedy=True)
    mean = float(np.mean(final))
    solved = mean >= SOLVED
    train_time = monitor.train_time[-1] if monitor.train_time else float("nan")
    total_steps = rows[-1]["steps"] if rows else 0

    title = (f"PPO on {ENV_ID}, seed {args.seed}: final greedy return {mean:.1f} "
             f"over {args.final_episodes} episodes")
    plot_path = plot_run(rows, title, png, reward_scale=(result.log.get("config") or {}).get("reward_scale", 1.0))
    js.parent.mkdir(parents=True, exist_ok=True)
    js.write_text(json.dumps({
        "env_id": ENV_ID,
        "seed": args.seed,
        "device": args.device,
        "threads": torch.get_num_threads(),
        "config": result.log.get("config"),
        "updates": rows,
        "episode_returns": result.episode_returns,
        "final_eval": {"episodes": args.final_episodes, "seed": final_seed, "returns": final,
                       "mean": mean, "min": float(np.min(final)), "solved": solved},
        "train_time_s": train_time,
        "train_steps_per_s": total_steps / train_time if train_time > 0 else None,
    }, indent=1, default=float))

    print()
    print(f"trained {total_steps} steps in {train_time:.1f} s ({total_steps / max(train_time, 1e-9):.0f} steps/s), "
          f"{len(result.episode_returns)} training episodes")
    print(f"final greedy evaluation: mean {mean:.1f}, min {min(final):.0f}, max {max(final):.0f} over "
          f"{args.final_episodes} episodes -> {'solved' if solved else 'not solved'} (threshold {SOLVED:.0f})")
    print(f"wrote {plot_path} and {js}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
