"""Build the student kit: what a student clones or downloads (``make student-kit``).

    python -m tools.make_student_kit [--out build/student-kit] [--allow-dirty]

The kit holds the stubs (``assignments/``, the files the student edits),
``common/``, the chapter's demos (``demos/``: they run the student's
functions), the grader (core and suites, without ``autograder/answers/``),
the recorded answers (``autograder/recorded/``, replayed by the answer seam),
the kit's own answer-free copy of the given code (``autograder/stubs/``), a
Makefile whose ``make grade`` sets up ``.venv`` on a fresh machine, a
``requirements.txt`` and a student README. It holds no ``solutions/``, no
``tests/``, no ``tools/``, no ``course/`` and no code that computes an answer;
:func:`scan` proves that on every build (and ``tests/test_student_kit.py``).

It refuses to build from a dirty work tree (the kit must be a commit you can
name) or a stale one: stubs that ``make assignments`` would change, or
recorded answers whose sources changed since ``make record``.
"""
from __future__ import annotations

import argparse
import ast
import hashlib
import json
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KIT_FILES = Path(__file__).resolve().parent / "student_kit"  # the kit's README, Makefile, requirements

# Grader modules a student kit does without: the answers behind the seam, the solution-region
# parser (it only strips solutions/), the notebook and batch graders (instructor tools).
LEFT_OUT = {"answers", "regions.py", "notebook.py", "batch.py"}
FORBIDDEN_DIRS = ("solutions", "tests", "tools", "course", "autograder/answers")


class KitError(RuntimeError):
    """The kit cannot be built (dirty or stale sources) or failed its scan."""


# ---------------------------------------------------------------- refusing a dirty or stale state
def dirty_paths(root: Path = ROOT) -> list[str]:
    """Tracked or untracked changes (``git status --porcelain``), ignoring build outputs."""
    try:
        out = subprocess.run(["git", "status", "--porcelain", "--untracked-files=normal"], cwd=root,
                             capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        raise KitError(f"cannot ask git whether the work tree is clean ({exc}); build from a git clone") from exc
    return [line[3:] for line in out.splitlines() if line.strip()]


def stale_reasons(root: Path = ROOT) -> list[str]:
    """What `make assignments` or `make record` would change."""
    from tools.make_assignments import render
    from tools.record_answers import MANIFEST, source_digests

    reasons = []
    for src in sorted((root / "solutions").glob("*.py")):
        path = root / "assignments" / src.name
        if not path.is_file() or path.read_text() != render(src):
            reasons.append(f"assignments/{src.name} differs from its solution: run `make assignments`")
    manifest = root / "autograder" / "recorded" / MANIFEST
    if not manifest.is_file():
        return reasons + [f"{manifest.relative_to(root)} is missing: run `make record`"]
    meta = json.loads(manifest.read_text())
    now = source_digests(root)
    changed = sorted(p for p in set(now) | set(meta["sources"]) if now.get(p) != meta["sources"].get(p))
    if changed:
        reasons.append(f"the recorded answers are stale ({', '.join(changed[:4])}"
                       f"{' ...' if len(changed) > 4 else ''} changed since): run `make record`")
    for name, digest in meta.get("recorded", {}).items():
        data = root / "autograder" / "recorded" / name
        if not data.is_file() or hashlib.sha256(data.read_bytes()).hexdigest() != digest:
            reasons.append(f"autograder/recorded/{name} is not the file `make record` wrote")
    return reasons


# ---------------------------------------------------------------- building
def _copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)


def _grader_files(root: Path):
    """(source, path in the kit) for the grader: core, suites, recorded answers."""
    base = root / "autograder"
    for path in sorted(base.rglob("*")):
        rel = path.relative_to(base)
        if not path.is_file() or "__pycache__" in rel.parts or rel.parts[0] in LEFT_OUT:
            continue
        if rel.parts[0] == "stubs":  # a student kit builds its own (below)
            continue
        if path.suffix in (".py", ".ini", ".npz", ".json"):
            yield path, Path("autograder") / rel


def build(out: Path, root: Path = ROOT, allow_dirty: bool = False, zip_path: Path | None = None) -> dict:
    """Build the kit into ``out`` (replaced) and ``zip_path``; return its manifest."""
    problems = [] if allow_dirty else [f"uncommitted change: {p}" for p in dirty_paths(root)]
    problems += stale_reasons(root)
    if problems:
        raise KitError("refusing to build the student kit:\n  " + "\n  ".join(problems[:20]))
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    for src in sorted((root / "assignments").glob("*.py")):
        _copy(src, out / "assignments" / src.name)  # what the student edits
        _copy(src, out / "autograder" / "stubs" / src.name)  # the kit's pristine copy (given code)
    for src in sorted((root / "common").glob("*.py")):
        _copy(src, out / "common" / src.name)
    for src in sorted((root / "demos").glob("*.py")):
        _copy(src, out / "demos" / src.name)
    for src, rel in _grader_files(root):
        _copy(src, out / rel)
    _copy(root / "tools" / "torch_index.py", out / "scripts" / "torch_index.py")
    recorded = json.loads((root / "autograder" / "recorded" / "MANIFEST.json").read_text())
    for name in ("README.md", "Makefile", "gitignore"):
        _copy(KIT_FILES / name, out / (".gitignore" if name == "gitignore" else name))
    # numpy pinned to the version the answers were recorded with (it draws the suites' inputs)
    (out / "requirements.txt").write_text((KIT_FILES / "requirements.txt").read_text()
                                          .replace("{numpy}", recorded["numpy"]))
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True,
                            text=True).stdout.strip() or "unknown"
    manifest = {"commit": commit + ("-dirty" if allow_dirty and dirty_paths(root) else ""),
                "torch": recorded["torch"], "numpy": recorded["numpy"],
                "files": {p.relative_to(out).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
                          for p in sorted(out.rglob("*")) if p.is_file()}}
    (out / "KIT.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    found = scan(out, root)
    if found:
        raise KitError("the built kit failed its scan:\n  " + "\n  ".join(found[:20]))
    if zip_path is not None:
        write_zip(out, zip_path)
    return manifest


def write_zip(folder: Path, zip_path: Path) -> None:
    """A reproducible zip (sorted names, fixed times) whose top folder is ``student-kit/``."""
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as z:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            info = zipfile.ZipInfo(f"student-kit/{path.relative_to(folder).as_posix()}", (2026, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, path.read_bytes())


# ---------------------------------------------------------------- the scan
SOLUTIONS_IMPORT = re.compile(
    r"^\s*(from\s+\.*solutions\b|import\s+solutions\b)|import_module\(\s*f?[\"']solutions|__import__\(\s*f?[\"']solutions",
    re.M)


def solution_lines(root: Path = ROOT) -> set[str]:
    """The lines of every solution region (stripped) that the stubs do not show anyway."""
    from autograder.regions import solution_regions

    lines = {line.strip() for path in sorted((root / "solutions").glob("*.py"))
             for region in solution_regions(path.read_text()) for line in region
             if len(line.strip()) >= 12 and not line.strip().startswith("# TODO")}
    # a line the stubs print anyway (given code such as `loss.backward()`) tells nothing
    public = {line.strip() for folder in ("assignments", "demos") for path in (root / folder).glob("*.py")
              for line in path.read_text().splitlines()}
    return lines - public


def _stub_bodies(root: Path) -> dict[str, set[str]]:
    """Contract function name -> the ast dumps of its stub definitions."""
    from autograder.exercises import EXERCISE_LIST

    names = {f for e in EXERCISE_LIST for f in e.functions}
    bodies: dict[str, set[str]] = {}
    for path in sorted((root / "assignments").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name in names:
                bodies.setdefault(node.name, set()).add(ast.dump(node))
    return bodies


def _definitions(tree: ast.AST, depth: int = 0):
    """Every function definition in ``tree``, and in string constants that parse as Python (code kept as text)."""
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node
        elif depth < 2 and isinstance(node, ast.Constant) and isinstance(node.value, str) and "def " in node.value:
            try:
                inner = ast.parse(node.value)
            except SyntaxError:
                continue
            yield from _definitions(inner, depth + 1)


def scan(kit: Path, root: Path = ROOT) -> list[str]:
    """Everything in ``kit`` that could carry an answer; [] when the kit is clean."""
    found = [f"{d}/ is in the kit" for d in FORBIDDEN_DIRS if (kit / d).exists()]
    secret = solution_lines(root)
    stubs = _stub_bodies(root)
    for path in sorted(p for p in kit.rglob("*") if p.is_file()):
        rel = path.relative_to(kit).as_posix()
        if path.suffix in (".pyc", ".pyo") or "__pycache__" in rel:
            found.append(f"{rel}: compiled code")
            continue
        if path.suffix in (".npz", ".zip"):
            continue  # data (the recorded answers: arrays and a JSON index of digests)
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            found.append(f"{rel}: a binary file")
            continue
        if "### BEGIN SOLUTION" in text or "### END SOLUTION" in text:
            found.append(f"{rel}: a solution-region marker")
        for n, line in enumerate(text.splitlines(), 1):
            if line.strip() in secret:
                found.append(f"{rel}:{n}: a line of a solution region: {line.strip()[:60]}")
        if SOLUTIONS_IMPORT.search(text):
            found.append(f"{rel}: imports solutions")
        if path.suffix == ".py":
            try:
                tree = ast.parse(text)
            except SyntaxError as exc:
                found.append(f"{rel}: does not parse ({exc})")
                continue
            for node in _definitions(tree):
                if node.name in stubs and ast.dump(node) not in stubs[node.name]:
                    found.append(f"{rel}:{node.lineno}: defines {node.name}() with a body other than the stub's")
    return found


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(ROOT / "build" / "student-kit"))
    p.add_argument("--zip", default=None, help="default: <out>.zip")
    p.add_argument("--allow-dirty", action="store_true", help="build from uncommitted changes (never for students)")
    args = p.parse_args(argv)
    out = Path(args.out).resolve()
    zip_path = Path(args.zip) if args.zip else out.with_suffix(".zip")
    try:
        manifest = build(out, allow_dirty=args.allow_dirty, zip_path=zip_path)
    except KitError as exc:
        print(exc, file=sys.stderr)
        return 1
    size = sum((out / f).stat().st_size for f in manifest["files"])
    recorded = sum((out / f).stat().st_size for f in manifest["files"] if f.endswith(".npz"))
    print(f"student kit {manifest['commit']}: {len(manifest['files'])} files, {size / 1e6:.1f} MB "
          f"({recorded / 1e6:.2f} MB of recorded answers) in {out}; zip {zip_path.stat().st_size / 1e6:.1f} MB "
          f"at {zip_path}; the scan found nothing that computes an answer")
    return 0


if __name__ == "__main__":
    sys.exit(main())
