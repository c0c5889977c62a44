"""Run an exercise notebook from top to bottom in a fresh kernel and report its quick checks.

    python -m selfcheck                  # every notebook of the exercise folders here
    python -m selfcheck ex1_values       # one exercise (a folder name or a path to the .ipynb)

The notebook runs as the grader runs it: a new kernel, every cell in order. Your file is not
changed. The hidden tests are empty in your copy, so passing every quick check is a good
sign, not a guarantee of points. Exit status: 0 when every cell ran, 1 otherwise.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
TIMEOUT = 600  # seconds per cell


def notebooks(names: list[str]) -> list[Path]:
    if not names:
        return sorted(p for p in HERE.glob("ex*/*.ipynb") if ".ipynb_checkpoints" not in p.parts)
    found = []
    for name in names:
        path = Path(name)
        if path.is_dir():
            path = path / f"{path.name}.ipynb"
        elif not path.suffix:
            path = HERE / name / f"{name}.ipynb"
        if not path.is_file():
            raise SystemExit(f"no notebook {path}")
        found.append(path)
    return found


def _first_line(text: str) -> str:
    lines = [ln for ln in str(text).strip().splitlines() if ln.strip()]
    return lines[0][:200] if lines else ""


def check(path: Path, timeout: int = TIMEOUT) -> int:
    """Run one notebook; print one line per quick check and per failing cell; return the failures."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, allow_errors=True, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    print(f"{path.name}: running every cell in a fresh kernel ...", flush=True)
    client.execute()
    failures = 0
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        meta = cell.metadata.get("nbgrader", {})
        gid = str(meta.get("grade_id") or f"cell {index}")
        errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        if meta.get("grade") and not meta.get("solution"):
            continue  # a hidden test: empty in your copy
        what = f"quick check of {gid[len('quick_'):]}()" if gid.startswith("quick_") else f"cell {gid}"
        if errors:
            failures += 1
            err = errors[0]
            detail = f"{err.get('ename', 'Error')}: {_first_line(err.get('evalue', ''))}".rstrip(": ")
            if err.get("ename") == "NotImplementedError":
                detail = "not implemented yet (NotImplementedError)"
            print(f"  FAIL  {what}: {detail}")
        elif gid.startswith("quick_"):
            print(f"  ok    {what}")
    print(f"{path.name}: " + ("every cell ran" if not failures else f"{failures} cell(s) failed") + "\n")
    return failures


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m selfcheck", description=__doc__.splitlines()[0])
    p.add_argument("notebook", nargs="*", help="exercise folder name or .ipynb path (default: all)")
    p.add_argument("--timeout", type=int, default=TIMEOUT, help="seconds per cell")
    args = p.parse_args(argv)
    paths = notebooks(args.notebook)
    if not paths:
        raise SystemExit("no exercise notebooks found next to selfcheck.py")
    failed = sum(check(path, args.timeout) > 0 for path in paths)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
