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


def _rlhf_stages_spec() -> tuple[str, int]:
    """Where ex5's suite reads the saved stages (relative to recorded/) and the seed it expects:
    the suite holds both facts. Not an answer: the kit's own trained models, kept next to them."""
    from autograder.suites import test_ex5_rlhf as suite

    return suite.RLHF_STAGES.relative_to(suite.RLHF_STAGES.parents[1]).as_posix(), suite.RLHF_SEED


def record_rlhf_stages(out: Path) -> Path:
    """The toy RLHF's reference policy and reward model (stages 2-3, the kit's own code and the
    reference ``preference_loss``), saved for ex5's learning test: it trains PPO from them."""
    from dataclasses import replace

    import torch

    from demos import rlhf_pipeline as rp

    rel, seed = _rlhf_stages_spec()
    cfg = replace(rp.RLHFConfig(), **rp.FAST_CONFIG, seed=seed)
    with rp._threads():
        stages = rp.prepare(cfg, torch.device("cpu"), rp.default_ops("solutions"))
    path = out / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    rp.save_stages(stages, path, seed)
    return path


# What the recorded answers depend on: change any of these and the data must be recorded again
# (`make student-kit` refuses to build while the manifest disagrees; tests/test_student_kit.py checks it).
SOURCES = ("solutions/ex*.py", "demos/rlhf_pipeline.py", "autograder/answers/*.py", "autograder/suites/test_*.py", "common/*.py",
           "autograder/oracle.py", "autograder/seeds.py", "autograder/harness.py", "autograder/checks.py",
           "autograder/client.py", "autograder/exercises.py")
MANIFEST = "MANIFEST.json"


def source_digests(root: Path = ROOT) -> dict[str, str]:
    """sha256 of every file the recorded answers depend on (paths relative to the kit root)."""
    import hashlib

    out = {}
    for pattern in SOURCES:
        for path in sorted(root.glob(pattern)):
            out[path.relative_to(root).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def write_manifest(out: Path) -> None:
    import json

    import numpy
    import torch

    files = {p.relative_to(out).as_posix(): __import__("hashlib").sha256(p.read_bytes()).hexdigest()
             for p in sorted(out.rglob("*.npz"))}
    (out / MANIFEST).write_text(json.dumps({
        "note": "written by `make record`; the recorded answers were computed from exactly these sources",
        "torch": torch.__version__.split("+")[0], "numpy": numpy.__version__,
        "sources": source_digests(), "recorded": files}, indent=1, sort_keys=True) + "\n")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(ROOT / "autograder" / "recorded"))
    p.add_argument("--exercise", action="append")
    args = p.parse_args(argv)
    sizes = record(Path(args.out), args.exercise)
    write_stages = not args.exercise or "ex5_rlhf" in args.exercise
    if write_stages:
        stages = record_rlhf_stages(Path(args.out))
    write_manifest(Path(args.out))
    for name, (n, size) in sizes.items():
        print(f"{name}: {n} recorded answers, {size / 1024:.0f} KiB")
    if write_stages:
        print(f"{stages.relative_to(Path(args.out)).as_posix()}: the toy RLHF's pi_ref and reward model, {stages.stat().st_size / 1024:.0f} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
