"""Hidden suite for ex3_baseline (30 points): baselines, actor-critic and GAE.

Values are compared with the reference (through the answer seam: run live in
the full kit, replayed in a student kit) on random [T] and [T, N]
trajectories; gradients are d<w, output>/d(input) for random weights w,
computed in the child and compared with the reference's in float64.
``gradient_variance`` is deterministic given its inputs and is compared with
the reference value. ``actor_critic_update`` needs optimizers and an
``Episode``, which the sandbox cannot build from plain specs, so a small driver
module (``_DRIVER`` below, trusted text that runs next to the student's files
in a second sandbox) builds them and calls the student's function; the updated
networks come back as weights and are compared with the reference's SGD steps
on the same inputs. ``train_actor_critic`` is graded by evaluating the returned
policy here, in the parent, on environment seeds the child never sees.
"""
from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from autograder import checks
from autograder.checks import CheckFailed
from autograder.child.wire import walk
from autograder.harness import (PLAIN_SGD_SOURCE, Call, compare, episode_returns, later, named, rebuild_network,
                               reference_gradients, run, to_case, training_runs)
from autograder.oracle import answers
from autograder.seeds import shared_inputs
from autograder.client import network
from common.networks import PolicyNet, ValueNet
from common.rollout import evaluate_policy

M = "ex3_baseline"
ref = answers(M)  # the reference and the mistake variants (live, or recorded in a student kit)
rng = np.random.default_rng(20261203)


# ====================================================================== inputs
def f32(a) -> torch.Tensor:
    return torch.tensor(np.asarray(a, dtype=np.float64), dtype=torch.float32)


def trajectory(T, N=None, p_done=0.2, bool_dones=False, scale=1.0):
    """rewards, values, next_values, dones; values are V(s_t) and next_values = V(s_{t+1})."""
    shape = (T,) if N is None else (T, N)
    rewards = f32(rng.normal(size=shape) * scale)
    values = f32(rng.normal(size=shape) * scale)
    next_values = f32(rng.normal(size=shape) * scale)
    dones = torch.tensor(rng.random(shape) < p_done)
    return rewards, values, next_values, (dones if bool_dones else dones.float())


def bootstrap_value(N=None):
    return f32(rng.normal()) if N is None else f32(rng.normal(size=N))


# ====================================================================== gradient checks
class GradCase:
    """One gradient check: d sum_k <w_k, output_k> / d(arg) for the args in ``expect``.

    ``expect[arg]`` is True (must equal the reference gradient) or False (must
    get none). ``missing`` / ``unexpected`` map an arg to the message shown when
    it gets no gradient although it should / gets one although it should not.
    """

    def __init__(self, call: Call, expect: dict, outputs=("",), names=None, missing=None, unexpected=None,
                 mistakes=None):
        self.call, self.expect, self.outputs = call, expect, tuple(outputs)
        self.names = names or {}
        self.missing = missing or {}
        self.unexpected = unexpected or {}
        self.mistakes = mistakes  # callable(arg, weights) -> list of Mistake (wrong gradients)


def grad_checks(sub, dev, function: str, reference, cases: list[GradCase], seed: int = 0,
                rtol: float = 1e-4, atol: float = 1e-5) -> None:
    """Run every case in one child, then compare each gradient with the reference (float64)."""
    g = np.random.default_rng(seed)
    wires, weights_all = [], []
    for case in cases:
        ref_out = reference(*case.call.args, **case.call.kwargs)
        weights = {p: g.normal(size=tuple(walk(ref_out, p).shape)) for p in case.outputs}
        weights_all.append(weights)
        call = Call(*case.call.args, label=case.call.label, requires_grad=tuple(case.expect), **case.call.kwargs)
        wires.append(to_case(call, grad_weights=weights))
    results = sub.call_many(M, function, wires, timeout=30)
    for case, weights, res in zip(cases, weights_all, results):
        checks.require_ok(res, function)
        grads = reference_gradients(reference, case.call.args, case.call.kwargs, list(case.expect), weights)
        ctx = f" ({case.call.label})" if case.call.label else ""
        for key, should in case.expect.items():
            path = f"arg{key}" if isinstance(key, int) else key
            label = case.names.get(key, path)
            got = res.grads.get(path, "absent")
            if isinstance(got, str):
                raise CheckFailed(f"{function}(): could not compute the gradient for {label}")
            has = got is not None and bool(np.any(np.abs(np.asarray(got, dtype=np.float64)) > atol))
            if should and not has:
                msg = case.missing.get(key) or (f"no gradient reaches {label} (did you detach it, or leave the "
                                                f"autograd graph?)")
                raise CheckFailed(f"{function}(): {msg}{ctx}")
            if not should and has:
                msg = case.unexpected.get(key) or (f"gradient flows into {label}, but it should not (detach it: "
                                                   f"it is treated as a constant)")
                raise CheckFailed(f"{function}(): {msg}{ctx}")
            if should:
                gr = grads.get(key)
                if gr is None:
                    raise RuntimeError(f"reference gives no gradient for {label}")
                wrong = list(case.mistakes(key, weights)) if case.mistakes else []
                checks.assert_grad(res, path, checks.to_numpy(gr), function, label + ctx, rtol=rtol, atol=atol,
                                   mistakes=wrong)


# ====================================================================== advantages
ADVANTAGE_MESSAGES = {"sign": "your advantages have the wrong sign: A_t = G_t - V(s_t) (returns minus values)"}


def advantage_mistakes(call: Call):
    return named(ADVANTAGE_MESSAGES, lambda: ref.advantage_variants(*call.args))


@pytest.mark.function("advantages")
@pytest.mark.points(1)
def test_advantages_values(sub, dev):
    """A = returns - values on [T] and [T, N] inputs"""
    calls = []
    for T, N in [(1, None), (7, None), (64, None), (1, 3), (12, 4), (40, 1)]:
        _, values, returns, _ = trajectory(T, N, scale=3.0)
        calls.append(Call(returns, values, label=f"T={T}" + (f", N={N}" if N else "")))
    compare(sub, dev, M, "advantages", calls, ref.advantages, mistakes=advantage_mistakes)


@pytest.mark.function("advantages")
@pytest.mark.points(1)
def test_advantages_no_gradient(sub, dev):
    """the advantage is a constant: no gradient reaches values (nor returns)"""
    cases = []
    for T, N in [(9, None), (6, 3)]:
        _, values, returns, _ = trajectory(T, N)
        cases.append(GradCase(
            Call(returns, values, label=f"T={T}" + (f", N={N}" if N else "")), {1: False, 0: False},
            names={0: "returns", 1: "values"},
            unexpected={1: "your advantages carry the critic's graph: detach them so that the policy loss "
                           "sends no gradient into the value network",
                        0: "gradient flows into returns: the advantages are constants (detach them)"}))
    grad_checks(sub, dev, "advantages", ref.advantages, cases)
    # and the values are still right when both inputs require grad
    _, values, returns, _ = trajectory(8, 2)
    compare(sub, dev, M, "advantages", [Call(returns, values, requires_grad=(0, 1), label="inputs require grad")],
            ref.advantages)


# ====================================================================== value_loss
MSE_MESSAGES = {
    "sum": "your value loss sums the squared errors; the loss is their mean over all elements",
    "rmse": "you took the square root (RMSE); the value loss is the mean squared error itself",
    "half": "you multiplied by 1/2; the value loss is mean((values - targets)**2) without that factor",
    "abs": "you used the absolute error; the value loss squares the error: mean((values - targets)**2)",
    "time_mean_only": "you averaged over time only; the loss is the mean over all elements (time and "
                      "environments)",
    "mean_error_squared": "you squared the mean error; the loss is the mean of the squared errors",
}


def value_loss_mistakes(call: Call):
    return named(MSE_MESSAGES, lambda: ref.mse_variants(*call.args))


@pytest.mark.function("value_loss")
@pytest.mark.points(1.5)
def test_value_loss_values(sub, dev):
    """mean squared error over all elements, on [T] and [T, N] inputs"""
    calls = []
    for T, N in [(1, None), (5, None), (50, None), (1, 4), (10, 3), (33, 8)]:
        _, values, targets, _ = trajectory(T, N, scale=2.0)
        calls.append(Call(values, targets, label=f"T={T}" + (f", N={N}" if N else "")))
    compare(sub, dev, M, "value_loss", calls, ref.value_loss, mistakes=value_loss_mistakes)


VALUE_LOSS_GRAD_MESSAGES = {
    "sum": MSE_MESSAGES["sum"],
    "half": MSE_MESSAGES["half"],
    "sign": "your gradient has the wrong sign: the loss is (values - targets)**2",
}


def _value_loss_grad_mistakes(values, targets):
    def make(arg, weights):
        if arg != 0:
            return []
        return named(VALUE_LOSS_GRAD_MESSAGES, lambda: ref.value_loss_grad_variants(values, targets, weights[""]))
    return make


@pytest.mark.function("value_loss")
@pytest.mark.points(1.5)
def test_value_loss_gradient(sub, dev):
    """gradient 2 (V - target) / n reaches values, and none reaches the targets"""
    cases = []
    for T, N in [(11, None), (7, 3)]:
        _, values, targets, _ = trajectory(T, N, scale=2.0)
        cases.append(GradCase(
            Call(values, targets, label=f"T={T}" + (f", N={N}" if N else "")), {0: True, 1: False},
            names={0: "values", 1: "targets"},
            missing={0: "your value loss has no gradient: the prediction (values) must stay in the graph; "
                        "detach only the targets"},
            unexpected={1: "your value loss sends gradient into the targets: they are regression targets "
                           "(constants), detach them"},
            mistakes=_value_loss_grad_mistakes(values, targets)))
    grad_checks(sub, dev, "value_loss", ref.value_loss, cases)


# ====================================================================== reinforce_baseline_loss
RBL_MESSAGES = {
    "no_baseline": "your policy loss ignores the baseline: weight log_probs by the advantage "
                   "returns - values, not by the returns",
    "adv_sign": "your advantage has the wrong sign: A = returns - values",
    "loss_sign": "your policy loss has the wrong sign: minimise -mean(log_probs * advantage)",
    "policy_sum": "your policy loss is a sum: take the mean over all elements",
    **MSE_MESSAGES,
}


def rbl_mistakes(call: Call):
    return named(RBL_MESSAGES, lambda: ref.rbl_variants(*call.args))


@pytest.mark.function("reinforce_baseline_loss")
@pytest.mark.points(1.5)
def test_reinforce_baseline_loss_values(sub, dev):
    """policy loss -mean(log_probs (G - V)) and value loss mean((V - G)^2), on [T] and [T, N]"""
    calls = []
    for T, N in [(1, None), (8, None), (60, None), (1, 2), (9, 4), (25, 6)]:
        _, values, returns, _ = trajectory(T, N, scale=3.0)
        log_probs = f32(-rng.exponential(size=values.shape))
        calls.append(Call(log_probs, returns, values, label=f"T={T}" + (f", N={N}" if N else "")))
    compare(sub, dev, M, "reinforce_baseline_loss", calls, ref.reinforce_baseline_loss, outputs=("0", "1"),
            labels=("policy_loss", "value_loss"), mistakes=rbl_mistakes)


@pytest.mark.function("reinforce_baseline_loss")
@pytest.mark.points(1.5)
def test_reinforce_baseline_loss_gradients(sub, dev):
    """the policy loss reaches only log_probs, the value loss only values; returns get none"""
    names = {0: "log_probs", 1: "returns", 2: "values"}
    cases = []
    for T, N in [(10, None), (6, 3)]:
        _, values, returns, _ = trajectory(T, N, scale=2.0)
        log_probs = f32(-rng.exponential(size=values.shape))
        lbl = f"T={T}" + (f", N={N}" if N else "")
        cases.append(GradCase(
            Call(log_probs, returns, values, label=lbl + ", gradient of policy_loss"),
            {0: True, 2: False, 1: False}, outputs=("0",), names=names,
            missing={0: "your policy loss does not reach log_probs: keep the log-probabilities in the graph"},
            unexpected={2: "your policy loss sends gradient into the value network: use the detached "
                           "advantage (advantages()) as the weight",
                        1: "your policy loss sends gradient into the returns: they are constants"}))
        cases.append(GradCase(
            Call(log_probs, returns, values, label=lbl + ", gradient of value_loss"),
            {0: False, 1: False, 2: True}, outputs=("1",), names=names,
            missing={2: "your value loss has no gradient: the prediction (values) must stay in the graph"},
            unexpected={0: "your value loss sends gradient into the policy (log_probs): it must involve the "
                           "critic only",
                        1: "your value loss sends gradient into the returns: they are regression targets, "
                           "detach them"}))
    grad_checks(sub, dev, "reinforce_baseline_loss", ref.reinforce_baseline_loss, cases)


# ====================================================================== td_errors
TD_MESSAGES = {
    "no_dones": "your TD errors bootstrap through episode ends: multiply gamma * V(s_{t+1}) by (1 - dones[t])",
    "no_gamma": "you forgot to discount V(s_{t+1}) by gamma",
    "sign": "your TD errors have the wrong sign: delta_t = r_t + gamma (1 - d_t) V(s_{t+1}) - V(s_t)",
    "mask_reward": "you also dropped the reward where dones[t] = 1: only the bootstrap term "
                   "gamma * V(s_{t+1}) is cut at an episode end",
}
TD_GRAD_MESSAGES = {"sign": "the gradient for values has the wrong sign: d delta_t / d V(s_t) = -1"}


def td_mistakes(call: Call):
    return named(TD_MESSAGES, lambda: ref.td_variants(*call.args))


@pytest.mark.function("td_errors")
@pytest.mark.points(1.5)
def test_td_errors_single_env(sub, dev):
    """delta_t = r_t + gamma (1 - d_t) V(s_{t+1}) - V(s_t) on [T] trajectories"""
    calls = []
    for T, gamma in [(1, 0.9), (6, 0.99), (20, 0.9), (128, 0.95)]:
        r, v, nv, d = trajectory(T, p_done=0.3)
        calls.append(Call(r, v, nv, d, gamma, label=f"T={T}, gamma={gamma}"))
    compare(sub, dev, M, "td_errors", calls, ref.td_errors, mistakes=td_mistakes)


@pytest.mark.function("td_errors")
@pytest.mark.points(1)
def test_td_errors_batched_and_edge_cases(sub, dev):
    """[T, N] trajectories, bool dones, all dones, no dones, gamma = 0 and gamma = 1"""
    calls = []
    for T, N, gamma in [(1, 3, 0.9), (10, 4, 0.97), (40, 8, 0.99)]:
        r, v, nv, d = trajectory(T, N, p_done=0.3)
        calls.append(Call(r, v, nv, d, gamma, label=f"T={T}, N={N}, gamma={gamma}"))
    r, v, nv, d = trajectory(12, 3, p_done=0.3, bool_dones=True)
    calls.append(Call(r, v, nv, d, 0.9, label="bool dones"))
    r, v, nv, _ = trajectory(9, 2)
    calls.append(Call(r, v, nv, torch.ones(9, 2), 0.9, label="every step is done"))
    calls.append(Call(r, v, nv, torch.zeros(9, 2), 0.9, label="no dones"))
    r, v, nv, d = trajectory(15, 2, p_done=0.3)
    calls.append(Call(r, v, nv, d, 0.0, label="gamma=0"))
    calls.append(Call(r, v, nv, d, 1.0, label="gamma=1"))
    compare(sub, dev, M, "td_errors", calls, ref.td_errors, mistakes=td_mistakes)


@pytest.mark.function("td_errors")
@pytest.mark.points(1.5)
def test_td_errors_semi_gradient(sub, dev):
    """semi-gradient: values get d delta_t / d V(s_t) = -1, next_values get no gradient"""
    cases = []
    for T, N in [(12, None), (8, 3)]:
        r, v, nv, d = trajectory(T, N, p_done=0.3)
        cases.append(GradCase(
            Call(r, v, nv, d, 0.9, label=f"T={T}" + (f", N={N}" if N else "")), {1: True, 2: False},
            names={1: "values", 2: "next_values"},
            missing={1: "no gradient reaches values: delta_t must stay differentiable in V(s_t) (the critic "
                        "learns from it)"},
            unexpected={2: "gradient flows into next_values: the TD target r_t + gamma V(s_{t+1}) is a constant "
                           "(semi-gradient), detach next_values"},
            mistakes=lambda arg, w: named(TD_GRAD_MESSAGES, lambda: ref.td_grad_variants(w[""]))))
    grad_checks(sub, dev, "td_errors", ref.td_errors, cases)


# ====================================================================== compute_gae
GAE_MESSAGES = {
    "no_dones": "your advantages leak across episode boundaries: dones must cut both the bootstrap "
                "(1 - d_t) V(s_{t+1}) and the recursion (1 - d_t) A_{t+1}",
    "no_done_recursion": "your advantages leak across episode boundaries: reset the running advantage where "
                         "dones[t] = 1 (A_t = delta_t + gamma lam (1 - d_t) A_{t+1})",
    "no_done_bootstrap": "you bootstrap through an episode end: delta_t must use (1 - d_t) V(s_{t+1})",
    "no_last_value": "you did not bootstrap the last step from last_value: V(s_T) = last_value, not 0",
    "current_value": "your delta_t bootstraps from V(s_t) instead of V(s_{t+1}) (values[t + 1], and "
                     "last_value after the last step)",
    "no_gamma_recursion": "your recursion is missing gamma: A_t = delta_t + gamma * lam * (1 - d_t) * A_{t+1}",
    "no_lam_recursion": "your recursion is missing lam: A_t = delta_t + gamma * lam * (1 - d_t) * A_{t+1}",
    "forward": "your advantages accumulate forward in time; GAE runs backwards, from t = T-1 down to 0",
    "shifted_done": "you use dones[t+1] where dones[t] belongs: d_t = 1 means nothing after step t "
                    "belongs to the episode",
    "returns_are_advantages": "your returns equal the advantages: the critic's targets are "
                              "returns = advantages + values",
}


def gae_mistakes(call: Call):
    return named(GAE_MESSAGES, lambda: ref.gae_variants(*call.args))


def _gae_call(T, N=None, gamma=0.99, lam=0.95, p_done=0.2, bool_dones=False, dones=None, label=None):
    r, v, _, d = trajectory(T, N, p_done=p_done, bool_dones=bool_dones)
    if dones is not None:
        d = dones
    last = bootstrap_value(N)
    return Call(r, v, d, last, gamma, lam,
                label=label or (f"T={T}" + (f", N={N}" if N else "") + f", gamma={gamma}, lam={lam}"))


GAE_OUT = dict(outputs=("0", "1"), labels=("advantages", "returns"))


@pytest.mark.function("compute_gae")
@pytest.mark.points(2)
def test_gae_single_env(sub, dev):
    """matches the reference on [T] trajectories (last_value of shape [])"""
    calls = [_gae_call(T, None, g, l) for T, g, l in
             [(1, 0.99, 0.95), (5, 0.9, 0.8), (23, 0.99, 0.95), (64, 0.97, 0.9), (200, 0.999, 0.98)]]
    compare(sub, dev, M, "compute_gae", calls, ref.compute_gae, mistakes=gae_mistakes, **GAE_OUT)


@pytest.mark.function("compute_gae")
@pytest.mark.points(2)
def test_gae_batched(sub, dev):
    """matches the reference on [T, N] trajectories (last_value of shape [N])"""
    calls = [_gae_call(T, N, g, l) for T, N, g, l in
             [(1, 4, 0.99, 0.95), (8, 3, 0.9, 0.7), (32, 8, 0.99, 0.95), (50, 1, 0.95, 0.9)]]
    compare(sub, dev, M, "compute_gae", calls, ref.compute_gae, mistakes=gae_mistakes, **GAE_OUT)


@pytest.mark.function("compute_gae")
@pytest.mark.points(1.5)
def test_gae_edge_cases(sub, dev):
    """edge cases: all dones, no dones, gamma = 0, gamma = 1, bool dones, last_value [] with [T, N]"""
    calls = [
        _gae_call(10, 3, dones=torch.ones(10, 3), label="every step is done"),
        _gae_call(10, 3, dones=torch.zeros(10, 3), label="no dones"),
        _gae_call(12, None, dones=torch.zeros(12), label="one unfinished episode, [T]"),
        _gae_call(15, 2, gamma=0.0, lam=0.9, label="gamma=0"),
        _gae_call(15, 2, gamma=1.0, lam=0.9, label="gamma=1"),
        _gae_call(15, 2, gamma=1.0, lam=1.0, label="gamma=1, lam=1"),
        _gae_call(14, 4, bool_dones=True, label="bool dones"),
    ]
    r, v, _, d = trajectory(9, 3)
    calls.append(Call(r, v, d, bootstrap_value(None), 0.9, 0.8, label="[T, N] values with last_value of shape []"))
    compare(sub, dev, M, "compute_gae", calls, ref.compute_gae, mistakes=gae_mistakes, **GAE_OUT)


@pytest.mark.function("compute_gae")
@pytest.mark.points(1.5)
def test_gae_lambda_limits(sub, dev):
    """lam = 0 gives the TD errors; lam = 1 gives bootstrapped discounted returns minus values"""
    specs = [(0.0, 17, None, 0.9), (0.0, 11, 4, 0.99), (1.0, 19, None, 0.95), (1.0, 13, 3, 0.9)]
    calls = [_gae_call(T, N, gamma=g, lam=lam, p_done=0.25) for lam, T, N, g in specs]
    results = run(sub, M, "compute_gae", calls)
    for (lam, *_), call, res in zip(specs, calls, results):
        want, want_returns = ref.gae_lambda_limit(*call.args)  # the closed forms of both limits
        if lam == 0.0:
            what = "with lam = 0 the advantages should equal the TD errors delta_t"
        else:
            what = ("with lam = 1 the advantages should equal the discounted returns (bootstrapped from "
                    "last_value) minus the values")
        leaf = checks.tensor_output(res, "compute_gae", "0", "advantages")
        try:
            checks.assert_tensor(leaf, want, "compute_gae", device=dev, label="advantages",
                                 mistakes=[(k, m, (lambda f=f: f()[0])) for k, m, f in gae_mistakes(call)],
                                 context=call.label)
        except CheckFailed as exc:
            if "wrong at index" in str(exc):
                raise CheckFailed(f"compute_gae(): {what} ({call.label})") from None
            raise
        checks.assert_tensor(checks.tensor_output(res, "compute_gae", "1", "returns"), want_returns, "compute_gae",
                             device=dev, label="returns",
                             mistakes=[(k, m, (lambda f=f: f()[1])) for k, m, f in gae_mistakes(call)],
                             context=call.label)


@pytest.mark.function("compute_gae")
@pytest.mark.points(1)
def test_gae_no_gradient(sub, dev):
    """advantages and returns are targets: no gradient reaches rewards, values or last_value"""
    names = {0: "rewards", 1: "values", 3: "last_value"}
    unexpected = {
        1: "gradient flows from the advantages/returns into values: they are targets, compute them from "
           "values.detach()",
        3: "gradient flows into last_value: the bootstrap value is part of a target, detach it",
        0: "gradient flows into rewards: advantages and returns are targets (constants)",
    }
    cases = [GradCase(_gae_call(T, N), {1: False, 3: False, 0: False}, outputs=("0", "1"), names=names,
                      unexpected=unexpected) for T, N in [(9, None), (7, 3)]]
    grad_checks(sub, dev, "compute_gae", ref.compute_gae, cases)
    # the values are unchanged when the inputs require grad
    call = _gae_call(8, 2)
    compare(sub, dev, M, "compute_gae", [Call(*call.args, requires_grad=(0, 1, 3), label="inputs require grad")],
            ref.compute_gae, mistakes=gae_mistakes, **GAE_OUT)


# ====================================================================== gradient_variance
def random_policy(obs_dim=4, n_actions=3, hidden=(8,), scale=0.6, seed=0) -> PolicyNet:
    g = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        net = PolicyNet(obs_dim, n_actions, hidden=hidden)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * scale)
    return net


def random_batch(E, n_actions=3, obs_dim=4, max_T=20, offset=0.0, with_baselines=True):
    lengths = rng.integers(1, max_T + 1, size=E)
    obs = [f32(rng.normal(size=(int(T), obs_dim))) for T in lengths]
    acts = [torch.tensor(rng.integers(0, n_actions, size=int(T)), dtype=torch.int64) for T in lengths]
    rets = [f32(rng.normal(size=int(T)) * 2.0 + offset) for T in lengths]
    bls = [f32(rng.normal(size=int(T)) * 2.0 + offset) for T in lengths] if with_baselines else None
    return obs, acts, rets, bls


GV_MESSAGES = {
    "no_baseline": "your result ignores the baselines: weight log pi(a_t|s_t) by G_t - b_t when baselines are given",
    "population": "you used the population variance (divide by E); use the sample variance across "
                  "episodes, with denominator E - 1",
    "mean_params": "you averaged the variance over the parameters; sum it over every parameter coordinate",
    "per_step": "you treated every timestep as a sample; each episode's gradient "
                "sum_t grad log pi(a_t|s_t) (G_t - b_t) is one sample",
    "mean_over_time": "you averaged over the timesteps of an episode; the single-episode estimate sums them",
    "norm_variance": "you took the variance of the gradient norms; take the variance of each coordinate "
                     "across episodes and sum",
    "std": "you summed standard deviations; sum the variances",
}


def _number(res, what, label, dev):
    leaf = checks.output_leaf(res, what)
    if leaf.kind not in ("tensor", "number") or leaf.array is None or leaf.array.size != 1:
        raise CheckFailed(f"{what}(): {label} should be a 0-d tensor, got {leaf.describe()}")
    if leaf.kind == "tensor":
        if list(leaf.array.shape) not in ([], [1]):
            raise CheckFailed(f"{what}(): {label} should be a 0-d tensor, got {leaf.describe()}")
        if not checks._same_device(leaf.device, dev):
            raise CheckFailed(f"{what}(): {label} is on {leaf.device}, expected {dev} (return results on "
                              f"the device of the inputs)")
    return leaf


def _check_lists_unchanged(res, call: Call, what: str) -> None:
    for i, a in enumerate(call.args):
        if isinstance(a, (list, tuple)) and a and all(isinstance(x, torch.Tensor) for x in a):
            checks.assert_inputs_unchanged(res, {f"arg{i}.{j}": x for j, x in enumerate(a)}, what)
    for k, a in call.kwargs.items():
        if isinstance(a, (list, tuple)) and a and all(isinstance(x, torch.Tensor) for x in a):
            checks.assert_inputs_unchanged(res, {f"{k}.{j}": x for j, x in enumerate(a)}, what)


@pytest.mark.function("gradient_variance")
@pytest.mark.points(2.5)
def test_gradient_variance_values(sub, dev):
    """matches the reference: summed sample variance of the per-episode gradient, with and without baselines"""
    cases = []
    for k, (E, A, maxT, offset) in enumerate([(2, 2, 6, 0.0), (3, 3, 12, 5.0), (5, 2, 20, 0.0), (8, 4, 9, 10.0)]):
        pol = random_policy(n_actions=A, seed=100 + k)
        obs, acts, rets, bls = random_batch(E, n_actions=A, max_T=maxT, offset=offset)
        cases.append((pol, obs, acts, rets, None, f"E={E} episodes, no baselines"))
        cases.append((pol, obs, acts, rets, bls, f"E={E} episodes, with baselines"))
    calls = [Call(network(pol), obs, acts, rets, baselines=bls, label=lbl)
             for pol, obs, acts, rets, bls, lbl in cases]
    results = run(sub, M, "gradient_variance", calls, timeout=30)
    for (pol, obs, acts, rets, bls, lbl), call, res in zip(cases, calls, results):
        want = float(ref.gradient_variance(pol, obs, acts, rets, bls))
        mistakes = named(GV_MESSAGES, lambda: ref.gv_variants(pol, obs, acts, rets, bls))
        leaf = _number(res, "gradient_variance", "the result", dev)
        if leaf.kind == "tensor" and leaf.dtype != "float32":
            raise CheckFailed(f"gradient_variance(): the result has dtype {leaf.dtype}, expected float32 ({lbl})")
        got = float(np.asarray(leaf.array, dtype=np.float64).reshape(()))
        if not np.isfinite(got):
            raise CheckFailed(f"gradient_variance(): the result is {got} ({lbl})")
        if abs(got - want) <= 1e-4 * abs(want) + 1e-7:
            _check_lists_unchanged(res, call, "gradient_variance")
            continue
        for _, msg, make in mistakes:
            wrong = float(make())
            if abs(got - wrong) <= 1e-4 * abs(wrong) + 1e-7:
                raise CheckFailed(f"gradient_variance(): {msg} ({lbl})")
        raise CheckFailed(f"gradient_variance(): the result is {got:.6g}, expected {want:.6g} ({lbl})")


def cartpole_like_batch(E=12, seed=7):
    """Episodes of length 8..40 with reward 1 per step (returns G_t = sum_k gamma^k): large, positive returns."""
    g = np.random.default_rng(seed)
    obs, acts, rets = [], [], []
    for _ in range(E):
        T = int(g.integers(8, 41))
        obs.append(f32(g.normal(size=(T, 4)) * 0.5))
        acts.append(torch.tensor(g.integers(0, 2, size=T), dtype=torch.int64))
        rets.append(f32((1 - 0.99 ** np.arange(T, 0, -1)) / (1 - 0.99)))
    # baseline: the mean return at time t over the episodes still running at t (a fitted V(t))
    L = max(len(r) for r in rets)
    sums, counts = np.zeros(L), np.zeros(L)
    for r in rets:
        sums[: len(r)] += r.numpy()
        counts[: len(r)] += 1
    mean_t = sums / np.maximum(counts, 1)
    bls = [f32(mean_t[: len(r)]) for r in rets]
    return obs, acts, rets, bls


@pytest.mark.function("gradient_variance")
@pytest.mark.points(1.5)
def test_gradient_variance_baseline_helps(sub, driver_sub, dev):
    """a fitted baseline (the mean return at each time step) reduces the variance on CartPole-like episodes"""
    pol = random_policy(n_actions=2, hidden=(16,), scale=0.4, seed=5)
    obs, acts, rets, bls = cartpole_like_batch()
    with_b = float(ref.gradient_variance(pol, obs, acts, rets, bls))
    without = float(ref.gradient_variance(pol, obs, acts, rets, None))
    if not with_b < 0.5 * without:  # the suite's own premise
        raise RuntimeError(f"suite bug: the baseline does not reduce the variance ({with_b} vs {without})")
    calls = [Call(network(pol), obs, acts, rets, label="no baselines"),
             Call(network(pol), obs, acts, rets, bls, label="with baselines")]
    r0, r1 = run(sub, M, "gradient_variance", calls, timeout=30)
    v0 = float(np.asarray(_number(r0, "gradient_variance", "the result", dev).array, dtype=np.float64).reshape(()))
    v1 = float(np.asarray(_number(r1, "gradient_variance", "the result", dev).array, dtype=np.float64).reshape(()))
    if not (np.isfinite(v0) and np.isfinite(v1)):
        raise CheckFailed("gradient_variance(): the result is not finite")
    if abs(v1 - v0) <= 1e-6 * max(abs(v0), 1e-12):
        raise CheckFailed("gradient_variance(): the result does not change when baselines are given: weight "
                          "log pi(a_t|s_t) by G_t - b_t")
    if not v1 < v0:
        raise CheckFailed(f"gradient_variance(): with a good baseline the variance should drop, but it went from "
                          f"{v0:.4g} to {v1:.4g}")
    _check_lists_unchanged(r1, calls[1], "gradient_variance")
    # the docstring's promise: the policy's .grad fields are left untouched (run in the driver, which can set them)
    obs, acts, rets, bls = (x[:4] for x in (obs, acts, rets, bls))
    (res,) = driver_sub.call_many(_DRIVER_NAME, "gv_with_grads",
                                  [to_case(Call(network(pol), obs, acts, rets, bls))], timeout=30)
    checks.require_ok(res, "gradient_variance")
    changed = checks.output_leaf(res, "gradient_variance", "changed", "the driver's count")
    if changed.array is None or float(np.asarray(changed.array).reshape(())) != 0:
        raise CheckFailed("gradient_variance(): the policy's .grad fields changed (loss.backward() or zero_grad() "
                          "touch them): compute each episode's gradient with flat_grad / torch.autograd.grad, which "
                          "leaves .grad alone")


# ====================================================================== actor_critic_update
_DRIVER_NAME = "_rlkit_ex3_update_driver"
# A plain SGD optimizer with the interface actor_critic_update uses (zero_grad, step, param_groups).
# torch.optim is not used on purpose: building the first torch.optim optimizer in a process costs
# about a second of CPU (lazy imports), in every forked child.
_SGD_SRC = PLAIN_SGD_SOURCE  # the optimizer the answers' updates use too
_DRIVER = '''"""Grader helper (not part of the submission): calls actor_critic_update with real objects."""
import torch

from common.rollout import Episode
''' + _SGD_SRC + '''

def run_updates(policy, value_net, observations, actions, rewards, gamma, lam, normalize_advantages,
                lr, value_lr):
    from .ex3_baseline import actor_critic_update

    policy_optimizer = PlainSGD(policy.parameters(), lr=lr)
    value_optimizer = PlainSGD(value_net.parameters(), lr=value_lr)
    outputs = []
    for obs, act, rew in zip(observations, actions, rewards):
        log_pi = torch.log_softmax(policy(obs), dim=-1)
        log_probs = log_pi.gather(-1, act.unsqueeze(-1)).squeeze(-1)
        episode = Episode(observations=obs, actions=act, rewards=rew, log_probs=log_probs,
                          total_reward=float(rew.sum()))
        outputs.append(actor_critic_update(policy_optimizer, value_optimizer, value_net, episode, gamma, lam,
                                           normalize_advantages))
    return {"outputs": outputs, "policy": policy, "value": value_net}


def gv_with_grads(policy, observations, actions, returns, baselines):
    """gradient_variance on a policy whose .grad fields hold a marker: how many of them changed?"""
    from .ex3_baseline import gradient_variance

    for p in policy.parameters():
        p.grad = torch.full_like(p, 0.125)
    result = gradient_variance(policy, observations, actions, returns, baselines)
    changed = sum(1 for p in policy.parameters()
                  if p.grad is None or not torch.equal(p.grad, torch.full_like(p, 0.125)))
    return {"result": result, "changed": changed}
'''


@pytest.fixture(scope="module")
def driver_sub(sub):
    """The submission's sandbox, whose kit part now also holds the driver module."""
    return sub.with_kit_modules({_DRIVER_NAME: _DRIVER})


UPDATE_LR = 0.05


def ac_networks(seed):
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        pol = PolicyNet(4, 2, hidden=(16,))
        val = ValueNet(4, hidden=(16,))
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():  # a policy that is not uniform, so every term of the gradient matters
        for p in pol.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.3)
    return pol, val


def ac_episode(T, ones=True):
    obs = f32(rng.normal(size=(T, 4)) * 0.7)
    act = torch.tensor(rng.integers(0, 2, size=T), dtype=torch.int64)
    rew = torch.ones(T) if ones else f32(rng.normal(size=T) + 0.5)
    return obs, act, rew


def _close_updates(got: dict, want: dict, start: dict, tol: float = 2e-3) -> str | None:
    """None when every weight moved as expected, else the name of the first parameter that did not."""
    scale = max(float(np.abs(want[k] - start[k]).max()) for k in want) + 1e-12
    for k in want:
        if k not in got or got[k].shape != want[k].shape:
            return k
        if np.max(np.abs((got[k] - start[k]) - (want[k] - start[k]))) > tol * scale + 1e-7:
            return k
    return None


def ac_messages(normalize: bool) -> dict:
    return {
        "no_zero_grad": "gradients accumulate from one update to the next: call zero_grad() on both "
                        "optimizers before backward()",
        "no_policy_zero_grad": "the policy's gradients accumulate from one update to the next: call "
                               "policy_optimizer.zero_grad() too, before backward()",
        "no_value_zero_grad": "the critic's gradients accumulate from one update to the next: call "
                              "value_optimizer.zero_grad() too, before backward()",
        "normalize_flag": ("you did not standardize the advantages although normalize_advantages=True"
                           if normalize else
                           "you standardized the advantages although normalize_advantages=False"),
        "adv_not_detached": "your policy loss also trains the critic: the advantages must be constants "
                            "(compute them from detached values, e.g. with compute_gae)",
        "adv_minus_values": "your policy loss also trains the critic: the advantages must be constants "
                            "(use the detached advantages from compute_gae)",
        "critic_on_advantages": "the critic regresses on the advantages; its targets are the returns "
                                "A + V from compute_gae",
        "policy_sign": "your policy update goes the wrong way: minimise -mean(log_probs * A)",
        "lam_ignored": "your update ignores lam: pass it to compute_gae",
    }


AC_CASES = [
    # (label, gamma, lam, normalize, [(T, rewards are ones)], network seed)
    ("gamma=0.99, lam=1, normalize_advantages=True", 0.99, 1.0, True, [(23, True)], 1),
    ("gamma=0.9, lam=0.8, normalize_advantages=False", 0.9, 0.8, False, [(14, False)], 2),
    ("gamma=0.95, lam=0, normalize_advantages=True", 0.95, 0.0, True, [(30, False)], 3),
]
AC_REPEAT_CASES = [
    ("three updates in a row, gamma=0.99, lam=0.95, normalize_advantages=True", 0.99, 0.95, True,
     [(17, True), (25, True), (9, True)], 4),
    ("two updates in a row, gamma=0.9, lam=0.9, normalize_advantages=False", 0.9, 0.9, False,
     [(12, False), (20, False)], 5),
]
_ac_inputs: dict = {}


def _ac_case_inputs(spec):
    key = spec[0]
    if key not in _ac_inputs:
        _, gamma, lam, normalize, eps, seed = spec
        with shared_inputs(sys.modules[__name__], f"actor_critic_update case: {key}"):
            pol, val = ac_networks(seed)
            _ac_inputs[key] = (pol, val, [ac_episode(T, ones) for T, ones in eps])
    return _ac_inputs[key]


def _loss_numbers(leaf, what) -> np.ndarray:
    if leaf is None or leaf.kind != "sequence" or len(leaf.children) != 2:
        raise CheckFailed(f"{what}() should return (policy_loss, value_loss), got "
                          f"{leaf.describe() if leaf is not None else 'nothing'}")
    vals = []
    for k in ("0", "1"):
        c = leaf.children[k]
        if c.kind == "tensor" and c.requires_grad:  # a detached 0-d tensor is a fine number
            graph = " that still carries the autograd graph"
            raise CheckFailed(f"{what}() should return the two losses as Python floats, got {c.describe()}{graph}: "
                              f"call .item() on each loss before returning it (tensors kept in the training log keep "
                              f"each episode's graph alive)")
        if c.kind not in ("number", "tensor") or c.array is None or c.array.size != 1:
            raise CheckFailed(f"{what}() should return the two losses as Python floats, got {c.describe()}")
        vals.append(float(np.asarray(c.array, dtype=np.float64).reshape(())))
    return np.asarray(vals)


_ac_cache: dict = {}


def _ac_results(driver_sub) -> dict:
    """Every actor_critic_update case of the suite, run in ONE child of the driver sandbox."""
    key = id(driver_sub)
    if key not in _ac_cache:
        specs = AC_CASES + AC_REPEAT_CASES
        calls = []
        for spec in specs:
            label, gamma, lam, normalize, _, _ = spec
            pol, val, eps = _ac_case_inputs(spec)
            calls.append(Call(network(pol), network(val), [e[0] for e in eps], [e[1] for e in eps],
                              [e[2] for e in eps], gamma, lam, normalize, UPDATE_LR, UPDATE_LR, label=label))
        results = driver_sub.call_many(_DRIVER_NAME, "run_updates", [to_case(c) for c in calls], timeout=60)
        _ac_cache[key] = {spec[0]: res for spec, res in zip(specs, results)}
    return _ac_cache[key]


def check_ac_cases(sub, driver_sub, dev, specs):
    what = "actor_critic_update"
    if not sub.has_module(M):
        raise CheckFailed(f"{what}(): {M}.py is not in the submission")
    cached = _ac_results(driver_sub)
    for spec in specs:
        res = cached[spec[0]]
        label, gamma, lam, normalize, _, _ = spec
        pol, val, eps = _ac_case_inputs(spec)
        checks.require_ok(res, what)
        out = res.output()
        outs = out.get("outputs")
        if outs is None or outs.kind != "sequence" or len(outs.children) != len(eps):
            raise CheckFailed(f"{what}() could not be checked ({label})")
        losses = np.stack([_loss_numbers(outs.children[str(i)], what) for i in range(len(eps))])
        got_p = rebuild_network(out.get("policy"), what, "the policy").state_dict()
        got_v = rebuild_network(out.get("value"), what, "the value network").state_dict()
        got_p = {k: v.double().numpy() for k, v in got_p.items()}
        got_v = {k: v.double().numpy() for k, v in got_v.items()}
        start_p = {k: v.detach().double().numpy() for k, v in pol.state_dict().items()}
        start_v = {k: v.detach().double().numpy() for k, v in val.state_dict().items()}

        def matches(result):
            l, p, v = result
            return (np.allclose(losses, l, rtol=1e-4, atol=1e-5) and _close_updates(got_p, p, start_p) is None
                    and _close_updates(got_v, v, start_v) is None)

        # (losses [n, 2], policy weights, value weights) after the reference's updates, and after updates
        # with one known mistake each; every update starts from the same networks with a fresh PlainSGD
        update = (pol, val, eps, gamma, lam, normalize, UPDATE_LR)
        expected = ref.ac_updates(*update)
        # standardising with the sample std (torch.std's default) instead of standardize() is accepted
        accepted = later(lambda: [ref.ac_sample_std(*update)] if normalize else [])  # (only on a mismatch)
        mistakes = named(ac_messages(normalize), lambda: ref.ac_variants(*update))
        if matches(expected) or any(matches(result) for result in accepted()):
            continue
        for _, msg, result in mistakes:
            if matches(result()):
                raise CheckFailed(f"{what}(): {msg} ({label})")
        el, ep_, ev = expected
        if all(np.array_equal(got_v[k], start_v[k]) for k in start_v):
            raise CheckFailed(f"{what}(): the value network did not change: step value_optimizer on "
                              f"value_loss(V, returns) ({label})")
        if all(np.array_equal(got_p[k], start_p[k]) for k in start_p):
            raise CheckFailed(f"{what}(): the policy did not change: step policy_optimizer on the policy loss "
                              f"({label})")
        if not np.allclose(losses[:, 0], el[:, 0], rtol=1e-4, atol=1e-5):
            i = int(np.argmax(~np.isclose(losses[:, 0], el[:, 0], rtol=1e-4, atol=1e-5)))
            raise CheckFailed(f"{what}(): the policy loss of update {i + 1} is {losses[i, 0]:.6g}, expected "
                              f"{el[i, 0]:.6g} ({label})")
        if not np.allclose(losses[:, 1], el[:, 1], rtol=1e-4, atol=1e-5):
            i = int(np.argmax(~np.isclose(losses[:, 1], el[:, 1], rtol=1e-4, atol=1e-5)))
            raise CheckFailed(f"{what}(): the value loss of update {i + 1} is {losses[i, 1]:.6g}, expected "
                              f"{el[i, 1]:.6g} ({label})")
        bad = _close_updates(got_v, ev, start_v)
        if bad is not None:
            raise CheckFailed(f"{what}(): the critic's parameter {bad!r} did not move as one optimizer step on "
                              f"value_loss(V, returns) predicts ({label})")
        bad = _close_updates(got_p, ep_, start_p)
        raise CheckFailed(f"{what}(): the policy's parameter {bad!r} did not move as one optimizer step on "
                          f"-mean(log_probs * A) predicts ({label})")


@pytest.mark.function("actor_critic_update")
@pytest.mark.points(2)
def test_actor_critic_update_one_step(sub, driver_sub, dev):
    """one update: returns both losses and steps the actor and the critic as the reference does"""
    check_ac_cases(sub, driver_sub, dev, AC_CASES)


@pytest.mark.function("actor_critic_update")
@pytest.mark.points(1)
def test_actor_critic_update_repeated(sub, driver_sub, dev):
    """several updates in a row with the same optimizers (gradients must not accumulate)"""
    check_ac_cases(sub, driver_sub, dev, AC_REPEAT_CASES)


# ====================================================================== train_actor_critic
LEARN_SEED = 3
LEARN_EPISODES = 300  # early stopping (target_return=475) ends the reference's run after ~50-200
LEARN_EVAL_SEED = 424_242
LEARN_EVAL_EPISODES = 20
LEARN_THRESHOLD = 400.0
SEED_RUNS = [11, 11, 12]  # train_actor_critic(episodes=SEED_EPISODES, target_return=None, seed=s)
SEED_EPISODES = 10


def _train_args(dev) -> tuple:
    seed_calls = [Call(env_id="CartPole-v1", episodes=SEED_EPISODES, seed=s, device=dev, target_return=None)
                  for s in SEED_RUNS]
    learn = Call(env_id="CartPole-v1", episodes=LEARN_EPISODES, seed=LEARN_SEED, device=dev)
    return M, "train_actor_critic", seed_calls, learn, 240


# the training runs start before the first test, beside the other checks (see harness)
_training_starts_first, _train_runs = training_runs(_train_args)


def _curve(res) -> list[float]:
    return episode_returns(res, "train_actor_critic")


@pytest.mark.function("train_actor_critic")
@pytest.mark.points(2)
@pytest.mark.learning
def test_train_actor_critic_learns_cartpole(request, sub, dev):
    """learns CartPole-v1: the greedy policy averages >= 400 on new episodes within 300 training episodes"""
    res = _train_runs(request, sub, dev)["learn"]
    if res is None:  # only when the cache was filled by a session without learning tests
        res = sub.call(M, "train_actor_critic", env_id="CartPole-v1", episodes=LEARN_EPISODES, seed=LEARN_SEED,
                       device=dev, timeout=240)
    checks.require_ok(res, "train_actor_critic")
    curve = _curve(res)
    if not 1 <= len(curve) <= LEARN_EPISODES:
        raise CheckFailed(f"train_actor_critic(): {len(curve)} episode returns for episodes={LEARN_EPISODES}")
    policy = rebuild_network(res.output("policy"), "train_actor_critic")
    scores = evaluate_policy(policy, "CartPole-v1", episodes=LEARN_EVAL_EPISODES, seed=LEARN_EVAL_SEED, greedy=True)
    mean = float(np.mean(scores))
    if mean < LEARN_THRESHOLD:
        raise CheckFailed(f"train_actor_critic(): after {len(curve)} training episodes the greedy policy averages "
                          f"{mean:.1f} over {LEARN_EVAL_EPISODES} new CartPole-v1 episodes (evaluated by the "
                          f"grader); it should reach {LEARN_THRESHOLD:.0f}. Check actor_critic_update (advantages, "
                          f"standardisation, both optimizer steps) and the functions it uses")


@pytest.mark.function("train_actor_critic")
@pytest.mark.points(1)
def test_train_actor_critic_seed(request, sub, dev):
    """the seed makes training reproducible: same seed, same run; another seed, another run"""
    results = _train_runs(request, sub, dev)["seed"]
    curves, weights = [], []
    for res in results:
        checks.require_ok(res, "train_actor_critic")
        curves.append(_curve(res))
        pol = rebuild_network(res.output("policy"), "train_actor_critic")
        weights.append(np.concatenate([p.detach().numpy().ravel() for p in pol.parameters()]))
    if curves[0] != curves[1] or not np.array_equal(weights[0], weights[1]):
        raise CheckFailed("train_actor_critic(): two runs with the same seed differ: all randomness must come from "
                          "the seed (the generator passed to collect_episode, the seeded env, the global torch RNG)")
    if curves[0] == curves[2] and np.array_equal(weights[0], weights[2]):
        raise CheckFailed("train_actor_critic(): runs with different seeds are identical: the seed is ignored")
