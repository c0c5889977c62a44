"""Known mistakes of ex4_ppo, as patches of solutions/ex4_ppo.py (see mutants.py)."""
from __future__ import annotations

from mutants import Mutant

M = "ex4_ppo"
_LOSS = ("ppo_policy_loss", "train_ppo")  # everything downstream of the ratio / the surrogate
_TRAIN = ("train_ppo",)

_RATIO = "return torch.exp(new_log_probs - old_log_probs.detach())"
_CLIPPED = "clipped = torch.clamp(ratio, 1.0 - clip_eps, 1.0 + clip_eps) * advantages"
_OBJ = "return unclipped, clipped, torch.minimum(unclipped, clipped)"
_ACTIVE = "return ((advantages > 0) & (ratio > 1.0 + clip_eps)) | ((advantages < 0) & (ratio < 1.0 - clip_eps))"
_LOSS_OBJ = "_, _, objective = clipped_surrogate(ratio, advantages.detach(), clip_eps)"

MUTANTS: list[Mutant] = [
    # ---------------------------------------------------------------- probability_ratio
    Mutant("ex4_ratio_inverted", M, _RATIO,
           "return torch.exp(old_log_probs.detach() - new_log_probs)",
           "probability_ratio", "pi_old / pi_new", also=_LOSS),
    Mutant("ex4_ratio_grad_into_old", M, _RATIO,
           "return torch.exp(new_log_probs - old_log_probs)",
           "probability_ratio", "gradient flows into old_log_probs", also=_LOSS),
    Mutant("ex4_ratio_of_log_probs", M, _RATIO,
           "return new_log_probs / old_log_probs.detach()",
           "probability_ratio", "divided the log-probabilities", also=_LOSS),
    Mutant("ex4_ratio_no_exp", M, _RATIO,
           "return new_log_probs - old_log_probs.detach()",
           "probability_ratio", "log-ratio", also=_LOSS),
    Mutant("ex4_ratio_of_probs_detached_new", M, _RATIO,
           "return torch.exp(new_log_probs.detach() - old_log_probs.detach())",
           "probability_ratio", "no gradient reaches new_log_probs", also=_LOSS),
    # ---------------------------------------------------------------- clipped_surrogate
    Mutant("ex4_surr_max", M, _OBJ,
           "return unclipped, clipped, torch.maximum(unclipped, clipped)",
           "clipped_surrogate", "pessimistic min", also=_LOSS),
    Mutant("ex4_surr_min_of_ratios", M, _OBJ,
           "return unclipped, clipped, torch.minimum(ratio, torch.clamp(ratio, 1.0 - clip_eps, 1.0 + clip_eps)) "
           "* advantages",
           "clipped_surrogate", "min of the ratios", also=_LOSS),
    Mutant("ex4_surr_clip_advantage", M, _CLIPPED,
           "clipped = ratio * torch.clamp(advantages, 1.0 - clip_eps, 1.0 + clip_eps)",
           "clipped_surrogate", "clipped the advantage", also=_LOSS),
    Mutant("ex4_surr_clip_product", M, _CLIPPED,
           "clipped = torch.clamp(ratio * advantages, 1.0 - clip_eps, 1.0 + clip_eps)",
           "clipped_surrogate", "clipped the product", also=_LOSS),
    Mutant("ex4_surr_bounds_eps", M, _CLIPPED,
           "clipped = torch.clamp(ratio, -clip_eps, clip_eps) * advantages",
           "clipped_surrogate", "clamp bounds are wrong", also=_LOSS),
    Mutant("ex4_surr_bounds_one_sided", M, _CLIPPED,
           "clipped = torch.clamp(ratio, clip_eps, 1.0 + clip_eps) * advantages",
           "clipped_surrogate", "clamp bounds are wrong", also=_LOSS),
    Mutant("ex4_surr_no_advantage", M, _CLIPPED,
           "clipped = torch.clamp(ratio, 1.0 - clip_eps, 1.0 + clip_eps)",
           "clipped_surrogate", "forgot the advantage", also=_LOSS),
    Mutant("ex4_surr_clip_detached", M, _CLIPPED,
           "clipped = torch.clamp(ratio.detach(), 1.0 - clip_eps, 1.0 + clip_eps) * advantages",
           "clipped_surrogate", "no gradient reaches the ratio", also=_LOSS),
    Mutant("ex4_surr_objective_unclipped_grad", M, _OBJ,
           "return unclipped, clipped, unclipped + (torch.minimum(unclipped, clipped) - unclipped).detach()",
           "clipped_surrogate", "zero gradient", also=_LOSS),
    # ---------------------------------------------------------------- clip_active
    Mutant("ex4_active_abs", M, _ACTIVE,
           "return (ratio - 1.0).abs() > clip_eps",
           "clip_active", "sign of the advantage"),
    Mutant("ex4_active_inverted", M, _ACTIVE,
           "return ~(" + _ACTIVE.removeprefix("return ") + ")",
           "clip_active", "inverted"),
    Mutant("ex4_active_float", M, _ACTIVE,
           "return (" + _ACTIVE.removeprefix("return ") + ").float()",
           "clip_active", "expected bool"),
    Mutant("ex4_active_ties", M, _ACTIVE,
           "return torch.clamp(ratio, 1.0 - clip_eps, 1.0 + clip_eps) * advantages <= ratio * advantages",
           "clip_active", "the two terms are equal"),
    Mutant("ex4_active_zero_advantage", M, _ACTIVE,
           "return ((advantages >= 0) & (ratio > 1.0 + clip_eps)) | ((advantages <= 0) & (ratio < 1.0 - clip_eps))",
           "clip_active", "A = 0"),
    Mutant("ex4_active_swapped", M, _ACTIVE,
           "return ((advantages > 0) & (ratio < 1.0 - clip_eps)) | ((advantages < 0) & (ratio > 1.0 + clip_eps))",
           "clip_active", "swapped the cases"),
    Mutant("ex4_active_one_side", M, _ACTIVE,
           "return (advantages > 0) & (ratio > 1.0 + clip_eps)",
           "clip_active", "one of the two cases"),
    # ---------------------------------------------------------------- ppo_policy_loss
    Mutant("ex4_loss_plus", M, "return -objective.mean()", "return objective.mean()",
           "ppo_policy_loss", "loss is its negative", also=_TRAIN),
    Mutant("ex4_loss_sum", M, "return -objective.mean()", "return -objective.sum()",
           "ppo_policy_loss", "not the sum", also=_TRAIN),
    Mutant("ex4_loss_max", M, _LOSS_OBJ,
           "unclipped, clipped, _ = clipped_surrogate(ratio, advantages.detach(), clip_eps)\n"
           "    objective = torch.maximum(unclipped, clipped)",
           "ppo_policy_loss", "pessimistic min", also=_TRAIN),
    Mutant("ex4_loss_unclipped", M, _LOSS_OBJ,
           "objective, _, _ = clipped_surrogate(ratio, advantages.detach(), clip_eps)",
           "ppo_policy_loss", "not clipped", also=_TRAIN),
    Mutant("ex4_loss_grad_into_advantages", M, _LOSS_OBJ,
           "_, _, objective = clipped_surrogate(ratio, advantages, clip_eps)",
           "ppo_policy_loss", "gradient flows into the advantages", also=_TRAIN),
    Mutant("ex4_loss_grad_into_old", M,
           "ratio = probability_ratio(new_log_probs, old_log_probs)",
           "ratio = torch.exp(new_log_probs - old_log_probs)",
           "ppo_policy_loss", "gradient flows into old_log_probs", also=_TRAIN),
    Mutant("ex4_loss_inverted_ratio", M,
           "ratio = probability_ratio(new_log_probs, old_log_probs)",
           "ratio = torch.exp(old_log_probs.detach() - new_log_probs)",
           "ppo_policy_loss", "pi_old / pi_new", also=_TRAIN),
    # ---------------------------------------------------------------- train_ppo (given code; seed handling)
    Mutant("ex4_train_no_seed_everything", M,
           "    seed_everything(seed)\n    gen = torch.Generator(device=device).manual_seed(seed)",
           "    gen = torch.Generator(device=device).manual_seed(seed)",
           "train_ppo", "same seed differ"),
]
