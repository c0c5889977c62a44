"""A round trip through the real nbgrader: generate, release, collect, autograde, export, feedback.

Two copies of course/ run side by side (one per core), each with its own gradebook:

* course A: ``alice`` hands in the solution (source) notebooks of every exercise;
* course B: ``bob`` the untouched release (ex1 through the local exchange: release_assignment,
  fetch_assignment, submit, collect; the other exercises placed in submitted/ directly), and,
  for ex1 only, students who try the known tricks:
    - ``mallory`` edits the locked cells (hidden tests replaced by ``pass``, points raised,
      a fake ``check`` in the setup cell, one hidden cell deleted), answers left as stubs;
    - ``eve`` answers with an always-true ``__eq__`` object, a tensor subclass, and monkeypatches
      numpy, torch and the grader's own comparison functions;
    - ``carol`` hands in a wrong implementation (collected with zip_collect, as a plain file);
      her feedback must not quote the reference's numbers;
    - ``trudy`` calls the reference solution from her answer: the in-kernel check cannot stop
      that (docs/THREAT_MODEL.md), the isolated cross-check (make grade-notebooks) catches it.
      She arrives as a zip (zip_collect).
"""
from __future__ import annotations

import csv
import html
import json
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pytest

from conftest import ROOT

from tools import make_notebooks as mk

EXERCISES = [ex for ex in mk.available_exercises() if mk.notebook_path(ex).is_file()]
TRICKSTERS = ["mallory", "eve", "carol", "trudy"]
EX1 = "ex1_values"


# ---------------------------------------------------------------- running nbgrader
def _env() -> dict:
    env = dict(os.environ)
    env["RLKIT_ROOT"] = str(ROOT)
    env["OMP_NUM_THREADS"] = "1"
    env["RLKIT_DEVICE"] = "cpu"
    env.pop("PYTHONPATH", None)  # the course's nbgrader_config.py must set it up by itself
    return env


def nbgrader(cwd: Path, *args: str, timeout: float = 1200) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=cwd, env=_env(),
                          capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise AssertionError(f"nbgrader {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n"
                             f"{proc.stderr[-5000:]}")
    return proc


def _new_course(root: Path) -> Path:
    course = root / "course"
    course.mkdir(parents=True)
    shutil.copyfile(ROOT / "course" / "nbgrader_config.py", course / "nbgrader_config.py")
    for ex in EXERCISES:
        (course / "source" / ex).mkdir(parents=True)
        shutil.copyfile(mk.notebook_path(ex), course / "source" / ex / f"{ex}.ipynb")
    return course


def _place(course: Path, student: str, ex: str, nb) -> None:
    folder = course / "submitted" / student / ex
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, folder / f"{ex}.ipynb")


def _meta(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def _set_answer(nb, grade_id: str, source: str) -> None:
    cell = next(c for c in nb.cells if _meta(c).get("grade_id") == grade_id)
    cell.source = source


# ---------------------------------------------------------------- the tricksters' notebooks
def mallory(release):
    """Edits every locked cell she can: hidden tests emptied, points raised, a fake check, one cell deleted."""
    nb = nbformat.from_dict(release)
    for cell in nb.cells:
        meta = _meta(cell)
        if meta.get("grade_id") == "setup":
            cell.source += "\ncheck = lambda *args, **kwargs: None\n"
        elif meta.get("grade") and cell.cell_type == "code":
            cell.source = "pass  # nothing to see here\n"
            meta["points"] = 100.0
            meta["locked"] = False
    doomed = next(i for i, c in enumerate(nb.cells) if _meta(c).get("grade_id") == "test_returns_batched")
    del nb.cells[doomed]
    return nb


EVE_RETURNS = '''
def discounted_returns(rewards, dones, gamma):
    import numpy as np
    import torch
    np.allclose = lambda *a, **k: True
    np.isclose = lambda a, b, **k: np.ones(np.shape(a), dtype=bool)
    np.array_equal = lambda *a, **k: True
    torch.allclose = lambda *a, **k: True

    class Agreeable(torch.Tensor):
        def __eq__(self, other):
            return True

        def __ne__(self, other):
            return False

    return torch.zeros_like(rewards).as_subclass(Agreeable)
'''

EVE_POLICY = '''
def policy_evaluation(P, R, pi, gamma, tol=1e-8, max_iters=10_000):
    class AlwaysEqual:
        shape = (P.shape[0],)
        dtype = P.dtype
        device = P.device

        def __eq__(self, other):
            return True

        def __float__(self):
            return 0.0

    return AlwaysEqual()
'''

EVE_ACTION = '''
def action_values(P, R, V, gamma):
    import autograder.checks as c
    import autograder.harness as h
    c.assert_tensor = lambda *a, **k: None
    c.close_enough = lambda *a, **k: True
    c.require_ok = lambda *a, **k: None
    h.compare = lambda *a, **k: None
    return R * 0
'''

EVE_MC = '''
def monte_carlo_value(P, R, pi, gamma, start_state, num_episodes=1000, horizon=None, generator=None):
    import builtins

    class Close(float):
        def __eq__(self, other):
            return True

        def __sub__(self, other):
            return Close(0.0)

        def __rsub__(self, other):
            return Close(0.0)

        def __abs__(self):
            return 0.0

    builtins.abs = lambda x: 0.0
    return Close(123.0)
'''


def eve(release):
    nb = nbformat.from_dict(release)
    _set_answer(nb, "discounted_returns", EVE_RETURNS)
    _set_answer(nb, "policy_evaluation", EVE_POLICY)
    _set_answer(nb, "action_values", EVE_ACTION)
    _set_answer(nb, "monte_carlo_value", EVE_MC)
    return nb


CAROL_RETURNS = '''
def discounted_returns(rewards, dones, gamma):
    return rewards * 2.0 + 0.125
'''


def carol(release):
    nb = nbformat.from_dict(release)
    _set_answer(nb, "discounted_returns", CAROL_RETURNS)
    return nb


TRUDY_RETURNS = '''
from solutions.ex1_values import discounted_returns as _the_answer


def discounted_returns(rewards, dones, gamma):
    return _the_answer(rewards, dones, gamma)
'''


def trudy(release):
    nb = nbformat.from_dict(release)
    _set_answer(nb, "discounted_returns", TRUDY_RETURNS)
    return nb


# ---------------------------------------------------------------- the two pipelines
def _pipeline_a(root: Path) -> dict:
    """alice: the solution notebooks of every exercise."""
    course = _new_course(root)
    times = {}
    t = time.monotonic()
    nbgrader(course, "generate_assignment", "*", "--force")
    times["generate_assignment"] = time.monotonic() - t
    for ex in EXERCISES:
        _place(course, "alice", ex, nbformat.read(course / "source" / ex / f"{ex}.ipynb", as_version=4))
    t = time.monotonic()
    nbgrader(course, "autograde", "*")
    times["autograde (all)"] = time.monotonic() - t
    nbgrader(course, "export", "--to", str(root / "grades.csv"))
    return {"course": course, "times": times}


def _pipeline_b(root: Path) -> dict:
    """bob through the exchange, the tricksters through submitted/ and zip_collect."""
    course = _new_course(root)
    times = {}
    t = time.monotonic()
    nbgrader(course, "generate_assignment", "*", "--force")
    times["generate_assignment"] = time.monotonic() - t
    release = {ex: nbformat.read(course / "release" / ex / f"{ex}.ipynb", as_version=4) for ex in EXERCISES}

    # bob: ex1 through the local exchange (no JupyterHub): release, fetch, submit, collect
    t = time.monotonic()
    nbgrader(course, "release_assignment", EX1, "--force")
    home = root / "bob_home"
    home.mkdir()
    exchange = [f"--Exchange.root={course / 'exchange'}", "--course", "rlkit"]
    nbgrader(home, "fetch_assignment", EX1, *exchange)
    nbgrader(home, "submit", EX1, *exchange)
    nbgrader(course, "collect", EX1, "--update")
    times["exchange round"] = time.monotonic() - t
    collected = [p.name for p in (course / "submitted").iterdir()]
    assert len(collected) == 1, collected
    bob = collected[0]  # the exchange names the student after the Unix user
    for ex in EXERCISES:
        if ex != EX1:
            _place(course, bob, ex, release[ex])

    # tricksters (ex1 only): mallory and eve straight into submitted/, carol and trudy via zip_collect
    _place(course, "mallory", EX1, mallory(release[EX1]))
    _place(course, "eve", EX1, eve(release[EX1]))
    archive = course / "downloaded" / EX1 / "archive"
    archive.mkdir(parents=True)
    nbformat.write(carol(release[EX1]), archive / f"carol__{EX1}.ipynb")
    with zipfile.ZipFile(archive / "trudy.zip", "w") as z:
        z.writestr(f"{EX1}/{EX1}.ipynb", nbformat.writes(trudy(release[EX1])))
    t = time.monotonic()
    nbgrader(course, "zip_collect", EX1, "--force")
    times["zip_collect"] = time.monotonic() - t

    t = time.monotonic()
    nbgrader(course, "autograde", "*")
    times["autograde (all)"] = time.monotonic() - t
    nbgrader(course, "export", "--to", str(root / "grades.csv"))
    nbgrader(course, "generate_feedback", "*")
    return {"course": course, "times": times, "bob": bob}


@pytest.fixture(scope="module")
def roundtrip(tmp_path_factory):
    reuse = os.environ.get("RLKIT_ROUNDTRIP_REUSE")  # debugging: the folder of a finished round trip
    if reuse:
        base = Path(reuse)
        a = {"course": base / "a" / "course", "times": {"autograde (all)": 0.0}}
        b = {"course": base / "b" / "course", "times": {},
             "bob": next(p.name for p in (base / "b" / "course" / "submitted").iterdir()
                         if (p / "ex2_reinforce").is_dir())}
        a["grades"], b["grades"] = _grades(base / "a" / "grades.csv"), _grades(base / "b" / "grades.csv")
        return {"a": a, "b": b, "base": base}
    base = tmp_path_factory.mktemp("nbgrader")
    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=2) as pool:
        fa = pool.submit(_pipeline_a, base / "a")
        fb = pool.submit(_pipeline_b, base / "b")
        a, b = fa.result(), fb.result()
    a["grades"] = _grades(base / "a" / "grades.csv")
    b["grades"] = _grades(base / "b" / "grades.csv")
    print("\nnbgrader round trip, seconds:", json.dumps({"A": a["times"], "B": b["times"],
                                                          "wall": round(time.monotonic() - start, 1)},
                                                         indent=1, default=lambda x: round(x, 1)))
    return {"a": a, "b": b, "base": base}


def _grades(path: Path) -> dict:
    with open(path, newline="") as f:
        return {(r["student_id"], r["assignment"]): r for r in csv.DictReader(f)}


def _auto_points(ex: str) -> float:
    return sum(t.points for t in mk.suite_tests(ex))


def _feedback_text(course: Path, student: str, ex: str) -> str:
    raw = (course / "feedback" / student / ex / f"{ex}.html").read_text()
    text = re.sub(r"<style.*?</style>|<script.*?</script>", " ", raw, flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", "", text))


# ---------------------------------------------------------------- the grades
def test_solution_notebooks_get_full_automatic_marks(roundtrip):
    grades = roundtrip["a"]["grades"]
    for ex in EXERCISES:
        row = grades[("alice", ex)]
        manual = mk.WRITTEN_POINTS if ex == "ex4_ppo" else 0.0
        assert float(row["max_score"]) == pytest.approx(_auto_points(ex) + manual), ex
        assert float(row["score"]) == pytest.approx(_auto_points(ex)), (ex, row)


def test_solution_notebooks_run_in_under_a_minute_each(roundtrip):
    # autograde also starts nbgrader, sanitises, starts a kernel per notebook and writes the
    # results; on a busy 2-core CI machine allow slack over the minute per notebook
    assert roundtrip["a"]["times"]["autograde (all)"] < 120 * len(EXERCISES), roundtrip["a"]["times"]


def test_untouched_release_gets_zero(roundtrip):
    b = roundtrip["b"]
    for ex in EXERCISES:
        row = b["grades"][(b["bob"], ex)]
        assert float(row["score"]) == 0.0, (ex, row)
        assert float(row["max_score"]) > 0


@pytest.mark.parametrize("student", ["mallory", "eve"])
def test_edited_locked_cells_and_always_equal_answers_gain_nothing(roundtrip, student):
    row = roundtrip["b"]["grades"][(student, EX1)]
    assert float(row["score"]) == 0.0, row
    assert float(row["max_score"]) == pytest.approx(_auto_points(EX1)), row  # raised points were reset


def test_nbgrader_restored_the_locked_cells(roundtrip):
    course = roundtrip["b"]["course"]
    nb = nbformat.read(course / "autograded" / "mallory" / EX1 / f"{EX1}.ipynb", as_version=4)
    setup = next(c for c in nb.cells if _meta(c).get("grade_id") == "setup")
    assert "lambda *args" not in setup.source
    hidden = [c for c in nb.cells if _meta(c).get("grade") and c.cell_type == "code"]
    assert hidden and all("check(" in c.source for c in hidden)
    assert all(any(o.output_type == "error" for o in c.outputs) for c in hidden)


def test_eve_is_told_what_is_wrong(roundtrip):
    text = _feedback_text(roundtrip["b"]["course"], "eve", EX1)
    assert "should be a torch.Tensor" in text or "should be a scalar" in text


def test_zip_collect_and_exchange_collect_work(roundtrip):
    course = roundtrip["b"]["course"]
    for student in ("carol", "trudy", roundtrip["b"]["bob"]):
        assert (course / "submitted" / student / EX1 / f"{EX1}.ipynb").is_file(), student


# ---------------------------------------------------------------- nothing leaks to students
def test_released_notebooks_and_bundle_hold_no_solution_and_no_hidden_test(roundtrip, tmp_path):
    course = roundtrip["b"]["course"]
    secrets = mk.secret_lines()
    assert all(secrets[ex] for ex in EXERCISES)
    for ex in EXERCISES:
        text = (course / "release" / ex / f"{ex}.ipynb").read_text()
        assert mk.leaks(text, secrets) == [], ex
        nb = nbformat.reads(text, as_version=4)
        hidden = [c for c in nb.cells if _meta(c).get("grade") and c.cell_type == "code"]
        assert hidden and all("check(" not in c.source and "autograder" not in c.source for c in hidden)
    archive = mk.make_bundle(course / "release", tmp_path / "student_bundle")
    bundle = tmp_path / "student_bundle"
    names = {p.relative_to(bundle).as_posix() for p in bundle.rglob("*") if p.is_file()}
    assert {f"{ex}/{ex}.ipynb" for ex in EXERCISES} <= names
    assert "common/__init__.py" in names
    assert not any(n.startswith(("solutions/", "autograder/", "assignments/", "tests/")) for n in names), names
    for p in bundle.rglob("*"):
        if p.is_file():
            assert mk.leaks(p.read_text(errors="replace"), secrets) == [], p
    with zipfile.ZipFile(archive) as z:
        assert {n.split("/", 1)[1] for n in z.namelist() if not n.endswith("/")} == names


def _kit_lines() -> set[str]:
    """Lines of the grader's code and suites long enough to identify them (and not public anyway)."""
    public = mk._public_lines()
    for p in (ROOT / "common").glob("*.py"):
        public |= {x.strip() for x in p.read_text().splitlines()}
    for ex in EXERCISES:
        for cell in nbformat.read(mk.notebook_path(ex), as_version=4).cells:
            public |= {x.strip() for x in cell.source.splitlines()}
    return {s for s in _grader_lines() if s not in public and sum(ch.isalpha() for ch in s) >= 10}


def _grader_lines() -> set[str]:
    out = set()
    for p in list((ROOT / "autograder").glob("*.py")) + list((ROOT / "autograder" / "suites").glob("test_*.py")):
        for line in p.read_text().splitlines():
            s = line.strip()
            if len(s) >= 30 and not s.startswith(("#", '"""', "'''")) and not s.endswith('"""') \
                    and "autograder.notebook import check" not in s:
                out.add(s)
    return out


@pytest.mark.parametrize("student", ["bob", "carol", "eve"])
def test_feedback_reveals_no_reference_value_and_no_check_logic(roundtrip, student):
    b = roundtrip["b"]
    student = b["bob"] if student == "bob" else student
    course = b["course"]
    exercises = EXERCISES if student == b["bob"] else [EX1]
    kit = _kit_lines()
    secrets = mk.secret_lines()
    for ex in exercises:
        text = _feedback_text(course, student, ex)
        assert "check(" in text  # the hidden cells are shown...
        assert [s for s in kit if s in text] == []  # ...but nothing of the checks behind them
        assert mk.leaks(text, secrets, markers=False) == []
        for word in (r"autograder/", r"solutions/", r"solutions\.", r"_pytest", r"\bCheckFailed\b",
                     r"Traceback \(most recent call last\)[^\n]*\n[^\n]*notebook\.py"):
            assert not re.search(word, text), word


def test_feedback_does_not_quote_the_reference_numbers(roundtrip):
    """carol's returns are wrong; make grade would say 'expected <reference value>'."""
    from autograder.notebook import run_test

    namespace: dict = {}
    exec(compile("import torch\n" + CAROL_RETURNS, "<carol>", "exec"), namespace)
    passed, message, _ = run_test(EX1, "test_returns_single_env", namespace, "cpu")
    assert not passed
    m = re.search(r"expected (-?[\d.]+(?:e[-+]?\d+)?)", message)
    assert m, message  # the un-redacted sentence quotes the reference ...
    text = _feedback_text(roundtrip["b"]["course"], "carol", EX1)
    assert "discounted_returns(): the result is wrong" in text
    assert m.group(1) not in text  # ... the feedback does not


# ---------------------------------------------------------------- the isolated cross-check
def test_isolated_cross_check_catches_what_the_kernel_cannot(roundtrip, tmp_path):
    b = roundtrip["b"]
    course = b["course"]
    rows = mk.grade_submitted(course / "submitted", tmp_path, gradebook=course / "gradebook.db",
                              exercises=[EX1], students=["trudy", "eve", b["bob"]])
    by = {r["student"]: r for r in rows}
    assert by["trudy"]["isolated"] == 0.0  # the sandbox does not let her import the reference
    assert by["eve"]["isolated"] == 0.0 and by[b["bob"]]["isolated"] == 0.0
    assert "MISMATCH" not in by["eve"]["note"] and "MISMATCH" not in by[b["bob"]]["note"]
    if by["trudy"]["nbgrader"]:  # the in-kernel check gave her points: the cross-check says so
        assert "MISMATCH" in by["trudy"]["note"]
    assert (tmp_path / "isolated_grades.csv").is_file()
