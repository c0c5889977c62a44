"""Grade nbgrader's submitted notebooks in make grade's sandbox: the isolated cross-check of the gradebook.

Each submitted notebook becomes a plain module (:func:`.extract.extract_module`),
graded outside the notebook kernel; ``isolated_grades.csv`` lists each
score next to nbgrader's automatic one and flags every difference.
"""
from __future__ import annotations

from pathlib import Path

import nbformat

from .extract import extract_module, missing_graded_cells
from .sources import available_exercises


def grade_submitted(submitted: Path, out: Path, device: str = "cpu", gradebook: Path | None = None,
                    exercises: list[str] | None = None, students: list[str] | None = None) -> list[dict]:
    """Every submitted notebook through ``make grade``'s sandbox (the isolated grade).

    ``submitted/<student>/<exercise>/<exercise>.ipynb`` becomes
    ``out/modules/<student>/<exercise>.py`` (see :func:`extract_module`), graded by
    ``autograder.runner.grade``. Writes ``out/isolated_grades.csv``; when nbgrader's
    gradebook is given, adds its automatic score and flags every difference.
    """
    import csv

    from autograder.runner import grade

    rows = []
    notes: dict[tuple[str, str], str] = {}
    known = set(exercises or available_exercises())
    for student_dir in sorted(p for p in submitted.iterdir() if p.is_dir()):
        student = student_dir.name
        if students is not None and student not in students:
            continue
        mod_dir = out / "modules" / student
        mod_dir.mkdir(parents=True, exist_ok=True)
        exercises = []
        for ex_dir in sorted(p for p in student_dir.iterdir() if p.is_dir() and p.name in known):
            nb_path = ex_dir / f"{ex_dir.name}.ipynb"
            if not nb_path.is_file():
                continue
            try:
                nb = nbformat.read(nb_path, as_version=4)
                (mod_dir / f"{ex_dir.name}.py").write_text(extract_module(nb, ex_dir.name))
            except Exception as exc:  # an unreadable notebook scores zero, with the reason
                rows.append({"student": student, "exercise": ex_dir.name, "isolated": 0.0, "max": None,
                             "nbgrader": None, "note": f"could not read the notebook: {exc}"})
                continue
            exercises.append(ex_dir.name)
            gone = missing_graded_cells(nb, ex_dir.name)
            if gone:
                notes[(student, ex_dir.name)] = (f"graded cell(s) missing from the submitted notebook: {', '.join(gone)} "
                                                 "(autograde puts them back and grades them)")
        if not exercises:
            continue
        report = grade(mod_dir, exercises=exercises, device=device)
        for ex in report["exercises"]:
            rows.append({"student": student, "exercise": ex["name"], "isolated": ex["score"],
                         "max": ex["max_score"], "nbgrader": None, "note": notes.get((student, ex["name"]), "")})
    if gradebook is not None and gradebook.is_file():
        from nbgrader.api import Gradebook, MissingEntry

        with Gradebook(f"sqlite:///{gradebook}") as gb:
            for r in rows:
                try:
                    sub = gb.find_submission(r["exercise"], r["student"])
                except MissingEntry:
                    continue
                r["nbgrader"] = round(float(sub.code_score), 4)
                if abs(r["nbgrader"] - float(r["isolated"])) > 1e-6:
                    r["note"] = (r["note"] + " " if r["note"] else "") + "MISMATCH: check this submission"
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "isolated_grades.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["student", "exercise", "isolated", "max", "nbgrader", "note"])
        w.writeheader()
        w.writerows(rows)
    return rows
