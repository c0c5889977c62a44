"""Shared helpers for the kit's own tests (these run in CI, not on students)."""
from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import autograder.runner as _runner  # noqa: E402

# Every live answer the seam computes in this session, in any suite process, is noted here
# (autograder/oracle.py); tests/test_student_kit.py proves the recorded data holds each one.
SEAM_LOG = Path(tempfile.mkdtemp(prefix="rlkit-seam-log-"))
os.environ["RLKIT_SEAM_LOG"] = str(SEAM_LOG)


def pytest_unconfigure(config):
    shutil.rmtree(SEAM_LOG, ignore_errors=True)  # (read by tests/test_student_kit.py during the run)


# ------------------------------------------------------------------ no answer in any report
# Every report produced anywhere in this test run is scanned: no line of a solution region
# and no line of a hidden suite may reach a field a student sees.
def _significant(line: str) -> bool:
    """A line that says something of the answer: not a TODO (students have those), not a bare
    call that a hint may name (``optimizer.zero_grad()``), not a short fragment."""
    return (len(line) >= 20 and not line.startswith("# TODO")
            and not re.fullmatch(r"[\w.]+\(\)", line))


def _answer_lines() -> dict[str, str]:
    """Significant lines of the solution regions and of the hidden suites -> where they come from."""
    lines: dict[str, str] = {}
    from autograder.regions import solution_regions

    for path in sorted((ROOT / "solutions").glob("*.py")):
        for region in solution_regions(path.read_text()):
            for line in region:
                if _significant(line.strip()):
                    lines[line.strip()] = f"solutions/{path.name}"
    for path in sorted((ROOT / "autograder" / "suites").glob("*.py")):
        for line in path.read_text().splitlines():
            if len(line.strip()) >= 30:
                lines[line.strip()] = f"autograder/suites/{path.name}"
    return lines


ANSWER_LINES = _answer_lines()


def _strings(obj):
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield from _strings(k)
            yield from _strings(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from _strings(v)


def leaked_answer_lines(report) -> list[str]:
    """The solution-region and hidden-suite lines found in a report (a dict, or its text)."""
    text = "\n".join(_strings(report)) if not isinstance(report, str) else report
    return [f"{where}: {line}" for line, where in ANSWER_LINES.items() if line in text]


def assert_no_answers(report) -> None:
    leaks = leaked_answer_lines(report)
    assert not leaks, f"a report carries {len(leaks)} answer line(s), e.g. {leaks[:3]}"


def _scanned_grade(*args, **kwargs):
    report = _real_grade(*args, **kwargs)
    assert_no_answers(report)
    return report


_real_grade = _runner.grade
_runner.grade = _scanned_grade  # test modules import it after this file: they get the scanned one
grade = _scanned_grade


def pytest_sessionfinish(session, exitstatus):
    """Reports written to files by subprocesses (CLI, batch, Gradescope) are scanned too."""
    import json

    base = getattr(session.config, "_tmp_path_factory", None)
    try:
        root = base.getbasetemp() if base is not None else None
    except Exception:
        root = None
    if root is None or not Path(root).is_dir():
        return
    leaks = []
    for path in Path(root).rglob("*.json"):
        try:
            data = json.loads(path.read_text())
        except Exception:
            continue
        if isinstance(data, dict) and ("exercises" in data or "tests" in data):
            leaks += [f"{path}: {x}" for x in leaked_answer_lines(data)]
    if leaks:
        session.exitstatus = 1
        print(f"\nANSWER LINES IN REPORT FILES: {leaks[:5]}", file=sys.stderr)


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


# ------------------------------------------------------------------ the mutant battery, graded once
def apply_mutant(m) -> str:
    src = (ROOT / "solutions" / f"{m.module}.py").read_text()
    count = src.count(m.old)
    assert count == 1, f"mutant {m.name}: snippet found {count} times in solutions/{m.module}.py"
    return src.replace(m.old, m.new)


@pytest.fixture(scope="session")
def mutant_reports(request, tmp_path_factory):
    """Every mutant this session needs, graded once (learning tests skipped), two at a time.

    test_mutants.py checks each report; test_answer_seam.py replays the same folders and
    compares. Returns {name: report} (a report holds its folder in ``submission``).
    """
    from concurrent.futures import ThreadPoolExecutor

    from mutants import MUTANTS

    def one(m):
        try:
            src = apply_mutant(m)
        except AssertionError as exc:  # a stale snippet fails that mutant only
            return m.name, {"apply_error": str(exc)}
        folder = make_submission(tmp_path_factory.mktemp(m.name), {f"{m.module}.py": src})
        return m.name, grade(folder, [m.module], jobs=1, skip_learning=True)

    wanted, modules = set(), set()
    for item in request.session.items:
        params = getattr(item, "callspec", None) and item.callspec.params
        if params and "m" in params:
            wanted.add(params["m"].name)
        if params and "exercise" in params and item.name.startswith("test_replay_gives_the_live_verdicts"):
            modules.add(params["exercise"])
        if item.name.startswith(("test_the_recorded_answers_cover", "test_the_kit_gives_the_live_verdicts")):
            modules.update(m.module for m in MUTANTS)
    wanted |= {m.name for m in MUTANTS if m.module in modules}
    # create the session's base temp dir here, before the threads: pytest makes it lazily and
    # two threads making it at once can each see the other's ("not a normalized ... path")
    tmp_path_factory.getbasetemp()
    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(pool.map(one, [m for m in MUTANTS if m.name in wanted]))
