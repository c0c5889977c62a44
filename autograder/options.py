"""How a grade runs: one ``GradingOptions``, passed whole from the command line to the suites.

``python -m autograder``, ``make grade-all`` and the Gradescope entry point build
one of these; ``runner.grade`` hands it to each suite's pytest as JSON
(``--rlkit-options``), and the plugin reads it back. Every process reads the
same fields by the same names. The one translation left is the last hop: the
sandbox's zygote gets what a child needs (``device``, ``strict``) in its
``kit/config.json``.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

SANDBOXES = ("standard", "strict")


@dataclass(frozen=True)
class GradingOptions:
    device: str = "cpu"
    """Where the suites create inputs and the student's code runs: ``"cpu"`` or ``"cuda[:n]"``."""
    sandbox: str = "standard"
    """``"standard"``, or ``"strict"`` for official grades: a user of its own per sandbox, no network,
    and no grade where the kernel lacks Landlock or seccomp."""
    allow_weak: bool = False
    """Strict mode: grade even where Landlock or seccomp is missing (every report then says so)."""
    course_seed: str | None = None
    """The instructor's secret seed of the suites' inputs (None: ``$RLKIT_COURSE_SEED``, else the
    published inputs of the student kit). Reports carry only a fingerprint of it."""
    skip_learning: bool = False
    """Leave the learning tests out (the kit's mutant tests do: they grade the other checks)."""
    suite_timeout: float = 900.0
    """Seconds one exercise's suite may run before its processes are killed."""
    jobs: int | None = None
    """Exercises graded at once (None: one per core)."""

    def __post_init__(self):
        if self.sandbox not in SANDBOXES:
            raise ValueError(f"sandbox must be one of {SANDBOXES}, not {self.sandbox!r}")

    @property
    def strict(self) -> bool:
        return self.sandbox == "strict"

    def replace(self, **changes) -> "GradingOptions":
        return dataclasses.replace(self, **changes)

    def to_json(self) -> str:
        """Everything but the course seed, for a command line. A secret never goes on one (any local
        user reads ``/proc/<pid>/cmdline``): the runner gives it to the suite process in its
        environment (``RLKIT_COURSE_SEED``), where ``autograder/seeds.py`` reads it."""
        return json.dumps({**dataclasses.asdict(self), "course_seed": None}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "GradingOptions":
        data = json.loads(text)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown grading options {unknown}")
        return cls(**data)

    def cli_args(self) -> list[str]:
        """The ``python -m autograder`` flags that grade with these options, but the course seed (the
        batch grader runs each submission in a process of its own, which inherits the environment)."""
        args = ["--device", self.device, "--sandbox", self.sandbox]
        if self.allow_weak:
            args.append("--allow-weak-sandbox")
        if self.jobs:
            args += ["--jobs", str(self.jobs)]
        return args  # no --seed: the child process inherits RLKIT_COURSE_SEED (see to_json)
