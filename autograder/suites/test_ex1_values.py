"""Hidden suite for ex1_values (15 points): returns and the Bellman equation."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from autograder import checks
from autograder.checks import CheckFailed
from autograder.harness import Call, compare, gradients, run
from autograder.client import generator
from autograder.oracle import answers

M = "ex1_values"
ref = answers(M)  # the reference and the mistake variants (live, or recorded in a student kit)
rng = np.random.default_rng(20261124)


# ------------------------------------------------------------------ inputs
def trajectory(T, N=None, p_done=0.2, bool_dones=False):
    shape = (T,) if N is None else (T, N)
    rewards = torch.tensor(rng.normal(size=shape), dtype=torch.float32)
    dones = torch.tensor(rng.random(shape) < p_done)
    return rewards, (dones if bool_dones else dones.float())


def mdp(S, A, absorbing=False):
    P = rng.random((S, A, S)) ** 3
    P /= P.sum(-1, keepdims=True)
    R = rng.normal(size=(S, A))
    pi = rng.random((S, A)) + 0.05
    pi /= pi.sum(-1, keepdims=True)
    if absorbing:
        P[-1] = 0.0
        P[-1, :, -1] = 1.0
        R[-1] = 0.0
    f = lambda a: torch.tensor(a, dtype=torch.float64)  # noqa: E731
    return f(P), f(R), f(pi)


# ------------------------------------------------------------------ known mistakes
def returns_mistakes(call: Call):
    rewards, dones, gamma = call.args
    return [
        ("no_reset", "your returns carry reward across episode boundaries: reset the running return "
                     "where dones[t] = 1 (multiply by 1 - dones[t])",
         lambda: ref.returns_variant(rewards, dones, gamma, reset=False)),
        ("forward", "your returns accumulate forward in time (past rewards); G_t sums the rewards "
                    "from t onwards, so loop from t = T-1 down to 0",
         lambda: ref.returns_variant(rewards, dones, gamma, backwards=False)),
        ("no_discount", "your returns are not discounted: each later reward must be multiplied by gamma",
         lambda: ref.returns_variant(rewards, dones, gamma, discount=False)),
        ("shifted_done", "your reset uses dones[t+1] instead of dones[t]: dones[t] = 1 means nothing "
                         "after step t belongs to the episode",
         lambda: ref.returns_variant(rewards, dones, gamma, shift=1)),
        ("discounted_now", "you discount the immediate reward too: G_t = r_t + gamma * G_{t+1}, and r_t "
                           "has weight 1",
         lambda: ref.returns_variant(rewards, dones, gamma, disc_r=True)),
    ]


def pe_mistakes(call: Call):
    P, R, pi, gamma = call.args[:4]
    return [
        ("max", "you took the max over actions (that is value iteration); policy evaluation averages "
                "over actions with pi(a|s)", lambda: ref.value_iteration(P, R, gamma)),
        ("one_sweep", "you stopped after a single backup: repeat the backup until the largest change is below tol",
         lambda: ref.pe_one_sweep(P, R, pi)),
        ("transposed", "you summed over the wrong index of P: the next-state distribution of (s, a) is P[s, a, :]",
         lambda: ref.pe_transposed(P, R, pi, gamma)),
        ("P_pi_transposed", "your P_pi is transposed: P_pi[s, s'] = sum_a pi(a|s) P[s, a, s'], and the backup "
                            "is P_pi @ V (row s averages V over the next states of s)",
         lambda: ref.pe_P_pi_transposed(P, R, pi, gamma)),
    ]


# ------------------------------------------------------------------ discounted_returns
@pytest.mark.function("discounted_returns")
@pytest.mark.points(1.5)
def test_returns_single_env(sub, dev):
    """matches the reference on [T] trajectories"""
    calls = []
    for T, gamma in [(1, 0.9), (5, 0.99), (17, 0.9), (64, 0.95), (200, 0.999)]:
        r, d = trajectory(T)
        calls.append(Call(r, d, gamma, label=f"T={T}, gamma={gamma}"))
    compare(sub, dev, M, "discounted_returns", calls, ref.discounted_returns, mistakes=returns_mistakes)


@pytest.mark.function("discounted_returns")
@pytest.mark.points(1.5)
def test_returns_batched(sub, dev):
    """matches the reference on [T, N] trajectories"""
    calls = []
    for T, N, gamma in [(1, 3, 0.9), (9, 4, 0.97), (50, 8, 0.99), (33, 1, 0.5)]:
        r, d = trajectory(T, N)
        calls.append(Call(r, d, gamma, label=f"T={T}, N={N}, gamma={gamma}"))
    compare(sub, dev, M, "discounted_returns", calls, ref.discounted_returns, mistakes=returns_mistakes)


@pytest.mark.function("discounted_returns")
@pytest.mark.points(1)
def test_returns_edge_cases(sub, dev):
    """edge cases: all dones, no dones, gamma = 0, gamma = 1, bool dones, float64 rewards"""
    calls = []
    r, _ = trajectory(12, 3)
    calls.append(Call(r, torch.ones(12, 3), 0.9, label="every step is done"))
    calls.append(Call(r, torch.zeros(12, 3), 0.9, label="no dones"))
    r2, d2 = trajectory(20, 2)
    calls.append(Call(r2, d2, 0.0, label="gamma=0"))
    calls.append(Call(r2, d2, 1.0, label="gamma=1"))
    r3, d3 = trajectory(15, 4, bool_dones=True)
    calls.append(Call(r3, d3, 0.9, label="bool dones"))
    r4, _ = trajectory(10)
    calls.append(Call(r4, torch.zeros(10), 1.0, label="one unfinished episode, gamma=1"))
    compare(sub, dev, M, "discounted_returns", calls, ref.discounted_returns, mistakes=returns_mistakes)
    # the returns keep the dtype of the rewards (a buffer made with torch.zeros(T) would be float32)
    r5, d5 = trajectory(9, 2)
    compare(sub, dev, M, "discounted_returns",
            [Call(r5.double(), d5, 0.9, label="float64 rewards: the returns have the dtype of rewards")],
            ref.discounted_returns, dtype="float64", mistakes=returns_mistakes)


@pytest.mark.function("discounted_returns")
@pytest.mark.points(1)
def test_returns_no_gradient(sub, dev):
    """returns are targets: no gradient flows back into the rewards"""
    r, d = trajectory(10, 3)
    gradients(sub, dev, M, "discounted_returns", Call(r, d, 0.9), ref.discounted_returns,
              expect={0: False}, names={0: "rewards"})
    # and the values are still right when rewards require grad
    compare(sub, dev, M, "discounted_returns", [Call(r, d, 0.9, requires_grad=(0,), label="rewards.requires_grad")],
            ref.discounted_returns)


# ------------------------------------------------------------------ policy_evaluation
@pytest.mark.function("policy_evaluation")
@pytest.mark.points(2)
def test_policy_evaluation_random_mdps(sub, dev):
    """converges to the solution of V = R_pi + gamma P_pi V on random MDPs"""
    calls = []
    for S, A, gamma in [(1, 1, 0.5), (3, 2, 0.9), (6, 3, 0.95), (10, 4, 0.8), (25, 5, 0.99)]:
        P, R, pi = mdp(S, A)
        calls.append(Call(P, R, pi, gamma, tol=1e-11, label=f"S={S}, A={A}, gamma={gamma}"))
    compare(sub, dev, M, "policy_evaluation", calls, ref.policy_values,
            dtype="float64", rtol=1e-6, atol=1e-6, mistakes=pe_mistakes, timeout=30)


@pytest.mark.function("policy_evaluation")
@pytest.mark.points(1)
def test_policy_evaluation_special(sub, dev):
    """gamma = 0 gives the expected immediate reward; an absorbing state has value 0"""
    P, R, pi = mdp(5, 3)
    P2, R2, pi2 = mdp(7, 2, absorbing=True)
    calls = [Call(P, R, pi, 0.0, label="gamma=0"), Call(P2, R2, pi2, 0.9, tol=1e-11, label="absorbing state")]
    compare(sub, dev, M, "policy_evaluation", calls, ref.policy_values,
            dtype="float64", rtol=1e-6, atol=1e-6, mistakes=pe_mistakes)


@pytest.mark.function("policy_evaluation")
@pytest.mark.points(1)
def test_policy_evaluation_default_tolerance(sub, dev):
    """with the default tol the result is within 1e-6 of the exact values"""
    P, R, pi = mdp(8, 3)
    compare(sub, dev, M, "policy_evaluation", [Call(P, R, pi, 0.9, label="default tol")],
            ref.policy_values, dtype="float64", rtol=0, atol=1e-6,
            mistakes=pe_mistakes)


# ------------------------------------------------------------------ action_values
def av_mistakes(call: Call):
    P, R, V, gamma = call.args
    return [
        ("no_gamma", "you forgot to discount the next-state value by gamma",
         lambda: ref.av_variant(P, R, V, gamma, "no_gamma")),
        ("transposed", "you summed over the wrong index of P: Q(s,a) = R(s,a) + gamma * sum_s' P[s, a, s'] V[s']",
         lambda: ref.av_variant(P, R, V, gamma, "transposed")),
        ("no_reward", "you left out the immediate reward R(s, a)",
         lambda: ref.av_variant(P, R, V, gamma, "no_reward")),
        ("current_state", "you used V of the current state s; the backup takes the expected value of the NEXT "
                          "state: sum_s' P[s, a, s'] V[s']", lambda: ref.av_variant(P, R, V, gamma, "current_state")),
    ]


@pytest.mark.function("action_values")
@pytest.mark.points(2)
def test_action_values(sub, dev):
    """Q(s,a) = R(s,a) + gamma sum_s' P(s'|s,a) V(s') on random MDPs"""
    calls = []
    for S, A, gamma in [(1, 1, 0.9), (4, 2, 0.9), (9, 5, 0.5), (12, 3, 1.0), (6, 2, 0.0)]:
        P, R, _ = mdp(S, A)
        V = torch.tensor(rng.normal(size=S), dtype=torch.float64)
        calls.append(Call(P, R, V, gamma, label=f"S={S}, A={A}, gamma={gamma}"))
    compare(sub, dev, M, "action_values", calls, ref.action_values, dtype="float64", rtol=1e-9,
            atol=1e-9, mistakes=av_mistakes)


@pytest.mark.function("action_values")
@pytest.mark.points(1)
def test_action_values_consistent(sub, dev):
    """sum_a pi(a|s) Q(s,a) equals V(s) when V is the policy's value"""
    P, R, pi = mdp(7, 3)
    V = ref.exact_values(P, R, pi, 0.9)
    (res,) = run(sub, M, "action_values", [Call(P, R, V, 0.9)])
    leaf = checks.tensor_output(res, "action_values")
    checks.assert_tensor(leaf, ref.action_values(P, R, V, 0.9), "action_values", device=dev, dtype="float64",
                         rtol=1e-9, atol=1e-9)
    v_again = (pi.numpy() * leaf.array).sum(1)
    if not np.allclose(v_again, V.numpy(), atol=1e-6):
        raise CheckFailed("action_values(): averaging Q over pi does not give back V")


# ------------------------------------------------------------------ monte_carlo_value
def _check_mc_scalar(leaf, dev, label):
    """The estimate is a 0-d float64 tensor on the device of P (not a Python number, not shape [1])."""
    if leaf.kind != "tensor":
        raise CheckFailed(f"monte_carlo_value(): the estimate ({label}) should be a 0-d torch.Tensor with the "
                          f"dtype and device of P (e.g. G.mean()), got {leaf.describe()}")
    if list(leaf.array.shape) != []:
        raise CheckFailed(f"monte_carlo_value(): the estimate ({label}) should be a 0-d tensor, got shape "
                          f"{list(leaf.array.shape)}")
    if leaf.dtype != "float64":
        raise CheckFailed(f"monte_carlo_value(): the estimate has dtype {leaf.dtype}, expected float64")
    if not checks._same_device(leaf.device, dev):
        raise CheckFailed(f"monte_carlo_value(): the estimate is on {leaf.device}, expected {dev} "
                          f"(the device of P)")


@pytest.mark.function("monte_carlo_value")
@pytest.mark.points(2)
def test_monte_carlo_agrees_with_dp(sub, dev):
    """the Monte Carlo estimate agrees with policy evaluation within sampling error; a given horizon is respected"""
    cases = []
    for S, A, gamma, s0 in [(4, 2, 0.9, 0), (6, 3, 0.8, 2), (3, 2, 0.5, 1)]:
        P, R, pi = mdp(S, A)
        cases.append((P, R, pi, gamma, s0, None))
    # An explicit horizon: every episode runs exactly that many steps, also with gamma = 1. The rewards
    # are about 1 per step, so one step more or less moves the estimate far outside the sampling error.
    for gamma, h, s0 in [(0.9, 3, 1), (1.0, 4, 0)]:
        P, R, pi = mdp(5, 2)
        cases.append((P, 1.0 + 0.5 * R, pi, gamma, s0, h))
    calls = []
    for i, (P, R, pi, g, s0, h) in enumerate(cases):
        extra = {} if h is None else {"horizon": h}
        label = f"S={P.shape[0]}, gamma={g}" + ("" if h is None else f", horizon={h}")
        calls.append(Call(P, R, pi, g, s0, num_episodes=4000, generator=generator(11 + i), label=label, **extra))
    results = run(sub, M, "monte_carlo_value", calls, timeout=30)
    for (P, R, pi, g, s0, h), res, call in zip(cases, results, calls):
        leaf = checks.output_leaf(res, "monte_carlo_value")
        tol = 5.0 * ref.mc_std(P, R, pi, g, s0, horizon=h) / np.sqrt(4000) + 1e-6
        if h is None:
            v = float(ref.exact_values(P, R, pi, g)[s0])
            mistakes = [("first_discounted", "your first reward is discounted: G = r_0 + gamma r_1 + gamma^2 r_2 + ...",
                         lambda v=v, g=g: torch.tensor(g * v))]
        else:
            fh = lambda k, P=P, R=R, pi=pi, g=g, s0=s0: ref.finite_horizon_values(P, R, pi, g, k)[s0]  # noqa: E731
            v = float(fh(h))
            mistakes = [
                ("first_discounted", "your first reward is discounted: G = r_0 + gamma r_1 + gamma^2 r_2 + ...",
                 lambda v=v, g=g: torch.tensor(g * v)),
                ("horizon_short", f"your episodes run horizon - 1 = {h - 1} steps; each episode runs exactly "
                                  f"horizon = {h} steps", lambda fh=fh, h=h: fh(h - 1)),
                ("horizon_long", f"your episodes run horizon + 1 = {h + 1} steps; each episode runs exactly "
                                 f"horizon = {h} steps", lambda fh=fh, h=h: fh(h + 1)),
            ]
            if g < 1:
                mistakes.append(("horizon_ignored", f"you ignored the horizon argument: when it is given "
                                                    f"(here {h}), each episode runs exactly that many steps",
                                 lambda P=P, R=R, pi=pi, g=g, s0=s0: ref.exact_values(P, R, pi, g)[s0]))
        checks.assert_number(leaf, v, "monte_carlo_value", rtol=0, atol=tol, mistakes=mistakes,
                             label=f"the estimate ({call.label})")
        _check_mc_scalar(leaf, dev, call.label)


@pytest.mark.function("monte_carlo_value")
@pytest.mark.points(1)
def test_monte_carlo_uses_generator(sub, dev):
    """uses the generator: same seed gives the same estimate, another seed a different one"""
    P, R, pi = mdp(5, 3)
    calls = [Call(P, R, pi, 0.9, 0, num_episodes=500, generator=generator(s)) for s in (3, 3, 4)]
    results = run(sub, M, "monte_carlo_value", calls, timeout=30)
    vals = []
    for res in results:
        leaf = checks.output_leaf(res, "monte_carlo_value")
        if leaf.array is None or leaf.array.size != 1:
            raise CheckFailed(f"monte_carlo_value() should return a scalar, got {leaf.describe()}")
        vals.append(float(np.asarray(leaf.array).reshape(())))
    if vals[0] != vals[1]:
        raise CheckFailed("monte_carlo_value(): two runs with generators of the same seed differ; "
                          "draw all randomness from `generator`")
    if vals[0] == vals[2]:
        raise CheckFailed("monte_carlo_value(): generators with different seeds give the same estimate; "
                          "draw all randomness from `generator`")
