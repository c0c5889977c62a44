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
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = ROOT / "solutions"
ASSIGNMENTS = ROOT / "assignments"

BEGIN = re.compile(r"^(?P<indent>\s*)### BEGIN SOLUTION\s*$")
END = re.compile(r"^\s*### END SOLUTION\s*$")
TODO = re.compile(r"^\s*#\s*TODO:?\s*(?P<text>.*)$")
DEF = re.compile(r"^\s*(?:async\s+)?def\s+(?P<name>\w+)\s*\(")

HEADER = (
    "# Student version, generated from the reference by `make assignments`.\n"
    "# Fill in every TODO: replace each `raise NotImplementedError(...)` with your code.\n"
)


class RegionError(ValueError):
    pass


def strip_solutions(source: str, filename: str = "<source>") -> str:
    """Replace every solution region by its TODO line and a NotImplementedError."""
    lines = source.splitlines(keepends=True)
    out: list[str] = []
    i = 0
    while i < len(lines):
        m = BEGIN.match(lines[i])
        if not m:
            if END.match(lines[i]):
                raise RegionError(f"{filename}:{i + 1}: END SOLUTION without BEGIN")
            out.append(lines[i])
            i += 1
            continue
        indent = m.group("indent")
        start = i
        j = i + 1
        while j < len(lines) and not END.match(lines[j]):
            if BEGIN.match(lines[j]):
                raise RegionError(f"{filename}:{j + 1}: nested BEGIN SOLUTION")
            j += 1
        if j == len(lines):
            raise RegionError(f"{filename}:{start + 1}: BEGIN SOLUTION without END")
        body = lines[start + 1:j]
        func = _enclosing_function(lines, start)
        if func is None:
            raise RegionError(f"{filename}:{start + 1}: a solution region must sit inside a function")
        todo = TODO.match(body[0]) if body else None
        text = todo.group("text").strip() if todo else "write this part"
        out.append(f"{indent}# TODO: {text}\n")
        out.append(f"{indent}raise NotImplementedError({(func + ': ' + text)!r})\n")
        i = j + 1
    return "".join(out)


def _enclosing_function(lines: list[str], index: int) -> str | None:
    indent = len(lines[index]) - len(lines[index].lstrip())
    for k in range(index - 1, -1, -1):
        m = DEF.match(lines[k])
        if m and len(lines[k]) - len(lines[k].lstrip()) < indent:
            return m.group("name")
    return None


def render(path: Path) -> str:
    text = path.read_text()
    stripped = strip_solutions(text, str(path.relative_to(ROOT)))
    if stripped == text:
        return text  # no regions: a helper module, copied as is
    if stripped.startswith('"""') or stripped.startswith("#!"):
        return HEADER + stripped
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
