"""How long grading takes, as a student and an instructor feel it: ``make grade-bench``.

Grades the reference solutions (a correct submission: every check runs to the
end, learning tests included) and measures, on this machine:

1. the full ``python -m autograder solutions``: wall seconds from the command's
   start to its exit (median of ``--repeats`` runs);
2. each exercise alone (``--exercise NAME``), with where its seconds go: starting
   the suite (the runner, the suite server, pytest), waiting for the sandbox
   in test setups, and the checks (the slowest named);
3. ``make grade-all`` throughput: ``--batch`` copies of the reference graded by
   ``python -m autograder.batch`` in strict mode (the official grade; standard
   where strict cannot run), in submissions per minute.

Writes a Markdown report (``docs/GRADE_BENCH.md`` by default) and prints it.
Speed is a property of the machine and its load: the report records both.

``--baseline DIR`` (a checkout of an earlier commit, e.g. ``git worktree add
/tmp/base COMMIT``) measures that kit too, each of its runs right after the
same run of this one, so that both columns see the same machine: on a shared
2-core machine the speed drifts by 10-20 % over minutes, more than most changes.

    python -m scripts.grade_bench [--repeats 3] [--batch 10] [--baseline DIR] [--out docs/GRADE_BENCH.md]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from scripts.machine import load_average, machine

ROOT = Path(__file__).resolve().parent.parent


def timed_grade(extra: list[str], kit: Path = ROOT) -> tuple[float, dict]:
    """Wall seconds of one ``python -m autograder solutions ...`` of ``kit`` and its JSON report."""
    with tempfile.TemporaryDirectory(prefix="rlkit-gbench-") as tmp:
        out = Path(tmp) / "report.json"
        t0 = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", "autograder", str(kit / "solutions"), "--json", str(out), *extra],
                              cwd=kit, capture_output=True, text=True)
        wall = time.monotonic() - t0
        if proc.returncode != 0 or not out.exists():
            raise SystemExit(f"grading failed (exit {proc.returncode}):\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
        report = json.loads(out.read_text())
    if report["total"] != report["max_total"]:
        raise SystemExit(f"the reference scored {report['total']} / {report['max_total']}: fix that first")
    return wall, report


def slowest(exercise: dict, n: int = 2) -> str:
    tests = sorted(exercise["tests"], key=lambda t: -t.get("seconds", 0.0))[:n]
    return ", ".join(f"{t['id'].removeprefix('test_')} {t.get('seconds', 0.0):.1f}" for t in tests)


def bench_batch(copies: int, kit: Path = ROOT) -> tuple[float, str]:
    """Submissions per minute of ``kit``'s ``autograder.batch`` over ``copies`` copies of its reference."""
    mode = "strict" if os.geteuid() == 0 else "standard"
    with tempfile.TemporaryDirectory(prefix="rlkit-gbench-batch-") as tmp:
        os.chmod(tmp, 0o755)  # strict mode's sandbox users read the submissions through it
        subs = Path(tmp) / "submissions"
        for i in range(copies):
            folder = subs / f"student{i:03d}"
            folder.mkdir(parents=True)
            for p in (kit / "solutions").glob("ex*.py"):
                shutil.copyfile(p, folder / p.name)
        t0 = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", "autograder.batch", str(subs), "--output", str(Path(tmp) / "out"),
                               "--sandbox", mode, "--quiet"], cwd=kit, capture_output=True, text=True)
        wall = time.monotonic() - t0
        if proc.returncode != 0:
            raise SystemExit(f"batch grading failed (exit {proc.returncode}):\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return copies / wall * 60, mode


def measure(kits: list[Path], repeats: int, batch: int) -> list[dict]:
    """Every measurement of each kit, the kits' runs interleaved (kit 0, kit 1, kit 0, kit 1, ...)."""
    from autograder.runner import available_exercises

    res = [{"fulls": [], "rows": [], "batch": (None, "")} for _ in kits]
    for _ in range(repeats):
        for k, kit in enumerate(kits):
            res[k]["fulls"].append(timed_grade([], kit)[0])
    for name in available_exercises():
        runs: list[list] = [[] for _ in kits]
        for _ in range(repeats):
            for k, kit in enumerate(kits):
                runs[k].append(timed_grade(["--exercise", name], kit))
        for k in range(len(kits)):
            runs[k].sort(key=lambda r: r[0])
            wall, report = runs[k][len(runs[k]) // 2]
            (ex,) = report["exercises"]
            timing = ex.get("timing", {})
            res[k]["rows"].append((name, wall, wall - timing.get("pytest", 0.0), timing.get("setup", 0.0),
                                   timing.get("checks", 0.0), slowest(ex)))
    if batch:
        for k, kit in enumerate(kits):
            res[k]["batch"] = bench_batch(batch, kit)
    return res


def git_head(kit: Path) -> str:
    proc = subprocess.run(["git", "-C", str(kit), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return proc.stdout.strip() or str(kit)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3, help="runs of each measurement; the median is reported")
    p.add_argument("--batch", type=int, default=10, help="submissions in the batch measurement (0: skip it)")
    p.add_argument("--baseline", type=Path, default=None,
                   help="a checkout of an earlier kit, measured too, its runs interleaved with this kit's")
    p.add_argument("--out", default=str(ROOT / "docs" / "GRADE_BENCH.md"))
    args = p.parse_args(argv)
    kits = [ROOT] + ([args.baseline.resolve()] if args.baseline else [])
    if args.baseline and not (args.baseline / "autograder").is_dir():
        raise SystemExit(f"--baseline {args.baseline}: not a checkout of the kit (no autograder/)")

    start_load = load_average()
    results = measure(kits, args.repeats, args.batch)
    end_load = load_average()
    now = results[0]
    full = statistics.median(now["fulls"])
    rows = now["rows"]
    per_minute, mode = now["batch"]

    lines = [
        "# Grading time (`make grade-bench`)",
        "",
        f"Reference solutions on {machine()}; load average {start_load} at the start and {end_load} at the end; "
        f"median of {args.repeats} runs; wall seconds from the command's start to its exit.",
        "",
        f"- full `make grade`: **{full:.1f} s** (target <= 15 s); runs: "
        + ", ".join(f"{w:.1f}" for w in now["fulls"]),
        f"- slowest single exercise: **{max(r[1] for r in rows):.1f} s** (target <= 5 s)",
    ]
    if per_minute is not None:
        lines.append(f"- `make grade-all`, {args.batch} submissions, {mode} mode: **{per_minute:.1f} per minute** "
                     f"(target >= 10)")
    lines += [
        "",
        "| exercise alone | wall s | starting the suite | sandbox wait | checks | slowest checks (s) |",
        "|---|---|---|---|---|---|",
    ]
    for name, wall, start, setup, checks, slow in rows:
        lines.append(f"| {name} | {wall:.1f} | {start:.1f} | {setup:.1f} | {checks:.1f} | {slow} |")
    lines += ["", "\"Starting the suite\": the runner's interpreter, the suite server's imports and pytest's "
              "collection; \"sandbox wait\": test setups waiting for the zygote, a fork of the fork server "
              "(which imports torch beside "
              "the suite server) or, without one, a new Python; \"checks\": the tests' own seconds, where a "
              "learning run started in the background (a second sandbox, from the suite's first test on) counts "
              "only for the time a test waits for it.", ""]
    if args.baseline:
        base = results[1]
        lines += [f"## Against `{git_head(args.baseline)}`, measured in the same run", "",
                  "Each of its runs went right after the same run of this kit (same machine, same minutes).", "",
                  f"| wall s (median of {args.repeats}) | `{git_head(args.baseline)}` | `{git_head(ROOT)}` |",
                  "|---|---|---|",
                  f"| full grade | {statistics.median(base['fulls']):.1f} | {full:.1f} |"]
        for (name, b_wall, *_), (_, wall, *_) in zip(base["rows"], rows):
            lines.append(f"| {name} alone | {b_wall:.1f} | {wall:.1f} |")
        if per_minute is not None:
            lines.append(f"| batch, {mode}, per minute | {base['batch'][0]:.1f} | {per_minute:.1f} |")
        lines.append("")
    text = "\n".join(lines)
    Path(args.out).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
