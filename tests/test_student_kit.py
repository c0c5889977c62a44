"""The student kit (``make student-kit``): the full hidden battery on a student's machine, no answer on it.

The kit is built into a temporary folder and used from there, by the kit's own
Makefile and grader, with the repository out of reach (the kit's folder is the
only code on the path, and ``solutions`` cannot be imported). Replayed answers
must give the verdicts of the live ones: for every live answer computed in
this session (every mutant, alternative and reference graded by the tests),
the recorded data holds the same output; and end to end, the kit grades the
stubs, the reference and a sample of mutants exactly as the full kit does.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from autograder import oracle
from autograder.exercises import EXERCISE_LIST, ORDER, POINTS
from tools import make_student_kit as kit_tool

from conftest import ROOT, SEAM_LOG, make_submission  # noqa: F401
from test_answer_seam import UNINITIALISED, verdicts

RECORDED = ROOT / "autograder" / "recorded"
SAMPLE_PER_EXERCISE = 3  # mutants graded end to end in the kit (every mutant is covered answer by answer)


@pytest.fixture(scope="session")
def kit(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("kit") / "student-kit"
    kit_tool.build(out, allow_dirty=True, zip_path=out.with_suffix(".zip"))
    return out


def kit_env(kit: Path) -> dict:
    """The environment of a student's shell: nothing of the repository's on any path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RLKIT_", "PYTHON"))}
    env["HOME"] = str(kit.parent)
    return env


def kit_run(kit: Path, args: list[str], timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=kit, env=kit_env(kit), capture_output=True, text=True, timeout=timeout)


# ------------------------------------------------------------------ what the kit holds
def test_the_kit_holds_what_a_student_needs_and_nothing_else(kit):
    assert (kit / "assignments" / "ex1_values.py").read_text() == (ROOT / "assignments" / "ex1_values.py").read_text()
    for d in ("common", "autograder/suites", "autograder/recorded", "autograder/stubs", "scripts"):
        assert (kit / d).is_dir(), d
    for f in ("Makefile", "README.md", "requirements.txt", "KIT.json", ".gitignore"):
        assert (kit / f).is_file(), f
    # the grader's client and the whole child package (the sandbox copies it into every sandbox)
    for f in ["autograder/client.py", "autograder/sandbox.py"] + [f"autograder/child/{p.name}" for p in
                                                                   (ROOT / "autograder" / "child").glob("*.py")]:
        assert (kit / f).is_file(), f
    for d in kit_tool.FORBIDDEN_DIRS:
        assert not (kit / d).exists(), d
    assert sorted(p.stem for p in (kit / "autograder" / "recorded").glob("*.npz")) == ORDER
    assert (kit / "autograder" / "recorded" / "stages" / "rlhf.npz").is_file()  # ex5's saved pi_ref and reward model
    assert (kit / "demos" / "rlhf_pipeline.py").is_file()  # the pipeline ex5's learning test drives
    manifest = json.loads((kit / "KIT.json").read_text())
    assert f"numpy=={manifest['numpy']}" in (kit / "requirements.txt").read_text()
    with zipfile.ZipFile(kit.with_suffix(".zip")) as z:
        names = sorted(n.removeprefix("student-kit/") for n in z.namelist())
    assert names == sorted(p.relative_to(kit).as_posix() for p in kit.rglob("*") if p.is_file())
    size = sum(p.stat().st_size for p in (kit / "autograder" / "recorded").glob("*.npz"))
    assert size < 8e6, f"the recorded answers take {size / 1e6:.1f} MB"


def test_the_scan_finds_no_answer_in_the_kit(kit):
    assert kit_tool.scan(kit) == []
    for path in kit.rglob("*.py"):
        text = path.read_text()
        assert "import solutions" not in text and "from solutions" not in text, path


@pytest.mark.parametrize("plant", ["region line", "marker", "import", "contract body", "body in a string",
                                   "answers folder"])
def test_the_scan_finds_an_answer_planted_in_a_kit(kit, tmp_path, plant):
    """The scan can fail: each way an answer could slip into a kit is found."""
    copy = tmp_path / "kit"
    shutil.copytree(kit, copy)
    suite = copy / "autograder" / "suites" / "test_ex1_values.py"
    ref = (ROOT / "solutions" / "ex1_values.py").read_text()
    body = ref[ref.index("def discounted_returns("):]
    body = body[:body.index("\n\n\n")]
    line = sorted(kit_tool.solution_lines(), key=len)[-1]
    extra = {"region line": f"\n\ndef _planted(ratio, advantages, clip_eps):\n    {line}\n",
             "marker": "\n# ### BEGIN SOLUTION\n",
             "import": "\nfrom solutions.ex1_values import discounted_returns\n",
             "contract body": "\n\n" + body.replace("### BEGIN SOLUTION", "").replace("### END SOLUTION", "") + "\n",
             "body in a string": "\n\nHIDDEN = '''\n" + body.replace("### BEGIN SOLUTION", "").replace(
                 "### END SOLUTION", "").replace("'''", '"""') + "\n'''\n",
             "answers folder": ""}[plant]
    if plant == "answers folder":
        (copy / "autograder" / "answers").mkdir()
        (copy / "autograder" / "answers" / "__init__.py").write_text("")
    else:
        suite.write_text(suite.read_text() + extra)
    assert kit_tool.scan(copy) != []


# ------------------------------------------------------------------ refusing a dirty or stale state
def test_the_committed_recorded_answers_are_current():
    """`make record` was run after the last change to anything the answers depend on."""
    assert kit_tool.stale_reasons(ROOT) == []


def test_the_kit_is_not_built_from_a_dirty_or_stale_tree(tmp_path):
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    # the clone holds the last commit; bring the work tree's versions of the files this check reads
    for rel in ["solutions", "assignments", "autograder", "common", "tools", "demos"]:
        shutil.rmtree(clone / rel)
        shutil.copytree(ROOT / rel, clone / rel, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run(["git", "add", "-A"], cwd=clone, check=True)
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "t", "--allow-empty"],
                   cwd=clone, check=True)
    kit_tool.build(tmp_path / "ok", root=clone)  # clean and current: builds

    src = clone / "solutions" / "ex1_values.py"
    src.write_text(src.read_text() + "\n# changed\n")
    with pytest.raises(kit_tool.KitError) as err:
        kit_tool.build(tmp_path / "dirty", root=clone)
    assert "uncommitted change: solutions/ex1_values.py" in str(err.value)
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "t"], cwd=clone, check=True)
    with pytest.raises(kit_tool.KitError) as err:
        kit_tool.build(tmp_path / "stale", root=clone)
    assert "the recorded answers are stale (solutions/ex1_values.py" in str(err.value)
    assert "run `make record`" in str(err.value)


# ------------------------------------------------------------------ the recorded answers cover the live ones
def _load(name: str) -> oracle.Store:
    st = oracle.Store(name)
    with np.load(RECORDED / f"{name}.npz", allow_pickle=False) as z:
        st.index = json.loads(bytes(z["__index__"]).decode())["index"]
    return st


def test_the_recorded_answers_cover_every_live_answer_of_this_session(mutant_reports):
    """Every answer the suites computed live in this session, for any submission (every mutant here),
    is in the recorded data with the same output and random state: a replay asks the same and gets
    the same, so it gives the same verdicts."""
    assert mutant_reports
    calls = [json.loads(line) for path in sorted(SEAM_LOG.glob("seam-*.jsonl"))
             for line in path.read_text().splitlines()]
    published = [c for c in calls if c["inputs"] == "published"]
    assert {c["seam"] for c in published} == set(ORDER), "every exercise asks the seam"
    stores = {name: _load(name) for name in ORDER}
    missing, differ = defaultdict(set), defaultdict(set)
    for c in published:
        entry = stores[c["seam"]].index.get(c["key"])
        if entry is None:
            missing[c["seam"]].add(c["fn"])
        elif oracle.entry_digest(entry) != c["digest"]:
            differ[c["seam"]].add(c["fn"])
    assert not missing, f"live answers the student kit cannot replay: {dict(missing)}"
    assert not differ, f"recorded answers that differ from the live ones: {dict(differ)}"


# ------------------------------------------------------------------ the kit, end to end
def test_the_kits_make_grade_on_the_stubs(kit):
    """A student's first `make grade`: 0 points, one "not implemented" line per function, exit 0."""
    venv = Path(sys.executable).parent.parent
    (venv / ".rlkit-student-kit-installed").touch()  # this venv is the one `make venv` would build
    assert kit_run(kit, [sys.executable, "-c", "import solutions"]).returncode != 0
    proc = kit_run(kit, ["make", "grade", f"VENV={venv}"])
    assert proc.returncode == 0, proc.stderr[-2000:]
    total = sum(POINTS.values())
    assert re.search(rf"TOTAL +0\.0 / {total:.1f}", proc.stdout), proc.stdout[-3000:]
    for ex in EXERCISE_LIST:
        for fn in ex.functions:
            assert f"x {fn}() is not implemented yet" in proc.stdout, fn
    assert "inputs: published" in proc.stdout


def _kit_grade_many(kit: Path, jobs: list[tuple[str, Path, list[str], bool]], out: Path) -> dict:
    """Grade (name, folder, exercises, skip_learning) jobs with the kit's own runner, two at a time."""
    spec = out / "jobs.json"
    spec.write_text(json.dumps([[n, str(f), ex, skip] for n, f, ex, skip in jobs]))
    driver = out / "driver.py"
    driver.write_text(
        "import json, sys\n"
        "from concurrent.futures import ThreadPoolExecutor\n"
        "from autograder.runner import grade\n"
        "assert 'solutions' not in sys.modules\n"
        "jobs = json.load(open(sys.argv[1]))\n"
        "def one(j):\n"
        "    name, folder, exercises, skip = j\n"
        "    return name, grade(folder, exercises, jobs=1, skip_learning=skip)\n"
        "with ThreadPoolExecutor(max_workers=2) as pool:\n"
        "    json.dump(dict(pool.map(one, jobs)), open(sys.argv[2], 'w'))\n")
    env = kit_env(kit)
    env["PYTHONPATH"] = str(kit)
    proc = subprocess.run([sys.executable, str(driver), str(spec), str(out / "reports.json")], cwd=kit, env=env,
                          capture_output=True, text=True, timeout=1500)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((out / "reports.json").read_text())


def test_the_kit_gives_the_live_verdicts(kit, mutant_reports, reference_report, tmp_path):
    """In the kit, with no access to the repository: the reference gets full marks (learning tests
    included), and the reference and a sample of mutants of every exercise get exactly the points and
    sentences of the full kit."""
    from mutants import MUTANTS

    ref = make_submission(tmp_path / "reference", {})
    jobs = [("reference", ref, ORDER, False)]
    for exercise in ORDER:
        names = [m.name for m in MUTANTS if m.module == exercise and m.name not in UNINITIALISED]
        step = max(1, len(names) // SAMPLE_PER_EXERCISE)
        for name in names[::step][:SAMPLE_PER_EXERCISE]:
            jobs.append((name, Path(mutant_reports[name]["submission"]), [exercise], True))
    reports = _kit_grade_many(kit, jobs, tmp_path)
    full = reports["reference"]
    assert full["errors"] == [] and full["total"] == full["max_total"] == sum(POINTS.values()), \
        [(t["id"], t["feedback"]) for e in full["exercises"] for t in e["tests"] if not t["passed"]][:5]
    assert full["inputs"] == "published"
    assert verdicts(full) == verdicts(reference_report)
    for name, _, _, _ in jobs[1:]:
        assert reports[name]["errors"] == [], (name, reports[name]["errors"][:2])
        assert verdicts(reports[name]) == verdicts(mutant_reports[name]), name


def test_a_course_seed_needs_the_full_kit(kit):
    """The kit answers the published inputs only: asked for other inputs it says so, before grading anything."""
    proc = kit_run(kit, [sys.executable, "-m", "autograder", "assignments", "--seed", "spring"], timeout=120)
    assert proc.returncode != 0
    assert "a student kit holds answers for the published inputs only" in proc.stderr + proc.stdout
