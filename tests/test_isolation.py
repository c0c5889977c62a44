"""A broken function or module costs its own points only; the rest is still graded."""
from __future__ import annotations

from autograder.runner import available_exercises, grade

from conftest import ROOT, feedback_of, make_submission, scores_by_function

REF = (ROOT / "solutions" / "ex1_values.py").read_text()


def replace_function(src: str, name: str, body: str) -> str:
    """Swap the body of ``def name(...)`` in ``src`` for ``body`` (keeps the signature)."""
    import ast

    tree = ast.parse(src)
    fn = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name)
    lines = src.splitlines(keepends=True)
    start = fn.body[0].lineno - 1  # first statement (the docstring)
    end = fn.end_lineno
    new = "".join("    " + line + "\n" for line in body.strip("\n").splitlines())
    return "".join(lines[:start]) + new + "".join(lines[end:])


def others() -> list[str]:
    return [n for n in available_exercises() if n != "ex1_values"][:1]


def test_syntax_error_costs_its_module_and_only_the_functions_that_call_it(tmp_path):
    """ex2 imports the student's own ex1: a syntax error there costs the ex2 functions that call
    ex1 (the feedback names ex1 as the cause), and no other ex2 function."""
    from autograder.exercises import BY_NAME

    bad = REF.replace("def action_values(", "def action_values(:", 1)
    folder = make_submission(tmp_path, {"ex1_values.py": bad})
    report = grade(folder, ["ex1_values"] + others(), skip_learning=True)
    assert report["errors"] == []
    ex = {e["name"]: e for e in report["exercises"]}
    assert ex["ex1_values"]["score"] == 0
    fb = feedback_of(report, "discounted_returns")
    assert fb and all("SyntaxError" in f and "line" in f for f in fb), fb
    scores = scores_by_function(report)
    for name in others():
        callers = {f for f, deps in BY_NAME[name].uses.items() if any(m == "ex1_values" for m, _ in deps)}
        assert callers
        for (module, fn), (score, mx) in scores.items():
            if module != name:
                continue
            if fn in callers:
                assert score < mx, fn
                assert all("ex1_values" in f for f in feedback_of(report, fn) if f), feedback_of(report, fn)
            else:
                assert score == mx, (fn, feedback_of(report, fn))


def test_missing_module_and_missing_function(tmp_path):
    src = REF.replace("def monte_carlo_value(", "def monte_carlo_value_renamed(", 1)
    folder = make_submission(tmp_path, {"ex1_values.py": src})
    for name in others():
        (folder / f"{name}.py").unlink()
    report = grade(folder, ["ex1_values"] + others(), skip_learning=True)
    scores = scores_by_function(report)
    assert scores[("ex1_values", "monte_carlo_value")][0] == 0
    assert any("defines no function monte_carlo_value" in f for f in feedback_of(report, "monte_carlo_value"))
    assert scores[("ex1_values", "discounted_returns")] == (5, 5)
    for e in report["exercises"]:
        if e["name"] != "ex1_values":
            assert e["score"] == 0 and not e["module_present"]
            assert all("not in the submission" in t["feedback"] for t in e["tests"])


def test_hang_exception_and_exit_cost_only_their_function(tmp_path):
    src = replace_function(REF, "discounted_returns", "while True:\n    pass")
    src = replace_function(src, "policy_evaluation", "raise RuntimeError('oops')")
    src = replace_function(src, "action_values", "import os\nos._exit(0)")
    folder = make_submission(tmp_path, {"ex1_values.py": src})
    report = grade(folder, ["ex1_values"])
    scores = scores_by_function(report)
    assert scores[("ex1_values", "discounted_returns")][0] == 0
    assert scores[("ex1_values", "policy_evaluation")][0] == 0
    assert scores[("ex1_values", "action_values")][0] == 0
    assert scores[("ex1_values", "monte_carlo_value")] == (3, 3)
    assert any("did not finish" in f for f in feedback_of(report, "discounted_returns"))
    assert any("RuntimeError: oops" in f for f in feedback_of(report, "policy_evaluation"))
    assert any("exited" in f for f in feedback_of(report, "action_values"))


def test_printed_fake_score_changes_nothing(tmp_path):
    src = replace_function(REF, "action_values",
                           "print('TOTAL 15.0 / 15.0'); print('{\"total\": 15, \"score\": 15}')\n"
                           "return R * 0")
    folder = make_submission(tmp_path, {"ex1_values.py": src})
    report = grade(folder, ["ex1_values"], skip_learning=True)
    assert scores_by_function(report)[("ex1_values", "action_values")][0] == 0
    assert report["total"] == 12
