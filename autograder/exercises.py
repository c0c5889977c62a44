"""The one list of exercises: names, points, order, what the student writes, what the kit gives.

Everything else (the runner, the sandbox, the notebook generator, the tests)
reads this table; adding an exercise means adding a row here and its files.

* ``functions``: the contract functions the student writes (those holding a
  solution region in ``solutions/``; a test checks the two agree).
* ``given``: functions and classes of the module that the kit provides. In
  the grader they always come from the kit's own copy of the stub, never
  from the submission, so replacing ``train_ppo`` in a submission changes
  nothing (rule 3 of docs/THREAT_MODEL.md).
* ``trains_with``: the functions a given training loop calls; its learning
  tests count only when those pass their own checks.
* ``uses``: for each function, the functions of EARLIER exercises it calls
  (the child imports the student's own earlier modules; the report names them
  when a failure may come from there).
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Exercise:
    name: str
    points: float
    functions: tuple[str, ...]
    given: tuple[str, ...] = ()
    uses: dict = field(default_factory=dict)  # function -> ((module, function), ...)
    # a learning test's points need these functions of the exercise to pass their own checks: the
    # kit's loop runs in the same process as the student's code, which could fake a trained result
    trains_with: dict = field(default_factory=dict)  # training function or learning test's function -> (...)
    # seconds its suite takes on the reference (make grade-bench, 2 cores): the runner starts the
    # slowest suites first, so the short ones fill the gaps at the end (about 2 s off a full grade)
    seconds: float = 5.0


EXERCISE_LIST: tuple[Exercise, ...] = (
    Exercise("ex1_values", 15,
             ("discounted_returns", "policy_evaluation", "action_values", "monte_carlo_value"), seconds=4),
    Exercise("ex2_reinforce", 25,
             ("sample_action", "reinforce_loss", "collect_episode", "reinforce_update"),
             given=("train_reinforce",), seconds=7,
             trains_with={"train_reinforce": ("sample_action", "collect_episode", "reinforce_update")},
             uses={"reinforce_update": (("ex1_values", "discounted_returns"),),
                   "train_reinforce": (("ex1_values", "discounted_returns"),)}),
    Exercise("ex3_baseline", 30,
             ("advantages", "value_loss", "reinforce_baseline_loss", "td_errors", "compute_gae",
              "gradient_variance", "actor_critic_update"),
             given=("flat_grad", "train_actor_critic"), seconds=10,
             trains_with={"train_actor_critic": ("value_loss", "compute_gae", "actor_critic_update")},
             uses={"actor_critic_update": (("ex2_reinforce", "reinforce_loss"),),
                   "train_actor_critic": (("ex2_reinforce", "collect_episode"), ("ex2_reinforce", "reinforce_loss"))}),
    Exercise("ex4_ppo", 30,
             ("probability_ratio", "clipped_surrogate", "clip_active", "ppo_policy_loss"),
             given=("ppo_loss", "PPOConfig", "train_ppo"), seconds=10,
             trains_with={"train_ppo": ("probability_ratio", "clipped_surrogate", "ppo_policy_loss")},
             uses={"ppo_loss": (("ex3_baseline", "value_loss"),),
                   "train_ppo": (("ex3_baseline", "compute_gae"), ("ex3_baseline", "value_loss"))}),
    Exercise("ex5_rlhf", 20,
             ("preference_loss", "kl_penalty", "rlhf_rewards", "token_advantages"),
             given=("run_toy_rlhf",), seconds=9,
             # the toy-RLHF learning test (graded as rlhf_rewards) trains with these two; the student's
             # functions see beta there (and may share one session child), so a loss could tell the
             # runs apart and fake the outcome (docs/THREAT_MODEL.md, sessions)
             trains_with={"rlhf_rewards": ("rlhf_rewards", "token_advantages")},
             uses={"token_advantages": (("ex3_baseline", "compute_gae"),)}),
)

BY_NAME: dict[str, Exercise] = {e.name: e for e in EXERCISE_LIST}
ORDER: list[str] = [e.name for e in EXERCISE_LIST]
POINTS: dict[str, float] = {e.name: e.points for e in EXERCISE_LIST}


def earlier(name: str) -> list[str]:
    """The exercises before ``name`` (which it may import)."""
    return ORDER[:ORDER.index(name)] if name in BY_NAME else []


def is_given(module: str, function: str) -> bool:
    """True when ``module.function`` is kit code (graded through the kit's copy)."""
    ex = BY_NAME.get(module)
    return ex is not None and function not in ex.functions and not function.startswith("__")
