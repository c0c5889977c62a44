# Student version, generated from the reference by `make assignments`.
# Fill in every TODO: replace each `raise NotImplementedError(...)` with your code.
"""Exercise 5: the RLHF objective, one token at a time.

The chapter closes by recasting a language model as an RL agent:

* the *state* is the prompt plus the tokens generated so far,
* the *action* is the next token,
* an *episode* is one complete response,
* the *reward* comes from a reward model trained on human preferences,

and PPO then maximises

    E[ R_rm(prompt, response) - beta * KL(pi || pi_ref) ].

This file holds the four small functions that turn that sentence into code:

``preference_loss``
    The Bradley-Terry loss a reward model is trained with.
``kl_penalty``
    The per-token log-ratio ``log pi - log pi_ref`` (a one-sample KL estimate).
``rlhf_rewards``
    Spreads the objective over the tokens of a response: a KL penalty at every
    response token and the reward model's score on the last one.
``token_advantages``
    Per-token GAE (from ex3) with ``gamma = 1`` on those rewards.

``demos/rlhf_pipeline.py`` uses them to run the whole loop (reference
policy, reward model, PPO with actor, critic, reward model and frozen
reference) on a toy language in about a minute on a laptop CPU:
``make rlhf``.

Layout of a batch (shared by every function here)
-------------------------------------------------
Tensors are ``[B, T]``: ``B`` sequences of ``T`` positions each. Row ``b`` of
``mask`` is 0 on the prompt, then a contiguous run of 1s on the response
tokens, then 0 on the padding after the response (the run may be empty)::

    position   0    1    2    3    4    5    6    7
    token     <bos> cat  eats :    the  fish .    <pad>
    mask       0    0    0    0    1    1    1    0

``log_probs[b, t]`` is the log-probability of token ``t`` given the tokens
before it, under the policy being trained; ``ref_log_probs`` is the same under
the frozen reference policy. Their values where ``mask`` is 0 mean nothing and
must never leak into a result. ``mask`` may be bool or a float of 0s and 1s.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from common.validate import (
    check_dones,
    check_finite,
    check_same_device,
    check_same_shape,
    check_scalar,
    check_tensor,
)

from .ex3_baseline import compute_gae
from .ex4_ppo import ppo_policy_loss  # the PPO step of run_toy_rlhf (it passes this module's functions)

__all__ = [
    "preference_loss",
    "kl_penalty",
    "rlhf_rewards",
    "token_advantages",
    "run_toy_rlhf",
]


def _check_token_batch(mask: torch.Tensor, **floats: torch.Tensor) -> None:
    """Check ``[B, T]`` float tensors and a response mask laid out as described above."""
    for name, x in floats.items():
        check_tensor(name, x, dims=2, dim_names="B, T", floating=True)
        check_finite(name, x)
    first_name, first = next(iter(floats.items()))
    check_same_shape(**floats)
    check_same_device(**floats)
    check_dones("mask", mask, like=first, like_name=first_name)
    # A row may hold at most one run of ones: count the 0 -> 1 steps.
    m = mask.bool().to(torch.int8)
    starts = (m[:, :1] == 1).sum(dim=1) + (m[:, 1:] - m[:, :-1] == 1).sum(dim=1)
    if bool((starts > 1).any()):
        raise ValueError(
            "mask must hold, per row, zeros (prompt), ONE contiguous run of ones "
            "(response), then zeros (padding)"
        )


def preference_loss(r_chosen: torch.Tensor, r_rejected: torch.Tensor) -> torch.Tensor:
    """Bradley-Terry loss of a reward model on preference pairs.

    The Bradley-Terry model says a labeller prefers response ``a`` to ``b``
    with probability ``sigmoid(r(a) - r(b))``. Training the reward model means
    maximising the log-likelihood of the observed preferences::

        loss = -mean( log sigmoid(r_chosen - r_rejected) )

    Args:
        r_chosen: reward-model scores of the preferred responses, any shape
            (usually ``[N]``).
        r_rejected: scores of the other response of each pair, same shape.

    Returns:
        A scalar (0-dim tensor). Gradient reaches both ``r_chosen`` and
        ``r_rejected``; the result is finite even for score gaps of hundreds
        (``log(sigmoid(x))`` computed naively underflows to ``log(0) = -inf``).
    """
    check_tensor("r_chosen", r_chosen, floating=True)
    check_tensor("r_rejected", r_rejected, floating=True)
    check_same_shape(r_chosen=r_chosen, r_rejected=r_rejected)
    check_same_device(r_chosen=r_chosen, r_rejected=r_rejected)
    # TODO: return -mean(log sigmoid(r_chosen - r_rejected)), computed stably with F.logsigmoid
    raise NotImplementedError('preference_loss: return -mean(log sigmoid(r_chosen - r_rejected)), computed stably with F.logsigmoid')


def kl_penalty(log_probs: torch.Tensor, ref_log_probs: torch.Tensor) -> torch.Tensor:
    """Per-token KL estimate between the policy and the frozen reference.

    For a token ``a_t`` sampled from the policy, ``log pi(a_t|s_t) -
    log pi_ref(a_t|s_t)`` is an unbiased one-sample estimate of
    ``KL(pi(.|s_t) || pi_ref(.|s_t))``. A single value can be negative; its
    average over samples cannot.

    Args:
        log_probs: ``log pi(a_t|s_t)`` under the policy, any shape.
        ref_log_probs: ``log pi_ref(a_t|s_t)`` under the reference, same shape.

    Returns:
        ``log_probs - ref_log_probs``, same shape. Gradient reaches
        ``log_probs`` only: the reference is frozen, so ``ref_log_probs`` is
        treated as a constant (detached).
    """
    check_tensor("log_probs", log_probs, floating=True)
    check_tensor("ref_log_probs", ref_log_probs, floating=True)
    check_same_shape(log_probs=log_probs, ref_log_probs=ref_log_probs)
    check_same_device(log_probs=log_probs, ref_log_probs=ref_log_probs)
    # TODO: return the per-token log-ratio log_probs - ref_log_probs, with ref_log_probs detached
    raise NotImplementedError('kl_penalty: return the per-token log-ratio log_probs - ref_log_probs, with ref_log_probs detached')


def rlhf_rewards(
    scores: torch.Tensor,
    log_probs: torch.Tensor,
    ref_log_probs: torch.Tensor,
    mask: torch.Tensor,
    beta: float,
) -> torch.Tensor:
    """Per-token rewards of the KL-penalised RLHF objective.

    The reward model scores a whole response once, so its score is the reward
    of the action that finishes the response; every response token also pays
    for having moved away from the reference::

        kl[b, t]      = log_probs[b, t] - ref_log_probs[b, t]
        rewards[b, t] = -beta * kl[b, t]          where mask[b, t] == 1
                        + scores[b]               if t is the LAST position of
                                                  row b where mask[b, t] == 1
        rewards[b, t] = 0                         where mask[b, t] == 0

    Summed over a response this is ``score - beta * (sum of log-ratios)``,
    the quantity inside the chapter's ``E[R_rm - beta * KL]``.

    Args:
        scores: reward-model score per sequence, ``[B]``.
        log_probs: policy log-probabilities of the tokens, ``[B, T]``.
        ref_log_probs: reference log-probabilities, ``[B, T]``.
        mask: ``[B, T]``, bool or 0./1. float; per row: zeros (prompt), a
            contiguous run of ones (response), zeros (padding).
        beta: KL coefficient, a float ``>= 0``.

    Returns:
        ``rewards`` of shape ``[B, T]`` and the dtype of ``log_probs``, on the
        device of the inputs. Exactly zero where ``mask`` is 0, whatever
        ``log_probs`` and ``ref_log_probs`` hold there (any finite numbers);
        a row without response tokens is all zeros (its score is dropped).
        The result carries no gradient: it is a reward signal, not a loss.
    """
    _check_token_batch(log_probs=log_probs, ref_log_probs=ref_log_probs, mask=mask)
    check_tensor("scores", scores, dims=1, dim_names="B", floating=True)
    check_finite("scores", scores)
    if scores.shape[0] != mask.shape[0] or scores.device != mask.device:
        raise ValueError(
            f"scores must have shape [B] = [{mask.shape[0]}] on {mask.device}, "
            f"got [{scores.shape[0]}] on {scores.device}"
        )
    beta = check_scalar("beta", beta, low=0.0)
    # TODO: -beta * (log_probs - ref_log_probs) on response tokens, + scores[b] at row b's last one, 0 elsewhere, no grad
    raise NotImplementedError("rlhf_rewards: -beta * (log_probs - ref_log_probs) on response tokens, + scores[b] at row b's last one, 0 elsewhere, no grad")


def token_advantages(
    rewards: torch.Tensor,
    values: torch.Tensor,
    mask: torch.Tensor,
    lam: float = 0.95,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token GAE advantages and value targets of a batch of responses.

    Each row is one episode that starts at the first response token and ends
    at the last one: after it, nothing is bootstrapped. With ``gamma = 1``
    (the whole response counts, however long) and ``t`` a response token::

        delta[b, t] = rewards[b, t] + V[b, t+1] - V[b, t]    (V[b, t+1] := 0 at
                                                              the last token)
        A[b, t]     = delta[b, t] + lam * A[b, t+1]           (A := 0 after the
                                                              last token)
        returns     = A + V

    This is ``compute_gae`` from ex3 with ``gamma = 1``, applied to the
    transposed batch (time is dimension 0 there), ``dones`` set at the last
    response token (and at positions outside the response) and a bootstrap
    value of 0. No normalisation of the advantages happens here.

    Args:
        rewards: ``[B, T]`` per-token rewards (e.g. from ``rlhf_rewards``).
        values: ``[B, T]``; ``values[b, t]`` is the critic's ``V(s_t)``, the
            value of the state from which token ``t`` is generated.
        mask: ``[B, T]`` response mask, bool or 0./1. float, laid out as in
            ``rlhf_rewards``.
        lam: the GAE ``lambda`` in ``[0, 1]``.

    Returns:
        ``(advantages, returns)``, both ``[B, T]`` with the dtype of
        ``rewards``, carrying no gradient (they are targets). Both are exactly
        0 where ``mask`` is 0; ``rewards`` and ``values`` at those positions do
        not affect any output.
    """
    _check_token_batch(rewards=rewards, values=values, mask=mask)
    lam = check_scalar("lam", lam, low=0.0, high=1.0)
    # TODO: dones at each row's last response token, compute_gae(gamma=1) on the [T, B] transposes, 0 off the response
    raise NotImplementedError("token_advantages: dones at each row's last response token, compute_gae(gamma=1) on the [T, B] transposes, 0 off the response")


def run_toy_rlhf(beta: float, seed: int = 0, updates: int | None = None, device: str = "cpu") -> dict:
    """Fast learning check: the toy RLHF pipeline driven by THIS module's functions.

    Trains a small reference policy and reward model on the kit's toy language,
    then runs PPO on the KL-penalised reward for ``updates`` updates (a small
    default that runs in a few seconds on a CPU). See
    ``demos.rlhf_pipeline.run_toy_rlhf`` for the keys of the returned dict
    (plain Python numbers: the final and the reference reward-model score, the
    mean KL to the reference, ...). Needs the kit's ``demos/`` package (and
    ``ex3``/``ex4`` next to this file).
    """
    import sys

    # Imported here, not at the top: the pipeline is the kit's demo, not part of the exercise
    # (it imports no exercise module: every function it calls comes from this one).
    from demos.rlhf_pipeline import run_toy_rlhf as _run

    return _run(beta, seed=seed, updates=updates, device=device, ops=sys.modules[__name__])
