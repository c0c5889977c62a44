"""What goes to students besides the notebooks, and the scan that keeps solutions out of it.

``rlkit_common.zip`` (common/ as one file, next to each released notebook),
the student bundle (released notebooks, common/, README, requirements,
selfcheck.py: the files of ``student/``) and the leak scan every bundle
file passes: the region and hidden-test markers, and every substantive line
of a solution region that is not public anyway.
"""
from __future__ import annotations

import json
from pathlib import Path

from autograder.regions import BEGIN, END, TODO, solution_regions

from . import prose
from .sources import ROOT, SOLUTIONS, NotebookError, _module_path, available_exercises

COMMON_ZIP = "rlkit_common.zip"  # common/ as one file, released next to each notebook (make release)
STUDENT_FILES = Path(__file__).resolve().parent / "student"  # README.md, requirements.txt, selfcheck.py


def write_common_zip(folder: Path) -> Path:
    """``folder/rlkit_common.zip``: common/ as one file, which a notebook's setup cell puts on
    ``sys.path`` when it finds no common/ folder (a notebook fetched from the exchange)."""
    import zipfile

    out = folder / COMMON_ZIP
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in sorted((ROOT / "common").glob("*.py")):
            info = zipfile.ZipInfo(f"common/{f.name}", (2020, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, f.read_bytes())
    return out


def add_common_zips(release: Path) -> list[Path]:
    """One rlkit_common.zip in every exercise folder of nbgrader's release/ (before release_assignment)."""
    folders = sorted(p.parent for p in release.glob("*/*.ipynb"))
    if not folders:
        raise NotebookError(f"no released notebooks in {release}; run nbgrader generate_assignment first")
    return [write_common_zip(f) for f in folders]


def _strip_line(line: str) -> str:
    return line.strip()


def _substantive(line: str) -> bool:
    """A region line worth protecting: not a TODO (kept on purpose), not short boilerplate
    (``break``, ``loss.backward()``, ``import os``) that appears in any code."""
    return bool(line) and not TODO.match(line) and len(line) >= 16 and not line.startswith(("import ", "from "))


def _public_lines() -> set[str]:
    """Lines students may see anyway: everything outside the solution regions of every module
    in solutions/ (given code, docstrings, validation) and the visible quick checks."""
    public = set()
    for path in sorted(SOLUTIONS.glob("*.py")):
        inside = False
        for line in path.read_text().splitlines():
            if BEGIN.match(line):
                inside = True
            elif END.match(line):
                inside = False
            elif not inside:
                public.add(_strip_line(line))
    for ex in prose.exercises():
        for _params, code in prose.load(ex).quick.values():
            public |= {_strip_line(x) for x in code.splitlines()}
    return public


def secret_lines(exercises: list[str] | None = None) -> dict[str, set[str]]:
    """Per exercise: every substantive line of a solution region that is not public anyway
    (a line such as ``optimizer.step()`` also appears in given code and gives nothing away)."""
    public = _public_lines()
    out = {}
    for ex in exercises or available_exercises():
        text = _module_path(ex).read_text()
        inside = {_strip_line(x) for region in solution_regions(text) for x in region}
        out[ex] = {x for x in inside - public if _substantive(x)}
    return out


def leaks(text: str, secrets: dict[str, set[str]] | None = None, markers: bool = True) -> list[str]:
    """What in ``text`` (a released notebook, a bundle file) must not reach students: the region
    and hidden-test markers and the hidden check calls (``markers``), and any secret line."""
    found = []
    for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS",
                   "autograder.notebook import check", "from solutions", "import solutions"):
        if markers and marker in text:
            found.append(marker)
    lines = {_strip_line(x) for x in text.splitlines()}
    # notebooks are JSON: compare the decoded cell sources too
    try:
        nb = json.loads(text)
        for cell in nb.get("cells", []):
            src = cell.get("source", "")
            src = "".join(src) if isinstance(src, list) else src
            lines |= {_strip_line(x) for x in src.splitlines()}
    except (ValueError, AttributeError):
        pass
    for ex, secret in (secrets if secrets is not None else secret_lines()).items():
        for line in sorted(secret & lines):
            found.append(f"{ex}: {line}")
    return found


def make_bundle(release: Path, out: Path) -> Path:
    """build/student_bundle/: the released notebooks, common/, a README; and the same as a .zip."""
    import shutil

    notebooks = sorted(release.glob("*/*.ipynb"))
    if not notebooks:
        raise NotebookError(f"no released notebooks in {release}; run nbgrader generate_assignment first")
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    for nb in notebooks:
        dest = out / nb.parent.name / nb.name
        dest.parent.mkdir(exist_ok=True)
        shutil.copyfile(nb, dest)
    shutil.copytree(ROOT / "common", out / "common", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("README.md", "requirements.txt", "selfcheck.py"):
        shutil.copyfile(STUDENT_FILES / name, out / name)
    secrets = secret_lines()
    problems = []
    for f in sorted(out.rglob("*")):
        if f.is_file():
            bad = leaks(f.read_text(errors="replace"), secrets)
            problems += [f"{f.relative_to(out)}: {b}" for b in bad]
    if problems:
        raise NotebookError("the student bundle would leak solution text:\n  " + "\n  ".join(problems[:20]))
    archive = shutil.make_archive(str(out), "zip", root_dir=out.parent, base_dir=out.name)
    return Path(archive)
