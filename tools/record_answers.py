"""Record the answers the hidden suites compute, for the student kit: ``make record``.

Runs every suite, in record mode (``RLKIT_ORACLE=record``), against the
reference solutions and the stubs, with every named-mistake variant computed
whatever the submission's output. Each suite process writes what its answer
seam computed; the parts are merged into ``autograder/recorded/<exercise>.npz``
(``.npz`` arrays with one JSON index; no pickle). A student kit replays them
(``autograder/oracle.py``); a test fails when they drift.

    python -m tools.record_answers [--out autograder/recorded] [--exercise NAME ...]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def record(out: Path, exercises: list[str] | None = None, submissions: list[Path] | None = None) -> dict:
    """Grade ``submissions`` in record mode; merge into ``out``; return {exercise: (entries, bytes)}."""
    from autograder import oracle

    with tempfile.TemporaryDirectory(prefix="rlkit-record-") as parts:
        env = {"RLKIT_ORACLE": "record", "RLKIT_RECORD_DIR": parts, "RLKIT_NO_SUITE_SERVER": "1"}
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            from autograder.runner import grade

            for folder in submissions or [ROOT / "solutions", ROOT / "assignments"]:
                grade(folder, exercises, jobs=1)
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        stores: dict[str, oracle.Store] = {}
        for part in sorted(Path(parts).glob("*.part.npz")):
            name = part.name.split(".")[0]
            piece = oracle.Store(name)
            with __import__("numpy").load(part, allow_pickle=False) as z:
                meta = __import__("json").loads(bytes(z["__index__"]).decode())
                piece.arrays = {k: z[k] for k in z.files if k != "__index__"}
            piece.index = meta["index"]
            stores.setdefault(name, oracle.Store(name)).merge(piece)
    out.mkdir(parents=True, exist_ok=True)
    sizes = {}
    for name, st in sorted(stores.items()):
        path = out / f"{name}.npz"
        st.save(path)
        sizes[name] = (len(st.index), path.stat().st_size)
    return sizes


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(ROOT / "autograder" / "recorded"))
    p.add_argument("--exercise", action="append")
    args = p.parse_args(argv)
    sizes = record(Path(args.out), args.exercise)
    for name, (n, size) in sizes.items():
        print(f"{name}: {n} recorded answers, {size / 1024:.0f} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
