"""Runs the hidden suites against a submission folder and builds the report.

Each exercise's suite runs in its own trusted pytest process (in parallel
over the machine's cores); each of those starts its own sandbox for the
student's code. The result is a plain dict (see ``report.py`` for its shape).
"""
from __future__ import annotations

import atexit
import itertools
import json
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .exercises import BY_NAME, ORDER, POINTS
from .options import GradingOptions
from . import forkserver
from .sandbox import KIT_ROOT, MALLOC_HUGE_PAGES, GraderError, start_fork_server, unreadable_for_others

SUITES = Path(__file__).resolve().parent / "suites"
TEMPLATE_ENV = "RLKIT_SUITE_TEMPLATE"  # a batch's suite template (an inherited socket): SuiteTemplate


def available_exercises() -> list[str]:
    return [name for name in ORDER if (SUITES / f"test_{name}.py").is_file()]


def _suite_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(KIT_ROOT)
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"  # only our plugin (hypothesis' alone costs 2 s)
    env.setdefault("OMP_NUM_THREADS", "1")
    env.setdefault(*MALLOC_HUGE_PAGES)  # the suite server forks a run per exercise (see sandbox.py)
    env.pop("PYTHONSTARTUP", None)
    env.pop(TEMPLATE_ENV, None)  # the batch's template is for this runner alone, not its suite runs
    return env


_forks = None  # this process's fork server (sandbox.start_fork_server), started with the suite server


def _fork_server() -> tuple[dict, tuple]:
    """(environment, file descriptors) that give a suite run this grade's fork server: the one
    this process inherited (a batch shares one), else one it starts (none where unsupported)."""
    global _forks
    inherited = os.environ.get(forkserver.ENV, "")
    if inherited.isdigit():
        return {forkserver.ENV: inherited}, (int(inherited),)
    if _forks is None or _forks.proc.poll() is not None:
        _forks = start_fork_server()
        if _forks is not None:
            atexit.register(_forks.close)  # (its folder; the server itself ends with its socket)
    if _forks is None:
        return {}, ()
    return _forks.environ(), (_forks.fd,)


class SuiteTemplate(forkserver.SocketServer):
    """A batch's warm start of suite servers (``suite_server.py --template``): torch, pytest, the
    suites and the reference are imported once per batch, and each submission's runner gets its
    suite server as a fork of it. Its runners find it through ``RLKIT_SUITE_TEMPLATE`` (an
    inherited socket, as the fork server's). Closing it kills the servers it forked too (their
    runners are done by then)."""

    env_name = TEMPLATE_ENV

    def __init__(self, forks=None):
        """``forks``: the batch's fork server, which the suite runs' sandboxes then use."""
        fork_env, fds = (forks.environ(), (forks.fd,)) if forks is not None else ({}, ())
        super().__init__(lambda fd: [sys.executable, "-m", "autograder.suite_server", "--template", str(fd)],
                         cwd=str(KIT_ROOT), env={**_suite_env(), **fork_env}, pass_fds=fds)


def start_suite_template(forks=None) -> SuiteTemplate | None:
    """A batch's suite template (None where suite servers cannot be forked: then each runner starts its own)."""
    if not hasattr(os, "pidfd_open") or os.environ.get("RLKIT_NO_SUITE_SERVER"):
        return None
    try:
        return SuiteTemplate(forks)
    except OSError:
        return None


class _ForkedServer:
    """A suite server forked by the batch's template, held by a pidfd (as much of ``Popen`` as
    ``_SuiteServer`` uses)."""

    def __init__(self, pid: int, pidfd: int, stdin, stdout):
        self.pid, self.pidfd, self.stdin, self.stdout = pid, pidfd, stdin, stdout

    def poll(self) -> int | None:
        try:
            return -1 if select.select([self.pidfd], [], [], 0)[0] else None
        except (OSError, ValueError):
            return -1

    def kill(self) -> None:
        try:
            signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)
        except OSError:
            pass


def _fork_from_template(env: dict) -> _ForkedServer | None:
    """A suite server forked by the template this runner inherited (``RLKIT_SUITE_TEMPLATE``), or None."""
    value = os.environ.get(TEMPLATE_ENV, "")
    if not value.isdigit():
        return None
    try:
        fd = os.dup(int(value))
    except OSError:
        return None
    try:
        template = socket.socket(fileno=fd)
    except OSError:  # not a socket
        os.close(fd)
        return None
    in_r, in_w = os.pipe()
    out_r, out_w = os.pipe()
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    msg, fds = b"", []
    try:
        if template.family == socket.AF_UNIX and template.type == socket.SOCK_SEQPACKET:
            socket.send_fds(template, [json.dumps({"env": env, "cwd": str(KIT_ROOT)}).encode()],
                            [in_r, out_w, theirs.fileno()])
            theirs.close()
            if select.select([ours], [], [], 60)[0]:
                msg, fds, _, _ = socket.recv_fds(ours, 4096, 1)
    except OSError:
        pass
    finally:
        for f in (template, ours, theirs):
            f.close()
        os.close(in_r)
        os.close(out_w)
    if not msg or len(fds) != 1:
        for fd in (*fds, in_w, out_r):
            os.close(fd)
        return None
    return _ForkedServer(int(json.loads(msg)["pid"]), fds[0], os.fdopen(in_w, "wb"), os.fdopen(out_r, "rb"))


class _SuiteServer:
    """Client of ``suite_server.py``: one warm trusted Python per runner process, shared by its
    threads: a fork of the batch's template, else a new one."""

    def __init__(self):
        fork_env, fds = _fork_server()  # it warms up while the suite server does
        env = {**_suite_env(), **fork_env}
        self.proc = _fork_from_template(env) or subprocess.Popen(
            [sys.executable, "-m", "autograder.suite_server"], cwd=str(KIT_ROOT), env=env,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, pass_fds=fds)
        first = self.proc.stdout.readline()
        if not first or not json.loads(first).get("ready"):
            self.proc.kill()
            raise GraderError("the suite server did not start")
        self.lock = threading.Lock()
        self.done: dict[str, tuple[threading.Event, list]] = {}
        self.counter = itertools.count()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            msg = json.loads(line)
            with self.lock:
                event, box = self.done.get(msg["id"], (None, None))
            if event is not None:
                box.append(msg["rc"])
                event.set()
        with self.lock:  # the server is gone: wake every waiter
            for event, _ in self.done.values():
                event.set()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def run(self, args: list[str], log: Path, timeout: float, env: dict | None = None) -> int | None:
        """The suite's exit code, or None on timeout (its process group is killed)."""
        rid = f"r{next(self.counter)}"
        event, box = threading.Event(), []
        with self.lock:
            self.done[rid] = (event, box)
            self.proc.stdin.write((json.dumps({"id": rid, "args": args, "log": str(log),
                                               "cwd": str(KIT_ROOT), "env": env or {}}) + "\n").encode())
            self.proc.stdin.flush()
        finished = event.wait(timeout)
        with self.lock:
            self.done.pop(rid, None)
            if not finished:
                self.proc.stdin.write((json.dumps({"kill": rid}) + "\n").encode())
                self.proc.stdin.flush()
        if not finished:
            return None
        if not box:
            raise GraderError("the suite server stopped")
        return box[0]


_server: _SuiteServer | None = None
_server_lock = threading.Lock()


def suite_server_cpu_seconds() -> float:
    """CPU seconds used so far by the live suite server and the suite runs it has reaped (Linux; else 0)."""
    server = _server
    if server is None or not server.alive():
        return 0.0
    try:
        fields = Path(f"/proc/{server.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
        return (utime + stime + cutime + cstime) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


def _get_server() -> _SuiteServer | None:
    """The shared suite server (started on first use, with the fork server), or None where it
    cannot run (then: a fresh pytest)."""
    global _server
    if not hasattr(os, "fork") or os.environ.get("RLKIT_NO_SUITE_SERVER"):
        return None
    with _server_lock:
        if _server is None or not _server.alive():
            try:
                _server = _SuiteServer()
            except (OSError, ValueError, GraderError):
                _server = None
        return _server


def _run_suite(name: str, submission: Path, options: GradingOptions) -> dict:
    suite = SUITES / f"test_{name}.py"
    timeout = options.suite_timeout
    env = {"RLKIT_COURSE_SEED": options.course_seed} if options.course_seed else {}
    with tempfile.TemporaryDirectory(prefix="rlkit-results-") as tmp:
        out = Path(tmp) / "results.json"
        args = [
            str(suite),
            "-p", "autograder.plugin", "-p", "no:cacheprovider", "--noconftest",
            "-c", str(SUITES / "pytest.ini"), "--rootdir", str(SUITES),
            "-q", "--no-header", "-rN", "--tb=no",
            "--submission", str(submission), "--rlkit-options", options.to_json(),
            "--results-json", str(out), "--graded-module", name,
        ]
        if options.skip_learning:
            args += ["-m", "not learning"]
        t0 = time.monotonic()
        server = _get_server()
        if server is not None:
            log = Path(tmp) / "pytest.log"
            try:
                rc = server.run(args, log, timeout, env)
            except (OSError, GraderError):  # the server died: this run goes the slow way
                server, rc = None, None
            else:
                if rc is None:
                    return {"name": name, "error": f"the {name} suite did not finish within {timeout:.0f} s"}
                output = log.read_text(errors="replace") if log.exists() else ""
        if server is None:
            fork_env, fds = _fork_server()
            try:
                proc = subprocess.run([sys.executable, "-m", "pytest", *args], cwd=str(KIT_ROOT),
                                      env={**_suite_env(), **fork_env, **(env or {})}, pass_fds=fds,
                                      capture_output=True, text=True, timeout=timeout)
            except subprocess.TimeoutExpired:
                return {"name": name, "error": f"the {name} suite did not finish within {timeout:.0f} s"}
            rc, output = proc.returncode, proc.stdout + proc.stderr
        if not out.exists():
            return {"name": name, "error": f"the {name} suite could not run (pytest exit {rc}): {output[-1500:]}"}
        data = json.loads(out.read_text())
        data["name"] = name
        data["wall_seconds"] = time.monotonic() - t0
        return data


def strict_preflight(kernel: bool = True) -> None:
    """Strict mode grades only where the kernel confines student code: fail fast, and clearly, where not."""
    from .child import confine

    blocked = unreadable_for_others(sys.prefix) if os.geteuid() == 0 else None
    if blocked:
        raise GraderError(f"strict sandbox: the Python environment {sys.prefix} is not readable by the sandbox "
                          f"users ({blocked} is closed to other users); run `chmod o+rx {blocked}` or put the "
                          f"virtualenv in a readable place (Gradescope's setup.sh uses /autograder/venv)")
    if not kernel:
        return

    confine.load_libc()
    with tempfile.TemporaryDirectory(prefix="rlkit-probe-") as d:
        for part in ("kit", "work"):
            os.makedirs(os.path.join(d, part))
        Path(d, "kit", "config.json").write_text("{}")
        kernel = confine.probe_confinement(os.path.join(d, "kit"), os.path.join(d, "work"), "cpu", [str(KIT_ROOT)])
    lacking = [n for n, k in (("Landlock", "landlock"), ("seccomp", "seccomp")) if not kernel.get(k)]
    if lacking:
        raise GraderError(f"strict sandbox: {' and '.join(lacking)} not active on this kernel, so student code would "
                          f"not be confined by the kernel; refusing to grade. Run on Linux >= 5.13 with Landlock "
                          f"enabled, or pass --allow-weak-sandbox (every report then says so)")


def attribute_dependencies(report: dict) -> None:
    """Name the earlier exercise when a failed function calls one that fails its own checks.

    The child imports the student's own earlier exercises (no reference code is
    ever in a sandbox), so a wrong ``discounted_returns`` can also fail
    ``reinforce_update``; the feedback then says where to look first.
    """
    failing = {(e["name"], t["function"]) for e in report["exercises"] for t in e["tests"] if not t["passed"]}
    for e in report["exercises"]:
        uses = BY_NAME[e["name"]].uses if e["name"] in BY_NAME else {}
        for t in e["tests"]:
            broken = [f"{fn}() of {mod}" for mod, fn in uses.get(t["function"], ()) if (mod, fn) in failing]
            if not t["passed"] and broken and "fix ex" not in t["feedback"]:
                t["feedback"] += f" (this may come from {', '.join(broken)}, which fails its own checks: fix that first)"
                t["caused_by"] = broken


def gate_training_across_exercises(report: dict) -> None:
    """The training points need the EARLIER exercises' functions a training loop calls to pass their
    own checks too (``plugin.gate_training`` does it within one exercise).

    ``train_ppo`` trains with ex3's ``compute_gae`` and ``value_loss``; a submission whose ex3 fails
    those checks earns no PPO training points in a run that grades both (a run of one exercise
    cannot know). The same tests are gated as within an exercise: every test of a given training
    function, and the learning tests of a student's one.
    """
    failing = {(e["name"], t["function"]) for e in report["exercises"] for t in e["tests"] if not t["passed"]}
    for e in report["exercises"]:
        ex = BY_NAME.get(e["name"])
        if ex is None:
            continue
        for t in e["tests"]:
            if not t["passed"] or t["function"] not in ex.trains_with:
                continue
            if t["function"] in ex.functions and not t.get("learning"):
                continue
            broken = [f"{fn}() of {mod}" for mod, fn in ex.uses.get(t["function"], ()) if (mod, fn) in failing]
            if broken:
                t.update(passed=False, score=0.0, caused_by=broken, feedback=(
                    f"{t['function']}(): the training points need the functions it trains with to pass their own "
                    f"checks first ({', '.join(broken)} fail)"))
        e["score"] = round(sum(t["score"] for t in e["tests"]), 4)


def grade(submission, exercises: list[str] | None = None, options: GradingOptions | None = None,
          **changes) -> dict:
    """Grade ``submission`` (a folder) and return the report dict.

    ``options`` (see :class:`GradingOptions`; keyword arguments change single fields, e.g.
    ``sandbox="strict"``): how to grade. ``course_seed`` (or ``RLKIT_COURSE_SEED`` in the
    environment) is the instructor's secret seed of the suites' inputs; the report carries only a
    fingerprint of it.
    """
    options = (options or GradingOptions()).replace(**changes)
    submission = Path(submission).resolve()
    if not submission.is_dir():
        raise GraderError(f"submission folder not found: {submission}")
    names = exercises or available_exercises()
    unknown = [n for n in names if n not in available_exercises()]
    if unknown:
        raise GraderError(f"unknown exercise(s) {unknown}; known: {available_exercises()}")
    jobs = options.jobs or min(len(names), os.cpu_count() or 1)
    if options.strict:
        strict_preflight(kernel=not options.allow_weak)
    from .kit_mode import mode

    if mode() == "replay" and (options.course_seed or os.environ.get("RLKIT_COURSE_SEED")):
        raise GraderError("a student kit holds answers for the published inputs only: a course seed "
                          "(--seed, RLKIT_COURSE_SEED) needs the full kit, where every answer is computed live")
    t0 = time.monotonic()
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        slowest_first = sorted(names, key=lambda n: -BY_NAME[n].seconds)
        futures = {n: pool.submit(_run_suite, n, submission, options) for n in slowest_first}
        raw = {n: f.result() for n, f in futures.items()}
    report = {
        "submission": str(submission),
        "device": options.device,
        "sandbox": options.sandbox,
        "exercises": [],
        "errors": [],
        "protections": [],
        "missing_protections": [],
        "inputs": "",
    }
    for name in names:
        data = raw[name]
        if "error" in data:
            report["errors"].append(data["error"])
            tests = []
        else:
            tests = data["tests"]
            if data.get("protections") and not report["protections"]:
                report["protections"] = data["protections"]
                report["missing_protections"] = data.get("missing_protections", [])
            report["inputs"] = report["inputs"] or data.get("inputs", "")
            report["errors"].extend(
                f"{name}: {t['id']}: {t['feedback']}" for t in tests if t.get("grader_error"))
        ex_max = sum(t["max_score"] for t in tests) if tests else POINTS[name]
        report["exercises"].append({
            "name": name,
            "score": round(sum(t["score"] for t in tests), 4),
            "max_score": ex_max,
            "module_present": (submission / f"{name}.py").is_file(),
            "seconds": round(data.get("wall_seconds", 0.0), 2),
            # where those seconds went: the suite's pytest run (the rest is starting it), the wait
            # for the sandbox in test setups, and the checks themselves
            "timing": {"pytest": round(data.get("seconds", 0.0), 2), "setup": round(data.get("setup_seconds", 0.0), 2),
                       "checks": round(sum(t.get("seconds", 0.0) for t in tests), 2)},
            "tests": tests,
        })
    attribute_dependencies(report)
    gate_training_across_exercises(report)
    report["total"] = round(sum(e["score"] for e in report["exercises"]), 4)
    report["max_total"] = sum(e["max_score"] for e in report["exercises"])
    report["seconds"] = round(time.monotonic() - t0, 2)
    return report
