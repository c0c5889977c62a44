"""Exercise 4: PPO-clip (the chapter's Exercise 3 and its CartPole script).

PPO reuses one batch of experience for several epochs of minibatch updates.
To keep the new policy π_θ close to the policy π_old that collected the
data, it optimises the clipped surrogate

    r_t(θ) = π_θ(a_t|s_t) / π_old(a_t|s_t) = exp(log π_θ − log π_old)
    L^CLIP = E_t[ min( r_t A_t,  clip(r_t, 1 − ε, 1 + ε) A_t ) ]

When a sample's ratio has already moved past 1 ± ε *in the direction the
advantage favours*, the clipped term is the smaller one, it is constant in θ,
and that sample stops pulling: the update cannot profit from moving further.

You write:
1. ``probability_ratio``  r_t from log-probabilities (π_old is a constant).
2. ``clipped_surrogate``  the unclipped term, the clipped term and their minimum.
3. ``clip_active``        where the clipped term is selected and differs (zero gradient there).
4. ``ppo_policy_loss``    −mean of the clipped objective.
Given: ``ppo_loss`` (the full minibatch loss: policy + value − entropy bonus)
and ``train_ppo`` (the CartPole script: vectorised environments, GAE with
``compute_gae`` from exercise 3, PPO epochs over minibatches). They run your
functions; the hyperparameters are the fields of ``PPOConfig``.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, fields

import numpy as np
import torch
from torch import nn

from common.adam import Adam
from common.device import get_device, seed_everything
from common.envs import make_vec_env
from common.networks import ActorCritic
from common.rollout import TrainResult, is_solved, progress_bar, standardize
from common.validate import check_finite, check_same_device, check_same_shape, check_scalar, check_tensor

from .ex3_baseline import compute_gae, value_loss

__all__ = [
    "probability_ratio",
    "clipped_surrogate",
    "clip_active",
    "ppo_policy_loss",
    "ppo_loss",
    "PPOConfig",
    "train_ppo",
]


def _check_batch(**tensors: torch.Tensor) -> None:
    """Float tensors of one common shape ``[B]``, ``[T]`` or ``[T, N]`` on one device, no NaN."""
    for name, x in tensors.items():
        check_tensor(name, x, dims=(1, 2), dim_names="T, N", floating=True, min_size=1)
        check_finite(name, x)
    check_same_shape(**tensors)
    check_same_device(**tensors)


def _check_eps(clip_eps) -> float:
    return check_scalar("clip_eps", clip_eps, low=0.0, high=1.0, low_open=True, high_open=True)


def probability_ratio(new_log_probs: torch.Tensor, old_log_probs: torch.Tensor) -> torch.Tensor:
    """Importance ratio between the current and the data-collecting policy.

        r_t = π_θ(a_t|s_t) / π_old(a_t|s_t) = exp( log π_θ(a_t|s_t) − log π_old(a_t|s_t) )

    Computing it from log-probabilities avoids dividing tiny probabilities.

    Args:
        new_log_probs: ``[T]`` or ``[T, N]`` (or a flat minibatch ``[B]``),
            log π_θ(a_t|s_t) with the policy's graph.
        old_log_probs: same shape, log π_old(a_t|s_t): recorded data, a
            constant (no gradient).

    Returns:
        r: same shape, dtype and device as ``new_log_probs``; gradient reaches
        ``new_log_probs`` only.
    """
    _check_batch(new_log_probs=new_log_probs, old_log_probs=old_log_probs)
    ### BEGIN SOLUTION
    # TODO: return exp(new_log_probs - old_log_probs) with the old log-probabilities detached.
    return torch.exp(new_log_probs - old_log_probs.detach())
    ### END SOLUTION


def clipped_surrogate(ratio: torch.Tensor, advantages: torch.Tensor, clip_eps: float):
    """The two candidate objectives of PPO-clip and their elementwise minimum.

        unclipped = r · A
        clipped   = clamp(r, 1 − ε, 1 + ε) · A
        objective = min(unclipped, clipped)

    Args:
        ratio: ``[T]``, ``[T, N]`` or ``[B]`` float, r_t.
        advantages: same shape, A_t.
        clip_eps: ε in (0, 1), typically 0.1 to 0.3.

    Returns:
        ``(unclipped, clipped, objective)``, three tensors of the input shape
        (dtype/device of ``ratio``), differentiable wherever their formula
        depends on ``ratio`` (and ``advantages``, if it carries a graph).
    """
    _check_batch(ratio=ratio, advantages=advantages)
    clip_eps = _check_eps(clip_eps)
    ### BEGIN SOLUTION
    # TODO: compute ratio * A, clamp(ratio, 1 - eps, 1 + eps) * A, and their elementwise minimum.
    unclipped = ratio * advantages
    clipped = torch.clamp(ratio, 1.0 - clip_eps, 1.0 + clip_eps) * advantages
    return unclipped, clipped, torch.minimum(unclipped, clipped)
    ### END SOLUTION


def clip_active(ratio: torch.Tensor, advantages: torch.Tensor, clip_eps: float) -> torch.Tensor:
    """Where clipping is *active*: the minimum picks the clipped term and it differs from the unclipped one.

    That happens exactly when

        A > 0 and r > 1 + ε     (the action already became more likely enough), or
        A < 0 and r < 1 − ε     (it already became less likely enough);

    there the objective is constant in θ, so the sample contributes zero
    gradient. Where A = 0 or the ratio is inside [1 − ε, 1 + ε] both terms are
    equal and clipping is not active. (The fraction of True entries is the
    "clip fraction" that PPO implementations log.)

    Args:
        ratio: ``[T]``, ``[T, N]`` or ``[B]`` float.
        advantages: same shape.
        clip_eps: ε in (0, 1).

    Returns:
        bool tensor of the input shape, on the inputs' device, no gradient.
    """
    _check_batch(ratio=ratio, advantages=advantages)
    clip_eps = _check_eps(clip_eps)
    ### BEGIN SOLUTION
    # TODO: return (A > 0 and ratio > 1 + eps) or (A < 0 and ratio < 1 - eps), elementwise.
    ratio, advantages = ratio.detach(), advantages.detach()
    return ((advantages > 0) & (ratio > 1.0 + clip_eps)) | ((advantages < 0) & (ratio < 1.0 - clip_eps))
    ### END SOLUTION


def ppo_policy_loss(
    new_log_probs: torch.Tensor,
    old_log_probs: torch.Tensor,
    advantages: torch.Tensor,
    clip_eps: float,
) -> torch.Tensor:
    """The PPO-clip policy loss (minimised, so the objective gets a minus sign).

        L(θ) = − mean_t min( r_t A_t, clamp(r_t, 1 − ε, 1 + ε) A_t ),
        r_t  = exp(log π_θ(a_t|s_t) − log π_old(a_t|s_t))

    Args:
        new_log_probs: ``[T]``, ``[T, N]`` or ``[B]``, log π_θ with the policy's graph.
        old_log_probs: same shape, log π_old (constant).
        advantages: same shape, A_t (constant: no gradient reaches them).
        clip_eps: ε in (0, 1).

    Returns:
        A 0-d tensor (dtype/device of ``new_log_probs``); gradient reaches
        ``new_log_probs`` only.
    """
    _check_batch(new_log_probs=new_log_probs, old_log_probs=old_log_probs, advantages=advantages)
    clip_eps = _check_eps(clip_eps)
    ### BEGIN SOLUTION
    # TODO: combine probability_ratio and clipped_surrogate (advantages detached) and return minus the mean objective.
    ratio = probability_ratio(new_log_probs, old_log_probs)
    _, _, objective = clipped_surrogate(ratio, advantages.detach(), clip_eps)
    return -objective.mean()
    ### END SOLUTION


def ppo_loss(
    agent: ActorCritic,
    obs: torch.Tensor,
    actions: torch.Tensor,
    old_log_probs: torch.Tensor,
    advantages: torch.Tensor,
    returns: torch.Tensor,
    clip_eps: float,
    vf_coef: float = 0.5,
    ent_coef: float = 0.0,
):
    """The loss of one PPO minibatch, for actor and critic together.

        log π_θ(a|s) = log_softmax(agent.logits(obs))[a]
        H            = mean entropy of π_θ(·|s)  = − mean Σ_a π log π
        loss         = ppo_policy_loss(log π_θ, log π_old, A, ε)
                       + vf_coef · value_loss(agent.value(obs), returns)
                       − ent_coef · H

    The actor and critic are separate networks, so the policy term trains the
    actor and the value term trains the critic; the entropy bonus keeps the
    policy from becoming deterministic too early. (Given: it calls your
    ``ppo_policy_loss``, ``value_loss`` and, for the statistics, ``clip_active``.)

    Args:
        agent: ``ActorCritic``; ``agent.logits(obs) [B, A]``, ``agent.value(obs) [B]``.
        obs: ``[B, obs_dim]`` float32 observations.
        actions: ``[B]`` int64 actions taken.
        old_log_probs: ``[B]`` log π_old(a|s) recorded during the rollout.
        advantages: ``[B]`` advantages (already normalised if you want that).
        returns: ``[B]`` critic targets (GAE returns).
        clip_eps: ε.
        vf_coef: weight of the value loss.
        ent_coef: weight of the entropy bonus.

    Returns:
        ``(loss, stats)``: ``loss`` a 0-d tensor with graph to both networks;
        ``stats`` a dict of 0-d tensors without graph: ``"policy_loss"``,
        ``"value_loss"``, ``"entropy"``, ``"approx_kl"`` (the estimator
        mean((r − 1) − log r) of KL(π_old ‖ π_θ)) and ``"clip_frac"`` (mean of ``clip_active``).
    """
    log_pi = torch.log_softmax(agent.logits(obs), dim=-1)  # [B, A]
    new_log_probs = log_pi.gather(-1, actions.unsqueeze(-1)).squeeze(-1)  # [B]
    # without a bonus (ent_coef = 0) the entropy is only a statistic: no graph, no backward pass through it
    with torch.set_grad_enabled(torch.is_grad_enabled() and ent_coef != 0):
        entropy = -(log_pi.exp() * log_pi).sum(-1).mean()
    pg_loss = ppo_policy_loss(new_log_probs, old_log_probs, advantages, clip_eps)
    v_loss = value_loss(agent.value(obs), returns)
    loss = pg_loss + vf_coef * v_loss - ent_coef * entropy
    with torch.no_grad():  # diagnostics only
        log_ratio = new_log_probs.detach() - old_log_probs
        ratio = log_ratio.exp()
        stats = {
            "policy_loss": pg_loss.detach(),
            "value_loss": v_loss.detach(),
            "entropy": entropy.detach(),
            "approx_kl": ((ratio - 1) - log_ratio).mean(),
            "clip_frac": clip_active(ratio, advantages, clip_eps).float().mean(),
        }
    return loss, stats


# ---------------------------------------------------------------------------
# The CartPole script: everything below is given.
# ---------------------------------------------------------------------------


@dataclass
class PPOConfig:
    """Hyperparameters of ``train_ppo``, tuned for CartPole-v1 on one CPU thread.

    The goal of the tuning: a greedy policy that reaches a mean return of 475
    in as few environment steps as possible *and stays there* for the rest of
    a 100k-step budget (``make bench``, docs/BENCH.md: stable in about a third
    of rl-zoo's steps). Two choices do most of the work: many small, frequent
    updates while the policy is still bad (short rollouts, small minibatches,
    a large learning rate), then a fast decay of the learning rate so that a
    policy that has found the balance is not pushed away from it again.
    """

    total_steps: int = 50_000
    """Environment steps to train for, counted over all sub-environments."""
    num_envs: int = 8
    """Parallel CartPole copies in one numpy vector environment. Eight keep a rollout
    cheap (one forward pass acts for all of them) while each update still sees
    several independent episodes."""
    num_steps: int = 16
    """Steps per sub-environment in one rollout; a batch is num_envs * num_steps = 128
    transitions. A short rollout means an update every 128 steps: the policy improves
    about 80 times in the first 10k steps (rl-zoo: 256 per update). Much shorter (8)
    cuts the GAE segments so short that the still-poor critic's bootstrap dominates."""
    lr: float = 1e-2
    """Adam learning rate (start value). Large for PPO (3e-4 is the usual default):
    CartPole's networks are small, and the clipped objective plus the gradient-norm
    clip keep each step bounded."""
    anneal_lr: bool = True
    """Decay the learning rate linearly from ``lr`` to ``lr * final_lr_frac`` over
    ``anneal_steps`` environment steps, then keep it there. A large step size finds a
    good policy quickly; a small one keeps it from drifting away once found."""
    anneal_steps: int | None = 10_000
    """Length of the decay in environment steps (None: over ``total_steps``). Most seeds
    find the balance within 10k steps; with a longer decay (25k) they find it as fast
    but then lose it again several times while the learning rate is still large."""
    final_lr_frac: float = 0.05
    """Learning rate after the decay, as a fraction of ``lr``: small enough that a solved
    policy stays solved to the end of a long budget, large enough that a slow seed
    still learns after the decay."""
    gamma: float = 0.99
    """Discount factor γ. (rl-zoo's 0.98 with λ = 0.8 learnt about twice as slowly here.)"""
    reward_scale: float = 0.1
    """Multiply rewards by this before GAE. The policy does not care (advantages are
    standardised), but the critic then regresses values of order 1 instead of up to
    1/(1 − γ) = 100, which it learns far faster."""
    gae_lambda: float = 0.95
    """GAE λ: 0 = one-step TD advantages, 1 = Monte Carlo advantages."""
    num_minibatches: int = 2
    """Minibatches per epoch (minibatch size = batch size / num_minibatches = 64). Small,
    noisy minibatches learnt faster per environment step than one full batch."""
    update_epochs: int = 4
    """Passes over each batch: 4 x 2 = 8 Adam steps per 128 environment steps. Each
    Adam step costs far more wall time than the environment steps, so this is the
    trade-off between steps and seconds (5 epochs: slightly fewer steps, more seconds;
    3: more steps)."""
    clip_eps: float = 0.2
    """PPO clip range ε."""
    norm_adv: bool = True
    """Standardise advantages within each minibatch."""
    vf_coef: float = 0.5
    """Weight of the value loss."""
    ent_coef: float = 0.0
    """Weight of the entropy bonus (none needed: CartPole's two actions stay explored
    long enough, and the evaluation is greedy)."""
    max_grad_norm: float | None = 0.5
    """Clip the gradient norm of each minibatch step to this, separately for the actor
    and the critic (a large value loss must not shrink the policy's step). None: no clipping."""
    hidden: tuple[int, ...] = (64, 64)
    """Hidden layer widths of the actor and of the critic (tanh MLPs, orthogonal init,
    policy head with gain 0.01 so that the first policy is almost uniform: see
    ``common.networks.mlp``)."""
    target_return: float | None = 475.0
    """Early stopping: every ``eval_every`` updates the greedy policy plays
    ``eval_episodes`` evaluation episodes (fresh seeds); if each returns at least
    this, training stops (CartPole is solved). None: always train for total_steps
    (use it, with ``callback``, to study what happens after solving)."""
    eval_episodes: int = 30
    """Episodes of the early-stopping evaluation."""
    eval_every: int = 4
    """Run the early-stopping evaluation every this many updates (4 x 128 = every 512
    environment steps). A failed check is cheap (it gives up at the first episode
    below target_return), but a nearly solved policy's 30 evaluation episodes cost as
    much as a few updates, so checking after every update would dominate the run;
    every 4 stops sooner than every 8 at about the same cost."""


def _mean_or_nan(xs: list[float]) -> float:
    return float(np.mean(xs)) if xs else float("nan")


def train_ppo(
    env_id: str = "CartPole-v1",
    total_steps: int | None = None,
    seed: int = 0,
    device: str | torch.device = "cpu",
    progress: bool = False,
    config: PPOConfig | None = None,
    callback=None,
    **overrides,
) -> TrainResult:
    """Train an ``ActorCritic`` with PPO-clip on a vectorised environment.

    Loop (one iteration = one rollout + one update):
        1. rollout: ``num_steps`` steps of ``num_envs`` environments with the
           current policy, without gradients, into preallocated buffers;
        2. GAE: ``compute_gae`` on the ``[num_steps, num_envs]`` buffers;
        3. update: ``update_epochs`` passes over shuffled minibatches, one Adam
           step on ``ppo_loss`` each;
        4. bookkeeping: log, callback, optional early stop.

    Episode ends. A *termination* (the pole fell) cuts the bootstrap. A
    *truncation* (the 500-step time limit) does not: the state was not
    terminal, so its reward becomes r + γ V(final observation) and the
    transition is then treated as an episode end. With gymnasium's
    next-step autoreset, the final observation is simply the next observation
    in the buffer; the step after an episode end (whose action is ignored by
    the environment) is masked out of the update.

    Args:
        env_id: gymnasium id with a discrete action space.
        total_steps: environment steps (overrides ``config.total_steps``).
        seed: seeds the networks' init (global torch RNG), the environments,
            action sampling and minibatch shuffling (a
            ``torch.Generator(device).manual_seed(seed)``).
        device: where the networks and buffers live.
        progress: show a tqdm progress bar.
        config: a ``PPOConfig``; default ``PPOConfig()``.
        callback: optional ``callback(steps, policy)`` after every update,
            where ``policy`` is the actor (``PolicyNet``) and ``steps`` the
            environment steps so far; returning True stops training.
        **overrides: any ``PPOConfig`` field, e.g. ``lr=1e-3``.

    Returns:
        ``TrainResult``: ``episode_returns`` of every finished training
        episode; ``policy`` the actor (a ``PolicyNet``, forward(obs) -> logits);
        ``value`` the critic (a ``ValueNet``); ``log`` a dict of per-update
        lists: ``steps``, ``mean_return`` (episodes finished in that rollout),
        ``policy_loss``, ``value_loss``, ``entropy``, ``approx_kl``,
        ``clip_frac``, ``explained_variance``, ``lr``, ``sps`` (env steps per
        second so far), plus ``config`` (the dict used) and ``time`` (seconds).
    """
    cfg = config if config is not None else PPOConfig()
    names = {f.name for f in fields(PPOConfig)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise TypeError(f"unknown PPOConfig field(s): {', '.join(unknown)}")
    cfg = PPOConfig(**{**asdict(cfg), **overrides})
    if total_steps is not None:
        cfg.total_steps = total_steps
    cfg.total_steps = check_scalar("total_steps", cfg.total_steps, low=1, integer=True)
    batch_size = cfg.num_envs * cfg.num_steps
    if cfg.num_minibatches < 1 or batch_size < cfg.num_minibatches:
        raise ValueError(f"num_minibatches must be in [1, num_envs * num_steps = {batch_size}], got {cfg.num_minibatches}")
    device = get_device(device)
    seed_everything(seed)
    gen = torch.Generator(device=device).manual_seed(seed)

    envs = make_vec_env(env_id, num_envs=cfg.num_envs, seed=seed)
    obs_dim = envs.single_observation_space.shape[0]
    n_actions = int(envs.single_action_space.n)
    agent = ActorCritic(obs_dim, n_actions, hidden=cfg.hidden).to(device)
    # fused: one kernel call updates all the parameters (several times faster for small networks)
    optimizer = Adam(agent.parameters(), lr=cfg.lr, eps=1e-5, fused=True)
    # listed once: each clip_grad_norm_ call would otherwise walk the modules again
    actor_params, critic_params = list(agent.actor.parameters()), list(agent.critic.parameters())

    T, N = cfg.num_steps, cfg.num_envs
    obs_buf = torch.zeros(T, N, obs_dim, device=device)
    act_buf = torch.zeros(T, N, dtype=torch.long, device=device)
    logp_buf = torch.zeros(T, N, device=device)
    rew_np = np.zeros((T, N), dtype=np.float32)
    term_np = np.zeros((T, N), dtype=bool)
    trunc_np = np.zeros((T, N), dtype=bool)
    valid_np = np.zeros((T, N), dtype=bool)

    obs_np, _ = envs.reset(seed=seed)
    after_end = np.zeros(N, dtype=bool)  # this step is the autoreset step of an env
    ep_return = np.zeros(N, dtype=np.float64)
    episode_returns: list[float] = []
    log: dict = {k: [] for k in ("steps", "mean_return", "policy_loss", "value_loss", "entropy",
                                 "approx_kl", "clip_frac", "explained_variance", "lr", "sps")}
    num_updates = -(-cfg.total_steps // batch_size)  # ceil
    anneal_steps = max(1, cfg.anneal_steps if cfg.anneal_steps is not None else cfg.total_steps)
    steps, start = 0, time.perf_counter()

    for update in progress_bar(range(num_updates), progress, desc="PPO"):
        if cfg.anneal_lr:
            done_frac = min(1.0, steps / anneal_steps)
            for group in optimizer.param_groups:
                group["lr"] = cfg.lr * (1.0 - (1.0 - cfg.final_lr_frac) * done_frac)
        # 1. rollout ------------------------------------------------------------------
        finished: list[float] = []
        with torch.no_grad():
            for t in range(T):
                obs = torch.from_numpy(obs_np).to(device)
                log_pi = torch.log_softmax(agent.logits(obs), dim=-1)  # [N, A]
                action = torch.multinomial(log_pi.exp(), 1, generator=gen)  # [N, 1]
                obs_buf[t] = obs
                act_buf[t] = action.squeeze(1)
                logp_buf[t] = log_pi.gather(1, action).squeeze(1)
                obs_np, reward, term, trunc, _ = envs.step(action.squeeze(1).cpu().numpy())
                valid_np[t] = ~after_end
                rew_np[t] = reward
                term_np[t] = term
                trunc_np[t] = trunc
                ep_return += reward
                ended = term | trunc
                if ended.any():
                    finished += ep_return[ended].tolist()
                    ep_return[ended] = 0.0
                after_end = ended
            # the critic is not needed to act: evaluate it once on the whole batch
            val_buf = agent.value(obs_buf)  # V(s_t), [T, N]
            last_value = agent.value(torch.from_numpy(obs_np).to(device))  # V(s_T), [N]
        steps += batch_size
        episode_returns += finished

        # 2. advantages -----------------------------------------------------------------
        rewards = torch.from_numpy(rew_np).to(device) * cfg.reward_scale
        # time-limit truncation only: a step that also terminated has no future value
        trunc_t = torch.from_numpy(trunc_np & ~term_np).to(device)
        next_values = torch.cat([val_buf[1:], last_value.unsqueeze(0)])  # V(s_{t+1}), [T, N]
        # truncated: bootstrap from V(final observation), which is the next observation
        rewards = rewards + cfg.gamma * next_values * trunc_t
        dones = torch.from_numpy(term_np | trunc_np).to(device)
        adv, returns = compute_gae(rewards, val_buf, dones, last_value, cfg.gamma, cfg.gae_lambda)

        # keep real transitions only (drop each env's autoreset step)
        valid = torch.from_numpy(valid_np.reshape(-1)).to(device)
        b_obs = obs_buf.reshape(-1, obs_dim)[valid]
        b_act = act_buf.reshape(-1)[valid]
        b_logp = logp_buf.reshape(-1)[valid]
        b_adv = adv.reshape(-1)[valid]
        b_ret = returns.reshape(-1)[valid]
        b_val = val_buf.reshape(-1)[valid]

        # 3. PPO epochs ---------------------------------------------------------------
        n = b_obs.shape[0]
        mb_size = max(1, n // cfg.num_minibatches)
        sums = {"policy_loss": 0.0, "value_loss": 0.0, "entropy": 0.0, "approx_kl": 0.0, "clip_frac": 0.0}
        count = 0
        for _ in range(cfg.update_epochs):
            perm = torch.randperm(n, generator=gen, device=device)
            for k in range(0, n - mb_size + 1, mb_size):  # drops the < mb_size remainder
                idx = perm[k : k + mb_size]
                mb_adv = b_adv[idx]
                if cfg.norm_adv and mb_adv.numel() > 1:
                    mb_adv = standardize(mb_adv)
                loss, stats = ppo_loss(
                    agent, b_obs[idx], b_act[idx], b_logp[idx], mb_adv, b_ret[idx],
                    cfg.clip_eps, cfg.vf_coef, cfg.ent_coef,
                )
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if cfg.max_grad_norm is not None:
                    nn.utils.clip_grad_norm_(actor_params, cfg.max_grad_norm)
                    nn.utils.clip_grad_norm_(critic_params, cfg.max_grad_norm)
                optimizer.step()
                for key in sums:
                    sums[key] += stats[key]
                count += 1

        # 4. bookkeeping --------------------------------------------------------------
        var_ret = b_ret.var(correction=0)
        explained = (1 - (b_ret - b_val).var(correction=0) / var_ret).item() if var_ret > 0 else float("nan")
        log["steps"].append(steps)
        log["mean_return"].append(_mean_or_nan(finished))
        for key in sums:
            log[key].append(float(sums[key]) / max(count, 1))
        log["explained_variance"].append(explained)
        log["lr"].append(optimizer.param_groups[0]["lr"])
        log["sps"].append(steps / (time.perf_counter() - start))
        if callback is not None and callback(steps, agent.actor):
            break
        if cfg.target_return is not None and (update + 1) % cfg.eval_every == 0:
            eval_seed = 1_000_003 * (seed + 1) + update
            if is_solved(agent.actor, env_id, cfg.target_return, cfg.eval_episodes, seed=eval_seed, device=device):
                break

    envs.close()
    log["config"] = asdict(cfg)
    log["time"] = time.perf_counter() - start
    return TrainResult(episode_returns=episode_returns, policy=agent.actor, value=agent.critic, log=log)
