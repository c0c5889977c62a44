"""The references earn full marks; the generated stubs earn zero, cleanly; stubs do not drift."""
from __future__ import annotations

import subprocess
import sys

from autograder.exercises import POINTS as EXERCISES
from autograder.runner import available_exercises

from conftest import ROOT, scores_by_function


def test_every_exercise_has_a_suite_worth_its_points(reference_report):
    names = [e["name"] for e in reference_report["exercises"]]
    assert names == available_exercises()
    assert {"ex1_values", "ex2_reinforce", "ex3_baseline", "ex4_ppo"} <= set(names)
    for ex in reference_report["exercises"]:
        assert ex["max_score"] == EXERCISES[ex["name"]], ex["name"]


def test_reference_gets_full_marks(reference_report):
    failed = [(ex["name"], t["id"], t["feedback"]) for ex in reference_report["exercises"]
              for t in ex["tests"] if not t["passed"]]
    assert failed == []
    assert reference_report["errors"] == []
    assert reference_report["total"] == reference_report["max_total"] > 0


def test_stubs_get_zero_with_not_implemented_feedback(stub_report):
    assert stub_report["errors"] == []
    assert stub_report["total"] == 0
    for (ex, fn), (score, mx) in scores_by_function(stub_report).items():
        assert score == 0, (ex, fn)
        fb = [t["feedback"] for e in stub_report["exercises"] for t in e["tests"] if t["function"] == fn]
        assert any("not implemented" in f for f in fb), (ex, fn, fb)


def test_assignments_match_the_generator():
    proc = subprocess.run([sys.executable, "-m", "tools.make_assignments", "--check"], cwd=ROOT,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_stubs_keep_docstrings_and_have_no_solution_markers():
    for p in (ROOT / "assignments").glob("ex*.py"):
        text = p.read_text()
        assert "BEGIN SOLUTION" not in text and "END SOLUTION" not in text, p.name
        assert "raise NotImplementedError" in text, p.name
        ref = (ROOT / "solutions" / p.name).read_text()
        # every docstring of the reference survives in the stub
        import ast

        for node in ast.walk(ast.parse(ref)):
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and ast.get_docstring(node):
                assert ast.get_docstring(node) in text or ast.get_docstring(node).splitlines()[0] in text, (p.name, node.name)
