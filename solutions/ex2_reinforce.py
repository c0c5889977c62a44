"""Exercise 2: REINFORCE (the chapter's Exercise 1).

The policy-gradient theorem says

    ∇_θ J(θ) = E[ Σ_t ∇_θ log π_θ(a_t | s_t) · G_t ]

so after running one episode with π_θ we can ascend the gradient of the
surrogate  Σ_t log π_θ(a_t|s_t) · G_t  in which the returns G_t are constants.
You write the four pieces of that loop:

1. ``sample_action``    draw a_t ~ softmax(logits) and keep log π(a_t|s_t).
2. ``reinforce_loss``   the surrogate as a loss to *minimise*: −mean(log π · G).
3. ``collect_episode``  run the policy in a gymnasium environment for one episode.
4. ``reinforce_update`` returns → loss → one optimizer step.
``train_reinforce`` then repeats collect → update (it is given).

Returns come from ``discounted_returns`` of exercise 1. Randomness: every
sample is drawn from an explicit ``torch.Generator`` when one is given, so a
training run is reproducible from its seed.
"""

from __future__ import annotations

import time

import torch
from torch import nn

from common.adam import Adam
from common.device import get_device, seed_everything
from common.envs import make_env
from common.networks import PolicyNet
from common.rollout import Episode, TrainResult, is_solved, progress_bar, standardize
from common.validate import check_finite, check_same_device, check_same_shape, check_scalar, check_tensor

from .ex1_values import discounted_returns

__all__ = ["sample_action", "reinforce_loss", "collect_episode", "reinforce_update", "train_reinforce"]


def sample_action(logits: torch.Tensor, generator: torch.Generator | None = None):
    """Sample actions from the categorical distribution softmax(logits).

        π(a | s) = exp(logits[a]) / Σ_b exp(logits[b])
        a ~ π(· | s),   log_prob = log π(a | s)

    Args:
        logits: ``[..., A]`` float, unnormalised log-probabilities over A
            actions (any number of leading batch dimensions, also none).
        generator: ``torch.Generator`` on the device of ``logits``; the global
            torch RNG is used when ``None``. (``torch.distributions.Categorical``
            cannot take a generator; ``torch.multinomial`` can.)

    Returns:
        actions: int64 tensor of shape ``logits.shape[:-1]``, on the device of ``logits``.
        log_probs: float tensor of the same shape and the dtype of ``logits``,
            log π(actions), differentiable with respect to ``logits``.
    """
    check_tensor("logits", logits, floating=True)
    if logits.dim() == 0 or logits.shape[-1] == 0:
        raise ValueError("logits must have shape [..., A] with at least one action")
    check_finite("logits", logits, allow_neg_inf=True)
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
    ### BEGIN SOLUTION
    # TODO: take log_softmax over the last dim, sample one action per row with torch.multinomial(..., generator=generator), gather the chosen log-probabilities.
    log_pi = torch.log_softmax(logits, dim=-1)  # [..., A], stable even for large logits
    # multinomial wants a 2-d [rows, A] matrix of probabilities and no graph.
    probs = log_pi.detach().exp().reshape(-1, logits.shape[-1])
    actions = torch.multinomial(probs, 1, generator=generator).reshape(logits.shape[:-1])
    log_probs = log_pi.gather(-1, actions.unsqueeze(-1)).squeeze(-1)  # keeps the graph to logits
    return actions, log_probs
    ### END SOLUTION


def reinforce_loss(log_probs: torch.Tensor, returns: torch.Tensor) -> torch.Tensor:
    """The REINFORCE loss (a surrogate whose gradient is minus the policy gradient).

        L(θ) = − mean_t [ log π_θ(a_t|s_t) · G_t ]

    Args:
        log_probs: ``[T]`` or ``[T, N]`` float, log π(a_t|s_t) with the graph
            back to the policy.
        returns: same shape, G_t (or any weight: normalised returns,
            advantages). Treated as constants: no gradient reaches them.

    Returns:
        A 0-d tensor, dtype and device of ``log_probs``.
    """
    check_tensor("log_probs", log_probs, dims=(1, 2), dim_names="T, N", floating=True, min_size=1)
    check_tensor("returns", returns, floating=True)
    check_same_shape(log_probs=log_probs, returns=returns)
    check_same_device(log_probs=log_probs, returns=returns)
    check_finite("log_probs", log_probs)
    check_finite("returns", returns)
    ### BEGIN SOLUTION
    # TODO: return minus the mean of log_probs times the returns, with the returns detached.
    # detach: G_t is data about what happened, not something to optimise.
    return -(log_probs * returns.detach()).mean()
    ### END SOLUTION


def collect_episode(
    env,
    policy: nn.Module,
    device: str | torch.device = "cpu",
    generator: torch.Generator | None = None,
) -> Episode:
    """Run one full episode with ``policy`` and record it.

    The environment was created *and seeded* by the caller, so start with a
    plain ``env.reset()`` (no seed). At each step: turn the observation into a
    float32 tensor on ``device``, get logits from the policy, sample an action
    with ``sample_action`` (passing ``generator``), step the environment with
    the action as a Python int, and stop when ``terminated or truncated``.

    Args:
        env: a gymnasium environment with a discrete action space.
        policy: module mapping an observation ``[obs_dim]`` to logits ``[A]``.
        device: where observations are sent (the policy's device).
        generator: ``torch.Generator`` on ``device`` for the action sampling.

    Returns:
        ``Episode`` with, for an episode of T steps:
        observations ``[T, obs_dim]`` float32, actions ``[T]`` int64,
        rewards ``[T]`` float32 (all on ``device``), log_probs ``[T]`` *with*
        the graph back to the policy, total_reward = Σ_t r_t as a float.
    """
    device = get_device(device)
    observations, actions, rewards, log_probs = [], [], [], []
    obs, _ = env.reset()
    ### BEGIN SOLUTION
    # TODO: loop until terminated or truncated: policy(obs) -> sample_action -> env.step(action.item()); append obs, action, reward, log_prob to the lists.
    done = False
    while not done:
        obs_t = torch.as_tensor(obs, dtype=torch.float32, device=device)
        action, log_prob = sample_action(policy(obs_t), generator)
        obs_next, reward, terminated, truncated, _ = env.step(action.item())
        observations.append(obs_t)
        actions.append(action)
        rewards.append(float(reward))
        log_probs.append(log_prob)
        obs = obs_next
        done = terminated or truncated
    ### END SOLUTION
    rewards_t = torch.tensor(rewards, dtype=torch.float32, device=device)
    return Episode(
        observations=torch.stack(observations),
        actions=torch.stack(actions).long(),
        rewards=rewards_t,
        log_probs=torch.stack(log_probs),
        total_reward=float(sum(rewards)),
    )


def reinforce_update(
    optimizer: torch.optim.Optimizer | Adam,
    episode: Episode,
    gamma: float,
    normalize_returns: bool = True,
) -> float:
    """One REINFORCE update from one finished episode.

        G_t = discounted_returns(r, d, γ)   with d_t = 1 only at the last step
        G   ← (G − mean G) / (std G + 1e-8)        if normalize_returns
        θ   ← optimizer step on  reinforce_loss(log_probs, G)

    Standardising the returns of each episode acts as a crude baseline (about
    half of the actions are pushed down) and keeps the step size similar for
    short and long episodes; use ``standardize`` from ``common.rollout``.

    Args:
        optimizer: optimizer over the policy's parameters.
        episode: from ``collect_episode``; ``episode.log_probs [T]`` carries
            the graph back to the policy.
        gamma: discount γ.
        normalize_returns: standardise G before the loss.

    Returns:
        The loss value as a Python float.
    """
    ### BEGIN SOLUTION
    # TODO: compute the returns (dones = 1 only at the last step), standardize them if asked, then zero_grad / backward of reinforce_loss / step; return loss.item().
    dones = torch.zeros_like(episode.rewards)
    dones[-1] = 1.0  # the episode ends at its last step (terminated or truncated)
    returns = discounted_returns(episode.rewards, dones, gamma)
    if normalize_returns:
        returns = standardize(returns)
    loss = reinforce_loss(episode.log_probs, returns)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()
    ### END SOLUTION


def _eval_seed(seed: int, i: int) -> int:
    # evaluation episodes start from states the training run has not seen
    return 1_000_003 * (seed + 1) + i


def train_reinforce(
    env_id: str = "CartPole-v1",
    episodes: int = 500,
    lr: float = 1e-2,
    gamma: float = 0.99,
    seed: int = 0,
    device: str | torch.device = "cpu",
    normalize_returns: bool = True,
    progress: bool = False,
    hidden: tuple[int, ...] = (32,),
    callback=None,
    target_return: float | None = 475.0,
    eval_every: int = 5,
    eval_episodes: int = 30,
) -> TrainResult:
    """Train a ``PolicyNet`` with REINFORCE: one episode per update.

    For each of ``episodes`` episodes: ``collect_episode`` then
    ``reinforce_update`` (returns, optional standardisation, one Adam step on
    ``reinforce_loss``). Nothing to write here: this runs your functions.

    Args:
        env_id: gymnasium id with a discrete action space.
        episodes: number of episodes (= updates).
        lr: Adam learning rate.
        gamma: discount γ.
        seed: seeds network init (global torch RNG), the environment and the
            action sampling (a ``torch.Generator(device).manual_seed(seed)``).
        device: where the policy lives.
        normalize_returns: standardise the returns of each episode.
        progress: show a tqdm progress bar.
        hidden: hidden layer widths of the policy.
        callback: optional ``callback(episode_index, policy)`` called after
            every update; returning True stops training early.
        target_return: early stopping. Every ``eval_every`` episodes the
            greedy policy plays ``eval_episodes`` evaluation episodes (fresh
            environment seeds); training stops once *each* of them returns at
            least ``target_return`` (the task is solved, more episodes only
            cost time). ``None`` always trains for ``episodes`` episodes.
        eval_every: see ``target_return``. Every 5 episodes rather than 10:
            a policy that has just learnt to balance plays 500-step episodes,
            so stopping up to 5 episodes sooner saves more than the extra
            checks cost (a failed check gives up at its first short episode).
        eval_episodes: see ``target_return``.

    Returns:
        ``TrainResult(episode_returns, policy, value=None, log)``; ``policy`` is
        a ``PolicyNet`` (rebuild: ``PolicyNet(**policy.config)``);
        ``log["loss"]`` holds the loss of each update, ``log["steps"]`` the
        cumulative environment steps, ``log["time"]`` the wall time in seconds.
    """
    episodes = check_scalar("episodes", episodes, low=1, integer=True)
    lr = check_scalar("lr", lr, low=0.0, low_open=True)
    gamma = check_scalar("gamma", gamma, low=0.0, high=1.0)
    device = get_device(device)
    seed_everything(seed)
    env = make_env(env_id, seed=seed)
    policy = PolicyNet(env.observation_space.shape[0], env.action_space.n, hidden=hidden).to(device)
    optimizer = Adam(policy.parameters(), lr=lr)
    generator = torch.Generator(device=device).manual_seed(seed)
    episode_returns: list[float] = []
    log: dict[str, list] = {"loss": [], "steps": []}
    steps, start = 0, time.perf_counter()
    for i in progress_bar(range(episodes), progress, desc="REINFORCE"):
        episode = collect_episode(env, policy, device, generator)
        loss = reinforce_update(optimizer, episode, gamma, normalize_returns)
        episode_returns.append(episode.total_reward)
        steps += len(episode.rewards)
        log["loss"].append(loss)
        log["steps"].append(steps)
        if callback is not None and callback(i, policy):
            break
        if target_return is not None and (i + 1) % eval_every == 0:
            if is_solved(policy, env_id, target_return, eval_episodes, seed=_eval_seed(seed, i), device=device):
                break
    env.close()
    log["time"] = time.perf_counter() - start
    return TrainResult(episode_returns=episode_returns, policy=policy, value=None, log=log)
