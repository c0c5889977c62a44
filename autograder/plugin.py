"""pytest plugin that turns a hidden suite into scored, per-function results.

Every suite test carries two markers:

    @pytest.mark.function("discounted_returns")   # the function it grades
    @pytest.mark.points(2)                          # what it is worth

and uses the ``sub`` fixture (the sandboxed submission) and ``dev`` (the
grading device). A test passes or fails; its feedback is the message of the
:class:`~autograder.checks.CheckFailed` it raised. Any other exception is a
bug in the grader and is reported as such (and never as a pass).
"""
from __future__ import annotations

import json
import threading
import time

import pytest

from .checks import CheckFailed
from .exercises import BY_NAME
from .options import GradingOptions
from .seeds import fingerprint, reseed
from .sandbox import plain_text
from .client import Submission


def pytest_addoption(parser):
    group = parser.getgroup("rlkit")
    group.addoption("--submission", action="store", default=None, help="folder with the student's modules")
    group.addoption("--rlkit-options", action="store", default=None,
                    help="the run's GradingOptions as JSON (autograder/options.py; default: all defaults)")
    group.addoption("--results-json", action="store", default=None)
    group.addoption("--graded-module", action="store", default=None,
                    help="the exercise graded (it imports the student's own earlier exercises)")


def options_of(config) -> GradingOptions:
    """The run's one options object (read once, kept on the config)."""
    if getattr(config, "_rlkit_options", None) is None:
        text = config.getoption("--rlkit-options", None)
        config._rlkit_options = GradingOptions.from_json(text) if text else GradingOptions()
    return config._rlkit_options


def pytest_configure(config):
    config.addinivalue_line("markers", "points(n): points this test is worth")
    config.addinivalue_line("markers", "function(name): the student function this test grades")
    config.addinivalue_line("markers", "learning: trains an agent (slow; skipped by the mutant tests)")
    config._rlkit_results = []
    config._rlkit_protections = []
    config._rlkit_missing = []
    config._rlkit_start = time.monotonic()
    config._rlkit_setup_seconds = 0.0
    config._rlkit_sub = None
    path = config.getoption("--submission", None)
    if path:
        # start the sandbox now, in the background: it overlaps with collection
        s = Submission(path, options=options_of(config), module=config.getoption("--graded-module"))
        starter = threading.Thread(target=_start_quietly, args=(s,), daemon=True)
        starter.start()
        config._rlkit_sub = (s, starter)


def pytest_unconfigure(config):
    if getattr(config, "_rlkit_sub", None):
        s, starter = config._rlkit_sub
        starter.join(timeout=130)
        s.close()


def _start_quietly(s: Submission) -> None:
    try:
        s.sandbox.restart()
    except Exception:  # retried (and reported) on the first call
        s.sandbox.close()


@pytest.fixture(scope="session")
def sub(request):
    if request.config._rlkit_sub is None:
        pytest.exit("--submission is required", returncode=4)
    s, starter = request.config._rlkit_sub
    starter.join()
    yield s
    request.config._rlkit_protections = list(s.protections)
    request.config._rlkit_missing = list(s.missing_protections)
    s.close()


@pytest.fixture(autouse=True)
def _inputs_of_this_test(request):
    """Each test's inputs come from generators reseeded for it (``autograder/seeds.py``)."""
    reseed(request.module, request.node.originalname or request.node.name)


@pytest.fixture(scope="session")
def dev(request) -> str:
    return options_of(request.config).device


def _marker_arg(item, name, default=None):
    m = item.get_closest_marker(name)
    return m.args[0] if m and m.args else default


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "setup":  # mostly the wait for the sandbox (started at configure time)
        item.config._rlkit_setup_seconds += report.duration
    if report.when == "call" or (report.when == "setup" and report.failed):
        points = float(_marker_arg(item, "points", 0))
        function = _marker_arg(item, "function", "")
        doc = (item.function.__doc__ or "").strip().splitlines()
        title = doc[0].strip() if doc else item.name.removeprefix("test_").replace("_", " ")
        passed = report.passed
        feedback = ""
        grader_error = False
        if not passed and call.excinfo is not None:
            exc = call.excinfo.value
            if isinstance(exc, CheckFailed):
                # one line of plain text: student text inside a message loses escapes and length
                feedback = plain_text(str(exc).strip().splitlines()[0], 600) if str(exc).strip() else "check failed"
            else:
                grader_error = True
                detail = plain_text(str(exc), 300)
                feedback = f"grader error ({type(exc).__name__}: {detail}); please report it"
        item.config._rlkit_results.append({
            "name": title, "id": item.name, "function": function,
            "score": points if passed else 0.0, "max_score": points,
            "passed": bool(passed), "feedback": feedback, "grader_error": grader_error,
            "seconds": round(report.duration, 3),
            "learning": item.get_closest_marker("learning") is not None,
        })


def gate_training(results: list[dict], module: str | None) -> None:
    """A training function's points need the functions it trains with to pass their own checks.

    The kit's loop runs in the child next to the student's code, which could
    fake a trained result in memory; a submission whose learning functions fail
    their deterministic checks therefore earns no training points. ex5's toy
    RLHF runs its loop here, trusted, but the student's functions share one
    session child and could tell the runs apart; its learning test (graded as
    ``rlhf_rewards``) is gated the same way, and only that test of the function.
    """
    ex = BY_NAME.get(module or "")
    if ex is None:
        return
    failing = {r["function"] for r in results if not r["passed"]}
    for r in results:
        needed = ex.trains_with.get(r["function"], ())
        if r["function"] in ex.functions and not r.get("learning"):
            continue  # a student function's own checks stand alone; only its learning test is gated
        broken = [f for f in needed if f in failing]
        if r["passed"] and broken:
            r.update(passed=False, score=0.0, feedback=(
                f"{r['function']}(): the training points need {', '.join(f + '()' for f in needed)} to pass "
                f"their own checks first ({', '.join(f + '()' for f in broken)} fail)"))


def pytest_sessionfinish(session, exitstatus):
    from .oracle import flush_recordings, recording

    if recording():  # answers computed by this suite run, kept for the student kit
        flush_recordings()
    gate_training(session.config._rlkit_results, session.config.getoption("--graded-module", None))
    path = session.config.getoption("--results-json")
    if not path:
        return
    with open(path, "w") as f:
        json.dump({
            "tests": session.config._rlkit_results,
            "protections": session.config._rlkit_protections,
            "missing_protections": session.config._rlkit_missing,
            "inputs": fingerprint(),
            "seconds": time.monotonic() - session.config._rlkit_start,
            "setup_seconds": session.config._rlkit_setup_seconds,
        }, f)
