"""Compatibility shim: the notebook tools live in the package ``tools/notebooks/``, one job per module.

``from tools import make_notebooks as mk`` (tests, tools/gradescope_check.py)
keeps working through the names re-exported here, and
``python -m tools.make_notebooks [flags]`` runs the command line of
``tools/notebooks/cli.py`` (its docstring lists the flags), as before.
"""
from __future__ import annotations

import sys

from autograder.regions import BEGIN, END, TODO, solution_regions

from tools.notebooks import prose
from tools.notebooks.build import CHECK_CALL, Builder, build, notebook_path, render
from tools.notebooks.bundle import (COMMON_ZIP, _public_lines, add_common_zips, leaks, make_bundle, secret_lines,
                                    write_common_zip)
from tools.notebooks.cli import main
from tools.notebooks.extract import _exercise_of, extract_module, missing_graded_cells
from tools.notebooks.grade import grade_submitted
from tools.notebooks.sources import (EXERCISE_ORDER, ROOT, SOLUTIONS, SOURCE, SUITES, Dependency, NotebookError,
                                     Stmt, SuiteTest, answer_source, available_exercises, parse_module,
                                     resolve_dependencies, suite_tests)

# Points of the hand-graded written answer in ex4_ppo, ON TOP of its 30 automatic points
# (tools/notebooks/prose/ex4_ppo/exercise.toml).
WRITTEN_POINTS = prose.load("ex4_ppo").written.points

__all__ = [
    "BEGIN", "END", "TODO", "solution_regions",
    "CHECK_CALL", "Builder", "build", "notebook_path", "render",
    "COMMON_ZIP", "_public_lines", "add_common_zips", "leaks", "make_bundle", "secret_lines", "write_common_zip",
    "main",
    "_exercise_of", "extract_module", "missing_graded_cells",
    "grade_submitted",
    "EXERCISE_ORDER", "ROOT", "SOLUTIONS", "SOURCE", "SUITES", "Dependency", "NotebookError", "Stmt", "SuiteTest",
    "answer_source", "available_exercises", "parse_module", "resolve_dependencies", "suite_tests",
    "WRITTEN_POINTS",
]

if __name__ == "__main__":
    sys.exit(main())
