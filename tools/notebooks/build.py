"""Build one exercise's nbgrader source notebook (``course/source/<exercise>/<exercise>.ipynb``).

From the exercise's reference module (``solutions/exN_*.py``) and hidden suite
(``autograder/suites/test_exN_*.py``), both read by :mod:`.sources`, and its
prose (:mod:`.prose`), the notebook holds:

* markdown cells that teach the idea, with the formulas;
* a locked setup cell (imports, ``DEVICE`` chosen once, the grader's guard);
* one answer cell per function the student writes: the function's full
  source, its solution region between nbgrader's ``### BEGIN SOLUTION`` /
  ``### END SOLUTION`` (the region's ``# TODO:`` line is moved just above the
  region, so it survives in the student's copy);
* locked cells with the code the student is given (helpers, training loops);
* a visible quick check per function (small, hand-checkable examples);
* one hidden test cell per test of the suite, worth that test's points, whose
  hidden part is a single call into ``autograder.notebook.check``: the inputs,
  reference values and check logic stay in ``autograder``;
* for functions imported from an earlier exercise: an ungraded answer cell
  ("paste your ``compute_gae`` from exercise 3") so that every notebook runs on
  its own;
* where the prose has a ``[written]`` setting (ex4_ppo: "Explain why clipping
  helps stability"), a written answer graded by hand, with the rubric inside
  its solution region.
"""
from __future__ import annotations

import ast
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from . import prose
from .sources import (SOURCE, Stmt, SuiteTest, _imports_relatively, _module_path, _test_uses, answer_source,
                      parse_module, resolve_dependencies, suite_tests)

CHECK_CALL = 'from autograder.notebook import check; check("{module}", "{test}")'


# ====================================================================== cells
def _nb_meta(**kw) -> dict:
    meta = {"grade": False, "solution": False, "locked": False, "schema_version": 3}
    meta.update(kw)
    return {"nbgrader": meta}


class Builder:
    def __init__(self, exercise: str):
        self.exercise = exercise
        self.cells: list = []
        self.ids: set[str] = set()
        self.md_count = 0

    def _id(self, wanted: str) -> str:
        cid = re.sub(r"[^A-Za-z0-9_-]", "-", wanted)[:60]
        base, k = cid, 2
        while cid in self.ids:
            cid = f"{base}-{k}"
            k += 1
        self.ids.add(cid)
        return cid

    def markdown(self, text: str) -> None:
        self.md_count += 1
        cell = nbformat.v4.new_markdown_cell(text.strip() + "\n")
        cell.id = self._id(f"md-{self.md_count}")
        self.cells.append(cell)

    def code(self, source: str, grade_id: str, *, solution=False, grade=False, locked=False,
             points: float | None = None) -> None:
        cell = nbformat.v4.new_code_cell(source.strip("\n") + "\n")
        cell.id = self._id(grade_id)
        meta = _nb_meta(grade=grade, solution=solution, locked=locked, grade_id=grade_id)
        if points is not None:
            meta["nbgrader"]["points"] = float(points)
        if locked:
            meta["deletable"] = False
            meta["editable"] = False
        cell.metadata = meta
        self.cells.append(cell)

    def written(self, text: str, grade_id: str, points: float) -> None:
        cell = nbformat.v4.new_markdown_cell(text.strip() + "\n")
        cell.id = self._id(grade_id)
        cell.metadata = _nb_meta(grade=True, solution=True, locked=False, grade_id=grade_id, points=float(points))
        self.cells.append(cell)

    def notebook(self):
        nb = nbformat.v4.new_notebook()
        nb.metadata = {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        }
        nb.cells = self.cells
        return nb


SETUP_HEAD = '''\
from __future__ import annotations

# Setup (read-only): imports and the device every cell below uses.
import math
import os
import sys
from pathlib import Path

try:
    import common  # the kit is importable (the grading machine, or the kit installed with pip)
except ImportError:  # the student bundle: common/ sits in a folder above this notebook;
    # fetched from the exchange: rlkit_common.zip (the same common/) sits next to it
    for _folder in [Path.cwd(), *Path.cwd().parents]:
        if (_folder / "common" / "__init__.py").is_file():
            sys.path.insert(0, str(_folder))
            break
        if (_folder / "rlkit_common.zip").is_file():
            sys.path.insert(0, str(_folder / "rlkit_common.zip"))
            break
    import common
'''

SETUP_TAIL = '''\
from common.device import get_device

DEVICE = get_device(os.environ.get("RLKIT_DEVICE", "auto"))  # chosen once: CUDA if available, else CPU
print("device:", DEVICE)

try:  # on the grading machine this loads the hidden checks before any answer cell runs
    import autograder.notebook  # noqa: F401
except ImportError:  # your copy has no grader: nothing to do
    pass
'''


def _function_text(ex: str, fn: str, stmt: Stmt) -> str:
    text = prose.load(ex).cells.get(fn)
    if text:
        return text
    doc = ast.get_docstring(stmt.node) or ""
    first = doc.strip().splitlines()[0] if doc.strip() else ""
    return f"## `{fn}`\n\n{first}\n\nThe docstring in the cell below gives the formula and the shapes."


def _quick(ex: str, fn: str, stmt: Stmt) -> str | None:
    entry = prose.load(ex).quick.get(fn)
    if entry is None:
        return None
    params, code = entry
    node = stmt.node
    have = {a.arg for a in node.args.args + node.args.kwonlyargs + node.args.posonlyargs}
    if not set(params) <= have:
        print(f"note: {ex}.{fn} has no parameter(s) {sorted(set(params) - have)}; its quick check is left out",
              file=sys.stderr)
        return None
    return code


def _hidden_cell(b: Builder, ex: str, t: SuiteTest) -> None:
    pts = f"{t.points:g} point{'s' if t.points != 1 else ''}"
    slow = " (trains an agent: takes a while)" if t.learning else ""
    src = (f"# Hidden test, {pts}{slow}: {t.function}(): {t.title}\n"
           "### BEGIN HIDDEN TESTS\n"
           + CHECK_CALL.format(module=ex, test=t.name) + "\n"
           "### END HIDDEN TESTS\n")
    b.code(src, t.name, grade=True, locked=True, points=t.points)


@dataclass
class Block:
    names: set[str]
    cells: list  # (kind, args) to emit, in order
    tests: list = field(default_factory=list)


def build(exercise: str):
    """The nbgrader source notebook of ``exercise`` (an nbformat NotebookNode)."""
    stmts = parse_module(_module_path(exercise))
    tests = suite_tests(exercise)
    deps = resolve_dependencies(stmts, exercise)
    words = prose.load(exercise)
    w = words.written  # a written answer graded by hand, or None
    b = Builder(exercise)

    by_function: dict[str, list[SuiteTest]] = {}
    for t in tests:
        by_function.setdefault(t.function, []).append(t)
    auto_points = sum(t.points for t in tests)
    answers = [s for s in stmts if s.kind == "answer"]
    answer_names = {s.name for s in answers}
    defined = {n for s in stmts if s.kind in ("answer", "given") for n in s.defines}
    dep_names = {s.name for d in deps for s in d.answers + d.given if s.name}

    # ---- title, idea, table of points, how to work
    extra = f" + {w.points:g} written" if w else ""
    rows = ["| function | you write it | points |", "|---|---|---|"]
    listed = [s.name for s in answers] + [f for f in by_function if f not in answer_names]
    for fn in listed:
        pts = sum(t.points for t in by_function.get(fn, []))
        mine = "yes" if fn in answer_names else "given"
        rows.append(f"| `{fn}` | {mine} | {pts:g} |")
    if w:
        rows.append(f"| {w.table_row} | yes | {w.points:g} (graded by hand) |")
    b.markdown(f"# {words.title}\n\n**{auto_points:g} points, graded automatically{extra}.**\n\n"
               + words.intro.strip() + "\n\n" + "\n".join(rows) + "\n\n" + prose.HOW_TO.strip())

    # ---- setup: imports + device
    head_lines = {ln.strip() for ln in SETUP_HEAD.splitlines()}
    imports = "".join(s.text for s in stmts if s.kind == "import" and s.text.strip() not in head_lines)
    b.code(SETUP_HEAD + "\n" + imports + "\n" + SETUP_TAIL, "setup", locked=True)

    # ---- code from earlier exercises
    for dep in deps:
        names = ", ".join(f"`{s.name}`" for s in dep.answers)
        if dep.answers:
            b.markdown(f"## From an earlier exercise ({dep.module})\n\nThis exercise uses {names} from "
                       f"`{dep.module}`. Paste your own implementation into the answer cell below (only the part "
                       "under `# YOUR CODE HERE` is missing). This cell earns no points here, but the hidden "
                       "tests of this notebook call your code through it, so it must work.")
        helper = "".join(dep.imports)
        if dep.given:
            helper += "\n\n" + "\n\n".join(s.text.rstrip() for s in dep.given) + "\n"
        if helper.strip():
            b.code(f"# Given code from {dep.module} (read-only).\n" + helper, f"given_{dep.module}", locked=True)
        for s in dep.answers:
            b.code(answer_source(s.text), f"{dep.module}_{s.name}", solution=True)

    # ---- the module itself, in source order, as blocks
    blocks: list[Block] = []
    pending: list[Stmt] = []
    given_count = 0

    def flush():
        nonlocal pending, given_count
        if pending:
            given_count += 1
            blocks.append(Block(set().union(*(s.defines for s in pending)),
                                [("given", pending, f"given_{given_count}")]))
            pending = []

    for s in stmts:
        if s.kind in ("future", "import", "relimport", "all", "main"):
            continue
        if s.kind == "given" and not (s.name and s.name in by_function):
            if _imports_relatively(s.node):
                # e.g. a helper that loads a sibling module of the kit (ex5's run_toy_rlhf):
                # it cannot run inside a notebook, and nothing in the notebook needs it
                print(f"note: {exercise}.{s.name} imports a sibling module; left out of the notebook",
                      file=sys.stderr)
                continue
            pending.append(s)
            continue
        flush()
        cells = []
        if s.kind == "answer":
            cells.append(("md", _function_text(exercise, s.name, s)))
            cells.append(("answer", s))
        else:  # given code that the suite grades (a training loop that runs the student's functions)
            if s.name in words.cells:
                cells.append(("md", words.cells[s.name]))
            given_count += 1
            cells.append(("given", [s], f"given_{given_count}"))
        quick = _quick(exercise, s.name, s)
        if quick:
            cells.append(("quick", s.name, quick))
        if w and s.name == _written_after(answers, w):
            cells.append(("written",))
        blocks.append(Block(set(s.defines), cells))
    flush()

    # ---- each hidden test goes after the last block defining a function it calls
    uses = _test_uses(exercise, defined | dep_names)
    homeless = []
    for t in tests:
        need = (uses.get(t.name, set()) | {t.function}) & defined
        where = [i for i, blk in enumerate(blocks) if blk.names & need]
        if t.function in defined and where:
            blocks[max(where)].tests.append(t)
        else:
            homeless.append(t)

    written = False
    for blk in blocks:
        for cell in blk.cells:
            kind = cell[0]
            if kind == "md":
                b.markdown(cell[1])
            elif kind == "answer":
                b.code(answer_source(cell[1].text), cell[1].name, solution=True)
            elif kind == "given":
                b.code("# Given code (read-only).\n\n" + "\n\n".join(x.text.rstrip() for x in cell[1]) + "\n",
                       cell[2], locked=True)
            elif kind == "quick":
                b.code(cell[2], f"quick_{cell[1]}", locked=True)
            elif kind == "written":
                written = True
        for t in blk.tests:
            _hidden_cell(b, exercise, t)
        if any(c[0] == "written" for c in blk.cells):
            _written_answer(b, w)

    if homeless:
        b.markdown("## Further hidden tests")
        for t in homeless:
            _hidden_cell(b, exercise, t)
    if w and not written:
        _written_answer(b, w)
    b.markdown("## Before you submit\n\nRun *Kernel → Restart & Run All*. Every cell should run without an "
               "error (the hidden test cells are empty in your copy). Then save the notebook and submit it.")
    missing = [fn for fn in by_function if fn and fn not in defined]
    if missing:
        print(f"note: {exercise}: the suite grades {missing}, which the module does not define", file=sys.stderr)
    return b.notebook()


def _written_after(answers: list[Stmt], w: prose.Written) -> str | None:
    """The function the written answer follows: the first of ``w.after`` the module defines."""
    names = [s.name for s in answers]
    for candidate in w.after:
        if candidate in names:
            return candidate
    return None


def _written_answer(b: Builder, w: prose.Written) -> None:
    b.markdown(w.question.format(points=w.points))
    body = ("### BEGIN SOLUTION\n" + w.rubric.format(points=w.points).strip() + "\n### END SOLUTION\n")
    b.written(body, w.grade_id, w.points)


def render(exercise: str) -> str:
    nb = build(exercise)
    nbformat.validate(nb)
    return nbformat.writes(nb) + "\n"


def notebook_path(exercise: str) -> Path:
    return SOURCE / exercise / f"{exercise}.ipynb"
