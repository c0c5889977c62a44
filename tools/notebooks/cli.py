"""Generate the nbgrader source notebooks from the single source of each exercise.

The command line of the notebook tools (this module only reads the flags and
calls the module that does the job: :mod:`.build`, :mod:`.extract`,
:mod:`.bundle`, :mod:`.grade`):

    python -m tools.make_notebooks            # write course/source/
    python -m tools.make_notebooks --check    # exit 1 if course/source/ differs
    python -m tools.make_notebooks --list     # exercises, functions and points
    python -m tools.make_notebooks --extract NOTEBOOK... --out DIR
                                              # answer cells -> DIR/<exercise>.py (for make grade)
    python -m tools.make_notebooks --common-zip RELEASE      # rlkit_common.zip into each exercise folder
    python -m tools.make_notebooks --bundle RELEASE [--out DIR]
                                              # the student bundle (default build/student_bundle)
    python -m tools.make_notebooks --grade-submitted SUBMITTED [--out DIR] [--device D]
                                   [--exercise EX]... [--student S]...
                                              # the isolated cross-check of nbgrader's grades

``python -m tools.notebooks`` is the same command.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

from .build import notebook_path, render
from .bundle import add_common_zips, make_bundle
from .extract import _exercise_of, extract_module
from .grade import grade_submitted
from .sources import ROOT, SOURCE, NotebookError, available_exercises, suite_tests


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="report drift instead of writing")
    p.add_argument("--list", action="store_true", help="list exercises, functions and points")
    p.add_argument("--extract", nargs="+", metavar="NOTEBOOK", help="turn submitted notebooks into modules")
    p.add_argument("--out", type=Path, help="output folder for --extract, --bundle and --grade-submitted")
    p.add_argument("--bundle", type=Path, metavar="RELEASE", help="build the student bundle from nbgrader's release/")
    p.add_argument("--grade-submitted", type=Path, metavar="SUBMITTED",
                   help="grade nbgrader's submitted/ folder with make grade's sandbox")
    p.add_argument("--common-zip", type=Path, metavar="RELEASE",
                   help="write rlkit_common.zip (common/) into every exercise folder of nbgrader's release/")
    p.add_argument("--device", default="cpu", help="grading device for --grade-submitted")
    p.add_argument("--exercise", action="append", help="only this exercise (repeatable) for --grade-submitted")
    p.add_argument("--student", action="append", help="only this student (repeatable) for --grade-submitted")
    args = p.parse_args(argv)

    if args.common_zip:
        for path in add_common_zips(args.common_zip):
            print(f"wrote {path}")
        return 0
    if args.bundle:
        archive = make_bundle(args.bundle, args.out or ROOT / "build" / "student_bundle")
        print(f"student bundle: {archive.with_suffix('')}/ and {archive}")
        return 0
    if args.grade_submitted:
        out = args.out or ROOT / "build" / "notebook_grades"
        rows = grade_submitted(args.grade_submitted, out, device=args.device,
                               gradebook=args.grade_submitted.parent / "gradebook.db",
                               exercises=args.exercise, students=args.student)
        for r in rows:
            nbg = "" if r["nbgrader"] is None else f"   nbgrader {r['nbgrader']:g}"
            print(f"{r['student']:20s} {r['exercise']:15s} isolated {r['isolated']:g}/{r['max']}{nbg}  {r['note']}")
        print(f"wrote {out / 'isolated_grades.csv'}")
        return 1 if any("MISMATCH" in r["note"] for r in rows) else 0

    if args.extract:
        if not args.out:
            p.error("--extract needs --out DIR")
        args.out.mkdir(parents=True, exist_ok=True)
        for path in args.extract:
            nb = nbformat.read(path, as_version=4)
            ex = _exercise_of(nb)
            (args.out / f"{ex}.py").write_text(extract_module(nb, ex))
            print(f"{path} -> {args.out / (ex + '.py')}")
        return 0

    exercises = available_exercises()
    if args.list:
        for ex in exercises:
            tests = suite_tests(ex)
            print(f"{ex}: {sum(t.points for t in tests):g} points, {len(tests)} hidden tests")
            funcs: dict[str, float] = {}
            for t in tests:
                funcs[t.function] = funcs.get(t.function, 0) + t.points
            for fn, pts in funcs.items():
                print(f"  {fn:28s} {pts:g}")
        return 0

    rendered, failed = {}, []
    for ex in exercises:
        try:
            rendered[ex] = render(ex)
        except NotebookError as exc:
            print(f"cannot build the notebook of {ex}: {exc}", file=sys.stderr)
            failed.append(ex)
    stale = sorted(p.parent.name for p in SOURCE.glob("*/*.ipynb")
                   if p.parent.name not in rendered and p.parent.name not in exercises)
    if args.check:
        drift = [ex for ex, text in rendered.items()
                 if not notebook_path(ex).is_file() or notebook_path(ex).read_text() != text]
        if drift or stale:
            print("course/source/ is out of date; run `make notebooks`:", ", ".join(drift + stale))
            return 1
        print(f"course/source/ matches the generator ({len(rendered)} notebooks)")
        return 1 if failed else 0
    for ex in stale:
        notebook_path(ex).unlink()
        print(f"removed {notebook_path(ex).relative_to(ROOT)} (its suite is gone)")
    for ex, text in rendered.items():
        path = notebook_path(ex)
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.is_file() or path.read_text() != text:
            path.write_text(text)
            print(f"wrote {path.relative_to(ROOT)}")
    print(f"{len(rendered)} notebooks in {SOURCE.relative_to(ROOT)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
