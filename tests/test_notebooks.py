"""The nbgrader notebooks: generated from the single source, valid, and their solution versions run.

The hidden test cells are executed (and scored) by the nbgrader round trip in
test_nbgrader_roundtrip.py; here every other cell of each solution notebook
runs, so a broken answer, helper or quick check shows up quickly and by name.
"""
from __future__ import annotations

import ast
import os
import re
import time
from concurrent.futures import ThreadPoolExecutor

import nbformat
import pytest
from nbclient import NotebookClient

from conftest import ROOT

from autograder.exercises import POINTS as EXERCISES
from tools import make_notebooks as mk

BUILT = [ex for ex in mk.available_exercises() if mk.notebook_path(ex).is_file()]
HIDDEN = re.compile(r"\A# Hidden test, [^\n]*\n### BEGIN HIDDEN TESTS\n"
                    r"from autograder\.notebook import check; check\(\"(?P<module>\w+)\", \"(?P<test>\w+)\"\)\n"
                    r"### END HIDDEN TESTS\n\Z")


def _nb(ex: str):
    return nbformat.read(mk.notebook_path(ex), as_version=4)


def _meta(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def test_there_are_notebooks():
    assert {"ex1_values", "ex2_reinforce"} <= set(BUILT), BUILT


def test_notebooks_match_the_generator(capsys):
    code = mk.main(["--check"])
    assert code == 0, capsys.readouterr().out


def test_every_exercise_with_a_suite_and_a_module_has_a_notebook():
    for ex in mk.available_exercises():
        mk.build(ex)  # raises NotebookError when the sources cannot make a notebook
        assert mk.notebook_path(ex).is_file(), f"run `make notebooks`: {ex} has no notebook"
    assert set(BUILT) == set(mk.available_exercises())


@pytest.mark.parametrize("ex", BUILT)
def test_notebook_is_valid_nbgrader_source(ex):
    nb = _nb(ex)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    ids = [_meta(c).get("grade_id") for c in nb.cells if _meta(c)]
    assert len(ids) == len(set(ids)), "grade_ids must be unique"
    for cell in nb.cells:
        meta = _meta(cell)
        if not meta:
            assert cell.cell_type == "markdown", cell.source[:80]
            continue
        assert meta["schema_version"] == 3
        assert re.fullmatch(r"[A-Za-z0-9_-]+", meta["grade_id"])
        assert {"grade", "solution", "locked"} <= set(meta)
        if meta["grade"]:
            assert meta["points"] > 0
        if meta["solution"]:
            assert not meta["locked"]
        if cell.cell_type == "code" and not meta["solution"]:
            assert meta["locked"], f"{meta['grade_id']} should be read-only"
    setup = next(c for c in nb.cells if _meta(c).get("grade_id") == "setup")
    assert setup.source.count("DEVICE = ") == 1, "the device is chosen once, in the setup cell"
    assert nb.cells.index(setup) == 1


@pytest.mark.parametrize("ex", BUILT)
def test_one_hidden_cell_per_suite_test_worth_its_points(ex):
    nb = _nb(ex)
    tests = mk.suite_tests(ex)
    hidden = {}
    for cell in nb.cells:
        meta = _meta(cell)
        if cell.cell_type == "code" and meta.get("grade"):
            m = HIDDEN.match(cell.source)
            assert m, f"a hidden test cell holds one check call and nothing else:\n{cell.source}"
            assert m["module"] == ex and m["test"] == meta["grade_id"]
            hidden[m["test"]] = float(meta["points"])
            assert meta["locked"] and not meta["solution"]
    assert hidden == {t.name: t.points for t in tests}
    # the same points per function as `make grade`
    assert sum(hidden.values()) == pytest.approx(EXERCISES[ex])
    # every test marker names a function the notebook defines, and sits after its definition
    order = [(_meta(c).get("grade_id"), c) for c in nb.cells if _meta(c)]
    position = {gid: i for i, (gid, _) in enumerate(order)}
    for t in tests:
        defined_at = [i for i, (gid, c) in enumerate(order) if c.cell_type == "code"
                      and re.search(rf"^def {t.function}\(", c.source, re.M)]
        assert defined_at, f"{t.function} is not defined in the notebook"
        assert position[t.name] > max(defined_at)


def _functions_with_regions(ex: str) -> set[str]:
    """Top-level functions of the reference whose text (up to the next statement) has a solution region."""
    text = (ROOT / "solutions" / f"{ex}.py").read_text()
    lines = text.splitlines()
    body = ast.parse(text).body
    out = set()
    for node, nxt in zip(body, body[1:] + [None]):
        stop = (min([nxt.lineno] + [d.lineno for d in getattr(nxt, "decorator_list", [])]) - 1) if nxt else len(lines)
        if isinstance(node, ast.FunctionDef) and "### BEGIN SOLUTION" in "\n".join(lines[node.lineno - 1:stop]):
            out.add(node.name)
    return out


@pytest.mark.parametrize("ex", BUILT)
def test_answer_cells_hold_the_whole_functions_with_solution_regions(ex):
    nb = _nb(ex)
    answers = {_meta(c)["grade_id"]: c for c in nb.cells if _meta(c).get("solution") and c.cell_type == "code"}
    own = _functions_with_regions(ex)
    assert own and own <= set(answers), sorted(own - set(answers))
    for gid, cell in answers.items():
        src = cell.source
        assert src.count("### BEGIN SOLUTION") == src.count("### END SOLUTION") >= 1, gid
        if gid in own:
            assert re.search(rf"^def {re.escape(gid)}\(", src, re.M), gid
        else:  # pasted from an earlier exercise: <module>_<function>
            dep, fn = next((d, gid[len(d) + 1:]) for d in mk.EXERCISE_ORDER if gid.startswith(d + "_"))
            assert fn in _functions_with_regions(dep), gid
            assert re.search(rf"^def {re.escape(fn)}\(", src, re.M), gid
        # the TODO of each region sits just above it, so it survives in the student's copy
        for m in re.finditer(r"^( *)### BEGIN SOLUTION$", src, re.M):
            before = src[:m.start()].rstrip("\n").splitlines()[-1]
            assert before.strip().startswith("# TODO:"), (gid, before)


def test_ex4_has_the_written_answer_with_its_rubric():
    if "ex4_ppo" not in BUILT:
        pytest.skip("ex4_ppo is not built yet")
    nb = _nb("ex4_ppo")
    cells = [c for c in nb.cells if _meta(c).get("grade_id") == "clipping_explanation"]
    assert len(cells) == 1
    cell, meta = cells[0], _meta(cells[0])
    assert cell.cell_type == "markdown" and meta["grade"] and meta["solution"] and not meta["locked"]
    assert meta["points"] == mk.WRITTEN_POINTS
    region = cell.source.split("### BEGIN SOLUTION", 1)[1].split("### END SOLUTION", 1)[0]
    assert "Rubric" in region and "point" in region
    question = nb.cells[nb.cells.index(cell) - 1].source
    assert "why does clipping help stability" in question.lower()


def test_generator_moves_todo_and_keeps_regions():
    src = "def f(x):\n    y = 1\n    ### BEGIN SOLUTION\n    # TODO: add one\n    return x + y\n    ### END SOLUTION\n"
    out = mk.answer_source(src)
    assert out == "def f(x):\n    y = 1\n    # TODO: add one\n    ### BEGIN SOLUTION\n    return x + y\n    ### END SOLUTION\n"


def test_redaction_keeps_shapes_and_hides_reference_numbers():
    from autograder.notebook import redact

    assert "0.4321" not in redact("f(): the result is wrong at index [3]: expected 0.4321, got 0.5 (T=7)")
    assert "got 0.5" in redact("f(): the result is wrong at index [3]: expected 0.4321, got 0.5 (T=7)")
    assert redact("f(): the result has shape [3], expected [4]") == "f(): the result has shape [3], expected [4]"
    assert "2.5" not in redact("f(): the loss is 1, expected 2.5")


# ---------------------------------------------------------------- executing the solution versions
def _without_hidden_tests(nb):
    nb = nbformat.from_dict(nb)
    nb.cells = [c for c in nb.cells if not (c.cell_type == "code" and _meta(c).get("grade"))]
    return nb


def _execute(ex: str) -> tuple[str, float, list[str]]:
    nb = _without_hidden_tests(_nb(ex))
    start = time.monotonic()
    client = NotebookClient(nb, timeout=300, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": str(mk.notebook_path(ex).parent)}},
                            extra_arguments=["--ignore-cwd"])
    client.execute(env=_kernel_env())
    seconds = time.monotonic() - start
    problems = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.output_type == "error":
                problems.append(f"{_meta(cell).get('grade_id')}: {out.ename}: {out.evalue}")
            elif out.output_type == "stream" and out.name == "stderr":
                problems.append(f"{_meta(cell).get('grade_id')}: stderr: {out.text[:200]}")
    return ex, seconds, problems


def _kernel_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    env["OMP_NUM_THREADS"] = "1"
    env["RLKIT_DEVICE"] = "cpu"
    return env


@pytest.fixture(scope="module")
def executed():
    with ThreadPoolExecutor(max_workers=2) as pool:
        return {ex: (sec, problems) for ex, sec, problems in pool.map(_execute, BUILT)}


@pytest.mark.parametrize("ex", BUILT)
def test_solution_notebook_runs_without_error(executed, ex):
    seconds, problems = executed[ex]
    print(f"{ex}: executed in {seconds:.1f} s (hidden tests excluded)")
    assert problems == []
    assert seconds < 180, f"{ex} took {seconds:.0f} s"


def test_a_notebook_check_leaves_no_folder_behind(tmp_path, monkeypatch):
    """Each check() in a student's kernel builds a submission; it used to make a folder in the
    temporary directory and never remove it (thousands after a day of notebook checks)."""
    import tempfile

    from autograder.notebook import NotebookSubmission

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    sub = NotebookSubmission({"discounted_returns": lambda *a: None})
    sub.close()
    assert list(tmp_path.iterdir()) == []
    assert not sub.path.exists()
