"""The kit's own copy of each exercise module's given code (no answer in it).

The training loops, ``ppo_loss``, ``PPOConfig`` and the small helpers of an
exercise module are given to students. The grader never takes them from the
submission: the sandbox receives this text (the stub, with every solution
region replaced by ``raise NotImplementedError``), loads it next to the
student's module and binds the student's functions into it, so a learning
test trains with the kit's loop calling the student's code.

Where it comes from: ``autograder/stubs/<module>.py`` when that folder exists
(a student kit ships the stubs there), else the reference with its solution
regions stripped (the full kit). Either way the text holds no answer.

:func:`given_module` imports a whole kit module on the trusted side (the toy
RLHF pipeline that ex5's learning test drives with the student's functions):
a demo from ``demos/`` (the only copy, in every kit; it imports no exercise
module as long as its caller passes every exercise function, as the suite
does through ``ops``), else the stub from ``autograder/stubs/`` in a student
kit or from the generated stubs (``assignments/``) in the full kit; never
from ``solutions/``.
"""
from __future__ import annotations

import importlib
from functools import lru_cache
from pathlib import Path

KIT_ROOT = Path(__file__).resolve().parent.parent
SHIPPED = Path(__file__).resolve().parent / "stubs"


@lru_cache(maxsize=None)
def given_source(module: str) -> str | None:
    """The answer-free text of ``module`` (None when the kit has no such exercise)."""
    shipped = SHIPPED / f"{module}.py"
    if shipped.is_file():
        return shipped.read_text()
    ref = KIT_ROOT / "solutions" / f"{module}.py"
    if ref.is_file():
        from .regions import strip_solutions  # (the full kit only: a student kit ships no parser)

        return strip_solutions(ref.read_text(), f"solutions/{module}.py")
    return None


def given_module(module: str):
    """The kit's answer-free copy of ``module`` as an imported module.

    A demo (``demos/<module>.py``) holds no exercise function: it calls only
    those passed to it. Any other module comes from the stubs (its exercise
    functions are stubs).
    """
    if (KIT_ROOT / "demos" / f"{module}.py").is_file():
        return importlib.import_module(f"demos.{module}")
    package = "autograder.stubs" if (SHIPPED / "__init__.py").is_file() else "assignments"
    return importlib.import_module(f"{package}.{module}")
