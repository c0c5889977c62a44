"""Grades in the shape an LMS gradebook import takes (Canvas by default).

    python -m tools.lms_csv GRADES.csv --lms canvas_export.csv --out lms_grades.csv [--key "SIS Login ID"]
    python -m tools.lms_csv GRADES.csv --out lms_grades.csv          # no export: student_id + one column each

GRADES.csv is either kit's output:

* ``make export``'s ``build/grades/notebook_grades.csv`` (nbgrader: one row per student and
  exercise, columns ``assignment``, ``student_id``, ``score``, ...), or
* ``make grade-all``'s ``grades/grades.csv`` (one row per student: ``student``, ``total``,
  ``max_total``, one column per exercise, ``status``).

With ``--lms``, the file is a gradebook export from the LMS (in Canvas: *Grades > Export >
Export Entire Gradebook*). The students are matched by id: the column named by ``--key``, or
else the first of ``SIS Login ID``, ``SIS User ID``, ``Login ID``, ``ID`` and ``Student``
whose values include the kit's student ids. An exercise goes into the gradebook column whose
name is the exercise name, optionally followed by Canvas' ``(assignment number)``; when there
is none, a new column named after the exercise is added (Canvas creates the assignment on
import). The output keeps the export's identity columns and ``Points Possible`` row, and only
the exercise columns: the rest of the gradebook is left as it is. Students in the grades but
not in the export are reported and left out; students in the export without a grade keep an
empty cell (an import leaves those grades unchanged).
"""
from __future__ import annotations

import argparse
import csv
import re
import sys
from pathlib import Path

KEY_CANDIDATES = ("SIS Login ID", "SIS User ID", "Login ID", "ID", "Student")
IDENTITY = ("Student", "ID", "SIS User ID", "SIS Login ID", "Integration ID", "Section")
GRADE_ALL_FIXED = {"student", "total", "max_total", "status"}


def read_grades(path: Path) -> tuple[dict[str, dict[str, float]], list[str]]:
    """{student: {exercise: score}} and the exercises in order, from either of the kit's CSVs."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
        fields = list(rows[0].keys()) if rows else []
    grades: dict[str, dict[str, float]] = {}
    exercises: list[str] = []
    if {"assignment", "student_id", "score"} <= set(fields):  # nbgrader export: long format
        for r in rows:
            ex = r["assignment"]
            if ex not in exercises:
                exercises.append(ex)
            grades.setdefault(r["student_id"], {})[ex] = float(r["score"] or 0)
    elif "student" in fields:  # make grade-all: wide format
        exercises = [f for f in fields if f not in GRADE_ALL_FIXED]
        for r in rows:
            grades[r["student"]] = {ex: float(r[ex]) for ex in exercises if r.get(ex) not in (None, "")}
    else:
        raise SystemExit(f"{path}: neither nbgrader's export nor make grade-all's grades.csv")
    return grades, exercises


def _column_for(exercise: str, header: list[str]) -> str | None:
    pattern = re.compile(rf"^{re.escape(exercise)}(\s*\(\d+\))?$")
    return next((h for h in header if pattern.match(h.strip())), None)


def merge(grades: dict[str, dict[str, float]], exercises: list[str], lms: Path,
          key: str | None = None) -> tuple[list[str], list[list[str]], list[str]]:
    """(header, rows, students not found in the export) of the import file."""
    with open(lms, newline="", encoding="utf-8-sig") as f:
        table = list(csv.reader(f))
    if not table:
        raise SystemExit(f"{lms}: empty")
    header, body = table[0], table[1:]
    ids = set(grades)
    if key is None:
        key = next((k for k in KEY_CANDIDATES if k in header
                    and ids & {r[header.index(k)].strip() for r in body if len(r) > header.index(k)}), None)
        if key is None:
            raise SystemExit(f"{lms}: no column of {KEY_CANDIDATES} holds the kit's student ids; pass --key")
    if key not in header:
        raise SystemExit(f"{lms}: no column {key!r}")
    k = header.index(key)
    identity = [h for h in header if h in IDENTITY or h == key]
    columns = [(ex, _column_for(ex, header) or ex) for ex in exercises]
    out_header = identity + [col for _, col in columns]
    rows, seen = [], set()
    for r in body:
        r = r + [""] * (len(header) - len(r))
        cells = [r[header.index(h)] for h in identity]
        student = r[k].strip()
        if r[0].strip().lower().startswith("points possible"):  # Canvas' second row: kept as it is
            rows.append(cells + [r[header.index(col)] if col in header else "" for _, col in columns])
            continue
        mine = grades.get(student)
        if mine is not None:
            seen.add(student)
        rows.append(cells + [f"{mine[ex]:g}" if mine and ex in mine else "" for ex, _ in columns])
    return out_header, rows, sorted(ids - seen)


def plain(grades: dict[str, dict[str, float]], exercises: list[str]) -> tuple[list[str], list[list[str]]]:
    header = ["student_id", *exercises, "total"]
    rows = []
    for student in sorted(grades):
        g = grades[student]
        rows.append([student, *[f"{g[ex]:g}" if ex in g else "" for ex in exercises], f"{sum(g.values()):g}"])
    return header, rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.lms_csv", description=__doc__.splitlines()[0])
    p.add_argument("grades", type=Path, help="notebook_grades.csv (make export) or grades.csv (make grade-all)")
    p.add_argument("--lms", type=Path, help="the LMS gradebook export to merge into (Canvas CSV)")
    p.add_argument("--key", help="the export's column holding the student ids (default: found)")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    grades, exercises = read_grades(args.grades)
    if args.lms:
        header, rows, missing = merge(grades, exercises, args.lms, args.key)
    else:
        (header, rows), missing = plain(grades, exercises), []
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    print(f"wrote {args.out}: {len(rows)} rows, columns {', '.join(header)}")
    if missing:
        print(f"not in {args.lms} (left out): {', '.join(missing)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
