"""Grade every sub-folder of a folder of submissions: ``make grade-all SUBMISSIONS=dir``.

    python -m autograder.batch SUBMISSIONS [--output grades] [--jobs N] [--exercise NAME ...]
                               [--device cpu] [--sandbox standard|strict] [--timeout SECONDS]

Each sub-folder is one student (its name is the student's name). Submissions
are graded in parallel over the machine's cores, one submission per worker
process (``python -m autograder FOLDER --jobs 1 --json ...``, in its own
process group); each of those runs the hidden suites one after the other and
starts its own sandboxes, whose zygotes the batch's one fork server forks
(``autograder/forkserver.py``), and gets its suite server as a fork of the batch's one
template (``runner.SuiteTemplate``): torch is imported twice per batch, not per submission. A submission whose grading crashes, hangs past
``--timeout`` or cannot start is recorded with its status and the batch goes
on. Results:

* ``OUTPUT/grades.csv``: one row per student: student, total, max_total, one
  column per exercise, status (``ok``, ``grader-error``, ``timeout``, ``crashed``);
* ``OUTPUT/<student>.json``: that student's full report (the JSON of
  ``python -m autograder --json``) plus ``student`` and ``status``.

Exit status 0 when the batch ran (whatever the students' scores and
statuses; the summary line counts them), 2 when it could not start.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from .exercises import POINTS
from .options import GradingOptions
from .runner import available_exercises, start_suite_template, strict_preflight
from .sandbox import KIT_ROOT, SANDBOX_ROOT_ENV, GraderError, remove_tree, start_fork_server

STATUSES = ("ok", "grader-error", "timeout", "crashed")


def submissions_in(root: Path) -> list[Path]:
    """Real sub-directories (no symlinks, no hidden folders), sorted by name."""
    return sorted(p for p in root.iterdir()
                  if p.is_dir() and not p.is_symlink() and not p.name.startswith((".", "__")))


def safe_name(name: str) -> str:
    """A file name for the student's JSON (folder names are not trusted to be tidy)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)[:120] or "_"


def csv_cell(value):
    """Neutralise spreadsheet formulas in text cells (CSV injection through a folder name)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def grade_one(folder: Path, exercises: list[str], device: str, sandbox: str, timeout: float,
              out_dir: Path, allow_weak: bool = False, shared=()) -> dict:
    """Grade one submission in its own process; always returns a row (never raises).

    ``shared``: the batch's fork server (``sandbox.start_fork_server``) and suite template
    (``runner.start_suite_template``), shared by every submission's grader; without them,
    each grader starts its own."""
    student = folder.name
    t0 = time.monotonic()
    target = out_dir / f"{safe_name(student)}.json"
    with tempfile.TemporaryDirectory(prefix="rlkit-batch-") as tmp:
        report_path = Path(tmp) / "report.json"
        options = GradingOptions(device=device, sandbox=sandbox, allow_weak=allow_weak, jobs=1)
        cmd = [sys.executable, "-m", "autograder", str(folder), *options.cli_args(),
               "--json", str(report_path), "--format", "json", "--output", os.devnull]
        for ex in exercises:
            cmd += ["--exercise", ex]
        env = dict(os.environ)
        env["PYTHONPATH"] = str(KIT_ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        for server in shared:
            env.update(server.environ())
        # its sandboxes' folders go here, removed below whatever became of the grader
        sandboxes = tempfile.mkdtemp(prefix="rlkit-batch-sandboxes-")
        os.chmod(sandboxes, 0o711)  # strict mode's sandbox users reach their own folders through it
        env[SANDBOX_ROOT_ENV] = sandboxes
        status, error, report = "ok", "", None
        try:
            proc = subprocess.Popen(cmd, cwd=str(KIT_ROOT), env=env, stdin=subprocess.DEVNULL,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                    start_new_session=True, pass_fds=tuple(server.fd for server in shared))
            try:
                _, err = proc.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                _kill_group(proc)
                _, err = proc.communicate()
                status, error = "timeout", f"grading did not finish within {timeout:.0f} s"
            else:
                if report_path.is_file():
                    try:
                        report = json.loads(report_path.read_text())
                    except ValueError as exc:
                        status, error = "crashed", f"unreadable report ({exc})"
                if report is None and status == "ok":
                    tail = (err or b"").decode(errors="replace").strip()[-1000:]
                    status, error = "crashed", f"the grader exited with status {proc.returncode}: {tail}"
                elif report is not None and report.get("errors"):
                    status, error = "grader-error", " | ".join(report["errors"])[:2000]
        except Exception as exc:  # could not even start the process
            status, error = "crashed", f"{type(exc).__name__}: {exc}"
        finally:
            remove_tree(sandboxes)
    seconds = round(time.monotonic() - t0, 1)
    if report is None:
        report = {"submission": str(folder), "total": 0.0,
                  "max_total": float(sum(POINTS[e] for e in exercises)), "exercises": [], "errors": [error]}
    report.update({"student": student, "status": status, "batch_seconds": seconds})
    if error and status != "grader-error":
        report.setdefault("errors", []).append(error)
    target.write_text(json.dumps(report, indent=2))
    by_ex = {e.get("name"): e.get("score", 0.0) for e in report.get("exercises", [])}
    row = {"student": student, "total": report.get("total", 0.0), "max_total": report.get("max_total", 0.0)}
    row.update({ex: by_ex.get(ex, 0.0) for ex in exercises})
    row["status"] = status
    return row


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def write_csv(path: Path, rows: list[dict], exercises: list[str]) -> None:
    fields = ["student", "total", "max_total", *exercises, "status"]
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        for row in sorted(rows, key=lambda r: r["student"]):
            w.writerow({k: csv_cell(row.get(k, "")) for k in fields})


def run_batch(root, out_dir="grades", jobs: int | None = None, exercises: list[str] | None = None,
              device: str = "cpu", sandbox: str = "strict", timeout: float | None = None,
              progress: bool = True, allow_weak: bool = False) -> list[dict]:
    """Grade every sub-folder of ``root``; write ``out_dir``/grades.csv and one JSON per student."""
    root = Path(root).resolve()
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    exercises = exercises or available_exercises()
    if sandbox == "strict":
        strict_preflight(kernel=not allow_weak)  # one clear refusal, not one per student
    folders = submissions_in(root)
    jobs = max(1, jobs or os.cpu_count() or 1)
    timeout = timeout or 900.0 * len(exercises) + 120.0
    rows: list[dict] = []
    bar = _progress(len(folders), progress)
    # one fork server for the whole batch: its warm Python (torch imported once) is every zygote's start
    forks = start_fork_server() if device == "cpu" and len(folders) > 1 else None
    template = start_suite_template(forks) if len(folders) > 1 else None
    shared = tuple(server for server in (forks, template) if server is not None)
    try:
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            futures = {pool.submit(grade_one, f, exercises, device, sandbox, timeout, out_dir, allow_weak, shared): f
                       for f in folders}
            for fut in as_completed(futures):
                try:
                    row = fut.result()
                except Exception as exc:  # grade_one does not raise; belt and braces
                    row = {"student": futures[fut].name, "total": 0.0, "max_total": 0.0,
                           **{ex: 0.0 for ex in exercises}, "status": "crashed", "error": str(exc)}
                rows.append(row)
                bar.update(row)
    finally:
        for server in shared:
            server.close()
    bar.close()
    write_csv(out_dir / "grades.csv", rows, exercises)
    return rows


class _progress:
    """tqdm when available (a progress bar on stderr), else one line per submission."""

    def __init__(self, total: int, enabled: bool):
        self.bar = None
        self.enabled = enabled
        self.done = 0
        self.total = total
        if enabled:
            try:
                from tqdm import tqdm

                self.bar = tqdm(total=total, unit="submission", desc="grading", dynamic_ncols=True)
            except ImportError:
                pass

    def update(self, row: dict) -> None:
        self.done += 1
        if self.bar is not None:
            self.bar.set_postfix_str(f"{row['student']}: {row['total']:g}/{row['max_total']:g} {row['status']}")
            self.bar.update(1)
        elif self.enabled:
            print(f"[{self.done}/{self.total}] {row['student']}: {row['total']:g}/{row['max_total']:g} "
                  f"{row['status']}", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m autograder.batch",
                                description="Grade every sub-folder of SUBMISSIONS (one folder per student).")
    p.add_argument("submissions", help="folder holding one sub-folder per student")
    p.add_argument("--output", default="grades", help="where grades.csv and the per-student JSON go (default: grades)")
    p.add_argument("--jobs", type=int, default=None, help="submissions graded at once (default: CPU cores)")
    p.add_argument("--exercise", action="append", metavar="NAME", help="grade only this exercise; repeatable")
    p.add_argument("--device", default="cpu")
    p.add_argument("--sandbox", choices=["standard", "strict"], default="strict",
                   help="strict (default): the official grade; standard: faster checks on a trusted machine")
    p.add_argument("--allow-weak-sandbox", action="store_true",
                   help="strict mode: grade even where Landlock or seccomp is missing (every report says so)")
    p.add_argument("--timeout", type=float, default=None,
                   help="seconds per submission before it is killed (default: 900 per exercise + 120)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    args = p.parse_args(argv)
    root = Path(args.submissions)
    if not root.is_dir():
        print(f"error: {root} is not a folder", file=sys.stderr)
        return 2
    unknown = [e for e in (args.exercise or []) if e not in available_exercises()]
    if unknown:
        print(f"error: unknown exercise(s) {unknown}; known: {available_exercises()}", file=sys.stderr)
        return 2
    t0 = time.monotonic()
    try:
        rows = run_batch(root, args.output, args.jobs, args.exercise, args.device, args.sandbox, args.timeout,
                         progress=not args.quiet, allow_weak=args.allow_weak_sandbox)
    except GraderError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    wall = time.monotonic() - t0
    counts = {s: sum(r["status"] == s for r in rows) for s in STATUSES}
    rate = len(rows) / wall * 60 if wall > 0 else 0.0
    print(f"graded {len(rows)} submissions in {wall:.1f} s ({rate:.1f} per minute, "
          f"{args.jobs or os.cpu_count()} at a time): "
          + ", ".join(f"{n} {s}" for s, n in counts.items() if n)
          + f"\nresults: {Path(args.output) / 'grades.csv'} and one JSON per student in {args.output}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
