"""Toy RLHF, end to end, in about a minute on a laptop CPU.

Run it with ``make rlhf`` (or ``python -m demos.rlhf_pipeline --help``).

``--impl`` picks whose exercise functions run the pipeline (``kl_penalty``,
``rlhf_rewards``, ``preference_loss``, ``token_advantages`` from ex5 and
``ppo_policy_loss`` from ex4): ``assignments`` (the default) runs yours,
``--impl solutions`` the reference (``make rlhf IMPL=solutions``). The code
below receives them as ``ops`` (see :func:`default_ops`); importing this
module imports no exercise module.

The point of this script is to make the last section of the chapter
concrete: a language model is a policy over tokens, a reward model trained on
preferences supplies the reward, and PPO maximises
``E[R_rm(response) - beta * KL(pi || pi_ref)]``. Everything is small enough to
read in one sitting and to train on a CPU, but the moving parts are the ones
of a real RLHF system, and so are the failure modes.

The stages
----------
1. **A toy language.** The kit generates a corpus of prompts such as
   ``cat chases dog`` and responses such as ``please the big cat chases a dog
   thanks .`` from a small random grammar (``sample_response``), over a
   vocabulary of 24 tokens.
2. **The reference policy** ``pi_ref``: a one-layer GRU language model trained
   by supervised next-token prediction on that corpus (the "SFT model").
3. **The reward model**: another GRU that reads prompt and response and outputs
   one number. It is trained with ``preference_loss`` (Bradley-Terry) on pairs
   of responses sampled from ``pi_ref`` and labelled by a hidden rule
   (``labeller_score``): the labeller likes responses that say ``please`` and
   end with ``thanks``. Its pairwise accuracy on held-out pairs is reported.
4. **PPO with four models**, the roles of the next chapter:

   ========  =================================  =========
   actor     the policy being trained           trained
   critic    a value head, ``V(prompt + prefix)`` trained
   reward    the reward model from stage 3      frozen
   ref       the SFT policy from stage 2        frozen
   ========  =================================  =========

   Each update samples responses from the actor, scores them with the reward
   model, turns score and per-token KL into per-token rewards
   (``rlhf_rewards``), computes per-token advantages with GAE
   (``token_advantages``) and takes a few epochs of the clipped PPO step from
   ex4 (``ppo_policy_loss``). The KL to the reference is logged every update.
5. **The lesson**: the same run for ``beta = 0`` and two positive values. With
   ``beta = 0`` nothing ties the actor to the reference: the reward-model score
   climbs, the KL explodes and the samples drift to strings the reward model
   was never trained on, which the labeller's full rule (it also wants the
   response to be about the prompt and to avoid stutters, properties every
   training pair had, so the reward model never learned them) often scores
   lower. With ``beta > 0`` the score still rises while the KL stays bounded.

Outputs: ``plots/rlhf.png`` (reward-model score, KL to the reference and the
labeller's score over updates, one line per beta), ``plots/rlhf.json`` (the
numbers) and, on the terminal, sample responses before and after training and
a table per beta.

``run_toy_rlhf`` is a fast (a few seconds) version for automated checks: ex5's
hidden learning test passes every exercise function in ``ops`` (the grader
never lets this module import an implementation), and ex5's own
``run_toy_rlhf`` passes that module.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import threading
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

from common.adam import Adam
from common.device import get_device

from demos import DEFAULT_IMPL, add_impl_argument, exercise

# ---------------------------------------------------------------------------
# Stage 1: the toy language (corpus, prompts, the labeller's hidden rule)
# ---------------------------------------------------------------------------

PAD, BOS, SEP, EOS = 0, 1, 2, 3
SPECIALS = ["<pad>", "<bos>", ":", "."]
NOUNS = ["cat", "dog", "bird", "fish", "cow"]
VERBS = ["sees", "likes", "eats", "chases"]
ADJECTIVES = ["big", "small", "red", "blue"]
DETERMINERS = ["the", "a"]
OTHER = ["very", "and", "yes", "please", "thanks"]
VOCAB = SPECIALS + NOUNS + VERBS + ADJECTIVES + DETERMINERS + OTHER
TOKEN = {word: i for i, word in enumerate(VOCAB)}
PROMPT_LEN = 5  # <bos> noun verb noun ":"
# A response never contains these: the policy's logits for them are pushed to
# -1e4 (not -inf, which would turn 0 * log 0 into NaN in the exact KL).
NOT_IN_RESPONSE = (PAD, BOS, SEP)


def sample_prompt(rng: np.random.Generator) -> list[str]:
    """A prompt "subject verb object", e.g. ``["cat", "chases", "dog"]``."""
    subject, obj = rng.choice(NOUNS, size=2, replace=False)
    return [str(subject), str(rng.choice(VERBS)), str(obj)]


def _noun_phrase(noun: str, rng: np.random.Generator) -> list[str]:
    words = [str(rng.choice(DETERMINERS))]
    if rng.random() < 0.4:
        if rng.random() < 0.3:
            words.append("very")
        words.append(str(rng.choice(ADJECTIVES)))
    return words + [noun]


def sample_response(prompt: list[str], rng: np.random.Generator) -> list[str]:
    """The grammar of the corpus: a sentence describing the prompt, ending with ".".

    ``[please | yes] NP(subject) verb NP(object) [and NP(other)] [thanks] .``
    where NP is ``the|a [[very] adjective] noun``. The verb is usually the
    prompt's, sometimes another one; "please" opens a quarter of the responses
    and "thanks" closes a quarter of them, independently.
    """
    subject, verb, obj = prompt
    words: list[str] = []
    opener = rng.random()
    if opener < 0.25:
        words.append("please")
    elif opener < 0.40:
        words.append("yes")
    words += _noun_phrase(subject, rng)
    words.append(verb if rng.random() < 0.85 else str(rng.choice(VERBS)))
    words += _noun_phrase(obj, rng)
    if rng.random() < 0.2:
        other = [n for n in NOUNS if n != obj]
        words += ["and", str(rng.choice(DETERMINERS)), str(rng.choice(other))]
    if rng.random() < 0.25:
        words.append("thanks")
    return words + ["."]


def labeller_score(prompt: list[str], response: list[str]) -> float:
    """The hidden rule of the (simulated) human labeller; higher is better.

    +1 if the response says "please", +1 if it ends with "thanks" (and then
    ".")  -- the preferences the comparisons reveal --  and two preferences
    that every response of the corpus already satisfies, so that comparisons
    between such responses never reveal them: -1 if it does not mention both
    nouns of the prompt (off topic) and -1 if it repeats a word twice in a row
    or never ends (a stutter).
    """
    finished = "." in response
    words = response[: response.index(".")] if finished else list(response)
    score = float("please" in words)
    score += float(finished and len(words) > 0 and words[-1] == "thanks")
    score -= float(not (prompt[0] in words and prompt[2] in words))
    stutter = any(a == b for a, b in zip(words, words[1:]))
    score -= float(stutter or not finished)
    return score


def encode_prompts(prompts: list[list[str]]) -> torch.Tensor:
    """``[B, PROMPT_LEN]`` int64 tokens ``<bos> subject verb object :``."""
    return torch.tensor([[BOS] + [TOKEN[w] for w in p] + [SEP] for p in prompts], dtype=torch.long)


def _prompt_batch(rng: np.random.Generator, n: int, device: torch.device) -> torch.Tensor:
    """``n`` random prompts, encoded, on ``device``."""
    return encode_prompts([sample_prompt(rng) for _ in range(n)]).to(device)


def encode_pairs(prompts: list[list[str]], responses: list[list[str]], max_response_len: int):
    """Encode prompt + response into ``tokens [B, S]`` and the response ``mask [B, S]``.

    ``S = PROMPT_LEN + max_response_len``; responses are cut to
    ``max_response_len`` tokens and padded with ``<pad>``.
    """
    seq_len = PROMPT_LEN + max_response_len
    tokens = torch.full((len(prompts), seq_len), PAD, dtype=torch.long)
    mask = torch.zeros((len(prompts), seq_len), dtype=torch.bool)
    tokens[:, :PROMPT_LEN] = encode_prompts(prompts)
    for i, response in enumerate(responses):
        ids = [TOKEN[w] for w in response][:max_response_len]
        tokens[i, PROMPT_LEN : PROMPT_LEN + len(ids)] = torch.tensor(ids)
        mask[i, PROMPT_LEN : PROMPT_LEN + len(ids)] = True
    return tokens, mask


def decode(tokens: torch.Tensor, mask: torch.Tensor) -> tuple[list[str], list[str]]:
    """One row back to words: ``(prompt words, response words)``."""
    prompt = [VOCAB[t] for t in tokens[1 : PROMPT_LEN - 1].tolist()]
    response = [VOCAB[t] for t, m in zip(tokens.tolist(), mask.tolist()) if m]
    return prompt, response


def labeller_scores(tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``labeller_score`` of every row of a batch, ``[B]`` float32 on the CPU."""
    tokens, mask = tokens.cpu(), mask.cpu()
    return torch.tensor([labeller_score(*decode(t, m)) for t, m in zip(tokens, mask)])


# ---------------------------------------------------------------------------
# The models: one small GRU architecture plays all four roles
# ---------------------------------------------------------------------------


class TokenGRU(nn.Module):
    """Embedding -> GRU -> linear head, applied at every position.

    The GRU is causal: the output at position ``t`` depends on tokens ``0..t``
    only. With ``out_dim = vocab size`` the head gives next-token logits (a
    policy); with ``out_dim = 1`` it gives a value per prefix (critic) or a
    score (reward model, read at the last response token).
    """

    def __init__(self, out_dim: int, embed_dim: int = 32, hidden_dim: int = 64, banned=()):
        super().__init__()
        self.embed = nn.Embedding(len(VOCAB), embed_dim)
        self.gru = nn.GRU(embed_dim, hidden_dim, batch_first=True)
        self.head = nn.Linear(hidden_dim, out_dim)
        bias = torch.zeros(out_dim)
        bias[list(banned)] = -1e4
        self.register_buffer("logit_bias", bias)

    def forward(self, tokens: torch.Tensor, hidden: torch.Tensor | None = None):
        """``tokens [B, S]`` -> ``(outputs [B, S, out_dim], hidden)``."""
        out, hidden = self.gru(self.embed(tokens), hidden)
        return self.head(out) + self.logit_bias, hidden


def make_policy(cfg: RLHFConfig) -> TokenGRU:
    return TokenGRU(len(VOCAB), cfg.embed_dim, cfg.hidden_dim, banned=NOT_IN_RESPONSE)


def make_critic(ref: TokenGRU) -> TokenGRU:
    """A value model that starts from the reference's embedding and GRU.

    Reusing the language model's features is what large systems do too (the
    critic starts from a pretrained model); the value head starts at zero.
    """
    critic = TokenGRU(1, ref.embed.embedding_dim, ref.gru.hidden_size)
    critic.embed.load_state_dict(ref.embed.state_dict())
    critic.gru.load_state_dict(ref.gru.state_dict())
    nn.init.zeros_(critic.head.weight)
    nn.init.zeros_(critic.head.bias)
    return critic.to(ref.logit_bias.device)


def token_log_probs(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """``out[b, t] = log pi(tokens[b, t] | tokens[b, :t])``, ``[B, S]``; ``out[:, 0] = 0``.

    The logits at position ``t - 1`` predict token ``t``, hence the shift.
    """
    logp = F.log_softmax(logits[:, :-1], dim=-1)
    picked = logp.gather(-1, tokens[:, 1:].unsqueeze(-1)).squeeze(-1)
    return F.pad(picked, (1, 0))


def state_values(critic: TokenGRU, tokens: torch.Tensor) -> torch.Tensor:
    """``values[b, t] = V(tokens[b, :t])``: the value of the state that emits token ``t``."""
    out, _ = critic(tokens)
    return F.pad(out[:, :-1, 0], (1, 0))


def last_index(mask: torch.Tensor) -> torch.Tensor:
    """Position of the last response token of each row, ``[B]`` (0 for an empty row)."""
    positions = torch.arange(mask.shape[1], device=mask.device)
    return torch.where(mask.bool(), positions, 0).amax(dim=1)


class RewardModel(nn.Module):
    """A GRU that reads prompt + response and outputs one score per sequence.

    The score is read at the last response token, so it has seen the whole
    response and nothing after it. ``offset``/``scale`` standardise the raw
    output on samples of the reference policy (score 0 = a typical reference
    response, 1 = one standard deviation better), which makes ``beta`` easier
    to reason about.
    """

    def __init__(self, embed_dim: int = 32, hidden_dim: int = 64):
        super().__init__()
        self.net = TokenGRU(1, embed_dim, hidden_dim)
        self.register_buffer("offset", torch.zeros(()))
        self.register_buffer("scale", torch.ones(()))

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        out, _ = self.net(tokens)
        raw = out[:, :, 0].gather(1, last_index(mask).unsqueeze(1)).squeeze(1)
        return (raw - self.offset) / self.scale


@torch.no_grad()
def generate(policy: TokenGRU, prompts: torch.Tensor, max_len: int, generator: torch.Generator | None = None):
    """Sample responses token by token (temperature 1) until ``.`` or ``max_len``.

    Returns ``tokens [B, PROMPT_LEN + max_len]`` (prompt, response, ``<pad>``)
    and the response ``mask`` (True on response tokens, the final ``.``
    included). Draws from ``generator`` (default: the global torch RNG).
    """
    logits, hidden = policy(prompts)
    next_logits = logits[:, -1]
    finished = torch.zeros(prompts.shape[0], dtype=torch.bool, device=prompts.device)
    out, live = [], []
    for _ in range(max_len):
        token = torch.multinomial(F.softmax(next_logits, dim=-1), 1, generator=generator).squeeze(1)
        token = torch.where(finished, torch.full_like(token, PAD), token)
        out.append(token)
        live.append(~finished)
        finished = finished | (token == EOS)
        logits, hidden = policy(token.unsqueeze(1), hidden)
        next_logits = logits[:, -1]
    tokens = torch.cat([prompts, torch.stack(out, dim=1)], dim=1)
    prompt_mask = torch.zeros_like(prompts, dtype=torch.bool)
    return tokens, torch.cat([prompt_mask, torch.stack(live, dim=1)], dim=1)


# ---------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------


@dataclass
class RLHFConfig:
    """Every knob of the toy pipeline; the defaults are what ``make rlhf`` runs."""

    seed: int = 0
    """Seeds the corpus, the preference data, every network and every sample."""
    device: str = "cpu"
    """``"cpu"``, ``"cuda"`` or ``"auto"`` (CUDA when available)."""
    betas: tuple[float, ...] = (0.0, 0.1, 0.5)
    """KL coefficients to compare; each gets its own PPO run from the same start."""
    max_response_len: int = 16
    """Responses are cut after this many tokens (the longest corpus response has 15)."""
    embed_dim: int = 32
    """Token embedding size of every GRU."""
    hidden_dim: int = 64
    """GRU state size of every model."""

    corpus_size: int = 4000
    """Number of (prompt, response) examples the reference policy learns from."""
    sft_steps: int = 400
    """Supervised (next-token) steps for the reference policy."""
    sft_batch: int = 128
    """Sequences per supervised step."""
    sft_lr: float = 3e-3
    """Adam learning rate of the supervised stage."""

    rm_pairs: int = 2000
    """Preference pairs (ties dropped) used to train the reward model."""
    rm_heldout_pairs: int = 500
    """Held-out pairs for the reward model's pairwise accuracy."""
    rm_steps: int = 250
    """Reward-model training steps."""
    rm_batch: int = 128
    """Pairs per reward-model step."""
    rm_lr: float = 3e-3
    """Adam learning rate of the reward model."""

    ppo_updates: int = 100
    """PPO updates (each: one batch of fresh samples, then ``ppo_epochs`` passes)."""
    rollout_batch: int = 64
    """Responses sampled per update."""
    ppo_epochs: int = 2
    """Passes over each batch of samples."""
    minibatches: int = 1
    """Minibatches per pass."""
    clip_eps: float = 0.2
    """PPO clipping range epsilon."""
    lam: float = 0.95
    """GAE lambda (gamma is 1: a response is short and every token counts)."""
    actor_lr: float = 1e-3
    """Adam learning rate of the actor."""
    critic_lr: float = 3e-3
    """Adam learning rate of the critic."""
    max_grad_norm: float = 1.0
    """Gradient-norm clipping for actor and critic."""
    final_window: int = 10
    """"Final" numbers are means over this many last updates (samples are noisy)."""
    n_samples: int = 4
    """Sample responses printed before and after training."""
    out_dir: str = "plots"
    """Where ``rlhf.png`` and ``rlhf.json`` go."""
    progress: bool | None = None
    """Show a tqdm bar; ``None``: only when stderr is a terminal."""


# ---------------------------------------------------------------------------
# Stages 2 and 3: reference policy (supervised) and reward model (preferences)
# ---------------------------------------------------------------------------


OPS = ("kl_penalty", "rlhf_rewards", "preference_loss", "token_advantages", "ppo_policy_loss")
"""The exercise functions the pipeline calls."""


def default_ops(impl: str = DEFAULT_IMPL) -> SimpleNamespace:
    """The exercise functions of ``impl``: ``"assignments"`` (the student's) or ``"solutions"``."""
    ex5, ex4 = exercise(impl, "ex5_rlhf"), exercise(impl, "ex4_ppo")
    return SimpleNamespace(
        kl_penalty=ex5.kl_penalty,
        rlhf_rewards=ex5.rlhf_rewards,
        preference_loss=ex5.preference_loss,
        token_advantages=ex5.token_advantages,
        ppo_policy_loss=ex4.ppo_policy_loss,
    )


def _resolve_ops(ops, impl: str | None) -> SimpleNamespace:
    """``ops``'s functions, and ``impl``'s for those it does not provide.

    ``impl=None``: ``ops`` must provide every one of :data:`OPS` (no
    implementation is imported).
    """
    given = {name: getattr(ops, name) for name in OPS if hasattr(ops, name)}
    missing = [name for name in OPS if name not in given]
    if missing and impl is None:
        raise TypeError(f"ops lacks {', '.join(missing)} and no impl was named to take them from")
    base = default_ops(impl) if missing else SimpleNamespace()
    for name, fn in given.items():
        setattr(base, name, fn)
    return base


def train_reference(cfg: RLHFConfig, device: torch.device) -> tuple[TokenGRU, float]:
    """Stage 2: supervised next-token training on the corpus. Returns ``(pi_ref, loss)``.

    The loss counts response tokens only: the prompt is given, not generated.
    """
    rng = np.random.default_rng(cfg.seed)
    prompts = [sample_prompt(rng) for _ in range(cfg.corpus_size)]
    responses = [sample_response(p, rng) for p in prompts]
    tokens, mask = encode_pairs(prompts, responses, cfg.max_response_len)
    tokens, mask = tokens.to(device), mask.to(device)

    policy = make_policy(cfg).to(device)
    opt = Adam(policy.parameters(), lr=cfg.sft_lr)
    for _ in range(cfg.sft_steps):
        idx = torch.randint(len(tokens), (cfg.sft_batch,), device=device)
        logits, _ = policy(tokens[idx])
        logp = token_log_probs(logits, tokens[idx])
        m = mask[idx].float()
        loss = -(logp * m).sum() / m.sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    policy.eval()
    for p in policy.parameters():
        p.requires_grad_(False)  # frozen from now on: it is the reference
    return policy, loss.item()


def preference_pairs(ref: TokenGRU, n: int, cfg: RLHFConfig, device: torch.device):
    """Pairs of responses sampled from ``pi_ref`` for the same prompt, labelled by the rule.

    Pairs the labeller scores equally are dropped (no preference to learn).
    Returns ``(chosen_tokens, chosen_mask, rejected_tokens, rejected_mask)``.
    """
    rng = np.random.default_rng(cfg.seed + 1)
    chosen, rejected = [], []
    while sum(len(c[0]) for c in chosen) < n:
        prompts = _prompt_batch(rng, 2 * n, device)
        a, a_mask = generate(ref, prompts, cfg.max_response_len)
        b, b_mask = generate(ref, prompts, cfg.max_response_len)
        gap = labeller_scores(a, a_mask) - labeller_scores(b, b_mask)
        a_wins, b_wins = (gap > 0).to(device), (gap < 0).to(device)
        chosen.append((torch.cat([a[a_wins], b[b_wins]]), torch.cat([a_mask[a_wins], b_mask[b_wins]])))
        rejected.append((torch.cat([b[a_wins], a[b_wins]]), torch.cat([b_mask[a_wins], a_mask[b_wins]])))
    # Shuffle (winners of side a come first above), so that any slice is a fair sample.
    order = torch.from_numpy(rng.permutation(sum(len(c[0]) for c in chosen))[:n]).to(device)
    cat = lambda parts, i: torch.cat([p[i] for p in parts])[order]  # noqa: E731
    return cat(chosen, 0), cat(chosen, 1), cat(rejected, 0), cat(rejected, 1)


def train_reward_model(
    ref: TokenGRU, cfg: RLHFConfig, device: torch.device, ops
) -> tuple[RewardModel, float]:
    """Stage 3: Bradley-Terry training on labelled pairs. Returns ``(rm, held-out accuracy)``."""
    n_train, n_test = cfg.rm_pairs, cfg.rm_heldout_pairs
    c_tok, c_mask, r_tok, r_mask = preference_pairs(ref, n_train + n_test, cfg, device)

    rm = RewardModel(cfg.embed_dim, cfg.hidden_dim).to(device)
    opt = Adam(rm.parameters(), lr=cfg.rm_lr)
    for _ in range(cfg.rm_steps):
        idx = torch.randint(n_train, (cfg.rm_batch,), device=device)
        loss = ops.preference_loss(rm(c_tok[idx], c_mask[idx]), rm(r_tok[idx], r_mask[idx]))
        opt.zero_grad()
        loss.backward()
        opt.step()

    rm.eval()
    with torch.no_grad():
        test = slice(n_train, n_train + n_test)
        accuracy = (rm(c_tok[test], c_mask[test]) > rm(r_tok[test], r_mask[test])).float().mean()
        # Standardise on fresh reference samples: score 0 = a typical pi_ref response.
        prompts = _prompt_batch(np.random.default_rng(cfg.seed + 2), 1000, device)
        tokens, mask = generate(ref, prompts, cfg.max_response_len)
        raw = rm(tokens, mask)
        rm.offset.fill_(raw.mean())
        rm.scale.fill_(raw.std().clamp_min(1e-6))
    for p in rm.parameters():
        p.requires_grad_(False)
    return rm, float(accuracy)


# ---------------------------------------------------------------------------
# Stage 4: PPO on the KL-penalised reward
# ---------------------------------------------------------------------------


def exact_kl(logits: torch.Tensor, ref_logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``sum_t KL(pi(.|s_t) || pi_ref(.|s_t))`` over the response tokens of each row, ``[B]``.

    Summed over the whole vocabulary at every visited state, so it is never
    negative, unlike the one-sample estimate that enters the reward. This is
    the KL we log and plot.
    """
    logp = F.log_softmax(logits[:, :-1], dim=-1)
    logq = F.log_softmax(ref_logits[:, :-1], dim=-1)
    per_state = (logp.exp() * (logp - logq)).sum(-1)  # state t-1 emits token t
    return (F.pad(per_state, (1, 0)) * mask).sum(1)


@torch.no_grad()
def rollout(actor, critic, ref, rm, prompts, beta: float, cfg: RLHFConfig, ops, generator=None) -> dict:
    """Sample a batch of responses and compute everything PPO needs from it.

    All four models appear here: the actor samples, the reference and the
    reward model turn the samples into per-token rewards, the critic's values
    turn rewards into advantages.
    """
    tokens, mask = generate(actor, prompts, cfg.max_response_len, generator)
    logits, _ = actor(tokens)
    ref_logits, _ = ref(tokens)
    # Recomputed in one teacher-forced pass (not kept from sampling), so they
    # match exactly what the PPO epochs will compute for an unchanged actor.
    log_probs = token_log_probs(logits, tokens)
    ref_log_probs = token_log_probs(ref_logits, tokens)
    scores = rm(tokens, mask)
    rewards = ops.rlhf_rewards(scores, log_probs, ref_log_probs, mask, beta)
    values = state_values(critic, tokens)
    advantages, returns = ops.token_advantages(rewards, values, mask, cfg.lam)
    m = mask.float()
    return {
        "tokens": tokens,
        "mask": mask,
        "log_probs": log_probs,
        "advantages": advantages,
        "returns": returns,
        "scores": scores,
        "kl": exact_kl(logits, ref_logits, m),
        "kl_sample": (ops.kl_penalty(log_probs, ref_log_probs) * m).sum(1),
        "length": m.sum(1),
    }


def ppo_update(actor, critic, actor_opt, critic_opt, batch: dict, cfg: RLHFConfig, ops, generator=None) -> dict:
    """``ppo_epochs`` passes of clipped-PPO (actor) and value regression (critic).

    Only response tokens enter the losses: ``x[mask]`` flattens them, so every
    loss is a mean over all response tokens of the minibatch.
    """
    mask = batch["mask"]
    # Whitening the advantages over the batch keeps the step size independent
    # of the reward scale (which changes with beta).
    adv = batch["advantages"]
    a = adv[mask]
    adv = (adv - a.mean()) / (a.std() + 1e-8)

    n = len(mask)
    size = n // cfg.minibatches
    stats = {"clip_frac": 0.0, "value_loss": 0.0}
    for _ in range(cfg.ppo_epochs):
        order = torch.randperm(n, device=mask.device, generator=generator)
        for k in range(cfg.minibatches):
            idx = order[k * size : (k + 1) * size]
            tok, m = batch["tokens"][idx], mask[idx]
            logits, _ = actor(tok)
            new_lp = token_log_probs(logits, tok)[m]
            old_lp = batch["log_probs"][idx][m]
            policy_loss = ops.ppo_policy_loss(new_lp, old_lp, adv[idx][m], cfg.clip_eps)
            actor_opt.zero_grad()
            policy_loss.backward()
            nn.utils.clip_grad_norm_(actor.parameters(), cfg.max_grad_norm)
            actor_opt.step()

            value_loss = 0.5 * (state_values(critic, tok)[m] - batch["returns"][idx][m]).pow(2).mean()
            critic_opt.zero_grad()
            value_loss.backward()
            nn.utils.clip_grad_norm_(critic.parameters(), cfg.max_grad_norm)
            critic_opt.step()

            ratio = (new_lp.detach() - old_lp).exp()
            stats["clip_frac"] += float(((ratio - 1).abs() > cfg.clip_eps).float().mean())
            stats["value_loss"] += value_loss.item()
    steps = cfg.ppo_epochs * cfg.minibatches
    return {k: v / steps for k, v in stats.items()}


_GLOBAL_RNG = threading.Lock()
"""Held while a run seeds and draws from the global torch RNG (see :func:`train_ppo`)."""


def _continue_global_rng(device) -> torch.Generator:
    """A generator in the global torch RNG's current state on ``device``."""
    device = torch.device(device)
    gen = torch.Generator(device=device)
    gen.set_state(torch.cuda.get_rng_state(device) if device.type == "cuda" else torch.get_rng_state())
    return gen


def train_ppo(ref, rm, beta: float, cfg: RLHFConfig, device, ops, bar=None) -> tuple[TokenGRU, dict]:
    """Stage 4: PPO from ``pi_ref`` on the reward ``score - beta * KL``.

    Returns the trained actor and a history with one entry per update:
    ``score`` (mean reward-model score), ``kl`` (mean exact KL to the
    reference per response, nats), ``kl_sample`` (mean summed log-ratio, the
    estimate inside the reward), ``labeller`` (mean hidden-rule score),
    ``length`` (mean response length), ``clip_frac`` and ``value_loss``.
    """
    # Same seed for every beta: the runs differ by beta only.
    with _GLOBAL_RNG:
        torch.manual_seed(cfg.seed + 3)
        rng = np.random.default_rng(cfg.seed + 3)
        actor = copy.deepcopy(ref)
        for p in actor.parameters():
            p.requires_grad_(True)
        actor.train()
        critic = make_critic(ref)
        # the rest of the run draws from its own generator, which continues the seeded global RNG
        # exactly: the same numbers as before, and runs in several threads do not share a stream
        gen = _continue_global_rng(device)
    actor_opt = Adam(actor.parameters(), lr=cfg.actor_lr)
    critic_opt = Adam(critic.parameters(), lr=cfg.critic_lr)

    history: dict[str, list[float]] = {
        k: [] for k in ("score", "kl", "kl_sample", "labeller", "length", "clip_frac", "value_loss")
    }
    for _ in range(cfg.ppo_updates):
        prompts = _prompt_batch(rng, cfg.rollout_batch, device)
        batch = rollout(actor, critic, ref, rm, prompts, beta, cfg, ops, gen)
        stats = ppo_update(actor, critic, actor_opt, critic_opt, batch, cfg, ops, gen)
        # Logged from the samples of this update (drawn before the update).
        history["score"].append(float(batch["scores"].mean()))
        history["kl"].append(float(batch["kl"].mean()))
        history["kl_sample"].append(float(batch["kl_sample"].mean()))
        history["labeller"].append(float(labeller_scores(batch["tokens"], batch["mask"]).mean()))
        history["length"].append(float(batch["length"].mean()))
        for k, v in stats.items():
            history[k].append(v)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(beta=beta, score=f"{history['score'][-1]:.2f}", kl=f"{history['kl'][-1]:.2f}")
    actor.eval()
    return actor, history


# ---------------------------------------------------------------------------
# Stage 5: evaluation, samples, plot
# ---------------------------------------------------------------------------


@torch.no_grad()
def evaluate(policy, ref, rm, cfg: RLHFConfig, device, n: int = 512) -> dict:
    """Mean reward-model score, labeller score and exact KL of ``n`` fresh samples."""
    torch.manual_seed(cfg.seed + 4)
    prompts = _prompt_batch(np.random.default_rng(cfg.seed + 4), n, device)
    tokens, mask = generate(policy, prompts, cfg.max_response_len)
    kl = exact_kl(policy(tokens)[0], ref(tokens)[0], mask.float())
    return {
        "score": float(rm(tokens, mask).mean()),
        "labeller": float(labeller_scores(tokens, mask).mean()),
        "kl": float(kl.mean()),
    }


@torch.no_grad()
def sample_lines(policy, rm, cfg: RLHFConfig, device) -> list[str]:
    """A few decoded samples for fixed prompts, with their scores."""
    torch.manual_seed(cfg.seed + 5)
    prompts = _prompt_batch(np.random.default_rng(cfg.seed + 5), cfg.n_samples, device)
    tokens, mask = generate(policy, prompts, cfg.max_response_len)
    scores = rm(tokens, mask)
    lines = []
    for t, m, s in zip(tokens.cpu(), mask.cpu(), scores.tolist()):
        prompt, response = decode(t, m)
        rule = labeller_score(prompt, response)
        lines.append(f"  {' '.join(prompt):<20} -> {' '.join(response):<58} rm {s:+5.2f}  rule {rule:+.0f}")
    return lines


def final(history: dict, key: str, window: int) -> float:
    """Mean of the last ``window`` logged values (a single batch is noisy)."""
    return float(np.mean(history[key][-window:]))


def plot(histories: dict[float, dict], reference: dict, path: Path) -> Path:
    """Reward-model score, KL to the reference and labeller score over updates."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [
        ("score", "reward-model score (std units)"),
        ("kl", "KL(pi || pi_ref) per response (nats)"),
        ("labeller", "hidden labeller score"),
    ]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for ax, (key, title) in zip(axes, panels):
        for beta, hist in histories.items():
            ax.plot(hist[key], label=f"beta = {beta:g}")
        if key in reference:
            ax.axhline(reference[key], color="gray", linestyle="--", linewidth=1, label="reference policy")
        ax.set(title=title, xlabel="PPO update")
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.suptitle("Toy RLHF: the KL penalty keeps the policy where the reward model can be trusted")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# ---------------------------------------------------------------------------
# Entry points
# ---------------------------------------------------------------------------

_STAGE_CACHE: dict = {}


def prepare(cfg: RLHFConfig, device: torch.device, ops) -> dict:
    """Stages 2 and 3 (reference policy, reward model), cached per process.

    The cache lets several betas (or several checks) share one reference and
    one reward model; the key covers everything they depend on.
    """
    key = (
        cfg.seed, str(device), cfg.embed_dim, cfg.hidden_dim, cfg.max_response_len,
        cfg.corpus_size, cfg.sft_steps, cfg.sft_batch, cfg.sft_lr,
        cfg.rm_pairs, cfg.rm_heldout_pairs, cfg.rm_steps, cfg.rm_batch, cfg.rm_lr,
        ops.preference_loss,
    )  # fmt: skip
    if key not in _STAGE_CACHE:
        torch.manual_seed(cfg.seed)
        ref, sft_loss = train_reference(cfg, device)
        rm, accuracy = train_reward_model(ref, cfg, device, ops)
        _STAGE_CACHE.clear()  # keep one entry: models are small, but no need to hoard
        _STAGE_CACHE[key] = {"ref": ref, "rm": rm, "sft_loss": sft_loss, "rm_accuracy": accuracy}
    return _STAGE_CACHE[key]


def save_stages(stages: dict, path, seed: int) -> None:
    """Stages 2 and 3 of the run seeded ``seed``, as plain arrays (an ``.npz``: weights and three numbers, no pickle).

    The hidden suite trains PPO from these saved models instead of training a
    reference policy and a reward model in every grade (seconds each).
    """
    arrays = {f"ref.{k}": v.detach().cpu().numpy() for k, v in stages["ref"].state_dict().items()}
    arrays.update({f"rm.{k}": v.detach().cpu().numpy() for k, v in stages["rm"].state_dict().items()})
    arrays["sft_loss"] = np.array(stages["sft_loss"])
    arrays["rm_accuracy"] = np.array(stages["rm_accuracy"])
    arrays["seed"] = np.array(seed)
    np.savez(path, **arrays)


def load_stages(path, cfg: RLHFConfig, device: torch.device) -> dict:
    """The frozen ``pi_ref`` and reward model that :func:`save_stages` wrote, ready for ``train_ppo``."""
    with np.load(path, allow_pickle=False) as z:
        part = {name: {k[len(name) + 1:]: torch.from_numpy(z[k]) for k in z.files if k.startswith(name + ".")}
                for name in ("ref", "rm")}
        numbers = {k: float(z[k]) for k in ("sft_loss", "rm_accuracy")}
        numbers["seed"] = int(z["seed"])
    ref = make_policy(cfg)
    rm = RewardModel(cfg.embed_dim, cfg.hidden_dim)
    for model, name in ((ref, "ref"), (rm, "rm")):
        model.load_state_dict(part[name])
        model.to(device).eval()
        for p in model.parameters():
            p.requires_grad_(False)
    return {"ref": ref, "rm": rm, **numbers}


FAST_CONFIG = dict(
    corpus_size=2000, sft_steps=250, sft_batch=64,
    rm_pairs=800, rm_heldout_pairs=300, rm_steps=150, rm_batch=64,
    actor_lr=1.5e-3,
)  # fmt: skip
"""Overrides behind ``run_toy_rlhf``, so that a check takes seconds: smaller stages 2-3, and a
larger actor step (1.5e-3, not 1e-3), so that ex5's check needs 20 PPO updates, not 30, for the
unpenalised policy to drift clearly further than the penalised one (``make seeds``)."""


def run_toy_rlhf(
    beta: float,
    seed: int = 0,
    updates: int | None = None,
    device: str = "cpu",
    ops=None,
    stages: dict | None = None,
    impl: str | None = None,
    **overrides,
) -> dict:
    """A fast toy RLHF run for one beta; returns plain Python numbers.

    Trains (or reuses, within one process) a reference policy and a reward
    model with a reduced budget, then ``updates`` PPO updates (default 60).

    Args:
        beta: KL coefficient.
        seed: seeds everything; the result is reproducible on one device.
        updates: number of PPO updates.
        device: ``"cpu"``, ``"cuda"`` or ``"auto"``.
        ops: an object (e.g. a module) whose ``kl_penalty``, ``rlhf_rewards``,
            ``preference_loss``, ``token_advantages`` and ``ppo_policy_loss``
            the run calls (ex5's ``run_toy_rlhf`` passes its own module).
        stages: a reference policy and reward model to start from (from
            :func:`load_stages`); by default they are trained here.
        impl: ``"assignments"`` or ``"solutions"``: where the functions
            ``ops`` lacks come from; ``None`` (the default): ``ops`` must
            have them all.
        **overrides: any other ``RLHFConfig`` field.

    Returns:
        ``{"beta", "seed", "updates",
        "score": final reward-model score of the policy (mean over the last
        ``final_window`` updates),
        "ref_score": the reference policy's score on the same kind of batch,
        "kl": final exact KL to the reference per response (nats),
        "kl_mean": KL averaged over all updates, "kl_max": its maximum,
        "labeller": final hidden-rule score, "ref_labeller": the reference's,
        "rm_accuracy": held-out pairwise accuracy of the reward model,
        "score_curve", "kl_curve": per-update lists}``.
    """
    cfg = replace(RLHFConfig(), **{**FAST_CONFIG, **overrides})
    cfg = replace(cfg, seed=int(seed), device=str(device), ppo_updates=int(updates or 60))
    dev = get_device(cfg.device)
    ops = _resolve_ops(ops, impl)
    with _threads():
        stages = stages if stages is not None else prepare(cfg, dev, ops)
        _, hist = train_ppo(stages["ref"], stages["rm"], float(beta), cfg, dev, ops)
        ref_eval = _reference_eval(stages, cfg, dev)
    w = cfg.final_window
    return {
        "beta": float(beta),
        "seed": cfg.seed,
        "updates": cfg.ppo_updates,
        "score": final(hist, "score", w),
        "ref_score": ref_eval["score"],
        "kl": final(hist, "kl", w),
        "kl_mean": float(np.mean(hist["kl"])),
        "kl_max": float(np.max(hist["kl"])),
        "labeller": final(hist, "labeller", w),
        "ref_labeller": ref_eval["labeller"],
        "rm_accuracy": stages["rm_accuracy"],
        "score_curve": [float(x) for x in hist["score"]],
        "kl_curve": [float(x) for x in hist["kl"]],
    }


def _reference_eval(stages: dict, cfg: RLHFConfig, device) -> dict:
    with _GLOBAL_RNG:  # evaluate() seeds the global RNG; the stages may be shared by runs in threads
        if "ref_eval" not in stages:
            stages["ref_eval"] = evaluate(stages["ref"], stages["ref"], stages["rm"], cfg, device)
        return stages["ref_eval"]


class _threads:
    """Use one CPU thread: these tensors are tiny, more threads only add overhead
    (and on a busy machine, spinning threads make it many times slower)."""

    def __enter__(self):
        self.saved = torch.get_num_threads()
        torch.set_num_threads(1)

    def __exit__(self, *exc):
        torch.set_num_threads(self.saved)


def run(cfg: RLHFConfig, ops=None, impl: str = DEFAULT_IMPL) -> dict:
    """The full demonstration: every stage, every beta, printout, plot and JSON.

    The exercise functions are ``ops``'s, and ``impl``'s for those it lacks.
    """
    t0 = time.time()
    dev = get_device(cfg.device)
    ops = _resolve_ops(ops, impl)
    show_bar = sys.stderr.isatty() if cfg.progress is None else cfg.progress

    print(f"toy RLHF on {dev}, seed {cfg.seed}, vocabulary of {len(VOCAB)} tokens")
    stages = prepare(cfg, dev, ops)
    ref, rm = stages["ref"], stages["rm"]
    ref_eval = _reference_eval(stages, cfg, dev)
    print(f"reference policy: supervised loss {stages['sft_loss']:.3f} nats/token")
    print(f"reward model: held-out pairwise accuracy {stages['rm_accuracy']:.3f}")
    print(f"reference policy: reward-model score {ref_eval['score']:+.3f}, "
          f"labeller score {ref_eval['labeller']:+.3f}")  # fmt: skip
    print("\nsamples from the reference policy (before RLHF):")
    print("\n".join(sample_lines(ref, rm, cfg, dev)))

    histories, results, after = {}, {}, {}
    with tqdm(total=len(cfg.betas) * cfg.ppo_updates, desc="PPO", disable=not show_bar) as bar:
        for beta in cfg.betas:
            actor, hist = train_ppo(ref, rm, beta, cfg, dev, ops, bar)
            histories[beta] = hist
            w = cfg.final_window
            results[beta] = {
                "score": final(hist, "score", w),
                "kl": final(hist, "kl", w),
                "kl_mean": float(np.mean(hist["kl"])),
                "labeller": final(hist, "labeller", w),
                "length": final(hist, "length", w),
                "rm_accuracy": stages["rm_accuracy"],
            }
            after[beta] = sample_lines(actor, rm, cfg, dev)

    for beta in cfg.betas:
        print(f"\nsamples after PPO with beta = {beta:g}:")
        print("\n".join(after[beta]))

    header = ("beta", "RM score", "RM acc", "KL final", "KL mean", "labeller", "length")
    print("\n" + " ".join(f"{h:>9}" for h in header))
    print(f"{'ref':>9} {ref_eval['score']:>+9.3f} {stages['rm_accuracy']:>9.3f} {0.0:>9.3f} {0.0:>9.3f} "
          f"{ref_eval['labeller']:>+9.3f}")  # fmt: skip
    for beta, r in results.items():
        print(
            f"{beta:>9g} {r['score']:>+9.3f} {r['rm_accuracy']:>9.3f} {r['kl']:>9.3f} "
            f"{r['kl_mean']:>9.3f} {r['labeller']:>+9.3f} {r['length']:>9.2f}"
        )
    print(f"(final = mean over the last {cfg.final_window} updates; KL in nats per response)")

    out = Path(cfg.out_dir)
    png = plot(histories, ref_eval, out / "rlhf.png")
    summary = {
        "config": asdict(cfg),
        "device": str(dev),
        "reference": {**ref_eval, "sft_loss": stages["sft_loss"]},
        "rm_accuracy": stages["rm_accuracy"],
        "results": {str(b): r for b, r in results.items()},
        "history": {str(b): h for b, h in histories.items()},
        "seconds": time.time() - t0,
    }
    (out / "rlhf.json").write_text(json.dumps(summary, indent=1))
    print(f"\nwrote {png} and {out / 'rlhf.json'} in {summary['seconds']:.1f} s")
    return summary


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_impl_argument(parser)
    parser.add_argument("--seed", type=int, default=RLHFConfig.seed, help="seeds data, networks and samples")
    parser.add_argument("--device", default=RLHFConfig.device, help="cpu, cuda or auto")
    parser.add_argument("--updates", type=int, default=RLHFConfig.ppo_updates, help="PPO updates per beta")
    parser.add_argument("--betas", type=float, nargs="+", default=list(RLHFConfig.betas), help="KL coefficients")
    parser.add_argument("--out-dir", default=RLHFConfig.out_dir, help="where rlhf.png and rlhf.json go")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 is fastest for these tiny models)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    cfg = RLHFConfig(
        seed=args.seed,
        device=args.device,
        ppo_updates=args.updates,
        betas=tuple(args.betas),
        out_dir=args.out_dir,
    )
    return run(cfg, impl=args.impl)


if __name__ == "__main__":
    main()
