"""Build the Gradescope autograder zip: ``make gradescope`` -> build/gradescope.zip.

    python -m tools.make_gradescope [--out build/gradescope.zip] [--torch-spec torch==2.13.0]

The zip holds, at its root, ``setup.sh`` and ``run_autograder`` (from
``tools/gradescope/``) and the parts of the kit the grader needs:
``autograder/`` (core and hidden suites), ``solutions/`` (the reference: the
trusted parent computes the expected outputs from it), ``common/``,
``demos/`` (ex5's learning test drives the toy RLHF pipeline),
``requirements.txt`` (trimmed to what grading imports) and ``pyproject.toml``.

It is an instructor artefact: it contains the hidden suites and the reference
solutions, so it must never be handed to students (it lives in ``build/``,
next to, not inside, the student bundle). Nothing else of the repository goes
in: no tests, virtualenvs, caches, grades, course data or VCS files.
"""
from __future__ import annotations

import argparse
import re
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "tools" / "gradescope"
PACKAGES = ("autograder", "solutions", "common", "demos")
FILES = ("requirements.txt", "pyproject.toml")
SKIP_DIRS = {"__pycache__", ".pytest_cache", ".ipynb_checkpoints", ".git"}
SKIP_SUFFIXES = (".pyc", ".pyo", ".orig", ".rej", ".swp")
FIXED_TIME = (2020, 1, 1, 0, 0, 0)  # reproducible archives
# What grading imports (besides torch, installed first by setup.sh). The kit's requirements.txt
# also lists nbgrader, nbformat, nbclient, matplotlib and hypothesis for the course tools, the
# plots and the kit's own tests: the zip's requirements.txt leaves them out of the image.
GRADING_PACKAGES = {"gymnasium", "numpy", "pytest", "tqdm"}


def grading_requirements(text: str) -> str:
    """requirements.txt restricted to GRADING_PACKAGES (comments kept, other packages dropped)."""
    out = ["# Gradescope image: only what grading imports (tools/make_gradescope.py); torch comes first, pinned."]
    for line in text.splitlines():
        name = re.split(r"[\s<>=!~;\[]", line.strip(), maxsplit=1)[0].lower()
        if line.strip() and not line.lstrip().startswith("#") and name in GRADING_PACKAGES:
            out.append(line)
    return "\n".join(out) + "\n"


def kit_files() -> list[Path]:
    files = [ROOT / f for f in FILES]
    for pkg in PACKAGES:
        for p in sorted((ROOT / pkg).rglob("*")):
            rel = p.relative_to(ROOT)
            if p.is_file() and not p.is_symlink() and not SKIP_DIRS & set(rel.parts) \
                    and not p.name.endswith(SKIP_SUFFIXES) and not p.name.startswith("."):
                files.append(p)
    return files


def _add(zf: zipfile.ZipFile, name: str, data: bytes, executable: bool = False) -> None:
    info = zipfile.ZipInfo(name, FIXED_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = ((0o100755 if executable else 0o100644) & 0xFFFF) << 16
    zf.writestr(info, data)


def build(out: Path, torch_spec: str) -> Path:
    if not re.fullmatch(r"torch[=<>!~]=?[0-9][0-9A-Za-z.+-]*", torch_spec):
        raise SystemExit(f"refusing an unpinned or odd torch spec: {torch_spec!r} (expected e.g. torch==2.13.0)")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".zip.tmp")
    with zipfile.ZipFile(tmp, "w") as zf:
        setup = (TEMPLATES / "setup.sh").read_text().replace("@TORCH_SPEC@", torch_spec)
        _add(zf, "setup.sh", setup.encode(), executable=True)
        _add(zf, "run_autograder", (TEMPLATES / "run_autograder").read_bytes(), executable=True)
        for p in kit_files():
            data = p.read_bytes()
            if p == ROOT / "requirements.txt":
                data = grading_requirements(data.decode()).encode()
            _add(zf, p.relative_to(ROOT).as_posix(), data)
    tmp.replace(out)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.make_gradescope", description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(ROOT / "build" / "gradescope.zip"))
    p.add_argument("--torch-spec", default="torch==2.13.0")
    args = p.parse_args(argv)
    out = build(Path(args.out), args.torch_spec)
    with zipfile.ZipFile(out) as zf:
        n = len(zf.namelist())
    print(f"wrote {out} ({n} files, {out.stat().st_size / 1024:.0f} KiB): upload it as the Gradescope "
          f"autograder. It contains the hidden suites and solutions: do not share it with students.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
