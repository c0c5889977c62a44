"""Grade nbgrader's submitted notebooks in make grade's sandbox: the isolated cross-check of the gradebook.

Each submitted notebook becomes a plain module (:func:`.extract.extract_module`),
graded outside the notebook kernel by ``autograder.batch`` (one process per
student, as ``make grade-all`` grades folders); ``isolated_grades.csv`` lists
each score next to nbgrader's automatic one and flags every difference.
"""
from __future__ import annotations

import csv
import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat

from autograder import batch

from .extract import extract_module, missing_graded_cells
from .sources import available_exercises

FIELDS = ["student", "exercise", "isolated", "max", "nbgrader", "note"]


def _row(student: str, exercise: str, isolated, maximum, note: str = "") -> dict:
    return {"student": student, "exercise": exercise, "isolated": isolated, "max": maximum,
            "nbgrader": None, "note": note}


def _extract(student_dir: Path, mod_dir: Path, known: set[str]) -> tuple[list[dict], dict[str, str], list[str]]:
    """One student's notebooks as modules in ``mod_dir``: (rows of unreadable notebooks,
    notes per exercise, the exercises to grade)."""
    student = student_dir.name
    rows, notes, exercises = [], {}, []
    mod_dir.mkdir(parents=True, exist_ok=True)
    for ex_dir in sorted(p for p in student_dir.iterdir() if p.is_dir() and p.name in known):
        nb_path = ex_dir / f"{ex_dir.name}.ipynb"
        if not nb_path.is_file():
            continue
        try:
            nb = nbformat.read(nb_path, as_version=4)
            (mod_dir / f"{ex_dir.name}.py").write_text(extract_module(nb, ex_dir.name))
        except Exception as exc:  # an unreadable notebook scores zero, with the reason
            rows.append(_row(student, ex_dir.name, 0.0, None, f"could not read the notebook: {exc}"))
            continue
        exercises.append(ex_dir.name)
        gone = missing_graded_cells(nb, ex_dir.name)
        if gone:
            notes[ex_dir.name] = (f"graded cell(s) missing from the submitted notebook: {', '.join(gone)} "
                                  "(autograde puts them back and grades them)")
    return rows, notes, exercises


def _grade(mod_dir: Path, exercises: list[str], device: str, reports: Path) -> list[dict]:
    """``batch.grade_one`` on one student's modules: a row per exercise (score and maximum)."""
    student = mod_dir.name
    timeout = 900.0 * len(exercises) + 120.0  # batch.run_batch's default
    result = batch.grade_one(mod_dir.resolve(), exercises, device, "standard", timeout, reports)
    report = json.loads((reports / f"{batch.safe_name(student)}.json").read_text())
    maximum = {e["name"]: e["max_score"] for e in report.get("exercises", [])}
    trouble = "" if result["status"] == "ok" else \
        f"isolated grading: {result['status']} (reports/{batch.safe_name(student)}.json)"
    return [_row(student, ex, result.get(ex, 0.0), maximum.get(ex), trouble) for ex in exercises]


def _compare(rows: list[dict], gradebook: Path) -> None:
    """Add nbgrader's automatic score to each row; flag every difference."""
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


def grade_submitted(submitted: Path, out: Path, device: str = "cpu", gradebook: Path | None = None,
                    exercises: list[str] | None = None, students: list[str] | None = None) -> list[dict]:
    """Every submitted notebook through ``make grade``'s sandbox (the isolated grade).

    ``submitted/<student>/<exercise>/<exercise>.ipynb`` becomes
    ``out/modules/<student>/<exercise>.py`` (see :func:`extract_module`), graded by
    ``autograder.batch.grade_one`` (standard sandbox; its report in
    ``out/reports/<student>.json``), the students in parallel over the cores. Writes
    ``out/isolated_grades.csv``; when nbgrader's gradebook is given, adds its automatic
    score and flags every difference.
    """
    known = set(exercises or available_exercises())
    reports = out / "reports"
    reports.mkdir(parents=True, exist_ok=True)
    per_student = []  # (unreadable rows, notes, module folder, exercises to grade)
    for student_dir in sorted(p for p in submitted.iterdir() if p.is_dir()):
        if students is not None and student_dir.name not in students:
            continue
        mod_dir = out / "modules" / student_dir.name
        per_student.append((*_extract(student_dir, mod_dir, known), mod_dir))
    with ThreadPoolExecutor(max_workers=max(1, os.cpu_count() or 1)) as pool:
        graded = [pool.submit(_grade, mod_dir, todo, device, reports) if todo else None
                  for _, _, todo, mod_dir in per_student]
        rows = []
        for (unreadable, notes, _, _), future in zip(per_student, graded):
            rows += unreadable
            for r in future.result() if future else []:
                r["note"] = " ".join(x for x in (notes.get(r["exercise"], ""), r["note"]) if x)
                rows.append(r)
    if gradebook is not None and gradebook.is_file():
        _compare(rows, gradebook)
    with open(out / "isolated_grades.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS)
        w.writeheader()
        w.writerows(rows)
    return rows
