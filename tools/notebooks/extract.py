"""Turn a submitted notebook back into a plain module (``--extract``, and ``make grade-notebooks``).

Answer cells come from the student's notebook, every other cell from the
generator (:func:`.build.build`), so nothing locked is taken from the
student's file. Also: which graded cells a submission lost, and which
exercise a notebook is.
"""
from __future__ import annotations

from .build import build
from .sources import NotebookError, _module_path, available_exercises, parse_module, suite_tests


def extract_module(nb, exercise: str | None = None) -> str:
    """A student's notebook as a plain module for ``make grade``: their answer cells, the trusted rest.

    Locked cells are taken from the generator (never from the student's file);
    answer cells (``solution`` cells with a ``grade_id`` the generator knows)
    from the student's notebook. Hidden tests, quick checks and the setup
    cell's notebook-only lines are left out; relative imports become the
    pasted code, so the module stands alone like the notebook.
    """
    exercise = exercise or _exercise_of(nb)
    ref = build(exercise)
    student = {}
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell.get("cell_type") == "code" and meta.get("solution") and meta.get("grade_id"):
            student.setdefault(meta["grade_id"], cell.get("source", ""))
    parts = ["# Extracted from a submitted notebook by tools/make_notebooks.py --extract\n"]
    for cell in ref.cells:
        meta = cell.metadata.get("nbgrader", {})
        gid = meta.get("grade_id", "")
        if cell.cell_type != "code" or meta.get("grade") or gid.startswith("quick_"):
            continue
        if gid == "setup":
            stmts = parse_module(_module_path(exercise))
            parts.append("from __future__ import annotations\n\nimport math\nimport os\nimport sys\n\n"
                         + "".join(s.text for s in stmts if s.kind == "import"))
            continue
        if meta.get("solution"):
            parts.append(student.get(gid, "raise NotImplementedError('this cell is missing from the notebook')\n"))
        else:
            parts.append(cell.source)
    return "\n\n".join(p.rstrip() + "\n" for p in parts)


def missing_graded_cells(nb, exercise: str) -> list[str]:
    """grade_ids of the graded cells (hidden tests, the written answer) of ``exercise``'s
    notebook that ``nb`` (a submission) does not have, in notebook order."""
    have = {c.get("metadata", {}).get("nbgrader", {}).get("grade_id") for c in nb.cells}
    return [c.metadata["nbgrader"]["grade_id"] for c in build(exercise).cells
            if c.metadata.get("nbgrader", {}).get("grade") and c.metadata["nbgrader"]["grade_id"] not in have]


def _exercise_of(nb) -> str:
    ids = {c.get("metadata", {}).get("nbgrader", {}).get("grade_id") for c in nb.cells}
    for ex in available_exercises():
        if {t.name for t in suite_tests(ex)} & ids:
            return ex
    raise NotebookError("cannot tell which exercise this notebook is")
