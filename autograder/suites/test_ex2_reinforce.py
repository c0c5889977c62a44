"""Hidden suite for ex2_reinforce (25 points): REINFORCE.

sample_action 6, reinforce_loss 4, collect_episode 6, reinforce_update 4, train_reinforce 5.

Answers come through the answer seam (``ref = answers(M)``, autograder/answers/
ex2_reinforce.py; recorded in a student kit), computed from the suite's inputs
only. Sampled quantities are never compared with the reference's samples:
actions are checked statistically (frequencies against softmax(logits)) and for
consistency: the seam gives log-probabilities and their gradients for EVERY
action, read here at the student's own actions; a collected episode is replayed
in a trusted copy of the environment and its log-probabilities are checked with
torch's Categorical (states the student's actions chose have no recorded
answer). So every correct sampler passes.

``reinforce_update`` needs an optimizer and an ``Episode``, which the sandbox
cannot build from plain specs: a small trusted driver module run next to the
student's files in a second sandbox builds them (see ``_DRIVER``).
``train_reinforce`` is graded by evaluating the returned policy here, in the
parent, on environment seeds the child never sees.
"""
from __future__ import annotations

import math
import sys

import numpy as np
import pytest
import torch

from autograder import checks
from autograder.checks import CheckFailed
from autograder.harness import (PLAIN_SGD_SOURCE, Call, EachRead, compare, episode_returns, gradients, later, named,
                               rebuild_network, run, to_case, training_runs)
from autograder.client import Case, env, generator, network, tensor
from common.envs import make_env
from common.networks import PolicyNet
from common.rollout import evaluate_policy
from autograder.oracle import answers
from autograder.seeds import shared_inputs

M = "ex2_reinforce"
ref = answers(M)  # the reference and the mistake variants (live, or recorded in a student kit)
rng = np.random.default_rng(20261125)


def f32(a) -> torch.Tensor:
    return torch.tensor(np.asarray(a), dtype=torch.float32)


def at_actions(table, actions: np.ndarray) -> torch.Tensor:
    """``table[..., a]``: a table over every action, read at the actions the submission drew."""
    return torch.from_numpy(np.take_along_axis(checks.to_numpy(table), actions[..., None], -1)[..., 0])


def rows_at_actions(table, actions: np.ndarray) -> np.ndarray:
    """``table[..., a, :]``: a gradient table over every action, read at the actions the submission drew."""
    return np.take_along_axis(checks.to_numpy(table), actions[..., None, None], -2)[..., 0, :]


# ====================================================================== sample_action
def _pair(res, what: str = "sample_action"):
    """The (actions, log_probs) pair a sample_action call returned."""
    checks.require_ok(res, what)
    out = res.output()
    if out is None or out.kind != "sequence" or len(out.children) != 2:
        got = out.describe() if out is not None else "nothing"
        raise CheckFailed(f"{what}() should return a pair (actions, log_probs), got {got}")
    actions = checks.tensor_output(res, what, "0", "actions (the first returned value)")
    lp = checks.tensor_output(res, what, "1", "log_probs (the second returned value)")
    return actions, lp


def _check_actions(leaf, logits: torch.Tensor, dev: str, ctx: str = "", what: str = "sample_action") -> np.ndarray:
    """Actions: int64, shape logits.shape[:-1], on the device, valid indices of non -inf logits."""
    want = list(logits.shape[:-1])
    got = list(leaf.array.shape)
    c = f" ({ctx})" if ctx else ""
    if got != want:
        if got == want + [1]:
            raise CheckFailed(f"{what}(): actions have shape {got}, expected {want}{c}: drop the trailing "
                              f"dimension of size 1 (squeeze it)")
        if 1 in want and got == [n for n in want if n != 1]:
            raise CheckFailed(f"{what}(): actions have shape {got}, expected {want}{c}: a plain .squeeze() also "
                              f"drops batch dimensions of size 1; squeeze only the last dimension (squeeze(-1))")
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


LOGPROB_MESSAGES = {
    "probs": "log_probs holds probabilities: return log pi(a|s) (log_softmax), not softmax",
    "raw_logits": "log_probs are the raw logits of the sampled actions: normalise them, "
                  "log pi(a|s) = logits[a] - logsumexp(logits)",
    "negated": "log_probs have the wrong sign: log pi(a|s) is <= 0 (it is not the negative log-likelihood)",
    "wrong_dim": "you normalised over the wrong dimension: the softmax runs over the last dimension (the actions)",
}


def _logprob_mistakes(tables, actions: np.ndarray) -> EachRead:
    """Each mistake's table (from the answers, over every action) read at the submission's actions."""
    return EachRead(tables, lambda table: at_actions(table, actions))


def _check_log_probs(leaf, logits: torch.Tensor, actions: np.ndarray, dev: str, ctx: str = "",
                     what: str = "sample_action") -> None:
    expected = at_actions(ref.log_pi_table(logits), actions).float()
    mistakes = _logprob_mistakes(named(LOGPROB_MESSAGES, lambda: ref.log_pi_variants(logits)), actions)
    if list(leaf.array.shape) == list(logits.shape) and logits.shape[-1] > 1:
        raise CheckFailed(f"{what}(): log_probs has the shape of the logits: return only the log-probability of "
                          f"each sampled action (gather it with the actions), shape logits.shape[:-1]")
    want = list(logits.shape[:-1])
    c = f" ({ctx})" if ctx else ""
    if 1 in want and list(leaf.array.shape) == [n for n in want if n != 1]:
        raise CheckFailed(f"{what}(): log_probs has shape {list(leaf.array.shape)}, expected {want}{c}: a plain "
                          f".squeeze() also drops batch dimensions of size 1; squeeze only the last dimension "
                          f"(squeeze(-1))")
    if (list(leaf.array.shape) == want and not np.all(np.isfinite(leaf.array))
            and float(logits[torch.isfinite(logits)].max()) > 80.0):
        raise CheckFailed(f"{what}(): log_probs are not finite for large logits (around 100){c}: exp(logits) "
                          f"overflows float32 there; compute log pi(a|s) stably with torch.log_softmax (or "
                          f"logits - torch.logsumexp(logits, -1, keepdim=True))")
    checks.assert_tensor(leaf, expected, what, device=dev, label="log_probs",
                         dtype="float32", rtol=1e-4, atol=2e-5, mistakes=mistakes, context=ctx)


def _greedy(logits: torch.Tensor, actions: np.ndarray, copies: int = 1) -> bool:
    """The actions are the argmax of the logits (``copies``: the actions hold that many copies of the rows)."""
    greedy = checks.to_numpy(ref.greedy_actions(logits))
    return bool(np.array_equal(actions, np.tile(greedy, copies) if copies > 1 else greedy))


GREEDY = ("you always take the most likely action (argmax): REINFORCE must sample a ~ softmax(logits) to explore "
          "(torch.multinomial or Gumbel-max)")


@pytest.mark.function("sample_action")
@pytest.mark.points(1.5)
def test_sample_action_log_probs(sub, dev):
    """returns int64 actions of shape logits.shape[:-1] and their exact log-probabilities"""
    shapes = [((7, 3), 1.0, "[B, K] = [7, 3]"), ((5,), 1.5, "[K] = [5] (no batch dimension)"),
              ((4, 3, 6), 2.0, "[T, N, K] = [4, 3, 6]"), ((2, 1), 1.0, "a single action (K = 1)"),
              ((16, 2), 4.0, "[16, 2], large logits"), ((1, 4), 1.0, "[B, K] = [1, 4] (a batch of one)"),
              ((8, 3), 4.0, "[8, 3], logits around 100 (exp overflows float32)")]
    calls, logits_list = [], []
    extra = np.random.default_rng(20261126)  # the later cases: the module's draws stay as they were
    for i, (shape, scale, label) in enumerate(shapes):
        logits = f32((rng if i < 5 else extra).normal(size=shape) * scale)
        if label.endswith("large logits"):
            logits = logits + 40.0
        elif "around 100" in label:
            logits = logits + 100.0
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
        # [n * R, K]: row i has the distribution of rows[i % R]; 2-d on purpose (support for other batch
        # shapes is graded by test_sample_action_log_probs, not here a second time)
        logits = rows.repeat(FREQ_N, 1)
        inputs.append((rows, logits))
        calls.append(Call(logits, generator=generator(7 + i), label=f"{FREQ_N} copies of {rows.shape[0]} rows"))
    results = run(sub, M, "sample_action", calls, timeout=30)
    for (rows, logits), res, call in zip(inputs, results, calls):
        actions_leaf, _ = _pair(res)
        actions = _check_actions(actions_leaf, logits, dev, call.label)
        p = checks.to_numpy(ref.action_probs(rows))  # [R, K]
        if _greedy(rows, actions, copies=FREQ_N):
            raise CheckFailed(f"sample_action(): {GREEDY}")
        actions = actions.reshape(FREQ_N, rows.shape[0])
        K = rows.shape[1]
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


GRAD_MESSAGES = {
    "lse_detached": "part of your log-probability is detached (the normaliser logsumexp or the softmax): the "
                    "gradient of log pi(a) w.r.t. the logits must be onehot(a) - softmax(logits)",
}


@pytest.mark.function("sample_action")
@pytest.mark.points(1)
def test_sample_action_gradient(sub, dev):
    """log_probs are differentiable w.r.t. logits: d log pi(a)/d logits = onehot(a) - softmax(logits)"""
    cases, inputs = [], []
    for i, shape in enumerate([(6, 4), (9, 3), (3,)]):
        logits = f32(rng.normal(size=shape))
        w = rng.normal(size=shape[:-1])
        inputs.append((logits, w))
        cases.append(Case((tensor(logits, requires_grad=True),), {"generator": generator(40 + i)},
                          grad_weights={"1": w}))
    results = sub.call_many(M, "sample_action", cases)
    for (logits, w), res in zip(inputs, results):
        # the gradients for every action the submission could have drawn (tables [..., a, k]), read at its own
        expected = ref.log_pi_gradients(logits, w)
        wrong = named(GRAD_MESSAGES, lambda: ref.log_pi_gradient_variants(logits, w))
        actions_leaf, _ = _pair(res)
        actions = _check_actions(actions_leaf, logits, dev)
        mistakes = EachRead(wrong, lambda table, actions=actions: rows_at_actions(table, actions))
        checks.assert_grad(res, "arg0", rows_at_actions(expected, actions), "sample_action", "logits", rtol=1e-4,
                           atol=1e-5, mistakes=mistakes)


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
LOSS_MESSAGES = {
    "sign": "your loss has the wrong sign: gradient ascent on the objective mean(log_probs * returns) means "
            "minimizing its negative, -mean(log_probs * returns)",
    "sum": "you summed over the elements: the loss is the mean of log_probs * returns over all timesteps "
           "(and environments), not the sum",
    "sum_sign": "your loss is +sum(log_probs * returns): take minus the mean",
    "product_of_means": "you multiplied the mean log-probability by the mean return: average the products "
                        "log_probs[t] * returns[t]",
    "standardized": "you standardised the returns inside the loss: reinforce_loss uses the weights it is given "
                    "(standardising is reinforce_update's job)",
}


def loss_mistakes(call: Call):
    return named(LOSS_MESSAGES, lambda: ref.loss_variants(*call.args))


LOSS_GRAD_MESSAGES = {
    "sum": "your gradient is numel times too large: the loss is a mean over all elements, not a sum",
    "sign": "your loss has the wrong sign: gradient ascent on the objective mean(log_probs * returns) "
            "means minimizing its negative",
}


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

        def grad_mistakes(key, G=G, seed=seed):
            if key != 0:
                return []
            w = float(np.random.default_rng(seed).normal(size=()))  # the weight gradients() draws for the loss
            return named(LOSS_GRAD_MESSAGES, lambda: ref.loss_grad_variants(G, w))

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


def replay(env_id: str, env_seed: int, actions: np.ndarray, kwargs: dict, what: str = "collect_episode",
           resets: int = 1):
    """Play the student's actions in a trusted copy of the environment; check where the episode ends."""
    e = make_env(env_id, seed=env_seed, **kwargs)
    try:
        for _ in range(resets):
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


DOUBLE_RESET = ("your episode starts from a second env.reset(): the code before yours already reset the (seeded) "
                "environment, so start from that first observation")


def _double_reset(env_id, env_seed, actions, kwargs, obs_leaf) -> np.ndarray | None:
    """The observations of the episode if the student reset the environment once more, when they match."""
    try:
        obs2, _, _ = replay(env_id, env_seed, actions, kwargs, resets=2)
    except CheckFailed:
        return None
    got = obs_leaf.array
    if got.shape == obs2.shape and np.allclose(got, obs2, rtol=1e-6, atol=1e-6):
        return obs2
    return None


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


def _policy_at(policy, obs: np.ndarray) -> torch.distributions.Categorical:
    """pi(. | s) at the states the submission's own actions led to: no recorded answer can cover states
    a submission chose, so its log_probs are checked for consistency with torch's Categorical (a library
    primitive), not with the reference."""
    return torch.distributions.Categorical(logits=policy(torch.as_tensor(obs)))


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
        o = lv["observations"]
        try:
            obs, rewards, final_obs = replay(env_id, env_seed, actions, kwargs)
        except CheckFailed:
            if _double_reset(env_id, env_seed, actions, kwargs, o) is not None:
                raise CheckFailed(f"collect_episode(): {DOUBLE_RESET} ({ctx})") from None
            raise
        T = len(actions)
        if list(o.array.shape) == [T + 1, obs.shape[1]]:
            raise CheckFailed(f"collect_episode(): Episode.observations has T + 1 = {T + 1} rows for {T} actions: "
                              f"keep only the observations the actions were chosen in (not the final one) ({ctx})")
        shifted = np.concatenate([obs[1:], final_obs[None]], 0)
        mistakes = [("next_obs", "observations[t] must be the observation a_t was chosen in: store it before "
                                 "calling env.step, not the observation env.step returns", lambda: shifted),
                    ("double_reset", DOUBLE_RESET, lambda: _double_reset(env_id, env_seed, actions, kwargs, o))]
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
            pi = _policy_at(pol, obs)
            lp, lp_all = pi.log_prob(torch.as_tensor(actions)), pi.logits  # logits: normalised, log pi(. | s)
        leaf = lv["log_probs"]
        got = leaf.array.astype(np.float64)
        if got.shape == tuple(lp.shape) and np.all(np.isfinite(got)) and not np.allclose(got, lp.numpy(), rtol=1e-4,
                                                                                         atol=2e-5):
            near_some = np.isclose(got[:, None], lp_all.double().numpy(), rtol=1e-4, atol=2e-5).any(1)
            if near_some.all():
                raise CheckFailed("collect_episode(): some log_probs[t] are the log-probability of another action than "
                                  "actions[t] (did you sample twice?): keep the log_prob that sample_action returned "
                                  f"together with the action you play ({ctx})")
        mistakes = [("probs", "log_probs holds probabilities: store log pi(a_t|s_t)",
                     lambda: at_actions(pi.probs, actions))]
        checks.assert_tensor(leaf, lp, "collect_episode", device=dev, label="Episode.log_probs", dtype="float32",
                             rtol=1e-4, atol=2e-5, mistakes=mistakes, context=ctx)


@pytest.mark.function("collect_episode")
@pytest.mark.points(1.5)
def test_collect_episode_keeps_graph(sub, dev):
    """log_probs keep the autograd graph back to the policy's parameters (gradients checked here)"""
    T = 7  # CartPole cannot terminate in fewer than 8 steps: the time limit fixes T
    pol = make_policy(9)
    w = rng.normal(size=T)
    args = lambda: (env("CartPole-v1", seed=41, max_episode_steps=T), network(pol, requires_grad=True), dev,  # noqa
                    generator(77))
    # the same episode twice: first without gradients (its end is checked), then with them
    plain, res = sub.call_many(M, "collect_episode", [Case(args()), Case(args(), grad_weights={"log_probs": w})],
                               timeout=30)
    lv = _episode_leaves(plain)
    actions = _episode_actions(lv, 2, dev)
    replay("CartPole-v1", 41, actions, {"max_episode_steps": T})
    if lv["log_probs"].array.shape != (T,):
        raise CheckFailed(f"collect_episode(): Episode.log_probs has shape {list(lv['log_probs'].array.shape)}, "
                          f"expected [{T}] (one per action)")
    lv = _episode_leaves(res)
    actions = _episode_actions(lv, 2, dev)
    obs, _, _ = replay("CartPole-v1", 41, actions, {"max_episode_steps": T})
    lp = _policy_at(pol, obs).log_prob(torch.as_tensor(actions))
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
# reinforce_update needs an optimizer and an Episode, which the sandbox cannot build from plain specs.
# A small trusted driver module (_DRIVER, run next to the student's files in a second sandbox) builds
# them from the parent's data, so the update is graded on its own, whatever collect_episode does.
# The optimizer is a plain SGD (p <- p - lr * grad): its step is proportional to the gradient, so the
# scale of the loss matters, and building it costs nothing (torch.optim's first use pays lazy imports).
_DRIVER_NAME = "_rlkit_ex2_update_driver"
_SGD_SRC = PLAIN_SGD_SOURCE  # the optimizer the answers' updates use too
_DRIVER = '''"""Grader helper (not part of the submission): calls reinforce_update with real objects."""
import torch

from common.rollout import Episode
''' + _SGD_SRC + '''

def run_updates(policy, observations, actions, rewards, gamma, normalize_returns, lr):
    from .ex2_reinforce import reinforce_update

    optimizer = PlainSGD(policy.parameters(), lr=lr)
    losses = []
    for obs, act, rew in zip(observations, actions, rewards):
        log_probs = torch.distributions.Categorical(logits=policy(obs)).log_prob(act)  # the graph to the policy
        episode = Episode(observations=obs, actions=act, rewards=rew, log_probs=log_probs,
                          total_reward=float(rew.sum()))
        losses.append(reinforce_update(optimizer, episode, gamma, normalize_returns))
    return {"losses": losses, "policy": policy}
'''


@pytest.fixture(scope="module")
def driver_sub(sub):
    """The submission's sandbox, whose kit part now also holds the driver module."""
    return sub.with_kit_modules({_DRIVER_NAME: _DRIVER})


UPDATE_LR = 0.05
UPDATE_CASES = [
    # (label, gamma, normalize_returns, [(T, rewards are ones)], policy seed)
    ("gamma=0.99, normalize_returns=True", 0.99, True, [(21, True)], 1),
    ("gamma=0.9, normalize_returns=False", 0.9, False, [(13, False)], 2),
    ("gamma=0.5, normalize_returns=True, random rewards", 0.5, True, [(30, False)], 3),
    ("gamma=1, normalize_returns=False", 1.0, False, [(9, True)], 4),
    ("T=1, normalize_returns=False", 0.9, False, [(1, False)], 5),
    # every return is 1: std G = 0, and the 1e-8 of standardize keeps (G - mean G) / (std G + 1e-8) finite
    ("gamma=0.5, rewards 0.5 then 1: every return is 1, normalize_returns=True", 0.5, True, [(10, "flat")], 8),
]
UPDATE_REPEAT_CASES = [
    ("three updates in a row, gamma=0.99, normalize_returns=True", 0.99, True, [(17, True), (25, True), (9, True)], 6),
    ("two updates in a row, gamma=0.95, normalize_returns=False", 0.95, False, [(12, False), (20, False)], 7),
]
_update_inputs: dict = {}
_update_cache: dict = {}


def update_policy(seed: int) -> PolicyNet:
    """A small PolicyNet whose policy is far from uniform, so every term of the gradient matters."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        pol = PolicyNet(4, 2, hidden=(16,))
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for p in pol.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.3)
    return pol


def update_episode(T: int, ones: bool):
    obs = f32(rng.normal(size=(T, 4)) * 0.7)
    act = torch.tensor(rng.integers(0, 2, size=T), dtype=torch.int64)
    if ones == "flat":  # with gamma = 0.5, G_t = 0.5 + 0.5 G_{t+1} = 1 exactly at every step
        rew = torch.full((T,), 0.5)
        rew[-1] = 1.0
    else:
        rew = torch.ones(T) if ones else f32(rng.normal(size=T) + 0.5)
    return obs, act, rew


def _update_case_inputs(spec):
    if spec[0] not in _update_inputs:
        _, _, _, eps, seed = spec
        with shared_inputs(sys.modules[__name__], f"reinforce_update case: {spec[0]}"):
            _update_inputs[spec[0]] = (update_policy(seed), [update_episode(T, ones) for T, ones in eps])
    return _update_inputs[spec[0]]


def _update_results(driver_sub) -> dict:
    """Every reinforce_update case of the suite, run in ONE child of the driver sandbox."""
    key = id(driver_sub)
    if key not in _update_cache:
        specs = UPDATE_CASES + UPDATE_REPEAT_CASES
        calls = []
        for spec in specs:
            label, gamma, normalize, _, _ = spec
            pol, eps = _update_case_inputs(spec)
            calls.append(Call(network(pol), [e[0] for e in eps], [e[1] for e in eps], [e[2] for e in eps], gamma,
                              normalize, UPDATE_LR, label=label))
        results = driver_sub.call_many(_DRIVER_NAME, "run_updates", [to_case(c) for c in calls], timeout=60)
        _update_cache[key] = {spec[0]: res for spec, res in zip(specs, results)}
    return _update_cache[key]


def _close_updates(got: dict, want: dict, start: dict, tol: float = 2e-3) -> str | None:
    """None when every weight moved as expected, else the name of the first parameter that did not."""
    scale = max(float(np.abs(want[k] - start[k]).max()) for k in want) + 1e-12
    for k in want:
        if k not in got or got[k].shape != want[k].shape or not np.all(np.isfinite(got[k])):
            return k
        if np.max(np.abs((got[k] - start[k]) - (want[k] - start[k]))) > tol * scale + 1e-7:
            return k
    return None


def update_messages(normalize: bool) -> dict:
    return {
        "normalize_flag": ("you did not standardise the returns although normalize_returns=True: "
                           "G <- (G - mean G) / (std G + 1e-8)" if normalize else
                           "you standardised the returns although normalize_returns=False"),
        "no_zero_grad": "gradients accumulate from one update to the next: call optimizer.zero_grad() before "
                        "loss.backward()",
        "sign": "your update goes up the loss instead of down: minimise reinforce_loss = -mean(log_probs * G)",
        "sum": "your loss is a sum over the episode: reinforce_loss takes the mean",
        "no_step": "the policy did not change: call optimizer.zero_grad(), loss.backward() and optimizer.step(), "
                   "in that order",
        "no_discount": "your returns are not discounted: use discounted_returns(rewards, dones, gamma) with the "
                       "gamma you are given",
        "total_reward": "you weight every log-probability by the episode's total reward: REINFORCE uses the return "
                        "from step t onwards, G_t (the reward-to-go)",
    }


def _loss_list(leaf, n: int, what: str = "reinforce_update", floats: bool = True) -> np.ndarray:
    """The returned losses; ``floats``: each must be a Python float (not a tensor)."""
    if leaf is None or leaf.kind not in ("sequence", "numbers"):
        raise CheckFailed(f"{what}() could not be checked: the driver got no losses back")
    if leaf.kind == "numbers":
        vals = [float(x) for x in leaf.array]
    else:
        vals = []
        for k in sorted(leaf.children, key=int):
            c = leaf.children[k]
            if c.kind == "tensor" and floats and c.requires_grad:  # a detached 0-d tensor is a fine number
                graph = " that still carries the autograd graph"
                raise CheckFailed(f"{what}() should return the loss as a Python float, got {c.describe()}{graph}: "
                                  f"return loss.item() (a tensor kept in the training log keeps its episode's "
                                  f"graph alive)")
            if c.kind not in ("number", "tensor") or c.array is None or c.array.size != 1:
                raise CheckFailed(f"{what}() should return the loss as a Python float, got {c.describe()}")
            vals.append(float(np.asarray(c.array, dtype=np.float64).reshape(())))
    if len(vals) != n:
        raise CheckFailed(f"{what}() could not be checked: {len(vals)} losses for {n} updates")
    return np.asarray(vals)


def check_update_cases(sub, driver_sub, specs, *, losses_only: bool = False, steps_only: bool = False):
    what = "reinforce_update"
    if not sub.has_module(M):
        raise CheckFailed(f"{what}(): {M}.py is not in the submission")
    cached = _update_results(driver_sub)
    for spec in specs:
        label, gamma, normalize, _, _ = spec
        res = cached[label]
        pol, eps = _update_case_inputs(spec)
        # the reference update, the accepted alternatives and each mistake, run on the suite's own episodes
        expected = ref.run_updates(pol, eps, gamma, normalize, UPDATE_LR)
        # (computed only when the reference does not match: see harness.later)
        accepted = later(lambda: ref.update_alternatives(pol, eps, gamma, normalize, UPDATE_LR))
        variants = later(lambda: ref.update_variants(pol, eps, gamma, normalize, UPDATE_LR))
        if not res.ok:
            if res.not_implemented:
                e = res.error or {}
                where = f" ({e['where']})" if e.get("where") else ""
                raise CheckFailed(f"{what}() is not implemented yet: it (or a function it calls) raises "
                                  f"NotImplementedError{where}")
            if normalize and "every return is 1" in label and "nan" in res.error_text().lower():
                raise CheckFailed(f"{what}() failed: {res.error_text()}. Every return is the same here, so "
                                  f"std G = 0: divide by (std G + 1e-8) as standardize does ({label})")
            raise CheckFailed(f"{what}() failed: {res.error_text()}")
        out = res.output()
        losses = _loss_list(out.get("losses"), len(eps), floats=not steps_only)
        got = {k: v.double().numpy() for k, v in rebuild_network(out.get("policy"), what, "the policy")
               .state_dict().items()}
        start = {k: v.detach().double().numpy() for k, v in pol.state_dict().items()}

        def matches(result):
            l, p = result
            ok_loss = np.allclose(losses, l, rtol=1e-4, atol=1e-5)
            ok_step = _close_updates(got, p, start) is None
            return (ok_loss or steps_only) and (ok_step or losses_only)

        if matches(expected):
            continue
        # standardising with the sample std (torch.std's default) instead of standardize() is accepted
        if any(matches(alt) for alt in accepted().values()):
            continue
        for key, msg in update_messages(normalize).items():
            if key not in variants():
                continue
            variant = variants()[key]
            if key == "no_step" and not np.allclose(losses, variant[0], rtol=1e-4, atol=1e-5):
                continue  # a policy that does not move with a wrong loss: the loss is the first thing to fix
            if matches(variant):
                raise CheckFailed(f"{what}(): {msg} ({label})")
        el, ep_ = expected
        if not (np.all(np.isfinite(losses)) and all(np.all(np.isfinite(v)) for v in got.values())):
            hint = (": every return is the same here, so std G = 0; divide by (std G + 1e-8) as standardize does"
                    if normalize and "every return is 1" in label else "")
            raise CheckFailed(f"{what}(): the loss or the policy's weights are not finite after the update (losses "
                              f"{checks.fmt(losses)}){hint} ({label})")
        loss_ok = np.allclose(losses, el, rtol=1e-4, atol=1e-5)
        if not loss_ok:
            i = int(np.argmax(~np.isclose(losses, el, rtol=1e-4, atol=1e-5)))
            if abs(losses[i]) < 1e-5 and abs(el[i]) > 1e-3 and normalize:
                raise CheckFailed(f"{what}(): your loss is 0 although the standardised returns differ from step to "
                                  f"step: weight each log_probs[t] by its own return G_t (the reward-to-go), not by "
                                  f"one number for the whole episode such as its total reward ({label})")
            if not steps_only:
                raise CheckFailed(f"{what}(): the loss of update {i + 1} is {losses[i]:.6g}, expected {el[i]:.6g} "
                                  f"({label})")
        if losses_only:
            continue
        if all(np.array_equal(got[k], start[k]) for k in start):
            if loss_ok:
                raise CheckFailed(f"{what}(): the policy did not change: call optimizer.zero_grad(), loss.backward() "
                                  f"and optimizer.step(), in that order ({label})")
            raise CheckFailed(f"{what}(): the policy did not change, and the loss you return is not the expected one "
                              f"either: fix the loss first (see the loss test), then zero_grad / backward / step "
                              f"({label})")
        bad = _close_updates(got, ep_, start)
        raise CheckFailed(f"{what}(): the policy's parameter {bad!r} did not move as one optimizer step on "
                          f"reinforce_loss(episode.log_probs, returns) predicts ({label})")


@pytest.mark.function("reinforce_update")
@pytest.mark.points(1.5)
def test_reinforce_update_loss(sub, driver_sub, dev):
    """returns the loss: reinforce_loss of the episode's discounted returns (standardised if asked)"""
    check_update_cases(sub, driver_sub, UPDATE_CASES, losses_only=True)


@pytest.mark.function("reinforce_update")
@pytest.mark.points(1.5)
def test_reinforce_update_step(sub, driver_sub, dev):
    """one update moves the policy by one optimizer step on that loss"""
    check_update_cases(sub, driver_sub, UPDATE_CASES, steps_only=True)


@pytest.mark.function("reinforce_update")
@pytest.mark.points(1)
def test_reinforce_update_repeated(sub, driver_sub, dev):
    """several updates in a row with the same optimizer (gradients must not accumulate)"""
    check_update_cases(sub, driver_sub, UPDATE_REPEAT_CASES)


# ====================================================================== train_reinforce
# tried in order until one run passes: an honest solution that consumes randomness
# differently from the reference fails one seed about 1 time in 20 (docs/SEEDS.md)
LEARN_SEEDS = (2026, 4049)
LEARN_EPISODES = 200
LEARN_EVAL_SEED = 777_001
LEARN_EVAL_EPISODES = 20
LEARN_THRESHOLD = 100.0
SEED_RUNS = [5, 5, 6]  # train_reinforce(episodes=SEED_EPISODES, seed=s): reproducibility on a small budget
SEED_EPISODES = 4
def _train_args(dev) -> tuple:
    seed_calls = [Call(env_id="CartPole-v1", episodes=SEED_EPISODES, seed=s, device=dev) for s in SEED_RUNS]
    return M, "train_reinforce", seed_calls, _learn_call(LEARN_SEEDS[0], dev), 150


# the training runs start before the first test, beside the other checks (see harness)
_training_starts_first, _train_runs = training_runs(_train_args)


def _curve(res) -> list[float]:
    return episode_returns(res, "train_reinforce")


def _learn_call(seed: int, dev: str) -> Call:
    return Call(env_id="CartPole-v1", episodes=LEARN_EPISODES, lr=1e-2, gamma=0.99, seed=seed, device=dev,
                normalize_returns=True)


def _greedy_mean(res) -> tuple[int, float]:
    """(training episodes, greedy mean return over the grader's evaluation episodes) of one learning run."""
    _train_ok(res)
    curve = _curve(res)
    if not 1 <= len(curve) <= LEARN_EPISODES:
        raise CheckFailed(f"train_reinforce(): {len(curve)} episode returns for episodes={LEARN_EPISODES}")
    policy = rebuild_network(res.output("policy"), "train_reinforce")
    scores = evaluate_policy(policy, "CartPole-v1", episodes=LEARN_EVAL_EPISODES, seed=LEARN_EVAL_SEED, greedy=True)
    return len(curve), float(np.mean(scores))


def _train_ok(res) -> None:
    """train_reinforce is given code: when it raises, say which of the student's functions did."""
    if res.ok:
        return
    e = res.error or {}
    where = f" ({e['where']})" if e.get("where") else ""
    if res.not_implemented:
        raise CheckFailed(f"train_reinforce() raised NotImplementedError{where}: a function it calls is not "
                          f"implemented yet")
    raise CheckFailed(f"train_reinforce() failed: {res.error_text()}")


@pytest.mark.function("train_reinforce")
@pytest.mark.points(3.5)
@pytest.mark.learning
def test_train_reinforce_learns_cartpole(request, sub, dev):
    """learns CartPole-v1: the greedy policy averages >= 100 on new episodes after <= 200 training episodes"""
    means = []
    for i, seed in enumerate(LEARN_SEEDS):
        res = _train_runs(request, sub, dev)["learn"] if i == 0 else \
            run(sub, M, "train_reinforce", [_learn_call(seed, dev)], timeout=150)[0]
        episodes, mean = _greedy_mean(res)
        means.append(mean)
        if mean >= LEARN_THRESHOLD:
            return
    got = " and ".join(f"{m:.1f}" for m in means)
    raise CheckFailed(f"train_reinforce(): after {episodes} training episodes the greedy policy averages {got} "
                      f"(seeds {', '.join(map(str, LEARN_SEEDS))}) over {LEARN_EVAL_EPISODES} new CartPole-v1 "
                      f"episodes (evaluated by the grader); it should reach {LEARN_THRESHOLD:.0f}. Check the sign "
                      f"of the loss, the sampling and the returns")


@pytest.mark.function("train_reinforce")
@pytest.mark.points(1.5)
def test_train_reinforce_seed(request, sub, dev):
    """the seed makes training reproducible: same seed, same run; another seed, another run"""
    curves, weights = [], []
    for res in _train_runs(request, sub, dev)["seed"]:
        _train_ok(res)
        curves.append(_curve(res))
        pol = rebuild_network(res.output("policy"), "train_reinforce")
        weights.append(np.concatenate([p.detach().numpy().ravel() for p in pol.parameters()]))
    if curves[0] != curves[1] or not np.array_equal(weights[0], weights[1]):
        raise CheckFailed("train_reinforce(): two runs with the same seed differ: all randomness must come from the "
                          "seed (the generator passed to collect_episode / sample_action, the seeded env)")
    if curves[0] == curves[2] and np.array_equal(weights[0], weights[2]):
        raise CheckFailed("train_reinforce(): runs with different seeds are identical: the seed is ignored")
