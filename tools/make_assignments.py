"""Generate the student stubs in assignments/ from the reference solutions.

Every region

    ### BEGIN SOLUTION
    # TODO: compute the discounted returns backwards in time
    ...reference code...
    ### END SOLUTION

becomes

    # TODO: compute the discounted returns backwards in time
    raise NotImplementedError("discounted_returns: compute the discounted returns backwards in time")

Everything else (docstrings, validation, scaffolding) is copied unchanged.

    python -m tools.make_assignments           # write assignments/
    python -m tools.make_assignments --check   # exit 1 if assignments/ differs
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from autograder.regions import RegionError, strip_solutions  # noqa: F401 (RegionError: re-exported)

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = ROOT / "solutions"
ASSIGNMENTS = ROOT / "assignments"

HEADER = (
    "# Student version, generated from the reference by `make assignments`.\n"
    "# Fill in every TODO: replace each `raise NotImplementedError(...)` with your code.\n"
)


def render(path: Path) -> str:
    text = path.read_text()
    stripped = strip_solutions(text, f"{path.parent.name}/{path.name}")
    if stripped == text:
        return text  # no regions: a helper module, copied as is
    return HEADER + stripped


def expected_files() -> dict[str, str]:
    return {p.name: render(p) for p in sorted(SOLUTIONS.glob("*.py"))}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="report drift instead of writing")
    args = p.parse_args(argv)
    files = expected_files()
    if args.check:
        drift = []
        for name, text in files.items():
            target = ASSIGNMENTS / name
            if not target.exists() or target.read_text() != text:
                drift.append(name)
        extra = sorted(p.name for p in ASSIGNMENTS.glob("*.py") if p.name not in files)
        if drift or extra:
            print("assignments/ is out of date; run `make assignments`:", ", ".join(drift + extra))
            return 1
        print(f"assignments/ matches solutions/ ({len(files)} files)")
        return 0
    ASSIGNMENTS.mkdir(exist_ok=True)
    for old in ASSIGNMENTS.glob("*.py"):
        if old.name not in files:
            old.unlink()
    for name, text in files.items():
        (ASSIGNMENTS / name).write_text(text)
    print(f"wrote {len(files)} files to assignments/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
