"""The kit's own copy of each exercise module's given code (no answer in it).

The training loops, ``ppo_loss``, ``PPOConfig`` and the small helpers of an
exercise module are given to students. The grader never takes them from the
submission: the sandbox receives this text (the stub, with every solution
region replaced by ``raise NotImplementedError``), loads it next to the
student's module and binds the student's functions into it, so a learning
test trains with the kit's loop calling the student's code.

Where it comes from: ``autograder/given/<module>.py`` when that folder exists
(a student kit ships the stubs there), else the reference with its solution
regions stripped (the full kit). Either way the text holds no answer.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from .regions import strip_solutions

KIT_ROOT = Path(__file__).resolve().parent.parent
SHIPPED = Path(__file__).resolve().parent / "given"


@lru_cache(maxsize=None)
def given_source(module: str) -> str | None:
    """The answer-free text of ``module`` (None when the kit has no such exercise)."""
    shipped = SHIPPED / f"{module}.py"
    if shipped.is_file():
        return shipped.read_text()
    ref = KIT_ROOT / "solutions" / f"{module}.py"
    if ref.is_file():
        return strip_solutions(ref.read_text(), f"solutions/{module}.py")
    return None
