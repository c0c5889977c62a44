"""``make release-feedback``: nbgrader release_feedback for the students who came through the exchange.

    python -m tools.release_feedback [--course course] [exercise ...]

nbgrader's ``release_feedback`` hands each feedback HTML back through the exchange. It needs
the ``timestamp.txt`` and ``submission_secret.txt`` that ``nbgrader submit`` writes, and stops
with a FileNotFoundError at the first student who has none: everyone collected with
``zip_collect`` (an LMS download, e-mail) or placed in ``submitted/`` by hand. Those students
never fetch from the exchange anyway. This runs ``release_feedback`` once per exercise with
them excluded (``--CourseDirectory.student_id_exclude``), goes on to the next exercise when
one fails, and lists the HTML files to send the others by another way (the LMS, e-mail).
Exit status 1 when an exercise failed.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXCHANGE_FILES = ("timestamp.txt", "submission_secret.txt")


def split_students(course: Path, exercise: str) -> tuple[list[str], list[Path]]:
    """(students whose feedback can go through the exchange, HTML files of the others)."""
    exchange, others = [], []
    for folder in sorted((course / "feedback").glob(f"*/{exercise}")):
        html = sorted(folder.glob("*.html"))
        if not html:
            continue
        if all((folder / name).is_file() for name in EXCHANGE_FILES):
            exchange.append(folder.parent.name)
        else:
            others.extend(html)
    return exchange, others


def release(course: Path, exercises: list[str], python: str = sys.executable, extra: list[str] = ()) -> int:
    failed = []
    by_hand: list[Path] = []
    for ex in exercises:
        through, others = split_students(course, ex)
        by_hand += others
        if not through:
            print(f"{ex}: no feedback for exchange students")
            continue
        skip = sorted({p.parent.parent.name for p in others})
        cmd = [python, "-m", "nbgrader", "release_feedback", ex, *extra]
        if skip:
            cmd.append("--CourseDirectory.student_id_exclude=" + ",".join(skip))
        proc = subprocess.run(cmd, cwd=course, capture_output=True, text=True)
        if proc.returncode != 0:
            failed.append(ex)
            print(f"{ex}: nbgrader release_feedback failed ({proc.returncode}); going on with the next exercise\n"
                  + (proc.stderr or proc.stdout)[-2000:], file=sys.stderr)
        else:
            print(f"{ex}: feedback released through the exchange for {len(through)} student(s)")
    if by_hand:
        print("\nThese students did not submit through the exchange; send them their feedback another way:")
        for p in by_hand:
            print(f"  {p}")
    return 1 if failed else 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.release_feedback", description=__doc__.splitlines()[0])
    p.add_argument("exercise", nargs="*", help="default: every exercise with a source notebook")
    p.add_argument("--course", type=Path, default=ROOT / "course")
    args, extra = p.parse_known_args(argv)
    course = args.course.resolve()
    exercises = args.exercise or sorted(d.name for d in (course / "source").glob("ex*_*") if d.is_dir())
    return release(course, exercises, extra=extra)


if __name__ == "__main__":
    sys.exit(main())
