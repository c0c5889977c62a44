# Student version, generated from the reference by `make assignments`.
# Fill in every TODO: replace each `raise NotImplementedError(...)` with your code.
"""Exercise 3: baselines, actor-critic and GAE (the chapter's Exercise 2).

Subtracting a baseline b(s_t) from the return leaves the policy gradient
unbiased (E[∇ log π(a|s) · b(s)] = 0) but can shrink its variance a lot:

    ∇_θ J = E[ Σ_t ∇_θ log π_θ(a_t|s_t) · (G_t − b(s_t)) ]

The best simple baseline is a learned state value V_φ(s) ≈ E[G_t | s_t]; the
difference A_t = G_t − V(s_t) is the *advantage* ("how much better than
expected was this action?"). A critic also enables bootstrapping: the TD error

    δ_t = r_t + γ (1 − d_t) V(s_{t+1}) − V(s_t)

is a one-step advantage estimate, and GAE blends all n-step estimates:

    A_t = δ_t + γ λ (1 − d_t) A_{t+1}          (A = Σ_k (γλ)^k δ_{t+k})

You write:
1. ``advantages``               A = G − V, a constant for the policy loss.
2. ``value_loss``               mean (V − target)², the critic's regression loss.
3. ``reinforce_baseline_loss``  both losses, each reaching only its own network.
4. ``td_errors``                δ_t (semi-gradient: only V(s_t) gets gradient).
5. ``compute_gae``              the backward GAE recursion and the critic targets.
6. ``gradient_variance``        measure how much a baseline reduces the variance
                                of the per-episode gradient estimate.
7. ``actor_critic_update``      one update of policy and critic from one episode.
``train_actor_critic`` (given) runs 7 in a loop.
"""

from __future__ import annotations

import time

import torch
from torch import nn

from common.adam import Adam
from common.device import get_device, seed_everything
from common.envs import make_env
from common.networks import PolicyNet, ValueNet
from common.rollout import Episode, TrainResult, is_solved, progress_bar, standardize
from common.validate import (
    check_bootstrap,
    check_dones,
    check_finite,
    check_same_device,
    check_same_shape,
    check_scalar,
    check_tensor,
    check_tensor_list,
    check_trajectory,
    shape_str,
)

from .ex2_reinforce import collect_episode, reinforce_loss

__all__ = [
    "advantages",
    "value_loss",
    "reinforce_baseline_loss",
    "td_errors",
    "compute_gae",
    "gradient_variance",
    "actor_critic_update",
    "train_actor_critic",
]


def _check_pair(a_name: str, a: torch.Tensor, b_name: str, b: torch.Tensor) -> None:
    check_trajectory(a_name, a)
    check_trajectory(b_name, b)
    check_same_shape(**{a_name: a, b_name: b})
    check_same_device(**{a_name: a, b_name: b})


def advantages(returns: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """Advantage estimates A_t = G_t − V(s_t).

    The advantage only *weights* the policy gradient, so it is a constant:
    no gradient flows from it into the value network (nor into ``returns``).

    Args:
        returns: ``[T]`` or ``[T, N]`` float, G_t.
        values: same shape, V(s_t) (may carry the critic's graph).

    Returns:
        ``[T]`` / ``[T, N]``, dtype and device of ``values``, no gradient.
    """
    _check_pair("returns", returns, "values", values)
    # TODO: return returns - values with no gradient (detach).
    raise NotImplementedError('advantages: return returns - values with no gradient (detach).')


def value_loss(values: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean squared error of the critic.

        L(φ) = mean_t ( V_φ(s_t) − target_t )²

    Args:
        values: ``[T]`` or ``[T, N]`` float, V(s_t) with the critic's graph.
        targets: same shape, the regression targets (returns); constants, no gradient.

    Returns:
        A 0-d tensor, dtype and device of ``values``; gradient reaches ``values`` only.
    """
    _check_pair("values", values, "targets", targets)
    # TODO: return the mean of (values - targets)**2, with targets detached.
    raise NotImplementedError('value_loss: return the mean of (values - targets)**2, with targets detached.')


def reinforce_baseline_loss(log_probs: torch.Tensor, returns: torch.Tensor, values: torch.Tensor):
    """REINFORCE with a learned baseline: a policy loss and a value loss.

        policy_loss = − mean_t [ log π(a_t|s_t) · (G_t − V(s_t)) ]     (advantage is a constant)
        value_loss  =   mean_t [ (V(s_t) − G_t)² ]

    The policy loss must not push gradient into the critic (the advantage is
    detached), and the value loss does not involve the policy at all, so the
    two can simply be added and back-propagated together.

    Args:
        log_probs: ``[T]`` or ``[T, N]`` float, log π(a_t|s_t) with the policy's graph.
        returns: same shape, G_t (constants).
        values: same shape, V(s_t) with the critic's graph.

    Returns:
        ``(policy_loss, value_loss)``, two 0-d tensors (dtype/device of ``log_probs``).
    """
    _check_pair("log_probs", log_probs, "returns", returns)
    _check_pair("log_probs", log_probs, "values", values)
    # TODO: use advantages() for the policy loss (as in reinforce_loss) and value_loss() with the returns as targets.
    raise NotImplementedError('reinforce_baseline_loss: use advantages() for the policy loss (as in reinforce_loss) and value_loss() with the returns as targets.')


def td_errors(
    rewards: torch.Tensor,
    values: torch.Tensor,
    next_values: torch.Tensor,
    dones: torch.Tensor,
    gamma: float,
) -> torch.Tensor:
    """One-step TD errors.

        δ_t = r_t + γ (1 − d_t) V(s_{t+1}) − V(s_t)

    At an episode end (d_t = 1) there is no next state to bootstrap from.
    Semi-gradient: the target r_t + γ V(s_{t+1}) is a constant, so gradient
    reaches ``values`` (with d δ_t / d V(s_t) = −1) and nothing else.

    Args:
        rewards: ``[T]`` or ``[T, N]`` float, r_t.
        values: same shape, V(s_t).
        next_values: same shape, V(s_{t+1}) (ignored where d_t = 1).
        dones: same shape, float 0/1 or bool.
        gamma: discount γ in [0, 1].

    Returns:
        δ: same shape, dtype and device of ``values``.
    """
    _check_pair("rewards", rewards, "values", values)
    _check_pair("values", values, "next_values", next_values)
    check_dones("dones", dones, rewards)
    gamma = check_scalar("gamma", gamma, low=0.0, high=1.0)
    # TODO: return r + gamma * (1 - d) * V(s_{t+1}) - V(s_t), where rewards and next_values get no gradient.
    raise NotImplementedError('td_errors: return r + gamma * (1 - d) * V(s_{t+1}) - V(s_t), where rewards and next_values get no gradient.')


def compute_gae(
    rewards: torch.Tensor,
    values: torch.Tensor,
    dones: torch.Tensor,
    last_value: torch.Tensor,
    gamma: float,
    lam: float,
):
    """Generalized Advantage Estimation, computed backwards in time.

        V(s_T)  = last_value                       (the state after the last step)
        δ_t     = r_t + γ (1 − d_t) V(s_{t+1}) − V(s_t)
        A_t     = δ_t + γ λ (1 − d_t) A_{t+1},     A_T = 0
        returns = A + V                            (the critic's targets)

    ``dones`` cut both the bootstrap and the recursion: nothing after an
    episode end flows back into it. λ = 0 gives A = δ (one-step TD); λ = 1
    gives A = (bootstrapped discounted return) − V. A trailing episode that
    has not ended at step T−1 is bootstrapped from ``last_value``.

    Args:
        rewards: ``[T]`` or ``[T, N]`` float, r_t.
        values: same shape, V(s_t).
        dones: same shape, float 0/1 or bool.
        last_value: V(s_T): shape ``[]`` (or ``[1]``) for ``[T]`` inputs,
            ``[N]`` (or ``[]``, broadcast) for ``[T, N]`` inputs.
        gamma: discount γ in [0, 1].
        lam: λ in [0, 1].

    Returns:
        ``(advantages, returns)``, both the shape of ``values``, its dtype and
        device, and *no gradient* (they are targets).
    """
    _check_pair("rewards", rewards, "values", values)
    check_dones("dones", dones, rewards)
    check_bootstrap("last_value", last_value, values)
    gamma = check_scalar("gamma", gamma, low=0.0, high=1.0)
    lam = check_scalar("lam", lam, low=0.0, high=1.0)
    last_value = last_value.reshape(()) if last_value.numel() == 1 and values.dim() == 1 else last_value
    # TODO: walk t = T-1 ... 0 with a running advantage: delta_t from V(s_{t+1}) (last_value at the end), A_t = delta_t + gamma*lam*(1-d_t)*A_{t+1}; return (A, A + values), detached.
    raise NotImplementedError('compute_gae: walk t = T-1 ... 0 with a running advantage: delta_t from V(s_{t+1}) (last_value at the end), A_t = delta_t + gamma*lam*(1-d_t)*A_{t+1}; return (A, A + values), detached.')


def flat_grad(scalar: torch.Tensor, params: list[torch.Tensor]) -> torch.Tensor:
    """∇ of ``scalar`` with respect to ``params``, flattened into one vector ``[num_params]``.

    Uses ``torch.autograd.grad``, so the parameters' ``.grad`` fields are not touched.
    Parameters that ``scalar`` does not depend on contribute zeros.
    """
    grads = torch.autograd.grad(scalar, params, allow_unused=True)
    return torch.cat([(torch.zeros_like(p) if g is None else g).reshape(-1) for g, p in zip(grads, params)])


def gradient_variance(
    policy: nn.Module,
    observations: list[torch.Tensor],
    actions: list[torch.Tensor],
    returns: list[torch.Tensor],
    baselines: list[torch.Tensor] | None = None,
) -> torch.Tensor:
    """Total variance of the single-episode policy-gradient estimate, across episodes.

    For each episode i = 1..E (all policy parameters θ flattened into one vector):

        g_i = ∇_θ Σ_t log π_θ(a_t | s_t) · (G_t − b_t)

    with b_t = 0 when ``baselines`` is None (baselines are constants: no
    gradient through them). The result is the sum over parameter coordinates
    j of the sample variance across episodes, with denominator E − 1:

        result = Σ_j  1/(E−1) Σ_i ( g_i[j] − mean_k g_k[j] )²

    Run it on the same episodes with and without baselines = V(s_t) to see
    how much the baseline helps.

    Args:
        policy: module mapping observations ``[T_i, obs_dim]`` to logits ``[T_i, A]``.
        observations: list of E tensors ``[T_i, obs_dim]`` float.
        actions: list of E tensors ``[T_i]`` int64.
        returns: list of E tensors ``[T_i]`` float, G_t.
        baselines: ``None`` or a list of E tensors ``[T_i]`` float, b_t.

    Returns:
        A 0-d float tensor (dtype of the policy's outputs, on its device),
        without gradient. The policy's ``.grad`` fields are left untouched.
    """
    E = len(check_tensor_list("observations", observations, min_len=2))
    lists = {"actions": actions, "returns": returns}
    if baselines is not None:
        lists["baselines"] = baselines
    for name, xs in lists.items():
        check_tensor_list(name, xs)
        if len(xs) != E:
            raise ValueError(f"{name} must hold one tensor per episode ({E}), got {len(xs)}")
    for i in range(E):
        check_tensor(f"observations[{i}]", observations[i], dims=2, dim_names="T, obs_dim", floating=True, min_size=1)
        T = observations[i].shape[0]
        check_tensor(f"actions[{i}]", actions[i], dims=1, dim_names="T", integer=True)
        for name, xs in lists.items():
            if xs[i].shape != (T,):
                raise ValueError(
                    f"{name}[{i}] must have shape [T] = [{T}] to match observations[{i}], got {shape_str(xs[i].shape)}"
                )
            if name != "actions":
                check_tensor(f"{name}[{i}]", xs[i], floating=True)
                check_finite(f"{name}[{i}]", xs[i])
    params = [p for p in policy.parameters() if p.requires_grad]
    if not params:
        raise ValueError("policy has no parameters that require gradients")
    # TODO: for each episode, g_i = flat_grad(sum_t log pi(a_t|s_t) * (G_t - b_t), params); stack to [E, num_params], take var(dim=0) (denominator E-1) and sum.
    raise NotImplementedError('gradient_variance: for each episode, g_i = flat_grad(sum_t log pi(a_t|s_t) * (G_t - b_t), params); stack to [E, num_params], take var(dim=0) (denominator E-1) and sum.')


def actor_critic_update(
    policy_optimizer: torch.optim.Optimizer | Adam,
    value_optimizer: torch.optim.Optimizer | Adam,
    value_net: nn.Module,
    episode: Episode,
    gamma: float,
    lam: float = 1.0,
    normalize_advantages: bool = True,
) -> tuple[float, float]:
    """One actor-critic update from one finished episode.

        V_t       = value_net(s_t)                                   [T], with graph
        A, G      = compute_gae(r, V, d, last_value=0, γ, λ)        d_t = 1 only at the last step
        A         ← standardize(A)                                   if normalize_advantages
        actor:  one step on  reinforce_loss(log_probs, A)    = − mean log π(a_t|s_t) · A_t
        critic: one step on  value_loss(V, G)                 = mean (V_t − G_t)²

    With λ = 1, A_t = G_t − V(s_t) is the Monte Carlo return minus the
    baseline (REINFORCE with baseline); with λ < 1 the critic's estimates
    are bootstrapped (an actor-critic). The episode's last step is treated as
    terminal (``last_value = 0``), also when it was a time-limit truncation:
    a simplification of this one-episode-at-a-time loop (PPO in ex4 handles
    truncation properly).

    Args:
        policy_optimizer: optimizer over the policy's parameters.
        value_optimizer: optimizer over ``value_net``'s parameters.
        value_net: the critic, ``[T, obs_dim] -> [T]``.
        episode: from ``collect_episode`` (log_probs carry the policy's graph).
        gamma: discount γ.
        lam: GAE λ.
        normalize_advantages: standardise A over the episode before the policy loss.

    Returns:
        ``(policy_loss, value_loss)`` as Python floats.
    """
    # TODO: evaluate value_net on the observations, compute_gae with dones = 1 at the last step and last_value = 0, standardize A if asked, then one optimizer step for each loss; return both loss values.
    raise NotImplementedError('actor_critic_update: evaluate value_net on the observations, compute_gae with dones = 1 at the last step and last_value = 0, standardize A if asked, then one optimizer step for each loss; return both loss values.')


def _eval_seed(seed: int, i: int) -> int:
    # evaluation episodes start from states the training run has not seen
    return 1_000_003 * (seed + 1) + i


def train_actor_critic(
    env_id: str = "CartPole-v1",
    episodes: int = 400,
    lr: float = 1e-2,
    gamma: float = 0.99,
    seed: int = 0,
    device: str | torch.device = "cpu",
    progress: bool = False,
    value_lr: float = 1e-2,
    lam: float = 1.0,
    normalize_advantages: bool = True,
    hidden: tuple[int, ...] = (32,),
    callback=None,
    target_return: float | None = 475.0,
    eval_every: int = 5,
    eval_episodes: int = 30,
) -> TrainResult:
    """Train a ``PolicyNet`` with a learned ``ValueNet`` baseline, one episode per update.

    For each of ``episodes`` episodes: ``collect_episode`` (ex2), then
    ``actor_critic_update``. Nothing to write here: this runs your functions.

    Args:
        env_id: gymnasium id with a discrete action space.
        episodes: number of episodes (= updates).
        lr: Adam learning rate of the policy.
        gamma: discount γ.
        seed: seeds network init (global torch RNG), the environment and the
            action sampling (a ``torch.Generator(device).manual_seed(seed)``).
        device: where the networks live.
        progress: show a tqdm progress bar.
        value_lr: Adam learning rate of the critic.
        lam: GAE λ (1.0: Monte Carlo returns minus the baseline).
        normalize_advantages: standardise the advantages of each episode.
        hidden: hidden layer widths of both networks.
        callback: optional ``callback(episode_index, policy)`` called after
            every update; returning True stops training early.
        target_return: early stopping. Every ``eval_every`` episodes the
            greedy policy plays ``eval_episodes`` evaluation episodes; training
            stops once each of them returns at least ``target_return``.
            ``None`` always trains for ``episodes`` episodes.
        eval_every: see ``target_return``. Every 5 episodes rather than 10:
            a policy that has just learnt to balance plays 500-step episodes,
            so stopping up to 5 episodes sooner saves more than the extra
            checks cost (a failed check gives up at its first short episode).
        eval_episodes: see ``target_return``.

    Returns:
        ``TrainResult(episode_returns, policy, value, log)``: ``policy`` is a
        ``PolicyNet``, ``value`` a ``ValueNet`` (rebuild either with
        ``NETWORKS[type(m).__name__](**m.config)``); ``log`` has per-update
        ``"policy_loss"``, ``"value_loss"``, cumulative ``"steps"`` and the
        wall ``"time"`` in seconds.
    """
    episodes = check_scalar("episodes", episodes, low=1, integer=True)
    lr = check_scalar("lr", lr, low=0.0, low_open=True)
    value_lr = check_scalar("value_lr", value_lr, low=0.0, low_open=True)
    gamma = check_scalar("gamma", gamma, low=0.0, high=1.0)
    lam = check_scalar("lam", lam, low=0.0, high=1.0)
    device = get_device(device)
    seed_everything(seed)
    env = make_env(env_id, seed=seed)
    obs_dim, n_actions = env.observation_space.shape[0], env.action_space.n
    policy = PolicyNet(obs_dim, n_actions, hidden=hidden).to(device)
    value_net = ValueNet(obs_dim, hidden=hidden).to(device)
    policy_optimizer = Adam(policy.parameters(), lr=lr)
    value_optimizer = Adam(value_net.parameters(), lr=value_lr)
    generator = torch.Generator(device=device).manual_seed(seed)
    episode_returns: list[float] = []
    log: dict[str, list] = {"policy_loss": [], "value_loss": [], "steps": []}
    steps, start = 0, time.perf_counter()
    for i in progress_bar(range(episodes), progress, desc="actor-critic"):
        episode = collect_episode(env, policy, device, generator)
        p_loss, v_loss = actor_critic_update(
            policy_optimizer, value_optimizer, value_net, episode, gamma, lam, normalize_advantages
        )
        episode_returns.append(episode.total_reward)
        steps += len(episode.rewards)
        log["policy_loss"].append(p_loss)
        log["value_loss"].append(v_loss)
        log["steps"].append(steps)
        if callback is not None and callback(i, policy):
            break
        if target_return is not None and (i + 1) % eval_every == 0:
            if is_solved(policy, env_id, target_return, eval_episodes, seed=_eval_seed(seed, i), device=device):
                break
    env.close()
    log["time"] = time.perf_counter() - start
    return TrainResult(episode_returns=episode_returns, policy=policy, value=value_net, log=log)
