"""Hidden suite for ex5_rlhf (20 points): the KL-penalized RLHF objective, token by token."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from autograder import checks
from autograder.checks import CheckFailed
from autograder.harness import Call, compare, gradients, named, run, to_case
from autograder.oracle import answers

M = "ex5_rlhf"
ref = answers(M)  # the reference and the mistake variants (live, or recorded in a student kit)
rng = np.random.default_rng(5150)


# ------------------------------------------------------------------ inputs
def response_mask(B, T, lengths=None, starts=None, as_bool=False):
    """Rows of zeros (prompt), a run of ones (response), zeros (padding)."""
    mask = np.zeros((B, T), dtype=bool)
    for b in range(B):
        start = int(starts[b]) if starts is not None else int(rng.integers(0, T))
        length = int(lengths[b]) if lengths is not None else int(rng.integers(0, T - start + 1))
        mask[b, start:start + length] = True
    m = torch.tensor(mask)
    return m if as_bool else m.float()


def batch(B, T, as_bool=False, junk=False, **mask_kw):
    mask = response_mask(B, T, as_bool=as_bool, **mask_kw)
    lp = torch.tensor(-rng.gamma(2.0, 1.0, size=(B, T)), dtype=torch.float32)
    ref_lp = torch.tensor(-rng.gamma(2.0, 1.0, size=(B, T)), dtype=torch.float32)
    if junk:  # arbitrary finite numbers off the response must not matter
        off = ~mask.bool()
        lp = torch.where(off, torch.tensor(rng.normal(0, 1e4, size=(B, T)), dtype=torch.float32), lp)
        ref_lp = torch.where(off, torch.tensor(rng.normal(0, 1e4, size=(B, T)), dtype=torch.float32), ref_lp)
    scores = torch.tensor(rng.normal(0, 2, size=B), dtype=torch.float32)
    return scores, lp, ref_lp, mask


# ------------------------------------------------------------------ preference_loss
PREF_MESSAGES = {
    "swapped": "your loss prefers the rejected response: it is -log sigmoid(r_chosen - r_rejected)",
    "sum": "you summed over the pairs; the loss is the mean over pairs",
    "no_log": "you left out the log: the Bradley-Terry loss is -mean(log sigmoid(r_chosen - r_rejected))",
    "positive": "your loss has the wrong sign: minimize the NEGATIVE log-likelihood",
}


def pref_mistakes(call: Call):
    return named(PREF_MESSAGES, lambda: ref.pref_variants(*call.args))


@pytest.mark.function("preference_loss")
@pytest.mark.points(2)
def test_preference_loss_values(sub, dev):
    """-mean(log sigmoid(r_chosen - r_rejected)) on random pairs"""
    calls = []
    for shape in [(1,), (7,), (64,), (4, 5)]:
        c = torch.tensor(rng.normal(size=shape), dtype=torch.float32)
        r = torch.tensor(rng.normal(size=shape), dtype=torch.float32)
        calls.append(Call(c, r, label=f"shape {list(shape)}"))
    compare(sub, dev, M, "preference_loss", calls, ref.preference_loss, mistakes=pref_mistakes)


@pytest.mark.function("preference_loss")
@pytest.mark.points(1)
def test_preference_loss_stable(sub, dev):
    """stays finite and exact for score gaps of hundreds"""
    c = torch.tensor([300.0, -300.0, 120.0, -95.0, 0.0])
    r = torch.tensor([-300.0, 300.0, 0.0, 5.0, 0.0])
    compare(sub, dev, M, "preference_loss", [Call(c, r, label="gaps of +-600")], ref.preference_loss,
            rtol=1e-4, atol=1e-3, mistakes=pref_mistakes)


@pytest.mark.function("preference_loss")
@pytest.mark.points(1)
def test_preference_loss_gradient(sub, dev):
    """gradient reaches both the chosen and the rejected scores"""
    c = torch.tensor(rng.normal(size=12), dtype=torch.float32)
    r = torch.tensor(rng.normal(size=12), dtype=torch.float32)
    gradients(sub, dev, M, "preference_loss", Call(c, r), ref.preference_loss,
              expect={0: True, 1: True}, names={0: "r_chosen", 1: "r_rejected"})


# ------------------------------------------------------------------ kl_penalty
KL_MESSAGES = {
    "sign": "your KL has the wrong sign: the penalty is log pi - log pi_ref (policy minus reference)",
    "ratio": "you returned the probability ratio; the per-token KL estimate is the LOG-ratio log pi - log pi_ref",
    "abs": "you took the absolute value: the per-token estimate log pi - log pi_ref can be negative "
           "(only its average over samples cannot)",
}


def kl_mistakes(call: Call):
    return named(KL_MESSAGES, lambda: ref.kl_variants(*call.args))


@pytest.mark.function("kl_penalty")
@pytest.mark.points(1.5)
def test_kl_penalty_values(sub, dev):
    """log_probs - ref_log_probs, elementwise, for any shape"""
    calls = []
    for shape in [(5,), (3, 8), (2, 4, 6)]:
        lp = torch.tensor(-rng.gamma(2.0, 1.0, size=shape), dtype=torch.float32)
        rl = torch.tensor(-rng.gamma(2.0, 1.0, size=shape), dtype=torch.float32)
        calls.append(Call(lp, rl, label=f"shape {list(shape)}"))
    compare(sub, dev, M, "kl_penalty", calls, ref.kl_penalty, mistakes=kl_mistakes)


@pytest.mark.function("kl_penalty")
@pytest.mark.points(1.5)
def test_kl_penalty_gradient(sub, dev):
    """gradient reaches log_probs only; the frozen reference gets none"""
    lp = torch.tensor(-rng.gamma(2.0, 1.0, size=(4, 6)), dtype=torch.float32)
    rl = torch.tensor(-rng.gamma(2.0, 1.0, size=(4, 6)), dtype=torch.float32)
    gradients(sub, dev, M, "kl_penalty", Call(lp, rl), ref.kl_penalty,
              expect={0: True, 1: False}, names={0: "log_probs", 1: "ref_log_probs (the frozen reference)"})


# ------------------------------------------------------------------ rlhf_rewards
REWARDS_MESSAGES = {
    "kl_sign": "your KL penalty has the wrong sign: each response token gets -beta * (log pi - log pi_ref)",
    "score_first": "the reward model's score belongs at the LAST response token of each row, not the first",
    "score_end": "you put the score at the last position of the row; it belongs at the last token "
                 "where mask is 1 (padding follows it)",
    "score_at_length": "you put the score at index mask.sum() - 1; that is the last response token only "
                       "when the response starts at position 0, but the prompt comes first: use the last "
                       "position where mask is 1",
    "score_replaces_kl": "at the last response token you replaced the KL penalty by the score; that token "
                         "gets both: -beta * kl + score",
    "sequence_kl": "you put the whole sequence's KL penalty on the last token; every response token pays its "
                   "own -beta * (log pi - log pi_ref)",
    "score_everywhere": "you added the score at every response token; it is added once, at the last one",
    "no_mask": "prompt and padding positions must get exactly 0 reward (apply the mask to the KL term)",
    "no_score": "you left out the reward model's score (add scores[b] at the last response token)",
    "beta_on_score": "beta scales only the KL term, not the reward model's score",
}


def rewards_mistakes(call: Call):
    return named(REWARDS_MESSAGES, lambda: ref.rewards_variants(*call.args))


@pytest.mark.function("rlhf_rewards")
@pytest.mark.points(2)
def test_rlhf_rewards_random(sub, dev):
    """matches the reference on batches with responses of different lengths"""
    calls = []
    for B, T, beta in [(1, 6, 0.1), (4, 9, 0.05), (8, 16, 0.2), (16, 12, 1.0)]:
        scores, lp, rl, mask = batch(B, T)
        calls.append(Call(scores, lp, rl, mask, beta, label=f"B={B}, T={T}, beta={beta}"))
    compare(sub, dev, M, "rlhf_rewards", calls, ref.rlhf_rewards, mistakes=rewards_mistakes)


@pytest.mark.function("rlhf_rewards")
@pytest.mark.points(1.5)
def test_rlhf_rewards_padding(sub, dev):
    """prompt and padding get exactly zero reward, whatever the log-probs hold there"""
    scores, lp, rl, mask = batch(6, 10, junk=True)
    calls = [Call(scores, lp, rl, mask, 0.1, label="large finite values off the response")]
    compare(sub, dev, M, "rlhf_rewards", calls, ref.rlhf_rewards, mistakes=rewards_mistakes)


@pytest.mark.function("rlhf_rewards")
@pytest.mark.points(1.5)
def test_rlhf_rewards_edge_rows(sub, dev):
    """empty responses, responses touching either end, bool masks, beta = 0, float64 log-probs"""
    B, T = 5, 7
    lengths = [0, 7, 3, 1, 2]
    starts = [2, 0, 4, 6, 0]
    scores, lp, rl, mask = batch(B, T, lengths=lengths, starts=starts)
    s2, lp2, rl2, m2 = batch(6, 8, as_bool=True)
    calls = [
        Call(scores, lp, rl, mask, 0.3, label="an empty row, a full row, responses at both ends"),
        Call(s2, lp2, rl2, m2, 0.3, label="bool mask"),
        Call(scores, lp, rl, mask, 0.0, label="beta=0"),
    ]
    compare(sub, dev, M, "rlhf_rewards", calls, ref.rlhf_rewards, mistakes=rewards_mistakes)
    # the rewards have the dtype of log_probs (float32 scores included), not the default float32
    s3, lp3, rl3, m3 = batch(4, 7)
    compare(sub, dev, M, "rlhf_rewards",
            [Call(s3, lp3.double(), rl3.double(), m3, 0.2, label="float64 log-probs: the rewards have their dtype")],
            ref.rlhf_rewards, dtype="float64", mistakes=rewards_mistakes)


@pytest.mark.function("rlhf_rewards")
@pytest.mark.points(1)
def test_rlhf_rewards_no_gradient(sub, dev):
    """the rewards are a signal, not a loss: no gradient reaches any input"""
    scores, lp, rl, mask = batch(4, 8)
    gradients(sub, dev, M, "rlhf_rewards", Call(scores, lp, rl, mask, 0.1), ref.rlhf_rewards,
              expect={0: False, 1: False, 2: False},
              names={0: "scores", 1: "log_probs", 2: "ref_log_probs"})


# ------------------------------------------------------------------ token_advantages
ADV_MESSAGES = {
    "returns_reward_to_go": "your returns are the reward-to-go; the value targets are returns = advantages "
                            "+ values (the lambda-return)",
    "normalized": "you normalised the advantages; token_advantages returns them as computed (no "
                  "normalisation here)",
    "bootstrap_past_end": "your advantages bootstrap from the position after the last response token; "
                          "the episode ends there (done), so V after it is 0",
    "no_lambda": "your recursion ignores lam: A_t = delta_t + lam * A_{t+1} (gamma = 1)",
    "gamma": "RLHF uses gamma = 1 here: every token of the response counts fully",
}


def adv_mistakes(call: Call):
    rewards, values, mask = call.args[:3]
    lam = call.args[3] if len(call.args) > 3 else call.kwargs.get("lam", 0.95)
    return named(ADV_MESSAGES, lambda: ref.adv_variants(rewards, values, mask, lam))


def _adv_call(B, T, lam, junk=False, as_bool=False, **mask_kw):
    mask = response_mask(B, T, as_bool=as_bool, **mask_kw)
    rewards = torch.tensor(rng.normal(size=(B, T)), dtype=torch.float32)
    values = torch.tensor(rng.normal(size=(B, T)), dtype=torch.float32)
    if junk:
        off = ~mask.bool()
        rewards = torch.where(off, torch.tensor(rng.normal(0, 1e3, size=(B, T)), dtype=torch.float32), rewards)
        values = torch.where(off, torch.tensor(rng.normal(0, 1e3, size=(B, T)), dtype=torch.float32), values)
    return Call(rewards, values, mask, lam, label=f"B={B}, T={T}, lam={lam}" + (", junk off-mask" if junk else ""))


@pytest.mark.function("token_advantages")
@pytest.mark.points(2)
def test_token_advantages_random(sub, dev):
    """per-token GAE with gamma = 1 matches the reference (advantages and returns)"""
    calls = [_adv_call(1, 5, 0.95), _adv_call(4, 9, 0.9), _adv_call(8, 12, 0.95), _adv_call(3, 6, 0.5, as_bool=True)]
    compare(sub, dev, M, "token_advantages", calls, ref.token_advantages, outputs=("0", "1"),
            labels=("advantages", "returns"), mistakes=adv_mistakes)


@pytest.mark.function("token_advantages")
@pytest.mark.points(1)
def test_token_advantages_lambda_edges(sub, dev):
    """lam = 0 gives the TD errors; lam = 1 gives reward-to-go minus value; float64 rewards keep their dtype"""
    calls = [_adv_call(5, 8, 0.0), _adv_call(5, 8, 1.0)]
    compare(sub, dev, M, "token_advantages", calls, ref.token_advantages, outputs=("0", "1"),
            labels=("advantages", "returns"), mistakes=adv_mistakes)
    c = _adv_call(4, 7, 0.9)
    c64 = Call(c.args[0].double(), c.args[1].double(), c.args[2], c.args[3],
               label=c.label + ", float64: the outputs have the dtype of rewards")
    compare(sub, dev, M, "token_advantages", [c64], ref.token_advantages, outputs=("0", "1"),
            labels=("advantages", "returns"), dtype="float64", mistakes=adv_mistakes)


@pytest.mark.function("token_advantages")
@pytest.mark.points(1)
def test_token_advantages_off_response(sub, dev):
    """zero off the response; values and rewards there change nothing; empty rows"""
    calls = [_adv_call(6, 10, 0.95, junk=True),
             _adv_call(5, 7, 0.9, lengths=[0, 7, 3, 1, 2], starts=[2, 0, 4, 6, 0])]
    compare(sub, dev, M, "token_advantages", calls, ref.token_advantages, outputs=("0", "1"),
            labels=("advantages", "returns"), mistakes=adv_mistakes)


@pytest.mark.function("token_advantages")
@pytest.mark.points(1)
def test_token_advantages_no_gradient(sub, dev):
    """advantages and returns are targets: no gradient reaches rewards or values"""
    call = _adv_call(4, 8, 0.95)
    gradients(sub, dev, M, "token_advantages", call, ref.token_advantages, outputs=("0", "1"),
              expect={0: False, 1: False}, names={0: "rewards", 1: "values"})


# ------------------------------------------------------------------ the toy RLHF run
class SandboxedOps:
    """Every exercise function the toy RLHF pipeline calls, computed by the student's code in the sandbox.

    The pipeline itself (the kit's answer-free copy: policy, reward model, PPO)
    runs here, trusted. Each of its calls to ``preference_loss``,
    ``kl_penalty``, ``rlhf_rewards``, ``token_advantages`` and ex4's
    ``ppo_policy_loss`` goes to the submission's sandbox as plain arrays.
    Where the pipeline needs a gradient, the sandbox returns the loss and its
    gradient with respect to each input, and :meth:`_with_gradient` puts them
    back into the pipeline's autograd graph. ``ops()`` is what the pipeline takes.
    """

    def __init__(self, sub):
        self.sub = sub

    def ops(self) -> SimpleNamespace:
        return SimpleNamespace(
            preference_loss=self._with_gradient(M, "preference_loss", inputs=2, grad_of=(0, 1)),
            ppo_policy_loss=self._with_gradient("ex4_ppo", "ppo_policy_loss", inputs=3, grad_of=(0,)),
            kl_penalty=self._values(M, "kl_penalty", inputs=2, like=0),
            rlhf_rewards=self._values(M, "rlhf_rewards", inputs=4, like=1),
            token_advantages=self._values(M, "token_advantages", inputs=3, like=0, outputs=("0", "1")))

    def _tensor(self, res, what, path, like):
        leaf = checks.tensor_output(res, what, path)
        arr = leaf.array
        if list(arr.shape) != list(like.shape) or not np.all(np.isfinite(arr)):
            raise CheckFailed(f"{what}() returned a wrong shape or non-finite values during the RLHF run")
        return torch.as_tensor(arr, dtype=like.dtype).to(like.device)

    def _call(self, module, what, args, inputs, grad_of=()):
        """One sandbox call: the first ``inputs`` arguments are tensors, the rest plain numbers."""
        tensors = [x.detach().cpu() for x in args[:inputs]]
        call = Call(*tensors, *[float(a) for a in args[inputs:]], requires_grad=tuple(grad_of))
        weights = {"": np.ones(())} if grad_of else None
        (res,) = self.sub.call_many(module, what, [to_case(call, grad_weights=weights)], timeout=20)
        checks.require_ok(res, what)
        return res

    def _values(self, module, what, inputs, like, outputs=("",)):
        def values(*args):
            res = self._call(module, what, args, inputs)
            out = [self._tensor(res, what, path, args[like]) for path in outputs]
            return out[0] if len(out) == 1 else tuple(out)
        return values

    def _with_gradient(self, module, what, inputs, grad_of):
        """A scalar loss with the student's value and the student's gradient w.r.t. each input in grad_of:
        value + sum_i <x_i - x_i.detach(), g_i> equals the value and has gradient g_i at x_i."""
        def loss(*args):
            res = self._call(module, what, args, inputs, grad_of)
            out = self._tensor(res, what, "", torch.zeros(())).to(args[0].device)
            for i in grad_of:
                g = res.grads.get(f"arg{i}")
                if g is None or isinstance(g, str) or list(np.shape(g)) != list(args[i].shape) \
                        or not np.all(np.isfinite(g)):
                    raise CheckFailed(f"{what}() gave no usable gradient for its input {i} during the RLHF run")
                g = torch.as_tensor(np.asarray(g), dtype=args[i].dtype, device=args[i].device)
                out = out + ((args[i] - args[i].detach()) * g).sum()
            return out
        return loss


RLHF_SEED = 0
RLHF_UPDATES = 20  # with the toy's actor step (rlhf_pipeline.FAST_CONFIG); make seeds shows the margin
# pi_ref and the reward model of the run seeded RLHF_SEED (stages 2-3: the kit's code, no student
# function), written by `make record`: PPO starts from them instead of training both in every grade
RLHF_STAGES = Path(__file__).resolve().parent.parent / "recorded" / "stages" / "rlhf.npz"


@pytest.mark.function("rlhf_rewards")
@pytest.mark.points(2)
@pytest.mark.learning
def test_toy_rlhf_with_your_rewards(sub, dev):
    """toy RLHF with your functions: with beta > 0 the score rises and the KL stays bounded"""
    from autograder.given import given_module

    rlhf_pipeline = given_module("rlhf_pipeline")  # the kit's copy: no answer in it
    # fail fast (before training anything) when a function the run needs does not run
    scores, lp, rl, mask = batch(2, 4)
    for module, what, call in [(M, "rlhf_rewards", Call(scores, lp, rl, mask, 0.1)),
                               (M, "token_advantages", Call(lp, rl, mask, 0.95)),
                               (M, "kl_penalty", Call(lp, rl)),
                               (M, "preference_loss", Call(scores, -scores)),
                               ("ex4_ppo", "ppo_policy_loss", Call(lp[0], rl[0], scores[:1].expand(4), 0.2))]:
        (res,) = run(sub, module, what, [call])
        checks.require_ok(res, what)
    torch.set_num_threads(1)
    stages = rlhf_pipeline.load_stages(RLHF_STAGES, rlhf_pipeline.RLHFConfig(), torch.device("cpu"))
    if stages["seed"] != RLHF_SEED:
        raise RuntimeError(f"{RLHF_STAGES} holds the stages of seed {stages['seed']}, not {RLHF_SEED}: run make record")
    kl_run, free = _toy_runs(sub, rlhf_pipeline, stages)
    problem = rlhf_verdict(kl_run, free)
    if problem:
        raise CheckFailed(problem)


def _toy_runs(sub, rlhf_pipeline, stages) -> tuple[dict, dict]:
    """The penalised run and the free one (beta = 0), each with every call in one session child (a
    fork per call costs 30 ms). Where a second sandbox is a fork (``forks_cheaply``), the free run
    goes on in it, in a thread, beside the first: the pipeline's torch work and each run's waits for
    its sandbox overlap on two cores, and each run draws from its own generator, so both give the
    numbers they give one after the other."""
    def toy(s, beta: float) -> dict:
        return rlhf_pipeline.run_toy_rlhf(beta, seed=RLHF_SEED, updates=RLHF_UPDATES, device="cpu",
                                          ops=SandboxedOps(s).ops(), stages=stages)

    def in_session(s, beta: float) -> dict:
        with s.session(timeout=240):
            return toy(s, beta)

    if not sub.forks_cheaply():
        with sub.session(timeout=240):  # one child for both runs
            return toy(sub, RLHF_BETA), toy(sub, 0.0)
    twin = sub.twin()
    try:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="free run") as pool:  # exits when it ends
            free = pool.submit(in_session, twin, 0.0)
            try:
                kl_run = in_session(sub, RLHF_BETA)
            except BaseException:
                twin.close()  # the free run then fails at its next call instead of running on
                raise
        return kl_run, free.result()
    finally:
        twin.close()  # (again: the free run may have opened its session after that first close)


RLHF_BETA = 0.2  # the penalised run; the other has beta = 0
RLHF_MAX_KL = 5.0  # nats per response, the penalised run's final KL must stay below it
RLHF_DRIFT = 1.5  # the unpenalised run must drift at least this many times further


def rlhf_verdict(kl_run: dict, free: dict) -> str | None:
    """What is wrong with a pair of toy-RLHF runs (beta = 0.2, beta = 0), or None when they pass.
    ``make seeds`` applies the same verdict to the reference on other seeds."""
    if not kl_run["score"] > kl_run["ref_score"]:
        return (f"with beta = {RLHF_BETA} the reward-model score did not rise above the reference policy's "
                f"({kl_run['score']:.2f} vs {kl_run['ref_score']:.2f})")
    if not kl_run["kl"] < RLHF_MAX_KL:
        return (f"with beta = {RLHF_BETA} the KL to the reference grew to {kl_run['kl']:.2f} nats: "
                f"the penalty is not holding the policy near the reference")
    if not free["kl"] > RLHF_DRIFT * kl_run["kl"]:
        return (f"without the penalty (beta = 0) the policy should drift much further from the "
                f"reference than with beta = {RLHF_BETA} (KL {free['kl']:.2f} vs {kl_run['kl']:.2f})")
    return None
