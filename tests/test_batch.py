"""`make grade-all`: every sub-folder graded, one CSV row and one JSON per student, crashes contained."""
from __future__ import annotations

import csv
import json
import time

import pytest

from autograder import batch

from conftest import ROOT, make_submission

REF = (ROOT / "solutions" / "ex1_values.py").read_text()


def _sandbox_folders() -> set[str]:
    import glob
    import tempfile

    tmp = tempfile.gettempdir()
    return set(glob.glob(f"{tmp}/rlkit-sandbox-*")) | set(glob.glob(f"{tmp}/rlkit-batch-sandboxes-*"))


def _suite_runs() -> set[int]:
    """Live processes started as a suite server (its forked suite runs keep its command line)."""
    import os

    out = set()
    for pid in os.listdir("/proc"):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if b"autograder.suite_server" in f.read():
                    with open(f"/proc/{pid}/stat") as f:
                        if f.read().rsplit(")", 1)[1].split()[0] != "Z":
                            out.add(int(pid))
        except (OSError, ValueError, IndexError):
            pass
    return out


def _read_csv(path):
    with open(path, newline="") as f:
        return {row["student"]: row for row in csv.DictReader(f)}


def test_batch_grades_every_folder_and_survives_broken_ones(tmp_path):
    root = tmp_path / "submissions"
    make_submission(root / "alice", {"ex1_values.py": REF}, from_solutions=False)
    # bob's module kills its process at import; "=carol" has a syntax error and a formula-like name
    make_submission(root / "bob", {"ex1_values.py": REF + "\nimport os\nos._exit(0)\n"}, from_solutions=False)
    make_submission(root / "=carol", {"ex1_values.py": REF.replace("def action_values(", "def action_values(:")},
                    from_solutions=False)
    # dave's module hangs at import: every check times out, and the batch gives up on him
    make_submission(root / "dave", {"ex1_values.py": "import time\ntime.sleep(10**6)\n"}, from_solutions=False)
    (root / "notes.txt").write_text("not a submission")
    (root / ".git").mkdir()
    out = tmp_path / "grades"
    before = _sandbox_folders()
    t0 = time.monotonic()
    code = batch.main([str(root), "--output", str(out), "--exercise", "ex1_values", "--jobs", "2",
                       "--timeout", "60", "--quiet"])
    took = time.monotonic() - t0
    # dave's grader was killed before it could close its sandboxes: the batch removed their folders
    # (copies of his files, the kit's stubs and drivers) all the same
    assert _sandbox_folders() - before == set()
    assert code == 0
    rows = _read_csv(out / "grades.csv")
    assert set(rows) == {"alice", "bob", "'=carol", "dave"}  # the formula is neutralised
    with open(out / "grades.csv", newline="") as f:
        assert next(csv.reader(f)) == ["student", "total", "max_total", "ex1_values", "status"]
    assert rows["alice"]["status"] == "ok"
    assert float(rows["alice"]["total"]) == float(rows["alice"]["max_total"]) == 15
    assert float(rows["alice"]["ex1_values"]) == 15
    assert rows["bob"]["status"] == "ok" and float(rows["bob"]["total"]) == 0
    assert rows["'=carol"]["status"] == "ok" and float(rows["'=carol"]["total"]) == 0
    assert rows["dave"]["status"] == "timeout" and float(rows["dave"]["total"]) == 0
    assert took < 60 + 90, took  # dave was stopped at the timeout, not waited for (~100 s of checks)
    for name in ("alice", "bob", "_carol", "dave"):
        report = json.loads((out / f"{name}.json").read_text())
        assert report["status"] in batch.STATUSES
        assert "total" in report and "max_total" in report
    alice = json.loads((out / "alice.json").read_text())
    assert alice["student"] == "alice" and alice["exercises"][0]["name"] == "ex1_values"
    assert all(t["passed"] for t in alice["exercises"][0]["tests"])
    carol = json.loads((out / "_carol.json").read_text())
    assert any("SyntaxError" in t["feedback"] for t in carol["exercises"][0]["tests"])
    assert "did not finish" in " ".join(json.loads((out / "dave.json").read_text())["errors"])


@pytest.mark.parametrize("template", [False, True], ids=["own suite server", "forked from the batch's template"])
def test_a_killed_grader_leaves_no_suite_run_behind(tmp_path, template):
    """A batch kills a grader on its timeout; the suite run its suite server forked (a process group
    of its own) dies with the server instead of going on, orphaned, check after check. A server
    forked from the batch's template is not in the grader's process group: it goes when its
    grader's end of its stdin closes, and takes its runs with it."""
    import os
    import signal
    import subprocess
    import sys

    from autograder.runner import start_suite_template

    folder = make_submission(tmp_path / "dave", {"ex1_values.py": "import time\ntime.sleep(10**6)\n"},
                             from_solutions=False)
    shared = start_suite_template() if template else None
    assert not template or shared is not None
    runs_before = _suite_runs() | ({shared.proc.pid} if shared else set())  # (the template has that command line)
    proc = subprocess.Popen([sys.executable, "-m", "autograder", str(folder), "--exercise", "ex1_values",
                             "--format", "json", "--output", os.devnull], cwd=ROOT, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "PYTHONPATH": str(ROOT), **(shared.environ() if shared else {})},
                            pass_fds=(shared.fd,) if shared else ())
    try:
        end = time.monotonic() + 60
        while len(_suite_runs() - runs_before) < 2 and time.monotonic() < end:  # the server and its run
            time.sleep(0.1)
        assert len(_suite_runs() - runs_before) >= 2, "the suite run never started"
        time.sleep(1.0)  # the run is inside a check now (the import hangs)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    end = time.monotonic() + 5
    while _suite_runs() - runs_before and time.monotonic() < end:
        time.sleep(0.1)
    left = _suite_runs() - runs_before
    for pid in left:  # (a failing run cleans up after itself)
        os.kill(pid, signal.SIGKILL)
    if shared is not None:
        shared.close()
    assert not left, "a suite run outlived its killed grader"


def test_a_batch_forks_each_graders_suite_server_from_its_template(monkeypatch):
    """``make grade-all`` imports torch and the suites once: a grader given the batch's template
    (``RLKIT_SUITE_TEMPLATE``) gets its suite server as a fork of it. That server runs the
    grader's suites with the grader's environment (here: a course seed), and it holds no socket:
    not the template's, which its suite runs would otherwise inherit."""
    import os

    from autograder import runner, seeds

    template = runner.start_suite_template()
    assert template is not None
    monkeypatch.setenv(runner.TEMPLATE_ENV, str(template.fd))
    monkeypatch.setenv(seeds.ENV, "a secret of this course")
    monkeypatch.setenv("RLKIT_NO_FORKSERVER", "1")  # (no other socket in the server either)
    monkeypatch.setattr(runner, "_server", None)
    try:
        report = runner.grade(ROOT / "solutions", ["ex1_values"])
        server = runner._server
        assert isinstance(server.proc, runner._ForkedServer), "the grader started a server of its own"
        with open(f"/proc/{server.proc.pid}/status") as f:
            ppid = int(next(line for line in f if line.startswith("PPid:")).split()[1])
        assert ppid == template.proc.pid
        fd_dir = f"/proc/{server.proc.pid}/fd"
        links = [os.readlink(f"{fd_dir}/{fd}") for fd in os.listdir(fd_dir)]
        assert not [link for link in links if link.startswith("socket:")], links
        assert report["total"] == report["max_total"] == 15
        assert report["inputs"] == seeds.fingerprint() != ""  # the seed reached the suite run
    finally:
        if runner._server is not None:
            runner._server.proc.stdin.close()  # the server's end: it exits
        monkeypatch.setattr(runner, "_server", None)
        template.close()


def test_a_submission_the_grader_cannot_run_is_recorded_as_crashed(tmp_path):
    out = tmp_path / "grades"
    out.mkdir()
    row = batch.grade_one(tmp_path / "vanished", ["ex1_values"], "cpu", "standard", 120, out)
    assert row["status"] == "crashed" and row["total"] == 0 and row["max_total"] == 15
    report = json.loads((out / "vanished.json").read_text())
    assert report["status"] == "crashed" and "not found" in " ".join(report["errors"])


def test_submission_folders_skip_files_hidden_folders_and_symlinks(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "a").mkdir()
    (tmp_path / ".hidden").mkdir()
    (tmp_path / "file.py").write_text("")
    (tmp_path / "link").symlink_to(tmp_path / "a")
    assert [p.name for p in batch.submissions_in(tmp_path)] == ["a", "b"]
    assert batch.safe_name("../../etc/passwd") == ".._.._etc_passwd"
    assert batch.csv_cell("=1+1") == "'=1+1" and batch.csv_cell("alice") == "alice" and batch.csv_cell(3.0) == 3.0
