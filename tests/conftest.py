"""Shared helpers for the kit's own tests (these run in CI, not on students)."""
from __future__ import annotations

import re
import shutil
import sys
import textwrap
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


_REGION = re.compile(r"^(\s*)### BEGIN SOLUTION\n.*?^\s*### END SOLUTION\n", re.S | re.M)


def with_regions(module: str, bodies: dict[str, str]) -> str:
    """The reference ``module`` with the solution region of each named function replaced by its body."""
    src = (ROOT / "solutions" / f"{module}.py").read_text()
    for fn, body in bodies.items():
        m = _REGION.search(src, src.index(f"\ndef {fn}("))
        assert m is not None, fn
        code = textwrap.indent(textwrap.dedent(body).strip("\n") + "\n", m.group(1))
        src = src[:m.start()] + code + src[m.end():]
    return src


def assert_full_marks(module: str, source: str, tmp_path: Path) -> None:
    """Grade ``source`` as the student's ``module`` (learning tests skipped): every test must pass."""
    folder = make_submission(tmp_path / "sub", {f"{module}.py": source})
    report = grade(folder, [module], jobs=1, skip_learning=True)
    assert report["errors"] == []
    failed = [(t["id"], t["feedback"]) for ex in report["exercises"] for t in ex["tests"] if not t["passed"]]
    assert failed == []
    ex = report["exercises"][0]
    assert ex["score"] == ex["max_score"] > 0
