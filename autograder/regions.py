"""The solution-region parser: the one place that knows the ``### BEGIN SOLUTION`` markers.

Used by ``tools/make_assignments.py`` (stubs for students), the notebook and
student-kit builders, the tests, and the grader (``autograder/given.py``: the
kit's own copy of the given code, and the list of functions a student writes).
"""
from __future__ import annotations

import re

BEGIN = re.compile(r"^(?P<indent>\s*)### BEGIN SOLUTION\s*$")
END = re.compile(r"^\s*### END SOLUTION\s*$")
TODO = re.compile(r"^\s*#\s*TODO:?\s*(?P<text>.*)$")
DEF = re.compile(r"^\s*(?:async\s+)?def\s+(?P<name>\w+)\s*\(")


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


def solution_regions(text: str) -> list[list[str]]:
    """The lines strictly inside every solution region of ``text``, region by region."""
    regions, cur = [], None
    for line in text.splitlines():
        if BEGIN.match(line):
            cur = []
        elif END.match(line):
            if cur is not None:
                regions.append(cur)
            cur = None
        elif cur is not None:
            cur.append(line)
    return regions


def region_functions(source: str) -> list[str]:
    """Names of the functions that hold a solution region, in file order."""
    lines = source.splitlines(keepends=True)
    names: list[str] = []
    for i, line in enumerate(lines):
        if BEGIN.match(line):
            name = _enclosing_function(lines, i)
            if name and name not in names:
                names.append(name)
    return names
