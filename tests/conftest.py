"""Shared helpers for the kit's own tests (these run in CI, not on students)."""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from autograder.runner import grade  # noqa: E402


def scores_by_function(report: dict) -> dict[tuple[str, str], tuple[float, float]]:
    """(exercise, function) -> (score, max_score)."""
    out: dict[tuple[str, str], list[float]] = {}
    for ex in report["exercises"]:
        for t in ex["tests"]:
            s = out.setdefault((ex["name"], t["function"]), [0.0, 0.0])
            s[0] += t["score"]
            s[1] += t["max_score"]
    return {k: (v[0], v[1]) for k, v in out.items()}


def feedback_of(report: dict, function: str) -> list[str]:
    return [t["feedback"] for ex in report["exercises"] for t in ex["tests"]
            if t["function"] == function and not t["passed"]]


def make_submission(tmp: Path, files: dict[str, str] | None = None, from_solutions: bool = True) -> Path:
    """A submission folder: copies of the reference modules, with some files replaced."""
    tmp.mkdir(parents=True, exist_ok=True)
    if from_solutions:
        for p in (ROOT / "solutions").glob("ex*.py"):
            shutil.copyfile(p, tmp / p.name)
    for name, text in (files or {}).items():
        (tmp / name).write_text(text)
    return tmp


@pytest.fixture(scope="session")
def reference_report():
    """The reference solutions graded through the real runner (learning tests included)."""
    return grade(ROOT / "solutions")


@pytest.fixture(scope="session")
def stub_report():
    return grade(ROOT / "assignments")
