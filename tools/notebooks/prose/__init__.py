"""Read the course prose and the quick checks: the data files of this folder, one folder per exercise.

``<exercise>/exercise.toml`` holds the notebook's settings: its ``title``, the
parameters each quick check needs (``[quick]``) and, where the exercise has
one, the written answer graded by hand (``[written]``: points, grade id, the
row of the points table, the functions it follows). Next to it,
``intro.md`` and one ``<function>.md`` per function are the markdown cells,
``quick/<function>.py`` the visible quick checks, ``written.md`` and
``rubric.md`` the written answer's question and rubric. ``how_to.md`` is
the "how this notebook works" box of every notebook. An exercise without a
folder gets its name as title and the functions' docstrings as prose.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Written:
    """A written answer graded by hand, on top of the exercise's automatic points."""
    points: float
    grade_id: str
    table_row: str             # its row in the notebook's table of points
    after: tuple[str, ...]     # it follows the first of these functions the module defines
    question: str              # markdown; may say {points}
    rubric: str                # inside the cell's solution region; may say {points}


@dataclass(frozen=True)
class Prose:
    exercise: str
    title: str
    intro: str = ""
    cells: dict[str, str] = field(default_factory=dict)  # function -> its markdown cell
    quick: dict[str, tuple[tuple[str, ...], str]] = field(default_factory=dict)  # function -> (params, code)
    written: Written | None = None


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


@lru_cache(maxsize=None)
def load(exercise: str) -> Prose:
    """The prose of ``exercise`` (empty, titled with its name, when it has no folder here)."""
    folder = HERE / exercise
    if not (folder / "exercise.toml").is_file():
        return Prose(exercise, exercise)
    settings = tomllib.loads(_read(folder / "exercise.toml"))
    cells = {p.stem: _read(p) for p in sorted(folder.glob("*.md"))
             if p.stem not in ("intro", "written", "rubric")}
    quick = {fn: (tuple(params), _read(folder / "quick" / f"{fn}.py"))
             for fn, params in settings.get("quick", {}).items()}
    written = None
    if "written" in settings:
        w = settings["written"]
        written = Written(float(w["points"]), w["grade_id"], w["table_row"], tuple(w["after"]),
                          _read(folder / "written.md"), _read(folder / "rubric.md"))
    intro = _read(folder / "intro.md") if (folder / "intro.md").is_file() else ""
    return Prose(exercise, settings.get("title", exercise), intro, cells, quick, written)


def exercises() -> list[str]:
    """The exercises that have prose here."""
    return sorted(p.parent.name for p in HERE.glob("*/exercise.toml"))


HOW_TO = _read(HERE / "how_to.md")
