"""Known mistakes, kept as small patches of the reference solutions.

Each mutant replaces one exact snippet of ``solutions/<module>.py`` (which
must occur exactly once, so a drifting reference fails loudly). The mutated
copy must lose points on ``function``, keep full marks on every other
function of the exercise except those listed in ``also`` (functions that
call the broken one), and, when ``phrase`` is given, say so in the feedback.
Learning tests are skipped here (see test_mutants.py).

ex1's mutants live here; each other exercise keeps its own list in
``mutants_exN.py`` (a module-level ``MUTANTS`` list of :class:`Mutant`),
collected at the bottom of this file.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Mutant:
    name: str
    module: str
    old: str
    new: str
    function: str
    phrase: str | None = None
    also: tuple[str, ...] = ()


MUTANTS: list[Mutant] = [
    # ---------------------------------------------------------------- ex1_values
    Mutant("returns_no_reset", "ex1_values",
           "running = rewards[t] + gamma * not_done[t] * running",
           "running = rewards[t] + gamma * running",
           "discounted_returns", "across episode boundaries"),
    Mutant("returns_forward", "ex1_values",
           "for t in reversed(range(rewards.shape[0])):",
           "for t in range(rewards.shape[0]):",
           "discounted_returns", "forward in time"),
    Mutant("returns_no_discount", "ex1_values",
           "running = rewards[t] + gamma * not_done[t] * running",
           "running = rewards[t] + not_done[t] * running",
           "discounted_returns", "not discounted"),
    Mutant("returns_keep_graph", "ex1_values",
           "rewards = rewards.detach()  # targets: no gradient flows through them",
           "rewards = rewards * 1.0",
           "discounted_returns", "gradient flows into rewards"),
    Mutant("pe_value_iteration", "ex1_values",
           "V_new = R_pi + gamma * (P_pi @ V)",
           "V_new = (R + gamma * torch.einsum('sat,t->sa', P, V)).max(dim=1).values",
           "policy_evaluation", "max over actions"),
    Mutant("pe_one_sweep", "ex1_values",
           "for _ in range(max_iters):",
           "for _ in range(1):",
           "policy_evaluation", "single backup"),
    Mutant("q_no_gamma", "ex1_values",
           'return R + gamma * torch.einsum("sat,t->sa", P, V)',
           'return R + torch.einsum("sat,t->sa", P, V)',
           "action_values", "discount"),
    Mutant("q_transposed", "ex1_values",
           'return R + gamma * torch.einsum("sat,t->sa", P, V)',
           'return R + gamma * torch.einsum("tas,t->sa", P, V)',
           "action_values", "wrong index"),
    Mutant("mc_first_reward_discounted", "ex1_values",
           "    discount = 1.0\n    for _ in range(horizon):",
           "    discount = gamma\n    for _ in range(horizon):",
           "monte_carlo_value", "first reward is discounted"),
    Mutant("mc_ignores_generator", "ex1_values",
           "actions = _sample_rows(pi[states], generator)  # pi[states]",
           "actions = _sample_rows(pi[states], None)  # pi[states]",
           "monte_carlo_value", "generator"),
    # found by probing the suite with more student mistakes
    Mutant("returns_float32_buffer", "ex1_values",
           "returns = torch.empty_like(rewards)",
           "returns = torch.zeros(rewards.shape)",
           "discounted_returns", "the returns have the dtype of rewards"),
    Mutant("returns_stored_before_update", "ex1_values",
           "        running = rewards[t] + gamma * not_done[t] * running\n        returns[t] = running",
           "        returns[t] = running\n        running = rewards[t] + gamma * not_done[t] * running",
           "discounted_returns"),
    Mutant("returns_loop_skips_last_step", "ex1_values",
           "for t in reversed(range(rewards.shape[0])):",
           "for t in reversed(range(rewards.shape[0] - 1)):",
           "discounted_returns"),
    Mutant("returns_done_zeroes_reward", "ex1_values",
           "running = rewards[t] + gamma * not_done[t] * running",
           "running = not_done[t] * (rewards[t] + gamma * running)",
           "discounted_returns"),
    Mutant("pe_P_pi_transposed", "ex1_values",
           'P_pi = torch.einsum("sa,sat->st", pi, P)',
           'P_pi = torch.einsum("sa,sat->ts", pi, P)',
           "policy_evaluation", "P_pi is transposed"),
    Mutant("pe_reward_not_weighted_by_pi", "ex1_values",
           "R_pi = (pi * R).sum(dim=1)",
           "R_pi = R.mean(dim=1)",
           "policy_evaluation"),
    Mutant("q_current_state_value", "ex1_values",
           'return R + gamma * torch.einsum("sat,t->sa", P, V)',
           'return R + gamma * torch.einsum("sat,s->sa", P, V)',
           "action_values", "current state"),
    Mutant("mc_returns_python_float", "ex1_values",
           "return G.mean()",
           "return G.mean().item()",
           "monte_carlo_value", "0-d torch.Tensor"),
    Mutant("mc_ignores_horizon", "ex1_values",
           "for _ in range(horizon):",
           "for _ in range(default_horizon(gamma) if gamma < 1 else 1000):",
           "monte_carlo_value", "ignored the horizon"),
    Mutant("mc_horizon_off_by_one", "ex1_values",
           "for _ in range(horizon):",
           "for _ in range(horizon + 1):",
           "monte_carlo_value", "horizon + 1"),
    Mutant("mc_next_state_ignores_action", "ex1_values",
           "states = _sample_rows(P[states, actions], generator)  #",
           "states = _sample_rows(P[states, 0], generator)  #",
           "monte_carlo_value"),
]


def _collect_other_exercises() -> None:
    import importlib

    for n in range(2, 10):
        try:
            mod = importlib.import_module(f"mutants_ex{n}")
        except ModuleNotFoundError as exc:
            if exc.name != f"mutants_ex{n}":
                raise
            continue
        MUTANTS.extend(mod.MUTANTS)


_collect_other_exercises()
