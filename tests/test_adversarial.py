"""The adversarial corpus: every hostile or broken submission gets exactly its expected score.

Each case in ``tests/adversarial/<name>/`` is the reference ``ex1_values.py``
with one function replaced (or module-level code added); see the README there.
Where an attack *would* pay off, the case returns the reference answer on
success, so the expected score also proves the attack failed.

Grading cost is dominated by start-up (torch is imported by the trusted pytest
process and by the sandbox worker: ~4.5 CPU-seconds per graded submission), so
the corpus is graded in *packs*: cases that only redefine functions (no
import-time side effects, no extra files) are combined, at most one case per
function, into one graded module, each case executed in its own namespace.
Every check still runs in a fresh child of its own, so a function's score
depends only on its own case, and every function a pack leaves alone must
keep full marks. Import-time, multi-file and global-state cases (``solo``)
are graded alone. ``RLKIT_ADVERSARIAL_UNPACKED=1`` grades every case alone.

All submissions are graded once per session through the real runner
(``ex1_values`` only), two at a time, slowest first; the corpus's wall time is
written to the terminal and asserted in ``test_corpus_finishes_in_time``.
"""
from __future__ import annotations

import ast
import os
import resource
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from autograder.runner import grade

from conftest import ROOT, feedback_of, scores_by_function

CORPUS = ROOT / "tests" / "adversarial"
EXERCISE = "ex1_values"
FULL = {"discounted_returns": 5.0, "policy_evaluation": 4.0, "action_values": 3.0, "monte_carlo_value": 3.0}
ZERO = {fn: 0.0 for fn in FULL}
CORPUS_BUDGET_S = 180  # on 2 otherwise idle cores (estimated from the CPU time the grading used)
CORPUS_CEILING_S = float(os.environ.get("RLKIT_ADVERSARIAL_CEILING_S", 900))  # wall clock, on a loaded machine
UNPACKED = os.environ.get("RLKIT_ADVERSARIAL_UNPACKED") == "1"
SLOW_FIRST = ("infinite_loop", "memory_bomb", "twin_busy")  # scheduled first: they overlap the rest
CANARY = ROOT / "build" / "adversarial-canary.txt"
FAKE_FILES = [Path("/tmp/rlkit-adversarial-fake.json"), ROOT / "rlkit-adversarial-fake.json",
              ROOT / "autograder" / "suites" / "rlkit-adversarial-fake.json"]


@dataclass(frozen=True)
class Adv:
    name: str
    scores: dict = field(default_factory=dict)  # function -> expected score (others: full marks)
    feedback: dict = field(default_factory=dict)  # function -> phrase one of its feedback lines contains
    why: str = ""
    solo: bool = False  # import-time effects, extra files or global state: graded alone

    def expected(self) -> dict[str, float]:
        return {fn: float(self.scores.get(fn, mx)) for fn, mx in FULL.items()}

    def source(self) -> str:
        path = CORPUS / self.name / f"{EXERCISE}.py"
        return path.read_text() if path.is_file() else ""  # symlink_to_solution: made by the test

    def redefines(self) -> set[str]:
        """The exercise functions this case's code defines at top level."""
        tree = ast.parse(self.source())
        return {n.name for n in tree.body if isinstance(n, ast.FunctionDef) and n.name in FULL}


CASES: list[Adv] = [
    # ---- correct twins: legitimate code that looks a bit like the attacks
    Adv("correct", why="the reference itself", solo=True),
    Adv("twin_busy", why="prints, scratch files, a thread, a helper module, caught SystemExit, 200 MB scratch",
        solo=True),
    Adv("twin_variants", why="other correct implementations, multinomial sampler, non-contiguous output"),
    # ---- resources
    Adv("infinite_loop", {"action_values": 0}, {"action_values": "did not finish"},
        "while True with every catchable signal ignored"),
    Adv("memory_bomb", {"policy_evaluation": 0}, {"policy_evaluation": "memory"},
        "touches memory until the address-space limit, then asks for 64 GiB"),
    Adv("fork_bomb", {"discounted_returns": 0},
        why="bounded fork bomb + subprocess, os.system, posix_spawn, multiprocessing, pty, exec"),
    Adv("fork_bomb_raw", {"policy_evaluation": 0},
        why="subprocess._fork_exec / a fresh _posixsubprocess: no audit event, stopped by seccomp"),
    # ---- exits and crashes
    Adv("sys_exit_at_import", ZERO, {"discounted_returns": "could not import"}, "sys.exit(0) at import", solo=True),
    Adv("os_exit_at_import", ZERO, {"discounted_returns": "exited (code 0)"}, "os._exit(0) at import", solo=True),
    Adv("sys_exit_in_function", {"action_values": 0}, {"action_values": "SystemExit"}, "sys.exit(0) in a function"),
    Adv("os_exit_in_function", {"monte_carlo_value": 0}, {"monte_carlo_value": "exited (code 0)"},
        "os._exit(0) in a function"),
    Adv("segfault_ctypes", {"policy_evaluation": 0}, {"policy_evaluation": "not allowed"},
        "ctypes: CDLL(None), pythonapi, string_at(0)"),
    Adv("segfault_faulthandler", {"monte_carlo_value": 0}, {"monte_carlo_value": "SIGSEGV"},
        "faulthandler._sigsegv() in a function"),
    Adv("segfault_at_import", ZERO, {"discounted_returns": "SIGSEGV"}, "faulthandler._sigsegv() at import",
        solo=True),
    # ---- fake results
    Adv("fake_score_print", {"policy_evaluation": 0}, why="fake scores on stdout/stderr/fd 1 and 2"),
    Adv("fake_report_files", {"action_values": 0},
        why="fake results.json in cwd, /tmp, the kit, the grader's temp dirs, /autograder; canary overwrite"),
    Adv("forged_protocol", {"policy_evaluation": 0}, why="forged result frames into every descriptor"),
    Adv("forged_values", why="well-formed frames of hostile values (an int beyond float range, an unknown "
        "device, a 0-d list, big-endian bytes) before each right answer: missing, never a grader error",
        solo=True),
    Adv("kill_grader", {"monte_carlo_value": 0}, why="kill/killpg/pidfd on the zygote and every ancestor"),
    # ---- monkeypatching
    Adv("monkeypatch_torch", {"discounted_returns": 0},
        why="torch.allclose/equal, Tensor.__eq__, numpy.allclose, numpy.testing made always-true", solo=True),
    Adv("monkeypatch_reference", {"action_values": 0},
        why="fake solutions/autograder modules in sys.modules, common.validate disabled", solo=True),
    # ---- reading and reaching what it must not
    Adv("read_hidden_paths", {"discounted_returns": 0},
        why="relative/absolute paths, torch.__file__, sys.prefix, /proc/<ppid>/cwd, config.json, a walk"),
    Adv("read_hidden_import", {"policy_evaluation": 0},
        why="import solutions/autograder, SourceFileLoader, runpy, pkgutil, linecache, io.open_code"),
    Adv("read_hidden_native", {"action_values": 0},
        why="torch.from_file, UntypedStorage.from_file, numpy.fromfile/memmap, dir_fd, sqlite3, shutil"),
    Adv("read_sibling_submission", {"monte_carlo_value": 0},
        why="another student's folder next to it, other live sandboxes in /tmp"),
    Adv("network", {"discounted_returns": 0}, why="TCP, UDP, DNS, socketpair, urllib"),
    Adv("planted_files", {"action_values": 0},
        why="conftest.py, sitecustomize.py, usercustomize.py, numpy.py, torch.py, __init__.py, pytest.ini",
        solo=True),
    Adv("symlink_to_solution", ZERO, {"discounted_returns": "not in the submission"},
        "ex1_values.py is a symlink to the kit's solution", solo=True),
    # ---- comparison tricks and wrong outputs
    Adv("always_true_object", {"discounted_returns": 0}, {"discounted_returns": "faked __class__"},
        "equal to everything, isinstance(x, torch.Tensor) via __class__"),
    Adv("comparison_subclasses", {"discounted_returns": 0, "action_values": 0, "monte_carlo_value": 0},
        {"discounted_returns": "subclass", "action_values": "subclass"},
        "ndarray/Tensor subclasses with the right data, float subclass"),
    Adv("inplace_mutation", {"discounted_returns": 0}, {"discounted_returns": "in place"},
        "correct returns computed in the caller's tensor"),
    Adv("wrong_device", {"action_values": 0}, {"action_values": "could not read the result"},
        "right numbers on the meta device"),
    Adv("wrong_dtype", {"discounted_returns": 0}, {"discounted_returns": "dtype float64"}, "float64 for float32"),
    Adv("wrong_shape", {"policy_evaluation": 0}, {"policy_evaluation": "shape [1,"}, "[1, S] instead of [S]"),
    Adv("nan_output", {"action_values": 0}, {"action_values": "nan"}, "one NaN"),
    Adv("python_list", {"discounted_returns": 0}, {"discounted_returns": "should be a torch.Tensor"},
        "a nested Python list"),
    Adv("huge_output", {"action_values": 0}, {"action_values": "too large"}, "400 MB result"),
    # ---- gaming the statistical test
    Adv("reseed_global_rng", {"monte_carlo_value": 2}, {"monte_carlo_value": "generator"},
        "ignores the generator, torch.manual_seed(1234)"),
    Adv("mc_exact_dp", {"monte_carlo_value": 0}, {"monte_carlo_value": "horizon"},
        "returns the exact DP value instead of sampling"),
]
BY_NAME = {c.name: c for c in CASES}


def test_every_case_has_a_folder_and_every_folder_a_case():
    folders = {p.name for p in CORPUS.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))}
    names = [c.name for c in CASES]
    assert len(set(names)) == len(names)
    assert folders == set(names)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case_declares_what_it_breaks(case: Adv):
    """A packable case breaks only functions it redefines, and touches nothing else at import."""
    assert set(case.scores) <= set(FULL)
    if case.solo:
        return
    assert set(case.scores) <= case.redefines(), case.name
    assert [p.name for p in (CORPUS / case.name).iterdir()] == [f"{EXERCISE}.py"], case.name


# ------------------------------------------------------------------ packing, building, grading
def packs() -> list[list[Adv]]:
    """Groups of cases graded as one submission: solo cases alone, others first-fit, one per function."""
    groups: list[list[Adv]] = []
    used: list[set[str]] = []
    slow_cases = [BY_NAME[n] for n in SLOW_FIRST]
    rest = sorted((c for c in CASES if c.name not in SLOW_FIRST), key=lambda c: (-len(c.redefines()), c.name))
    for case in slow_cases + rest:
        fns = case.redefines()
        if case.solo or UNPACKED or case.name in SLOW_FIRST:  # the slow ones head separate packs
            groups.append([case])
            used.append(set(FULL) if case.solo or UNPACKED else set(fns))
            continue
        for group, taken in zip(groups, used):
            if taken.isdisjoint(fns):
                group.append(case)
                taken |= fns
                break
        else:
            groups.append([case])
            used.append(set(fns))
    slow = lambda g: min((SLOW_FIRST.index(c.name) for c in g if c.name in SLOW_FIRST), default=99)  # noqa: E731
    return sorted(groups, key=lambda g: (slow(g), g[0].name))


def pack_name(group: list[Adv]) -> str:
    return group[0].name if len(group) == 1 else "pack-" + "+".join(c.name for c in group)


def module_source(group: list[Adv]) -> str:
    reference = (ROOT / "solutions" / f"{EXERCISE}.py").read_text()
    if len(group) == 1:  # one case: its code simply follows the reference
        return reference + "\n\n# ---- adversarial case: " + group[0].name + "\n" + group[0].source()
    # every case starts from the pristine reference namespace (not from what earlier cases replaced)
    parts = [reference, "\n\n_reference_namespace = dict(globals())\n"]
    for case in group:
        fns = sorted(case.redefines())
        parts.append(
            f"\n\n# ---- adversarial case {case.name}, in a namespace of its own\n"
            f"_case = dict(_reference_namespace)\n"
            f"exec(compile({case.source()!r}, {case.name + '/' + EXERCISE + '.py'!r}, 'exec'), _case)\n"
            + "".join(f"{fn} = _case[{fn!r}]\n" for fn in fns) + "del _case\n")
    return "".join(parts)


def materialize(group: list[Adv], tmp: Path) -> Path:
    """The graded folder, in a batch folder beside a correct "victim" submission."""
    parent = tmp / "batch"
    folder = parent / pack_name(group)[:100]
    folder.mkdir(parents=True)
    (folder / f"{EXERCISE}.py").write_text(module_source(group))
    for case in group:
        for p in sorted((CORPUS / case.name).iterdir()):
            if p.is_file() and p.name not in (f"{EXERCISE}.py", "README.md"):
                shutil.copyfile(p, folder / p.name.removesuffix(".planted"))
        if case.name == "symlink_to_solution":
            (folder / f"{EXERCISE}.py").unlink()
            (folder / f"{EXERCISE}.py").symlink_to(ROOT / "solutions" / f"{EXERCISE}.py")
    victim = parent / "victim"
    victim.mkdir()
    shutil.copyfile(ROOT / "solutions" / f"{EXERCISE}.py", victim / f"{EXERCISE}.py")
    return folder


@pytest.fixture(scope="session")
def corpus_reports(tmp_path_factory, request):
    """{case name: (report of its submission, the cases it was packed with)} plus timing and side checks."""
    CANARY.parent.mkdir(exist_ok=True)
    CANARY.write_text("canary\n")
    for p in FAKE_FILES:
        p.unlink(missing_ok=True)

    def one(group: list[Adv]):
        folder = materialize(group, tmp_path_factory.mktemp("adv"))
        before = _snapshot(folder.parent)
        t0 = time.monotonic()
        try:
            report = grade(folder, [EXERCISE], jobs=1)
        except Exception as exc:  # a crash of the grader itself fails the cases of this submission
            report = {"crash": f"{type(exc).__name__}: {exc}"}
        report["case_seconds"] = round(time.monotonic() - t0, 1)
        report["folder_unchanged"] = _snapshot(folder.parent) == before  # the submission and its neighbour
        return group, report

    groups = packs()
    t0 = time.monotonic()
    cpu0 = _children_cpu()
    # create the session's base temp dir here, before the threads: pytest makes it lazily and
    # two threads making it at once can each see the other's ("not a normalized ... path")
    tmp_path_factory.getbasetemp()
    with ThreadPoolExecutor(max_workers=2) as pool:
        done = list(pool.map(one, groups))
    seconds = time.monotonic() - t0
    cpu = _children_cpu() - cpu0  # every grading process (pytest, worker, children) once reaped
    reports = {c.name: (report, group) for group, report in done for c in group}
    slowest = sorted(done, key=lambda gr: -gr[1]["case_seconds"])[:3]
    line = (f"adversarial corpus: {len(CASES)} cases in {len(groups)} graded submissions, "
            f"{seconds:.1f} s wall, {cpu:.0f} CPU-s (>= {cpu / 2:.0f} s on 2 idle cores; load average "
            f"{os.getloadavg()[0]:.1f}); 2 at a time; slowest: "
            + ", ".join(f"{pack_name(g)[:40]} {r['case_seconds']} s" for g, r in slowest) + ")")
    tr = request.config.pluginmanager.get_plugin("terminalreporter")
    capman = request.config.pluginmanager.get_plugin("capturemanager")
    if tr is not None and capman is not None:  # shown with or without -s (capture is off meanwhile)
        with capman.global_and_fixture_disabled():
            tr.write_line("")
            tr.write_line(line)
    else:
        print("\n" + line)
    canary = CANARY.read_text()
    fakes = [str(p) for p in FAKE_FILES if p.exists()]
    for p in FAKE_FILES:
        p.unlink(missing_ok=True)
    CANARY.unlink(missing_ok=True)
    return {"cases": reports, "seconds": seconds, "cpu": cpu, "canary": canary, "fakes": fakes, "groups": done}


def _snapshot(root: Path) -> dict:
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() and not p.is_symlink() else str(p.readlink())
                                       if p.is_symlink() else None) for p in sorted(root.rglob("*"))}


def _children_cpu() -> float:
    """Grading CPU so far: reaped children plus the runner's live suite server (and the runs it reaped)."""
    from autograder.runner import suite_server_cpu_seconds

    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime + suite_server_cpu_seconds()


def _scores(report) -> dict[str, float]:
    return {fn: s for (ex, fn), (s, _mx) in scores_by_function(report).items() if ex == EXERCISE}


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case_gets_exactly_its_expected_score(case: Adv, corpus_reports):
    report, group = corpus_reports["cases"][case.name]
    assert "crash" not in report, report.get("crash")
    assert report["errors"] == [], f"{case.name}: grader errors {report['errors']}"
    got = _scores(report)
    want = case.expected()
    mine = set(FULL) if len(group) == 1 else case.redefines()  # packed: the functions it owns
    got = {fn: got.get(fn) for fn in mine}
    want = {fn: want[fn] for fn in mine}
    detail = {fn: feedback_of(report, fn)[:2] for fn in mine if got[fn] != want[fn]}
    assert got == want, f"{case.name} ({case.why}): got {got}, expected {want}; feedback {detail}"
    if len(group) == 1:
        assert report["total"] == sum(want.values())
    for fn, phrase in case.feedback.items():
        fb = feedback_of(report, fn)
        assert any(phrase.lower() in f.lower() for f in fb), f"{case.name}: no feedback on {fn} says {phrase!r}: {fb}"


def test_functions_no_case_touches_keep_full_marks(corpus_reports):
    """In every pack, the functions none of its cases redefines are graded normally (full marks)."""
    for group, report in corpus_reports["groups"]:
        if len(group) == 1 or "crash" in report:
            continue
        touched = set().union(*(c.redefines() for c in group))
        got = _scores(report)
        for fn in set(FULL) - touched:
            assert got[fn] == FULL[fn], (pack_name(group), fn, feedback_of(report, fn))


def test_fake_files_were_not_written_and_the_kit_is_intact(corpus_reports):
    """No fake results in /tmp or the kit, the kit's canary intact, no student module imported by the parent."""
    assert corpus_reports["fakes"] == []
    assert corpus_reports["canary"] == "canary\n"


def test_submission_folders_are_never_written(corpus_reports):
    """Grading works on copies: the handed-in folder (and the one beside it) are byte-for-byte unchanged."""
    changed = [pack_name(g) for g, r in corpus_reports["groups"] if not r.get("folder_unchanged")]
    assert changed == []


def test_corpus_finishes_in_time(corpus_reports):
    """The whole batch finishes; its cost fits the budget on 2 idle cores.

    Wall time depends on what else the machine runs, so the budget is checked
    on the CPU time all grading processes used (divided by the 2 cores it is
    graded on); the wall clock only has a generous ceiling.
    """
    seconds, cpu = corpus_reports["seconds"], corpus_reports["cpu"]
    msg = (f"the adversarial corpus took {seconds:.1f} s wall and {cpu:.0f} CPU-s "
           f"(load average now {os.getloadavg()[0]:.1f})")
    assert seconds < CORPUS_CEILING_S, msg
    assert cpu / 2 < CORPUS_BUDGET_S, msg


def test_expected_scores_table():
    """The table of expected scores (printed with -s)."""
    rows = [f"{c.name:<26} " + " ".join(f"{c.expected()[fn]:>4g}" for fn in FULL)
            + f"  = {sum(c.expected().values()):>4g}" for c in CASES]
    print("\n" + f"{'case':<26} " + " ".join(f"{fn[:4]:>4}" for fn in FULL) + "  total\n" + "\n".join(rows))
    assert all(0 <= s <= FULL[fn] for c in CASES for fn, s in c.expected().items())
