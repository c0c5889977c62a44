"""Gradescope: results.json has the fields Gradescope reads and adds up; the autograder zip is complete."""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import zipfile

import pytest

from autograder import report as rep
from tools import make_gradescope

from conftest import ROOT

VISIBILITY = {"hidden", "after_due_date", "after_published", "visible"}


def validate_results(results: dict) -> None:
    """Gradescope's results.json: score, tests[] (name, score, max_score, output, visibility)."""
    assert isinstance(results, dict)
    assert isinstance(results["score"], (int, float)) and not isinstance(results["score"], bool)
    assert isinstance(results["tests"], list)
    for t in results["tests"]:
        assert {"name", "score", "max_score", "output", "visibility"} <= set(t), t
        assert isinstance(t["name"], str) and t["name"]
        assert isinstance(t["output"], str)
        assert t["visibility"] in VISIBILITY
        for k in ("score", "max_score"):
            assert isinstance(t[k], (int, float)) and not isinstance(t[k], bool)
        assert 0 <= t["score"] <= t["max_score"], t
    assert results["score"] == pytest.approx(sum(t["score"] for t in results["tests"]))
    for k in ("visibility", "stdout_visibility"):
        if k in results:
            assert results[k] in VISIBILITY
    if "execution_time" in results:
        assert isinstance(results["execution_time"], (int, float))
    json.dumps(results)  # plain JSON all the way down


def _report(tests, errors=()):
    return {"submission": "x", "device": "cpu", "sandbox": "strict", "errors": list(errors),
            "protections": ["scrubbed environment"], "seconds": 3.2,
            "exercises": [{"name": "ex1_values", "score": sum(t["score"] for t in tests),
                           "max_score": sum(t["max_score"] for t in tests), "module_present": True, "tests": tests}],
            "total": sum(t["score"] for t in tests), "max_total": sum(t["max_score"] for t in tests)}


def test_gradescope_results_from_a_report_validate_and_sum():
    tests = [
        {"name": "matches the reference", "id": "t1", "function": "discounted_returns", "score": 1.5,
         "max_score": 1.5, "passed": True, "feedback": ""},
        {"name": "edge cases", "id": "t2", "function": "discounted_returns", "score": 0.0, "max_score": 1.0,
         "passed": False, "feedback": "discounted_returns(): the result is wrong at index [3]"},
    ]
    results = rep.gradescope(_report(tests, errors=["ex1_values: t9: grader error"]))
    validate_results(results)
    assert results["score"] == 1.5
    assert sum(t["max_score"] for t in results["tests"]) == 2.5
    assert results["tests"][1]["output"].startswith("discounted_returns(): the result is wrong")
    assert "grader error" in results["output"]


def test_make_gradescope_target_builds_the_zip():
    dry = subprocess.run(["make", "-n", "gradescope"], cwd=ROOT, capture_output=True, text=True)
    assert dry.returncode == 0, dry.stderr
    assert "tools.make_gradescope" in dry.stdout and "build/gradescope.zip" in dry.stdout
    assert "torch==" in dry.stdout  # the pinned spec from the Makefile reaches setup.sh


@pytest.fixture(scope="module")
def gradescope_zip(tmp_path_factory):
    return make_gradescope.build(tmp_path_factory.mktemp("gs") / "gradescope.zip", "torch==2.13.0")


def test_zip_holds_what_gradescope_needs_and_nothing_else(gradescope_zip):
    with zipfile.ZipFile(gradescope_zip) as zf:
        names = zf.namelist()
        infos = {i.filename: i for i in zf.infolist()}
        setup = zf.read("setup.sh").decode()
        run = zf.read("run_autograder").decode()
    for required in ("setup.sh", "run_autograder", "requirements.txt", "autograder/__main__.py",
                     "autograder/child/zygote.py", "autograder/sandbox.py", "autograder/suites/test_ex1_values.py",
                     "autograder/suites/pytest.ini", "solutions/ex1_values.py", "common/validate.py"):
        assert required in names, required
    for suite in (ROOT / "autograder" / "suites").glob("test_*.py"):
        assert f"autograder/suites/{suite.name}" in names
    for name in ("setup.sh", "run_autograder"):
        assert stat.S_IMODE(infos[name].external_attr >> 16) & 0o111, f"{name} is not executable"
    # nothing but the kit's runtime: no tests, stubs, course data, builds, caches, venvs, VCS or dotfiles
    top = {n.split("/")[0] for n in names}
    # demos/: ex5's learning test drives the kit's toy-RLHF pipeline (demos/rlhf_pipeline.py)
    assert top == {"setup.sh", "run_autograder", "requirements.txt", "pyproject.toml", "autograder", "solutions",
                   "common", "demos"}
    assert not [n for n in names if "__pycache__" in n or n.endswith((".pyc", ".zip")) or "/." in n or n.startswith(".")]
    # setup.sh: a virtualenv, torch pinned (CPU wheels) before the requirements, and the kit not pip-installed
    assert "python3 -m venv" in setup
    torch_at = setup.index('pip install -q "torch==2.13.0"')
    assert torch_at < setup.index("-r \"$SOURCE/requirements.txt\"")
    assert "whl/cpu" in setup
    assert "install -e" not in setup and "pip install ." not in setup and "@TORCH_SPEC@" not in setup
    # run_autograder: grades /autograder/submission strictly into /autograder/results/results.json
    assert "/autograder" in run and "submission" in run and "results/results.json" in run
    assert "--format gradescope" in run and "--output" in run and "--sandbox strict" in run
    for script in ("setup.sh", "run_autograder"):
        with zipfile.ZipFile(gradescope_zip) as zf:
            text = zf.read(script)
        check = subprocess.run(["bash", "-n"], input=text, capture_output=True)
        assert check.returncode == 0, (script, check.stderr)


def test_refuses_an_unpinned_torch(tmp_path):
    with pytest.raises(SystemExit):
        make_gradescope.build(tmp_path / "x.zip", "torch")


def _fake_autograder(tmp_path, gradescope_zip, files: dict[str, str]):
    root = tmp_path / "autograder"
    with zipfile.ZipFile(gradescope_zip) as zf:
        zf.extractall(root / "source")
    for rel, text in files.items():
        p = root / "submission" / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return root


def _run_autograder(root, args: str):
    env = dict(os.environ, RLKIT_AUTOGRADER_ROOT=str(root), RLKIT_PYTHON=sys.executable, RLKIT_GRADE_ARGS=args)
    env.pop("PYTHONPATH", None)
    proc = subprocess.run(["bash", str(root / "source" / "run_autograder")], env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return json.loads((root / "results" / "results.json").read_text())


def test_run_autograder_end_to_end_writes_valid_results(tmp_path, gradescope_zip):
    """The unpacked zip grades a nested upload (a folder) in the strict sandbox; results validate and sum."""
    ref = (ROOT / "solutions" / "ex1_values.py").read_text()
    broken = ref + "\n\ndef action_values(P, R, V, gamma):\n    return R * 0\n"
    root = _fake_autograder(tmp_path, gradescope_zip, {"my_work/ex1_values.py": broken})
    results = _run_autograder(root, "--exercise ex1_values")
    validate_results(results)
    assert results["score"] == 12.0
    assert sum(t["max_score"] for t in results["tests"]) == 15.0
    av = [t for t in results["tests"] if ".action_values:" in t["name"]]
    assert av and all(t["score"] == 0 and "action_values()" in t["output"] for t in av)
    assert "unprivileged user" in results["output"]  # the strict sandbox says what it did


def test_run_autograder_reports_a_grader_failure_as_results(tmp_path, gradescope_zip):
    root = _fake_autograder(tmp_path, gradescope_zip, {"ex1_values.py": "x = 1\n"})
    results = _run_autograder(root, "--exercise no_such_exercise")
    validate_results(results)
    assert results["score"] == 0 and "could not run" in results["output"]
