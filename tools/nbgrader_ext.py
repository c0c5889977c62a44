"""What course/nbgrader_config.py plugs into nbgrader (the instructor's machine only).

* :func:`cell_timeout`: nbclient's per-cell time limit (``Execute.timeout_func``). A hidden
  test cell keeps the long outer bound (each of its calls has the suite's own, shorter limit);
  every other cell gets a short one, so a quick check or an answer cell that loops forever
  costs seconds, not the whole outer bound. nbgrader interrupts the kernel on a timeout, marks
  the cell with an error and goes on with the next cell.
* :class:`RestoreMissingCells`: nbgrader's ``OverwriteCells`` with ``add_missing_cells`` made
  robust. A hidden test cell that a student deleted (possible in editors other than
  JupyterLab) is put back from the gradebook, after the nearest earlier cell the submission
  still has, with a first line that says so; it then runs and scores like every other cell.
  nbgrader's own version looks up only the previous *graded* cell and fails with a KeyError
  when the previous cell is a locked, ungraded one (a quick check).
* :class:`FeedbackCleanup`: for ``generate_feedback``: strips the grading machine's paths
  (the kit, the virtualenv) from tracebacks and outputs, and adds a note that formulas are
  typeset by MathJax, which the page loads from the internet.
"""
from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from nbformat.notebooknode import NotebookNode
from nbgrader import utils
from nbgrader.preprocessors import NbGraderPreprocessor, OverwriteCells

# ---------------------------------------------------------------- per-cell time limits (seconds)
HIDDEN_TEST_TIMEOUT = 900   # outer bound of a hidden test cell (learning tests train an agent)
SETUP_TIMEOUT = 180         # the setup cell imports torch and the grader
QUICK_TIMEOUT = 10          # a quick check runs a tiny example
QUICK_TRAIN_TIMEOUT = 60    # ... or a few training steps (quick_train_*)
CELL_TIMEOUT = 60           # answer cells, given code, anything else


def cell_timeout(cell) -> int:
    """nbclient's ``timeout_func``: the time limit of one cell, from its nbgrader metadata."""
    meta = (cell.get("metadata") or {}).get("nbgrader") or {}
    gid = str(meta.get("grade_id") or "")
    if cell.get("cell_type") == "code" and meta.get("grade") and not meta.get("solution"):
        return HIDDEN_TEST_TIMEOUT
    if gid == "setup":
        return SETUP_TIMEOUT
    if gid.startswith("quick_train"):
        return QUICK_TRAIN_TIMEOUT
    if gid.startswith("quick_"):
        return QUICK_TIMEOUT
    return CELL_TIMEOUT


# ---------------------------------------------------------------- deleted hidden cells
MISSING_NOTE = ("This hidden test cell ({cell_id}) was missing from your notebook (deleted?). "
                "The grader put it back and ran it.\n\n")


class RestoreMissingCells(OverwriteCells):
    """``OverwriteCells`` that also puts back deleted graded cells (and says so in the cell)."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.add_missing_cells = True
        self.missing_cell_notification = MISSING_NOTE

    def add_missing_grade_cells(self, nb, resources):
        source_nb = self.gradebook.find_notebook(self.notebook_id, self.assignment_id)
        source_ids = [c.name for c in source_nb.source_cells]
        grade_cells = {c.name: c for c in source_nb.grade_cells}
        solution_ids = {c.name for c in source_nb.solution_cells}
        missing = []
        for name in source_ids:  # in source order, so consecutive deleted cells keep their order
            if name not in grade_cells:
                continue
            present = {c.metadata.get("nbgrader", {}).get("grade_id") for c in nb.cells
                       if "nbgrader" in c.get("metadata", {})}
            if name in present:
                continue
            idx = source_ids.index(name)
            where = 0
            for prev in reversed(source_ids[:idx]):  # after the nearest earlier cell still in the notebook
                pos = next((i for i, c in enumerate(nb.cells)
                            if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == prev), None)
                if pos is not None:
                    where = pos + 1
                    break
            cell = self.missing_cell_transform(source_nb.source_cells[idx], grade_cells[name].max_score,
                                               is_solution=name in solution_ids)
            nb.cells.insert(where, cell)
            missing.append(name)
            self.log.warning("Missing graded cell %s: put back (it is graded)", name)
        if missing:
            resources.setdefault("nbgrader", {})["missing_cells"] = missing
        return nb, resources


def missing_graded_cells(nb, reference) -> list[str]:
    """grade_ids of the graded cells of ``reference`` (a source notebook) that ``nb`` lacks."""
    have = {c.get("metadata", {}).get("nbgrader", {}).get("grade_id") for c in nb.cells}
    return [c.metadata["nbgrader"]["grade_id"] for c in reference.cells
            if utils.is_grade(c) and c.metadata["nbgrader"].get("grade_id") not in have]


# ---------------------------------------------------------------- feedback
MATHJAX_NOTE = ("*Formulas on this page are typeset by MathJax, which the page loads from the internet "
                "({url}). Offline they show as LaTeX source ($...$); your grade does not depend on it.*")


def _machine_paths() -> list[tuple[str, str]]:
    """Paths of the grading machine that feedback must not show, longest first."""
    pairs = []
    kit = os.environ.get("RLKIT_ROOT") or str(Path(__file__).resolve().parent.parent)
    for path, label in ((sys.prefix, "<python>"), (sys.base_prefix, "<python>"), (kit, "<course>"),
                        (str(Path.home()), "~")):
        if path and len(path) > 1:
            pairs.append((str(Path(path).resolve()), label))
            pairs.append((path, label))
    return sorted(set(pairs), key=lambda p: -len(p[0]))


def strip_paths(text: str, pairs: list[tuple[str, str]] | None = None) -> str:
    for path, label in pairs if pairs is not None else _machine_paths():
        text = text.replace(path, label)
    # anything that still looks like a virtualenv's site-packages
    return re.sub(r"(?<![\w>.~-])(?:/[^\s/'\"<>]+)+/(?:site|dist)-packages/", "<python>/site-packages/", text)


class FeedbackCleanup(NbGraderPreprocessor):
    """generate_feedback: no grading-machine paths in the outputs; a note about MathJax."""

    mathjax_url = "https://cdnjs.cloudflare.com/ajax/libs/mathjax/"

    def preprocess(self, nb, resources):
        pairs = _machine_paths()
        for cell in nb.cells:
            for out in cell.get("outputs", []) or []:
                if out.get("output_type") == "error":
                    out["traceback"] = [strip_paths(t, pairs) for t in out.get("traceback", [])]
                    out["evalue"] = strip_paths(str(out.get("evalue", "")), pairs)
                elif out.get("output_type") == "stream":
                    out["text"] = strip_paths(out.get("text", ""), pairs)
                elif "data" in out and "text/plain" in out["data"]:
                    out["data"]["text/plain"] = strip_paths(out["data"]["text/plain"], pairs)
        if any(c.get("cell_type") == "markdown" and "$" in c.get("source", "") for c in nb.cells):
            url = os.environ.get("RLKIT_MATHJAX_URL") or self.mathjax_url
            note = NotebookNode({"cell_type": "markdown", "id": "rlkit-mathjax-note", "metadata": {},
                                 "source": MATHJAX_NOTE.format(url=url)})
            nb.cells.insert(0, note)
        return nb, resources
