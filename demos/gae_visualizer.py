"""GAE on CartPole, made visible: the chapter's ``gae_visualizer.py``.

Run it with ``make gae`` or ``python -m demos.gae_visualizer --help``
(about ten seconds on one CPU core).

Generalized Advantage Estimation mixes the one-step TD errors of a critic,

    delta_t = r_t + gamma * V(s_{t+1}) - V(s_t),
    A_t     = sum_k (gamma * lambda)^k * delta_{t+k},

and lambda decides how far the sum looks ahead. With lambda = 0 the advantage
is the single TD error: it trusts the critic completely, so a wrong critic
makes it *biased*, but it depends on one random transition only, so it
barely *varies*. With lambda = 1 the critic's guesses cancel out of the sum
and A_t = G_t - V(s_t), the Monte Carlo return minus a baseline: unbiased,
but carrying the randomness of every later step. This script shows both
effects with the functions of exercises 1 and 3 (``discounted_returns``,
``value_loss``, ``td_errors``, ``compute_gae``). ``--impl`` picks whose:
``assignments`` (the default) runs yours, ``--impl solutions`` the reference
(``make gae IMPL=solutions``); they reach the code below as ``ops``.

The steps:

1. **A policy.** A fixed, deliberately shaky controller: it pushes the cart
   towards the side the pole leans to, but only with probability
   sigmoid(3 * (theta + 0.5 * theta_dot)), so episodes end after anywhere from
   a few dozen to a few hundred steps. (Any policy would do: GAE estimates the
   advantages of *whatever* policy collected the data.)
2. **Recorded episodes and a critic.** Record episodes with it, compute their
   discounted returns, and fit a ``ValueNet`` to them by regression: an
   honest critic, good but not perfect, like the critic in the middle of a
   PPO run.
3. **One trajectory** (``plots/gae_td_errors.png``, ``plots/gae_advantages.png``):
   the critic's V(s_t) beside the Monte Carlo return G_t, the TD errors
   delta_t along the episode, and the GAE advantages for lambda in
   {0, 0.5, 0.9, 0.95, 1}: the larger lambda, the more of the episode's
   future (and of its noise) each A_t carries.
4. **Bias and variance** (``plots/gae_bias_variance.png``). From each of
   ``--states`` states visited by the policy, branch ``--rollouts`` independent
   continuations and compute the GAE estimate A_0 at the branch state for
   each of them. Over these continuations, for every lambda:

   - *variance*: how much A_0 varies from one continuation to the next;
   - *error*: how far its mean is from the truth, G - V(s), where the true
     value G is the mean of ``--truth-rollouts`` further Monte Carlo returns
     from the same state (bias^2, and the mean squared error
     MSE = bias^2 + variance).

   Averaged over the branch states, variance grows and bias shrinks as
   lambda goes from 0 to 1: lambda trades one for the other. For a single
   estimate the variance dominates, and with this noisy policy a small lambda
   has the lowest MSE. But a policy-gradient step averages the advantages of
   a whole batch: the variance shrinks with the batch size, the bias of a
   wrong critic does not. The dashed curve, bias^2 + variance / 64, is the
   error that survives an average of 64 independent estimates; its minimum
   moves to a large lambda (0.9 to 1 with the seeds we tried, depending on
   how good the critic is), where PPO's usual 0.95 sits. The numbers change
   from seed to seed (``--seed``); the shape of the curves does not.

Outputs also include ``plots/gae_bias_variance.json`` with the numbers.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
from torch import nn

from common.envs import make_vec_env
from common.networks import ValueNet
from common.plotting import plt, save_figure

from demos import add_impl_argument, exercise

ENV_ID = "CartPole-v1"
LAMBDAS = (0.0, 0.5, 0.9, 0.95, 1.0)  # the values of the advantage plot


def exercise_functions(impl: str) -> SimpleNamespace:
    """The four exercise functions this script runs, from ``assignments`` or ``solutions``."""
    ex1, ex3 = exercise(impl, "ex1_values"), exercise(impl, "ex3_baseline")
    return SimpleNamespace(discounted_returns=ex1.discounted_returns, value_loss=ex3.value_loss,
                           td_errors=ex3.td_errors, compute_gae=ex3.compute_gae)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Visualise TD errors, GAE and its bias-variance trade-off on CartPole.")
    add_impl_argument(p)
    p.add_argument("--seed", type=int, default=0, help="seed of everything random (default 0)")
    p.add_argument("--gamma", type=float, default=0.99, help="discount (default 0.99)")
    p.add_argument("--episodes", type=int, default=200, help="recorded episodes to fit the critic on (default 200)")
    p.add_argument("--fit-steps", type=int, default=600,
                   help="Adam steps (minibatches of 256) of the critic fit (default 600)")
    p.add_argument("--states", type=int, default=32, help="branch states of the bias-variance study (default 32)")
    p.add_argument("--rollouts", type=int, default=200, help="continuations per branch state (default 200)")
    p.add_argument("--truth-rollouts", type=int, default=1000,
                   help="further Monte Carlo continuations per state for the true value (default 1000)")
    p.add_argument("--horizon", type=int, default=500,
                   help="longest continuation; a longer one is cut and bootstrapped from V (default 500)")
    p.add_argument("--batch", type=int, default=64,
                   help="batch size of the 'bias^2 + variance / batch' curve (default 64)")
    p.add_argument("--out-dir", default="plots", help="where the PNGs and the JSON go (default plots/)")
    return p.parse_args(argv)


# ---------------------------------------------------------------------------
# 1. A policy
# ---------------------------------------------------------------------------


class ShakyController(nn.Module):
    """logits [0, k * (theta + 0.5 * theta_dot)]: action 1 (push right) with probability sigmoid(k * (...))."""

    def __init__(self, gain: float = 3.0):
        super().__init__()
        self.register_buffer("w", torch.tensor([0.0, 0.0, 1.0, 0.5]) * gain)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        push_right = obs @ self.w
        return torch.stack([torch.zeros_like(push_right), push_right], dim=-1)


def act(policy: nn.Module, obs: np.ndarray, gen: torch.Generator) -> np.ndarray:
    """Sample one action per row of ``obs`` (inverse CDF: cheaper than multinomial for many rows)."""
    probs = torch.softmax(policy(torch.as_tensor(obs, dtype=torch.float32)), dim=-1)
    u = torch.rand(probs.shape[0], 1, generator=gen)
    return (probs.cumsum(-1)[:, :-1] < u).sum(-1).numpy()


# ---------------------------------------------------------------------------
# 2. Recorded episodes and a critic
# ---------------------------------------------------------------------------


@torch.no_grad()
def record_episodes(policy: nn.Module, n: int, seed: int, gen: torch.Generator) -> list[dict]:
    """``n`` complete episodes (one per sub-environment of a vector env): observations [T, 4], rewards [T]."""
    envs = make_vec_env(ENV_ID, num_envs=n, seed=seed)
    obs, _ = envs.reset(seed=seed)
    running = np.ones(n, dtype=bool)
    obs_hist, rew_hist, alive_hist = [], [], []
    while running.any():
        obs_hist.append(obs)
        alive_hist.append(running.copy())
        obs, reward, term, trunc, _ = envs.step(act(policy, obs, gen))
        rew_hist.append(reward)
        running &= ~(term | trunc)
    envs.close()
    obs_a, rew_a, alive = np.stack(obs_hist), np.stack(rew_hist), np.stack(alive_hist)  # [T_max, n, ...]
    episodes = []
    for i in range(n):
        T = int(alive[:, i].sum())  # an episode is alive for its first T steps
        episodes.append({"obs": torch.tensor(obs_a[:T, i], dtype=torch.float32),
                         "rewards": torch.tensor(rew_a[:T, i], dtype=torch.float32)})
    return episodes


def mc_returns(rewards: torch.Tensor, gamma: float, ops) -> torch.Tensor:
    """Discounted returns of one complete episode (it ends at its last step)."""
    dones = torch.zeros_like(rewards)
    dones[-1] = 1.0
    return ops.discounted_returns(rewards, dones, gamma)


class Critic(nn.Module):
    """V(s) = scale * net(s): the network regresses targets of order 1 and learns much faster."""

    def __init__(self, scale: float):
        super().__init__()
        self.scale = float(scale)
        self.net = ValueNet(4, hidden=(32, 32))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.scale * self.net(obs)


def fit_critic(episodes: list[dict], gamma: float, steps: int, gen: torch.Generator, ops,
               batch: int = 256) -> tuple[Critic, float]:
    """Regress V(s_t) on the Monte Carlo returns G_t with ``value_loss`` (Adam on random minibatches).

    Returns the critic and its mean squared error on all recorded states. That
    error can not reach 0: G_t is one random outcome, V(s_t) can only learn its mean.
    """
    obs = torch.cat([e["obs"] for e in episodes])
    targets = torch.cat([mc_returns(e["rewards"], gamma, ops) for e in episodes])
    critic = Critic(scale=float(targets.abs().max()))
    opt = torch.optim.Adam(critic.parameters(), lr=3e-3)
    for _ in range(steps):
        idx = torch.randint(len(obs), (batch,), generator=gen)
        loss = ops.value_loss(critic(obs[idx]), targets[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return critic, ops.value_loss(critic(obs), targets).item()


# ---------------------------------------------------------------------------
# 3. One trajectory
# ---------------------------------------------------------------------------


@torch.no_grad()
def trajectory_estimates(episode: dict, critic: Critic, gamma: float, ops) -> dict:
    """V, G, delta and A^lambda (for each of LAMBDAS) along one complete episode."""
    rewards = episode["rewards"]
    values = critic(episode["obs"])  # V(s_t), [T]
    next_values = torch.cat([values[1:], values.new_zeros(1)])  # V(s_{t+1}); unused at the end
    dones = torch.zeros_like(rewards)
    dones[-1] = 1.0  # the pole fell (or the episode hit its limit) at the last step
    deltas = ops.td_errors(rewards, values, next_values, dones, gamma)
    last_value = values.new_zeros(())
    adv = {lam: ops.compute_gae(rewards, values, dones, last_value, gamma, lam)[0] for lam in LAMBDAS}
    return {"V": values, "G": mc_returns(rewards, gamma, ops), "delta": deltas, "A": adv}


def plot_td_errors(est: dict, path: Path) -> Path:
    t = np.arange(len(est["V"]))
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    ax1.plot(t, est["G"].numpy(), label="Monte Carlo return $G_t$ (what happened)")
    ax1.plot(t, est["V"].numpy(), label=r"critic $V(s_t)$ (what was expected)")
    ax1.set(ylabel="discounted return", title="One CartPole episode: returns and the critic")
    ax1.legend()
    d = est["delta"].numpy()
    ax2.bar(t, d, width=1.0, color=np.where(d >= 0, "C2", "C3"))
    ax2.axhline(0, color="black", lw=0.8)
    ax2.set(xlabel="time step t", ylabel=r"$\delta_t$",
            title=r"TD errors $\delta_t = r_t + \gamma V(s_{t+1}) - V(s_t)$ (last step: no bootstrap, the pole fell)")
    if len(d) > 2:  # keep a large final delta (no bootstrap there) from flattening the rest
        lo, hi = np.percentile(d[:-1], [1, 99])
        pad = 0.5 * max(hi - lo, 1e-3)
        ylim = (min(lo - pad, 0), max(hi + pad, 0))
        if not ylim[0] <= d[-1] <= ylim[1]:
            ax2.set_ylim(*ylim)
            ax2.text(t[-1], ylim[0], f"last step: {d[-1]:.1f} (off the scale) ", ha="right", va="bottom", fontsize=8)
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_advantages(est: dict, gamma: float, path: Path) -> Path:
    t = np.arange(len(est["V"]))
    fig, ax = plt.subplots(figsize=(9, 4.5))
    for lam in LAMBDAS:
        note = {0.0: " (= TD error)", 1.0: r" (= $G_t - V(s_t)$)"}.get(lam, "")
        ax.plot(t, est["A"][lam].numpy(), lw=1.4 if lam in (0.0, 1.0) else 1.0, label=f"$\\lambda$ = {lam:g}{note}")
    ax.axhline(0, color="black", lw=0.8)
    ax.set(xlabel="time step t", ylabel=r"$A_t$",
           title=rf"GAE advantages along the episode ($\gamma$ = {gamma:g}): larger $\lambda$ looks further ahead")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)


# ---------------------------------------------------------------------------
# 4. Bias and variance
# ---------------------------------------------------------------------------


@torch.no_grad()
def branch(policy, critic, states: np.ndarray, rollouts: int, truth_rollouts: int, horizon: int, gamma: float,
           seed: int, gen: torch.Generator) -> dict:
    """From each state, ``rollouts`` continuations (recorded for GAE) and ``truth_rollouts`` more (MC returns only).

    All continuations run side by side in one numpy vector environment whose
    time limit is lifted; a continuation still running after ``horizon`` steps
    is cut there and bootstrapped from V (rare with this policy).
    """
    K = states.shape[0]
    per_state = rollouts + truth_rollouts
    n = K * per_state
    envs = make_vec_env(ENV_ID, num_envs=n, seed=seed, max_episode_steps=10**9)
    envs.reset(seed=seed)
    envs.unwrapped.state = np.repeat(states.T.astype(np.float64), per_state, axis=1)  # [4, n]
    obs = envs.unwrapped.state.T.astype(np.float32)
    est = (np.arange(n) % per_state) < rollouts  # which columns feed the GAE estimates
    running = np.ones(n, dtype=bool)
    truth_G = np.zeros(n)
    discount = 1.0
    rewards, values, dones = [], [], []
    for _ in range(horizon):
        v = torch.zeros(int(est.sum()))
        live = running[est]  # the critic is only needed where a continuation is still running
        v[live] = critic(torch.as_tensor(obs[est][live]))
        values.append(v)
        obs, reward, term, trunc, _ = envs.step(act(policy, obs, gen))
        reward = np.where(running, reward, 0.0)  # nothing counts after an end
        truth_G += discount * reward
        discount *= gamma
        ended = running & (term | trunc)
        rewards.append(reward[est])
        dones.append(ended[est] | ~running[est])
        running &= ~ended
        if not running.any():
            break
    envs.close()
    last_value = critic(torch.as_tensor(obs[est]))  # V(s_H) for continuations cut at the horizon
    return {
        "rewards": torch.tensor(np.stack(rewards), dtype=torch.float32),  # [H, K * rollouts]
        "values": torch.stack(values),
        "dones": torch.tensor(np.stack(dones)),
        "last_value": last_value,
        "truth": truth_G[~est].reshape(K, truth_rollouts).mean(axis=1),  # V^pi(s), [K]
        "truth_var": truth_G[~est].reshape(K, truth_rollouts).var(axis=1, ddof=1),
        "V0": critic(torch.as_tensor(states, dtype=torch.float32)).numpy(),  # the critic at the branch states
        "steps": len(rewards),
        "cut": int(running.sum()),
    }


def bias_variance(data: dict, lambdas: np.ndarray, gamma: float, K: int, rollouts: int, truth_rollouts: int,
                  batch: int, ops) -> list[dict]:
    """Per lambda, averaged over the K branch states: variance, bias^2 and MSE of the estimate A_0.

    The bias is measured with finite samples: (mean of A_0 - truth)^2 also holds
    the sampling noise of both means, whose expected size (the "noise floor")
    is subtracted to estimate bias^2 itself.
    """
    target = data["truth"] - data["V0"]  # what A_0 should average to: V^pi(s) - V(s)
    rows = []
    for lam in lambdas:
        adv, _ = ops.compute_gae(data["rewards"], data["values"], data["dones"], data["last_value"], gamma, float(lam))
        a0 = adv[0].numpy().reshape(K, rollouts)  # the estimate at each branch state, one per continuation
        var = a0.var(axis=1, ddof=1)
        raw = (a0.mean(axis=1) - target) ** 2
        noise = var / rollouts + data["truth_var"] / truth_rollouts
        bias2 = float(np.mean(raw - noise))
        rows.append({"lambda": float(lam), "variance": float(var.mean()), "bias2": bias2,
                     "bias2_raw": float(raw.mean()), "noise_floor": float(noise.mean()),
                     "mse": float(var.mean()) + bias2,
                     "batch_mse": bias2 + float(var.mean()) / batch})
    return rows


def plot_bias_variance(rows: list[dict], batch: int, path: Path) -> Path:
    lam = np.array([r["lambda"] for r in rows])
    col = {k: np.array([r[k] for r in rows]) for k in ("variance", "bias2", "mse", "batch_mse")}
    floor = 1e-2  # a log axis can not show an estimated bias^2 of (about) zero
    fig, ax = plt.subplots(figsize=(8.5, 5))
    ax.plot(lam, col["variance"], "o-", color="C0", label=r"variance of $A_0$ across continuations")
    ax.plot(lam, np.maximum(col["bias2"], floor), "s-", color="C3",
            label=r"bias$^2$: (mean $A_0$ $-$ Monte Carlo truth)$^2$, sampling noise removed")
    ax.plot(lam, col["mse"], "^-", color="black", label=r"MSE of one estimate = bias$^2$ + variance")
    ax.plot(lam, col["batch_mse"], "v--", color="gray",
            label=f"bias$^2$ + variance / {batch}: what is left after averaging {batch} estimates")
    for key, color in (("mse", "black"), ("batch_mse", "gray")):
        i = int(np.argmin(col[key]))
        ax.plot(lam[i], col[key][i], "o", ms=12, mfc="none", color=color)
        ax.annotate(f"min at $\\lambda$ = {lam[i]:g}", (lam[i], col[key][i]), textcoords="offset points",
                    xytext=(0, 10), ha="center", fontsize=8, color=color)
    ax.set_yscale("log")
    ax.set(xlabel=r"$\lambda$", ylabel="squared error (return units$^2$)",
           title=r"GAE: small $\lambda$ is biased by the critic, large $\lambda$ is noisy")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    return save_figure(fig, path)


# ---------------------------------------------------------------------------
# The whole run
# ---------------------------------------------------------------------------


def main(argv=None) -> int:
    args = parse_args(argv)
    ops = exercise_functions(args.impl)
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    out = Path(args.out_dir)
    start = time.perf_counter()

    # 1-2. policy, recorded episodes, critic
    policy = ShakyController()
    episodes = record_episodes(policy, args.episodes, seed=args.seed, gen=gen)
    lengths = [len(e["rewards"]) for e in episodes]
    critic, critic_mse = fit_critic(episodes, args.gamma, args.fit_steps, gen, ops)
    print(f"recorded {len(episodes)} episodes (length: mean {np.mean(lengths):.0f}, min {min(lengths)}, "
          f"max {max(lengths)}); critic fitted to their returns (MSE {critic_mse:.1f})")

    # 3. one fresh trajectory (the critic has not seen it), of about median length
    fresh = record_episodes(policy, 9, seed=args.seed + 1, gen=gen)
    episode = sorted(fresh, key=lambda e: len(e["rewards"]))[len(fresh) // 2]
    est = trajectory_estimates(episode, critic, args.gamma, ops)
    paths = [plot_td_errors(est, out / "gae_td_errors.png"),
             plot_advantages(est, args.gamma, out / "gae_advantages.png")]
    print(f"one episode of {len(episode['rewards'])} steps: sum_t gamma^t delta_t = "
          f"{float((args.gamma ** torch.arange(len(est['delta']))) @ est['delta']):.2f} "
          f"= G_0 - V(s_0) = {float(est['G'][0] - est['V'][0]):.2f}")

    # 4. bias and variance, branching from states the policy visits
    rng = np.random.default_rng(args.seed)
    pool = torch.cat([e["obs"] for e in fresh]).numpy()
    states = pool[rng.choice(len(pool), size=args.states, replace=False)]
    data = branch(policy, critic, states, args.rollouts, args.truth_rollouts, args.horizon, args.gamma,
                  seed=args.seed + 2, gen=gen)
    lambdas = np.unique(np.concatenate([np.round(np.linspace(0, 1, 21), 2), LAMBDAS]))
    rows = bias_variance(data, lambdas, args.gamma, args.states, args.rollouts, args.truth_rollouts, args.batch, ops)
    paths.append(plot_bias_variance(rows, args.batch, out / "gae_bias_variance.png"))

    print(f"\nbias and variance of A_0 over {args.states} states x {args.rollouts} continuations "
          f"(truth: {args.truth_rollouts} more each; {data['cut']} cut at the horizon):")
    print(f"{'lambda':>7}  {'variance':>9}  {'bias^2':>8}  {'MSE':>8}  {'bias^2+var/' + str(args.batch):>14}")
    for r in rows:
        mark = "  <- in the advantage plot" if r["lambda"] in LAMBDAS else ""
        print(f"{r['lambda']:>7.2f}  {r['variance']:>9.2f}  {r['bias2']:>8.2f}  {r['mse']:>8.2f}  "
              f"{r['batch_mse']:>14.2f}{mark}")
    js = out / "gae_bias_variance.json"
    js.write_text(json.dumps({"gamma": args.gamma, "seed": args.seed, "states": args.states,
                              "rollouts": args.rollouts, "truth_rollouts": args.truth_rollouts,
                              "episode_lengths": lengths, "critic_mse": critic_mse, "batch": args.batch,
                              "rows": rows}, indent=1))
    print(f"\nwrote {', '.join(str(p) for p in paths)} and {js} in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
