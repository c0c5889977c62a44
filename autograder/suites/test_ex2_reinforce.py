"""Hidden suite for ex2_reinforce (25 points): REINFORCE.

sample_action 6, reinforce_loss 4, collect_episode 6, reinforce_update 4, train_reinforce 5.

Sampled quantities are never compared with the reference's samples: actions
are checked statistically (frequencies against softmax(logits)) and for
consistency (log-probabilities, environment replay, gradients recomputed here
at the student's own actions), so every correct sampler passes.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from autograder import checks
from autograder.checks import CheckFailed
from autograder.harness import Call, compare, gradients, rebuild_network, run
from autograder.student import Case, env, generator, network, tensor
from common.envs import make_env
from common.networks import PolicyNet
from common.rollout import evaluate_policy
from solutions import ex1_values as ref1
from solutions import ex2_reinforce as ref

M = "ex2_reinforce"
rng = np.random.default_rng(20261125)


def f32(a) -> torch.Tensor:
    return torch.tensor(np.asarray(a), dtype=torch.float32)


# ====================================================================== sample_action
def _pair(res, what: str = "sample_action"):
    """The (actions, log_probs) pair a sample_action call returned."""
    checks.require_ok(res, what)
    out = res.output()
    if out is None or out.kind != "sequence" or len(out.children) != 2:
        got = out.describe() if out is not None else "nothing"
        raise CheckFailed(f"{what}() should return a pair (actions, log_probs), got {got}")
    actions = checks.tensor_output(res, what, "0", "actions (the first returned value)")
    log_probs = checks.tensor_output(res, what, "1", "log_probs (the second returned value)")
    return actions, log_probs


def _check_actions(leaf, logits: torch.Tensor, dev: str, ctx: str = "", what: str = "sample_action") -> np.ndarray:
    """Actions: int64, shape logits.shape[:-1], on the device, valid indices of non -inf logits."""
    want = list(logits.shape[:-1])
    got = list(leaf.array.shape)
    c = f" ({ctx})" if ctx else ""
    if got != want:
        if got == want + [1]:
            raise CheckFailed(f"{what}(): actions have shape {got}, expected {want}{c}: drop the trailing "
                              f"dimension of size 1 (squeeze it)")
        raise CheckFailed(f"{what}(): actions have shape {got}, expected {want} (logits.shape[:-1]){c}")
    if leaf.dtype != "int64":
        raise CheckFailed(f"{what}(): actions have dtype {leaf.dtype}, expected int64 (torch.long) action "
                          f"indices{c}")
    if not checks._same_device(leaf.device, dev):
        raise CheckFailed(f"{what}(): actions are on {leaf.device}, expected {dev} (the device of the logits){c}")
    a = leaf.array.astype(np.int64)
    K = logits.shape[-1]
    if a.size and (a.min() < 0 or a.max() >= K):
        bad = int(a[(a < 0) | (a >= K)].ravel()[0])
        raise CheckFailed(f"{what}(): action {bad} is not a valid index for {K} actions{c}")
    chosen = np.take_along_axis(logits.numpy(), a[..., None], -1)[..., 0]
    if np.any(np.isneginf(chosen)):
        raise CheckFailed(f"{what}(): you sampled an action whose logit is -inf (probability 0){c}")
    return a


def _log_pi(logits: torch.Tensor, actions: np.ndarray, dim: int = -1) -> torch.Tensor:
    lp = torch.log_softmax(logits.double(), dim=dim)
    return lp.gather(-1, torch.as_tensor(actions)[..., None]).squeeze(-1)


def _logprob_mistakes(logits: torch.Tensor, actions: np.ndarray):
    a = torch.as_tensor(actions)[..., None]
    out = [
        ("probs", "log_probs holds probabilities: return log pi(a|s) (log_softmax), not softmax",
         lambda: torch.softmax(logits.double(), -1).gather(-1, a).squeeze(-1)),
        ("raw_logits", "log_probs are the raw logits of the sampled actions: normalise them, "
                       "log pi(a|s) = logits[a] - logsumexp(logits)",
         lambda: logits.double().gather(-1, a).squeeze(-1)),
        ("negated", "log_probs have the wrong sign: log pi(a|s) is <= 0 (it is not the negative log-likelihood)",
         lambda: -_log_pi(logits, actions)),
    ]
    if logits.dim() >= 2:
        out.append(("wrong_dim", "you normalised over the wrong dimension: the softmax runs over the last "
                                 "dimension (the actions)", lambda: _log_pi(logits, actions, dim=0)))
    return out


def _check_log_probs(leaf, logits: torch.Tensor, actions: np.ndarray, dev: str, ctx: str = "",
                     what: str = "sample_action") -> None:
    if list(leaf.array.shape) == list(logits.shape) and logits.shape[-1] > 1:
        raise CheckFailed(f"{what}(): log_probs has the shape of the logits: return only the log-probability of "
                          f"each sampled action (gather it with the actions), shape logits.shape[:-1]")
    checks.assert_tensor(leaf, _log_pi(logits, actions).float(), what, device=dev, label="log_probs",
                         dtype="float32", rtol=1e-4, atol=2e-5, mistakes=_logprob_mistakes(logits, actions),
                         context=ctx)


def _greedy(logits: torch.Tensor, actions: np.ndarray) -> bool:
    return bool(np.array_equal(actions, logits.argmax(-1).numpy()))


GREEDY = ("you always take the most likely action (argmax): REINFORCE must sample a ~ softmax(logits) to explore "
          "(torch.multinomial or Gumbel-max)")


@pytest.mark.function("sample_action")
@pytest.mark.points(1.5)
def test_sample_action_log_probs(sub, dev):
    """returns int64 actions of shape logits.shape[:-1] and their exact log-probabilities"""
    shapes = [((7, 3), 1.0, "[B, K] = [7, 3]"), ((5,), 1.5, "[K] = [5] (no batch dimension)"),
              ((4, 3, 6), 2.0, "[T, N, K] = [4, 3, 6]"), ((2, 1), 1.0, "a single action (K = 1)"),
              ((16, 2), 4.0, "[16, 2], large logits")]
    calls, logits_list = [], []
    for i, (shape, scale, label) in enumerate(shapes):
        logits = f32(rng.normal(size=shape) * scale)
        if label.endswith("large logits"):
            logits = logits + 40.0
        logits_list.append(logits)
        calls.append(Call(logits, generator=generator(100 + i), label=label))
    results = run(sub, M, "sample_action", calls)
    for call, logits, res in zip(calls, logits_list, results):
        actions_leaf, lp_leaf = _pair(res)
        actions = _check_actions(actions_leaf, logits, dev, call.label)
        _check_log_probs(lp_leaf, logits, actions, dev, call.label)
        checks.assert_inputs_unchanged(res, {"arg0": logits}, "sample_action")


FREQ_ROWS_4 = [[0.0, 0.0, 0.0, 0.0], [2.0, 0.0, -1.0, 0.5], [-math.inf, 1.0, 0.0, -1.0], [3.0, 0.0, 0.0, 0.0],
               [0.1, 0.2, 0.3, 0.4]]
FREQ_ROWS_2 = [[0.0, 0.0], [1.5, -0.5], [-2.0, 0.0]]
FREQ_N = 20_000
FREQ_Z = 5.5  # per-cell bound in standard deviations (false-failure rate ~1e-6 over all cells)


@pytest.mark.function("sample_action")
@pytest.mark.points(1.5)
def test_sample_action_frequencies(sub, dev):
    """sample frequencies match softmax(logits) (20,000 draws per row; -inf logits are never drawn)"""
    tables = [torch.tensor(FREQ_ROWS_4, dtype=torch.float32), torch.tensor(FREQ_ROWS_2, dtype=torch.float32)]
    calls, inputs = [], []
    for i, rows in enumerate(tables):
        logits = rows.unsqueeze(0).expand(FREQ_N, *rows.shape).contiguous()  # [n, R, K]
        inputs.append((rows, logits))
        calls.append(Call(logits, generator=generator(7 + i), label=f"{FREQ_N} copies of {rows.shape[0]} rows"))
    results = run(sub, M, "sample_action", calls, timeout=30)
    for (rows, logits), res, call in zip(inputs, results, calls):
        actions_leaf, _ = _pair(res)
        actions = _check_actions(actions_leaf, logits, dev, call.label)
        if _greedy(logits, actions):
            raise CheckFailed(f"sample_action(): {GREEDY}")
        K = rows.shape[1]
        p = torch.softmax(rows.double(), -1).numpy()  # [R, K]
        freq = np.stack([np.bincount(actions[:, r], minlength=K) / FREQ_N for r in range(rows.shape[0])])
        tol = FREQ_Z * np.sqrt(p * (1 - p) / FREQ_N) + 1e-12
        bad = np.abs(freq - p) > tol
        if bad.any():
            uniform = np.full_like(p, 1.0 / K)
            if np.all(np.abs(freq - uniform) <= FREQ_Z * np.sqrt(uniform * (1 - uniform) / FREQ_N)):
                raise CheckFailed("sample_action(): your actions are uniformly distributed whatever the logits: "
                                  "sample from softmax(logits)")
            r, k = (int(x) for x in np.argwhere(bad)[0])
            raise CheckFailed(f"sample_action(): in a row with probabilities {checks.fmt(p[r])}, action {k} was drawn "
                              f"with frequency {freq[r, k]:.4f} over {FREQ_N} draws; expected {p[r, k]:.4f} "
                              f"+- {tol[r, k]:.4f}: sample from softmax(logits) over the last dimension")


@pytest.mark.function("sample_action")
@pytest.mark.points(1)
def test_sample_action_gradient(sub, dev):
    """log_probs are differentiable w.r.t. logits: d log pi(a)/d logits = onehot(a) - softmax(logits)"""
    cases, inputs = [], []
    for i, shape in enumerate([(6, 4), (3, 2, 5), (3,)]):
        logits = f32(rng.normal(size=shape))
        w = rng.normal(size=shape[:-1])
        inputs.append((logits, w))
        cases.append(Case((tensor(logits, requires_grad=True),), {"generator": generator(40 + i)},
                          grad_weights={"1": w}))
    results = sub.call_many(M, "sample_action", cases)
    for (logits, w), res in zip(inputs, results):
        actions_leaf, _ = _pair(res)
        actions = _check_actions(actions_leaf, logits, dev)
        x = logits.double().requires_grad_(True)
        a = torch.as_tensor(actions)[..., None]
        lp = torch.log_softmax(x, -1).gather(-1, a).squeeze(-1)
        (g,) = torch.autograd.grad((lp * torch.as_tensor(w)).sum(), [x])
        onehot = torch.zeros_like(logits.double()).scatter(-1, a, 1.0)
        wt = torch.as_tensor(w)[..., None]
        mistakes = [
            ("lse_detached", "part of your log-probability is detached (the normaliser logsumexp or the softmax): "
                             "the gradient of log pi(a) w.r.t. the logits must be onehot(a) - softmax(logits)",
             lambda: wt * onehot),
        ]
        checks.assert_grad(res, "arg0", g.numpy(), "sample_action", "logits", rtol=1e-4, atol=1e-5,
                           mistakes=mistakes)


def _actions_of(res) -> np.ndarray:
    leaf, _ = _pair(res)
    if leaf.dtype != "int64":
        raise CheckFailed(f"sample_action(): actions have dtype {leaf.dtype}, expected int64")
    return leaf.array


@pytest.mark.function("sample_action")
@pytest.mark.points(1)
def test_sample_action_uses_generator(sub, dev):
    """with a generator: same seed gives the same actions whatever the global RNG, another seed others"""
    logits = f32(rng.normal(size=(64, 5)))
    cases = [Case((tensor(logits),), {"generator": generator(11)}, seed=1),
             Case((tensor(logits),), {"generator": generator(11)}, seed=2),
             Case((tensor(logits),), {"generator": generator(12)}, seed=1)]
    a, b, c = (_actions_of(r) for r in sub.call_many(M, "sample_action", cases))
    if _greedy(logits, a) and _greedy(logits, c):
        raise CheckFailed(f"sample_action(): {GREEDY}")
    if not np.array_equal(a, b):
        raise CheckFailed("sample_action(): with the same generator seed the actions changed when only the global "
                          "torch seed changed: you ignore `generator` (pass generator=generator to the sampling "
                          "call, e.g. torch.multinomial(..., generator=generator))")
    if np.array_equal(a, c):
        raise CheckFailed("sample_action(): generators with different seeds gave the same actions: draw the "
                          "samples from `generator`")


@pytest.mark.function("sample_action")
@pytest.mark.points(1)
def test_sample_action_global_rng(sub, dev):
    """without a generator the global torch RNG is used (torch.manual_seed makes it reproducible)"""
    logits = f32(rng.normal(size=(64, 5)))
    cases = [Case((tensor(logits),), {}, seed=7), Case((tensor(logits),), {}, seed=7),
             Case((tensor(logits),), {"generator": None}, seed=8)]
    a, b, c = (_actions_of(r) for r in sub.call_many(M, "sample_action", cases))
    if _greedy(logits, a) and _greedy(logits, c):
        raise CheckFailed(f"sample_action(): {GREEDY}")
    if not np.array_equal(a, b):
        raise CheckFailed("sample_action(): with generator=None, two calls after torch.manual_seed(7) gave different "
                          "actions: sample from the global torch RNG (not numpy/random or an unseeded source)")
    if np.array_equal(a, c):
        raise CheckFailed("sample_action(): with generator=None, different torch.manual_seed values gave the same "
                          "actions: use the global torch RNG when no generator is given (not a fixed Generator)")


# ====================================================================== reinforce_loss
def loss_mistakes(call: Call):
    lp, G = call.args
    lp64, G64 = lp.double(), G.double()
    return [
        ("sign", "your loss has the wrong sign: gradient ascent on the objective mean(log_probs * returns) means "
                 "minimizing its negative, -mean(log_probs * returns)", lambda: (lp64 * G64).mean()),
        ("sum", "you summed over the elements: the loss is the mean of log_probs * returns over all timesteps "
                "(and environments), not the sum", lambda: -(lp64 * G64).sum()),
        ("sum_sign", "your loss is +sum(log_probs * returns): take minus the mean", lambda: (lp64 * G64).sum()),
        ("product_of_means", "you multiplied the mean log-probability by the mean return: average the products "
                             "log_probs[t] * returns[t]", lambda: -(lp64.mean() * G64.mean())),
        ("standardized", "you standardised the returns inside the loss: reinforce_loss uses the weights it is given "
                         "(standardising is reinforce_update's job)",
         lambda: -(lp64 * (G64 - G64.mean()) / (G64.std(correction=0) + 1e-8)).mean()),
    ]


def loss_inputs(shape):
    lp = f32(-np.abs(rng.normal(size=shape)) - 0.05)
    G = f32(rng.normal(size=shape) * 3.0 + 1.0)
    return lp, G


@pytest.mark.function("reinforce_loss")
@pytest.mark.points(2)
def test_reinforce_loss_values(sub, dev):
    """-mean(log_probs * returns) as a 0-d tensor, on [T] and [T, N] inputs"""
    calls = []
    for shape in [(1,), (9,), (200,), (1, 4), (12, 3), (50, 8)]:
        lp, G = loss_inputs(shape)
        calls.append(Call(lp, G, label=f"shape {list(shape)}"))
    lp, G = loss_inputs((20, 4))
    calls.append(Call(lp, G, requires_grad=(0,), label="log_probs.requires_grad"))
    compare(sub, dev, M, "reinforce_loss", calls, ref.reinforce_loss, rtol=1e-4, atol=1e-5, mistakes=loss_mistakes)


@pytest.mark.function("reinforce_loss")
@pytest.mark.points(2)
def test_reinforce_loss_gradient(sub, dev):
    """gradient reaches log_probs (-returns / numel) and not the returns"""
    for shape, seed in [((15,), 1), ((10, 3), 2)]:
        lp, G = loss_inputs(shape)
        n = lp.numel()

        def grad_mistakes(key, G=G, n=n, seed=seed, shape=shape):
            if key != 0:
                return []
            w = float(np.random.default_rng(seed).normal(size=()))
            return [("sum", "your gradient is numel times too large: the loss is a mean over all elements, not a sum",
                     lambda: -w * G.double()),
                    ("sign", "your loss has the wrong sign: gradient ascent on the objective mean(log_probs * returns) "
                             "means minimizing its negative", lambda: w * G.double() / n)]

        gradients(sub, dev, M, "reinforce_loss", Call(lp, G), ref.reinforce_loss, expect={0: True, 1: False},
                  names={0: "log_probs", 1: "returns"}, seed=seed, mistakes=grad_mistakes)
    # the value is still right when the returns require grad (a detach, not an error)
    lp, G = loss_inputs((8, 2))
    compare(sub, dev, M, "reinforce_loss", [Call(lp, G, requires_grad=(0, 1), label="both require grad")],
            ref.reinforce_loss, mistakes=loss_mistakes)


# ====================================================================== collect_episode
def make_policy(seed: int, obs_dim: int = 4, n_actions: int = 2, hidden=(16,), head_scale: float = 120.0):
    """A PolicyNet with fixed weights and a clearly non-uniform policy (logits of order 1)."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        net = PolicyNet(obs_dim, n_actions, hidden=hidden)
    with torch.no_grad():
        net.net[-1].weight.mul_(head_scale)
        net.net[-1].bias.copy_(torch.linspace(-0.3, 0.3, n_actions))
    return net.eval()


def replay(env_id: str, env_seed: int, actions: np.ndarray, kwargs: dict, what: str = "collect_episode"):
    """Play the student's actions in a trusted copy of the environment; check where the episode ends."""
    e = make_env(env_id, seed=env_seed, **kwargs)
    try:
        obs, _ = e.reset()
        observations, rewards = [], []
        T = len(actions)
        n_act = e.action_space.n
        for t, a in enumerate(actions.tolist()):
            if not 0 <= a < n_act:
                raise CheckFailed(f"{what}(): actions[{t}] = {a} is not a valid action of {env_id}")
            observations.append(np.asarray(obs, dtype=np.float32))
            obs, r, term, trunc, _ = e.step(int(a))
            rewards.append(float(r))
            if (term or trunc) and t < T - 1:
                why = "terminated" if term else "truncated"
                hint = (" (stop when terminated OR truncated: a time limit ends the episode too)" if why == "truncated"
                        else " (stop as soon as terminated or truncated is True)")
                raise CheckFailed(f"{what}(): the environment ended the episode at step {t} ({why}=True) but your "
                                  f"episode goes on to {T} steps{hint}")
        if T and not (term or trunc):
            raise CheckFailed(f"{what}(): your episode stops after {T} steps although the environment did not end it: "
                              f"run until terminated or truncated")
        nxt = np.asarray(obs, dtype=np.float32)
        return np.stack(observations), np.asarray(rewards, dtype=np.float32), nxt
    finally:
        e.close()


def _episode_leaves(res, what: str = "collect_episode"):
    checks.require_ok(res, what)
    out = res.output()
    if out is None or out.kind != "record":
        raise CheckFailed(f"{what}() should return an Episode, got {out.describe() if out else 'nothing'}")
    leaves = {}
    for name in ("observations", "actions", "rewards", "log_probs"):
        leaves[name] = checks.tensor_output(res, what, name, f"Episode.{name}")
    leaves["total_reward"] = checks.output_leaf(res, what, "total_reward", "Episode.total_reward")
    return leaves


def _episode_actions(leaves, n_actions: int, dev: str, what: str = "collect_episode") -> np.ndarray:
    a = leaves["actions"]
    if a.array.ndim != 1 or a.array.shape[0] < 1:
        raise CheckFailed(f"{what}(): Episode.actions should have shape [T], got {list(a.array.shape)}")
    if a.dtype != "int64":
        raise CheckFailed(f"{what}(): Episode.actions has dtype {a.dtype}, expected int64")
    if not checks._same_device(a.device, dev):
        raise CheckFailed(f"{what}(): Episode.actions is on {a.device}, expected {dev} (the device argument)")
    return a.array.astype(np.int64)


def _policy_log_probs(policy, obs: np.ndarray, actions: np.ndarray, grad: bool = False):
    logits = policy(torch.as_tensor(obs))
    lp_all = torch.log_softmax(logits, -1)
    lp = lp_all.gather(-1, torch.as_tensor(actions)[:, None]).squeeze(-1)
    return (lp, lp_all) if grad else (lp.detach(), lp_all.detach())


EPISODE_CASES = [  # (env id, env seed, env kwargs, policy seed)
    ("CartPole-v1", 3, {}, 1),
    ("CartPole-v1", 17, {}, 2),
    ("CartPole-v1", 29, {"max_episode_steps": 7}, 3),  # always truncated (CartPole cannot fail in < 8 steps)
    ("Acrobot-v1", 5, {"max_episode_steps": 25}, 4),  # 3 actions, reward -1, truncated
]


def _episode_policy(env_id: str, seed: int):
    obs_dim, n_actions = (4, 2) if env_id == "CartPole-v1" else (6, 3)
    return make_policy(seed, obs_dim, n_actions)


_episode_cache: dict = {}


def _collected(sub, dev):
    """One call_many running every EPISODE_CASES entry (shared by the collect_episode tests)."""
    key = (id(sub), dev)
    if key not in _episode_cache:
        cases = []
        for i, (env_id, env_seed, kwargs, pseed) in enumerate(EPISODE_CASES):
            pol = _episode_policy(env_id, pseed)
            cases.append(Case((env(env_id, seed=env_seed, **kwargs), network(pol), dev, generator(60 + i))))
        _episode_cache[key] = sub.call_many(M, "collect_episode", cases, timeout=30)
    return _episode_cache[key]


def _label(env_id, env_seed, kwargs):
    extra = f", max_episode_steps={kwargs['max_episode_steps']}" if kwargs else ""
    return f"{env_id}, seed {env_seed}{extra}"


@pytest.mark.function("collect_episode")
@pytest.mark.points(2)
def test_collect_episode_matches_environment(sub, dev):
    """observations, rewards, the episode's end and total_reward agree with a replay of the actions"""
    for (env_id, env_seed, kwargs, pseed), res in zip(EPISODE_CASES, _collected(sub, dev)):
        ctx = _label(env_id, env_seed, kwargs)
        lv = _episode_leaves(res)
        n_act = 2 if env_id == "CartPole-v1" else 3
        actions = _episode_actions(lv, n_act, dev)
        obs, rewards, final_obs = replay(env_id, env_seed, actions, kwargs)
        T = len(actions)
        o = lv["observations"]
        if list(o.array.shape) == [T + 1, obs.shape[1]]:
            raise CheckFailed(f"collect_episode(): Episode.observations has T + 1 = {T + 1} rows for {T} actions: "
                              f"keep only the observations the actions were chosen in (not the final one) ({ctx})")
        shifted = np.concatenate([obs[1:], final_obs[None]], 0)
        mistakes = [("next_obs", "observations[t] must be the observation a_t was chosen in: store it before "
                                 "calling env.step, not the observation env.step returns", lambda: shifted)]
        checks.assert_tensor(o, obs, "collect_episode", device=dev, label="Episode.observations", dtype="float32",
                             rtol=1e-6, atol=1e-6, mistakes=mistakes, context=ctx)
        checks.assert_tensor(lv["rewards"], rewards, "collect_episode", device=dev, label="Episode.rewards",
                             dtype="float32", rtol=1e-6, atol=1e-6, context=ctx)
        tr = lv["total_reward"]
        if tr.kind not in ("number", "tensor") or tr.array is None or tr.array.size != 1:
            raise CheckFailed(f"collect_episode(): Episode.total_reward should be a float, got {tr.describe()}")
        total = float(np.asarray(tr.array, dtype=np.float64).reshape(()))
        if abs(total - float(rewards.sum())) > 1e-4:
            raise CheckFailed(f"collect_episode(): Episode.total_reward is {total:g}, but the rewards sum to "
                              f"{float(rewards.sum()):g} ({ctx})")


@pytest.mark.function("collect_episode")
@pytest.mark.points(1.5)
def test_collect_episode_log_probs(sub, dev):
    """log_probs[t] = log pi(actions[t] | observations[t]) under the policy"""
    for (env_id, env_seed, kwargs, pseed), res in zip(EPISODE_CASES, _collected(sub, dev)):
        ctx = _label(env_id, env_seed, kwargs)
        lv = _episode_leaves(res)
        n_act = 2 if env_id == "CartPole-v1" else 3
        actions = _episode_actions(lv, n_act, dev)
        obs, _, _ = replay(env_id, env_seed, actions, kwargs)
        pol = _episode_policy(env_id, pseed)
        with torch.no_grad():
            lp, lp_all = _policy_log_probs(pol, obs, actions)
        leaf = lv["log_probs"]
        got = leaf.array.astype(np.float64)
        if got.shape == tuple(lp.shape) and np.all(np.isfinite(got)) and not np.allclose(got, lp.numpy(), rtol=1e-4,
                                                                                         atol=2e-5):
            near_some = np.isclose(got[:, None], lp_all.double().numpy(), rtol=1e-4, atol=2e-5).any(1)
            if near_some.all():
                raise CheckFailed("collect_episode(): some log_probs[t] are the log-probability of another action than "
                                  "actions[t] (did you sample twice?): keep the log_prob that sample_action returned "
                                  f"together with the action you play ({ctx})")
        mistakes = [("probs", "log_probs holds probabilities: store log pi(a_t|s_t)", lambda: lp.exp())]
        checks.assert_tensor(leaf, lp, "collect_episode", device=dev, label="Episode.log_probs", dtype="float32",
                             rtol=1e-4, atol=2e-5, mistakes=mistakes, context=ctx)


@pytest.mark.function("collect_episode")
@pytest.mark.points(1.5)
def test_collect_episode_keeps_graph(sub, dev):
    """log_probs keep the autograd graph back to the policy's parameters (gradients checked here)"""
    T = 7  # CartPole cannot terminate in fewer than 8 steps: the time limit fixes T
    pol = make_policy(9)
    w = rng.normal(size=T)
    case = Case((env("CartPole-v1", seed=41, max_episode_steps=T), network(pol, requires_grad=True), dev,
                 generator(77)), grad_weights={"log_probs": w})
    (res,) = sub.call_many(M, "collect_episode", [case], timeout=30)
    lv = _episode_leaves(res)
    actions = _episode_actions(lv, 2, dev)
    obs, _, _ = replay("CartPole-v1", 41, actions, {"max_episode_steps": T})
    if lv["log_probs"].array.shape != (T,):
        raise CheckFailed(f"collect_episode(): Episode.log_probs has shape {list(lv['log_probs'].array.shape)}, "
                          f"expected [{T}]")
    lp, _ = _policy_log_probs(pol, obs, actions, grad=True)
    params = dict(pol.named_parameters())
    grads = torch.autograd.grad((lp.double() * torch.as_tensor(w)).sum(), list(params.values()))
    got_any = False
    for (name, _), g in zip(params.items(), grads):
        got = res.grads.get(f"arg1:{name}", "absent")
        if isinstance(got, str):
            raise CheckFailed("collect_episode(): could not compute the gradient for the policy's parameters")
        if got is not None and np.any(got):
            got_any = True
    if not got_any:
        raise CheckFailed("collect_episode(): Episode.log_probs carry no gradient to the policy's parameters: do not "
                          "detach them (no torch.no_grad(), .detach() or .item() on the log-probabilities); "
                          "REINFORCE differentiates them")
    for (name, _), g in zip(params.items(), grads):
        exp = g.numpy()
        atol = 1e-5 * float(np.abs(exp).max()) + 1e-7
        checks.assert_grad(res, f"arg1:{name}", exp, "collect_episode", f"the policy parameter {name!r}",
                           rtol=1e-3, atol=atol)


@pytest.mark.function("collect_episode")
@pytest.mark.points(1)
def test_collect_episode_uses_generator(sub, dev):
    """actions come from `generator`: the same seeds replay the same episode, another generator seed another"""
    pol = make_policy(5)
    mk = lambda g, s: Case((env("CartPole-v1", seed=13), network(pol), dev, generator(g)), seed=s)  # noqa: E731
    results = sub.call_many(M, "collect_episode", [mk(21, 1), mk(21, 2), mk(22, 1)], timeout=30)
    a, b, c = (_episode_actions(_episode_leaves(r), 2, dev) for r in results)
    if not np.array_equal(a, b):
        raise CheckFailed("collect_episode(): with the same env and generator seeds the episode changed when only the "
                          "global torch seed changed: pass `generator` on to sample_action")
    if np.array_equal(a, c):
        raise CheckFailed("collect_episode(): generators with different seeds produced the same episode: sample the "
                          "actions (with sample_action) using `generator`")


# ====================================================================== reinforce_update
UPDATE_LR = 1e-2
UPDATE_CASES = [  # (seed, normalize_returns, gamma)
    (101, True, 0.99),
    (102, False, 0.9),
    (103, True, 0.5),
]
_update_cache: dict = {}
_train_cache: dict = {}


def _initial_policy(seed: int, config: dict) -> PolicyNet:
    """train_reinforce's policy before any update: seed_everything(seed) then PolicyNet(**config)."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return PolicyNet(**config)


def _via_train_error(res) -> None:
    if res.ok:
        return
    e = res.error or {}
    where = f" ({e['where']})" if e.get("where") else ""
    if res.not_implemented:
        raise CheckFailed(f"reinforce_update() is graded through train_reinforce(episodes=1), which raised "
                          f"NotImplementedError{where}: a function it calls is not implemented yet")
    raise CheckFailed(f"reinforce_update() is graded through train_reinforce(episodes=1), which failed: "
                      f"{res.error_text()}")


def _loss_number(leaf) -> float:
    seq = leaf
    if seq is None or seq.kind not in ("sequence", "numbers"):
        raise CheckFailed("reinforce_update(): train_reinforce's log['loss'] should be a list of the losses "
                          "reinforce_update returned")
    if seq.kind == "numbers":
        vals = list(seq.array)
    else:
        vals = []
        for k in sorted(seq.children, key=int):
            c = seq.children[k]
            if c.kind not in ("number", "tensor") or c.array is None or c.array.size != 1:
                raise CheckFailed(f"reinforce_update() should return the loss as a Python float, got {c.describe()}")
            vals.append(float(np.asarray(c.array, dtype=np.float64).reshape(())))
    if len(vals) != 1:
        raise CheckFailed(f"reinforce_update(): train_reinforce(episodes=1) logged {len(vals)} losses, expected 1")
    return float(vals[0])


SEED_CASES = [5, 5, 6]  # train_reinforce(episodes=4, seed=s): reproducibility on a small budget


def _train_runs(sub, dev):
    """Every short train_reinforce run of the suite, in ONE child (each child that builds an optimizer pays
    for torch's lazy imports once): episodes=1 per UPDATE_CASES entry, then episodes=4 per SEED_CASES entry."""
    key = (id(sub), dev)
    if key not in _train_cache:
        calls = [Call(env_id="CartPole-v1", episodes=1, lr=UPDATE_LR, gamma=g, seed=s, device=dev,
                      normalize_returns=n) for s, n, g in UPDATE_CASES]
        calls += [Call(env_id="CartPole-v1", episodes=4, seed=s, device=dev) for s in SEED_CASES]
        _train_cache[key] = run(sub, M, "train_reinforce", calls, timeout=60)
    return _train_cache[key]


def _update_runs(sub, dev):
    """train_reinforce(episodes=1) per case, plus collect_episode with the same seeds to learn its episode."""
    key = (id(sub), dev)
    if key in _update_cache:
        return _update_cache[key]
    train = _train_runs(sub, dev)[:len(UPDATE_CASES)]
    inits = []
    for (s, n, g), res in zip(UPDATE_CASES, train):
        config = {"obs_dim": 4, "n_actions": 2, "hidden": [32], "activation": "tanh"}
        if res.ok and res.output("policy") is not None and res.output("policy").kind == "network":
            config = dict(res.output("policy").info.get("config") or config)
        try:
            inits.append(_initial_policy(s, config))
        except Exception:
            inits.append(_initial_policy(s, {"obs_dim": 4, "n_actions": 2, "hidden": [32]}))
    cases = [Case((env("CartPole-v1", seed=s), network(p0), dev, generator(s)))
             for (s, _, _), p0 in zip(UPDATE_CASES, inits)]
    collect = sub.call_many(M, "collect_episode", cases, timeout=30)
    _update_cache[key] = (train, inits, collect)
    return _update_cache[key]


def _returns(rewards: torch.Tensor, gamma: float, normalize: bool, std_correction: int = 0) -> torch.Tensor:
    dones = torch.zeros_like(rewards)
    dones[-1] = 1.0
    G = ref1.discounted_returns(rewards, dones, gamma)
    if normalize:
        G = (G - G.mean()) / (G.std(correction=std_correction) + 1e-8)
    return G


def _update_data(sub, dev, i: int):
    """What the checks of case i need: the student's logged loss and trained policy, the replayed episode."""
    train, inits, collect = _update_runs(sub, dev)
    seed, normalize, gamma = UPDATE_CASES[i]
    res = train[i]
    _via_train_error(res)
    out = res.output()
    if out is None or out.kind != "record":
        raise CheckFailed(f"reinforce_update(): train_reinforce should return a TrainResult, got "
                          f"{out.describe() if out else 'nothing'}")
    cres = collect[i]
    if not cres.ok:
        raise CheckFailed("reinforce_update() could not be checked: collect_episode (which train_reinforce uses) "
                          f"fails: {cres.error_text()}")
    lv = _episode_leaves(cres)
    actions = _episode_actions(lv, 2, dev)
    rets = res.output("episode_returns")
    first = None
    if rets is not None and rets.kind == "sequence" and rets.children:
        c0 = rets.children.get("0")
        if c0 is not None and c0.array is not None and c0.array.size == 1:
            first = float(np.asarray(c0.array).reshape(()))
    if first is None or abs(first - len(actions)) > 1e-6:
        raise CheckFailed("reinforce_update() could not be checked: the episode train_reinforce(seed=s) collected "
                          "differs from collect_episode run with the same seeds (env seed s, generator seed s); "
                          "draw every action from `generator` (and keep train_reinforce as given)")
    obs, rewards, _ = replay("CartPole-v1", seed, actions, {})
    lp_student = torch.as_tensor(lv["log_probs"].array.astype(np.float64))
    return dict(seed=seed, normalize=normalize, gamma=gamma, res=res, p0=inits[i], actions=actions, obs=obs,
                rewards=torch.as_tensor(rewards), lp_student=lp_student,
                loss=_loss_number(res.output("log.loss")))


def _update_loss_mistakes(lp, rewards, gamma, normalize):
    total = torch.full_like(rewards.double(), float(rewards.sum()))
    return [
        ("not_normalized" if normalize else "normalized",
         ("you did not standardise the returns although normalize_returns=True: G <- (G - mean G) / (std G + 1e-8)"
          if normalize else "you standardised the returns although normalize_returns=False"),
         lambda: -(lp * _returns(rewards, gamma, not normalize)).mean()),
        ("no_discount", "your returns are not discounted: use discounted_returns(rewards, dones, gamma) with the "
                        "gamma you are given", lambda: -(lp * _returns(rewards, 1.0, normalize)).mean()),
        ("total_reward", "you weight every log-probability by the episode's total reward: REINFORCE uses the "
                         "return from step t onwards, G_t (reward-to-go)",
         lambda: -(lp * ((total - total.mean()) / (total.std(correction=0) + 1e-8) if normalize else total)).mean()),
        ("sign", "your loss has the wrong sign: minimise -mean(log_probs * G)",
         lambda: (lp * _returns(rewards, gamma, normalize)).mean()),
        ("sum", "your loss is a sum over the episode: reinforce_loss takes the mean",
         lambda: -(lp * _returns(rewards, gamma, normalize)).sum()),
    ]


@pytest.mark.function("reinforce_update")
@pytest.mark.points(2)
def test_reinforce_update_loss(sub, dev):
    """returns the loss of the episode: reinforce_loss(log_probs, discounted returns, standardised if asked)"""
    for i in range(len(UPDATE_CASES)):
        d = _update_data(sub, dev, i)
        lp = d["lp_student"]
        accepted = [float(-(lp * _returns(d["rewards"], d["gamma"], d["normalize"], c)).mean()) for c in (0, 1)]
        got = d["loss"]
        if any(abs(got - a) <= 1e-5 + 1e-4 * abs(a) for a in accepted):
            continue
        ctx = f"gamma={d['gamma']}, normalize_returns={d['normalize']}"
        for _, msg, make in _update_loss_mistakes(lp, d["rewards"], d["gamma"], d["normalize"]):
            wrong = float(make())
            if abs(got - wrong) <= 1e-5 + 1e-4 * abs(wrong):
                raise CheckFailed(f"reinforce_update(): {msg} ({ctx})")
        raise CheckFailed(f"reinforce_update(): the loss of the first update is {got:.6g}, expected {accepted[0]:.6g} "
                          f"({ctx})")


def _adam_step(p0: PolicyNet, obs, actions, G) -> tuple[dict, dict]:
    """One Adam step (lr UPDATE_LR, default betas/eps) of reinforce_loss from p0: (new params, gradients).

    Adam's first step from zero moments is exactly p - lr * g / (|g| + eps) (the bias corrections cancel);
    it is written out here so the trusted parent needs no torch.optim.
    """
    net = PolicyNet(**p0.config)
    net.load_state_dict(p0.state_dict())
    lp, _ = _policy_log_probs(net, obs, actions, grad=True)
    loss = -(lp * G.float()).mean()
    names, params = zip(*net.named_parameters())
    grads = torch.autograd.grad(loss, params)
    new, gd = {}, {}
    for n, p, g in zip(names, params, grads):
        g = g.detach().double()
        gd[n] = g
        new[n] = p.detach().double() - UPDATE_LR * g / (g.abs() + 1e-8)
    return new, gd


@pytest.mark.function("reinforce_update")
@pytest.mark.points(2)
def test_reinforce_update_step(sub, dev):
    """takes one optimizer step down the gradient of that loss (the policy moves as one Adam step predicts)"""
    for i in range(len(UPDATE_CASES)):
        d = _update_data(sub, dev, i)
        ctx = f"gamma={d['gamma']}, normalize_returns={d['normalize']}"
        trained = rebuild_network(d["res"].output("policy"), "train_reinforce")
        p0 = dict(d["p0"].named_parameters())
        p1 = dict(trained.named_parameters())
        if set(p0) != set(p1) or any(p0[n].shape != p1[n].shape for n in p0):
            raise CheckFailed("reinforce_update() could not be checked: train_reinforce's policy does not have the "
                              "architecture it was built with")
        delta = {n: (p1[n].detach().double() - p0[n].detach().double()) for n in p0}
        if max(float(v.abs().max()) for v in delta.values()) < 0.05 * UPDATE_LR:
            raise CheckFailed("reinforce_update(): the policy did not change: call optimizer.zero_grad(), "
                              "loss.backward() and optimizer.step(), in that order")
        with torch.no_grad():
            lp_parent, _ = _policy_log_probs(d["p0"], d["obs"], d["actions"])
        if not np.allclose(lp_parent.numpy(), d["lp_student"].numpy(), rtol=1e-4, atol=2e-5):
            continue  # collect_episode's log-probs are wrong (graded there); only the change above is checked
        G = _returns(d["rewards"], d["gamma"], d["normalize"])
        expected, grads = _adam_step(d["p0"], d["obs"], d["actions"], G)

        def matches(exp_params, grads=grads):
            for n in p0:
                sig = grads[n].abs() > 1e-5
                want = exp_params[n] - p0[n].detach().double()
                if not torch.allclose(delta[n][sig], want[sig], atol=0.05 * UPDATE_LR, rtol=0):
                    return False
            return True

        if matches(expected):
            continue
        variants = [
            ("you did not standardise the returns although normalize_returns=True" if d["normalize"] else
             "you standardised the returns although normalize_returns=False",
             _returns(d["rewards"], d["gamma"], not d["normalize"])),
            ("your update goes up the loss: minimise reinforce_loss (optimizer.step() after loss.backward())",
             -G),
            ("your returns are not discounted: use discounted_returns with the gamma you are given",
             _returns(d["rewards"], 1.0, d["normalize"])),
        ]
        for msg, Gv in variants:
            if matches(_adam_step(d["p0"], d["obs"], d["actions"], Gv)[0]):
                raise CheckFailed(f"reinforce_update(): {msg} ({ctx})")
        raise CheckFailed("reinforce_update(): after one update the policy's parameters are not where one Adam step "
                          "on reinforce_loss(episode.log_probs, returns) takes them: backpropagate that loss through "
                          f"the episode's log_probs and step the optimizer once ({ctx})")


# ====================================================================== train_reinforce
LEARN_SEED = 2026
LEARN_EPISODES = 200
LEARN_EVAL_SEED = 777_001
LEARN_EVAL_EPISODES = 20
LEARN_THRESHOLD = 100.0


def _curve(res, what="train_reinforce") -> list[float]:
    leaf = checks.output_leaf(res, what, "episode_returns", "TrainResult.episode_returns")
    if leaf.kind == "numbers":
        return [float(x) for x in leaf.array]
    if leaf.kind == "sequence":
        vals = []
        for k in sorted(leaf.children, key=int):
            c = leaf.children[k]
            if c.kind not in ("number", "tensor") or c.array is None or c.array.size != 1:
                raise CheckFailed(f"{what}(): episode_returns should hold numbers, got {c.describe()}")
            vals.append(float(np.asarray(c.array, dtype=np.float64).reshape(())))
        return vals
    raise CheckFailed(f"{what}(): episode_returns should be a list of floats, got {leaf.describe()}")


@pytest.mark.function("train_reinforce")
@pytest.mark.points(3.5)
@pytest.mark.learning
def test_train_reinforce_learns_cartpole(sub, dev):
    """learns CartPole-v1: the greedy policy averages >= 100 on new episodes after <= 200 training episodes"""
    res = sub.call("ex2_reinforce", "train_reinforce", env_id="CartPole-v1", episodes=LEARN_EPISODES, lr=1e-2,
                   gamma=0.99, seed=LEARN_SEED, device=dev, normalize_returns=True, timeout=120)
    checks.require_ok(res, "train_reinforce")
    curve = _curve(res)
    if not 1 <= len(curve) <= LEARN_EPISODES:
        raise CheckFailed(f"train_reinforce(): {len(curve)} episode returns for episodes={LEARN_EPISODES}")
    policy = rebuild_network(res.output("policy"), "train_reinforce")
    scores = evaluate_policy(policy, "CartPole-v1", episodes=LEARN_EVAL_EPISODES, seed=LEARN_EVAL_SEED, greedy=True)
    mean = float(np.mean(scores))
    if mean < LEARN_THRESHOLD:
        raise CheckFailed(f"train_reinforce(): after {len(curve)} training episodes the greedy policy averages "
                          f"{mean:.1f} over {LEARN_EVAL_EPISODES} new CartPole-v1 episodes (evaluated by the "
                          f"grader); it should reach {LEARN_THRESHOLD:.0f}. Check the sign of the loss, the "
                          f"sampling and the returns")


@pytest.mark.function("train_reinforce")
@pytest.mark.points(1.5)
def test_train_reinforce_seed(sub, dev):
    """the seed makes training reproducible: same seed, same run; another seed, another run"""
    results = _train_runs(sub, dev)[len(UPDATE_CASES):]
    curves, weights = [], []
    for res in results:
        checks.require_ok(res, "train_reinforce")
        curves.append(_curve(res))
        pol = rebuild_network(res.output("policy"), "train_reinforce")
        weights.append(np.concatenate([p.detach().numpy().ravel() for p in pol.parameters()]))
    if curves[0] != curves[1] or not np.array_equal(weights[0], weights[1]):
        raise CheckFailed("train_reinforce(): two runs with the same seed differ: all randomness must come from the "
                          "seed (the generator passed to collect_episode / sample_action, the seeded env)")
    if curves[0] == curves[2] and np.array_equal(weights[0], weights[2]):
        raise CheckFailed("train_reinforce(): runs with different seeds are identical: the seed is ignored")
