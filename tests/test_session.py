"""Sessions: one long-lived sandbox child for a learning test's loop (``Submission.session``).

A trusted loop (ex5's toy RLHF) calls the student's functions hundreds of
times; a session answers them all from one confined child instead of a fork,
a confinement and an import per call. These tests pin down what changes and
what does not: the child is confined exactly as any child, a crash or a hang
fails that call and the rest of the session (never the grader), and outside a
session every call still gets a fresh child.
"""
from __future__ import annotations

import os

import pytest
import torch

from autograder.sandbox import Limits
from autograder.client import Submission

from conftest import ROOT

MODES = ["standard", "strict"]

SOURCE = '''
import os
import torch

CALLS = 0


def count():
    global CALLS
    CALLS += 1
    return torch.tensor(float(CALLS))


def leave():
    os._exit(3)


def spin():
    while True:
        pass


def peek(path):
    with open(path) as f:
        return torch.tensor(float(len(f.read())))


def spawn():
    return torch.tensor(float(os.fork()))
'''


@pytest.fixture(params=MODES)
def sub(request, tmp_path):
    if request.param == "strict" and os.geteuid() != 0:
        pytest.skip("strict mode's users need root")
    folder = tmp_path / "sub"
    folder.mkdir()
    (folder / "probe.py").write_text(SOURCE)
    s = Submission(folder, strict=request.param == "strict")
    yield s
    s.close()


def counts(sub, n):
    out = []
    for _ in range(n):
        res = sub.call("probe", "count")
        assert res.ok, res.error
        out.append(float(res.output().array))
    return out


def test_state_lives_for_one_session_only(sub):
    assert counts(sub, 2) == [1.0, 1.0]  # a fresh child per call
    with sub.session(timeout=60):
        assert counts(sub, 3) == [1.0, 2.0, 3.0]  # one child for the whole session
    assert counts(sub, 2) == [1.0, 1.0]
    with sub.session(timeout=60):  # a new session starts from a fresh child again
        assert counts(sub, 1) == [1.0]


def test_an_exit_fails_that_call_and_the_rest_of_the_session(sub):
    with sub.session(timeout=60):
        assert counts(sub, 1) == [1.0]
        res = sub.call("probe", "leave")
        assert not res.ok and res.error["type"] == "Crash" and "code 3" in res.error["message"]
        later = sub.call("probe", "count")
        assert not later.ok and later.error["type"] == "Crash"
    assert counts(sub, 1) == [1.0]  # the grader goes on


def test_a_hang_times_out_and_the_sandbox_goes_on(sub):
    with sub.session(timeout=60):
        res = sub.call("probe", "spin", timeout=2)
        assert not res.ok and res.error["type"] == "Timeout"
        assert not sub.call("probe", "count").ok
    assert counts(sub, 1) == [1.0]


def test_the_session_has_one_time_budget_for_all_its_calls(sub):
    with sub.session(timeout=3, limits=Limits(cpu_seconds=30)):
        assert counts(sub, 1) == [1.0]
        res = sub.call("probe", "spin", timeout=20)  # the call may take 20 s; the session only 3
        assert not res.ok and res.error["type"] == "Timeout"


def test_the_cpu_limit_covers_the_whole_session(sub):
    with sub.session(timeout=60, limits=Limits(cpu_seconds=2)):
        res = sub.call("probe", "spin", timeout=30)
        assert not res.ok and res.error["type"] == "Crash" and "SIGXCPU" in res.error["message"] + str(res.error)


def test_a_session_child_is_confined_like_any_child(sub):
    secret = ROOT / "solutions" / "ex1_values.py"
    with sub.session(timeout=60):
        read = sub.call("probe", "peek", str(secret))
        assert not read.ok, "a session child read the reference"
        forked = sub.call("probe", "spawn")
        assert not forked.ok, "a session child started a process"
        assert counts(sub, 1) == [1.0]  # refused, not crashed: the session goes on
    plain = sub.call("probe", "peek", str(secret))
    assert not plain.ok


def test_a_session_call_returns_values_and_gradients_like_a_plain_call(tmp_path):
    folder = tmp_path / "sub"
    folder.mkdir()
    (folder / "probe.py").write_text("def square(x):\n    return (x * x).sum()\n")
    sub = Submission(folder)
    try:
        x = torch.tensor([1.0, -2.0, 3.0])
        from autograder.harness import Call, to_case
        import numpy as np

        case = to_case(Call(x, requires_grad=(0,)), grad_weights={"": np.ones(())})
        (plain,) = sub.call_many("probe", "square", [case])
        with sub.session(timeout=60):
            (inside,) = sub.call_many("probe", "square", [case])
        for res in (plain, inside):
            assert res.ok, res.error
            assert float(res.output().array) == 14.0
            assert np.allclose(res.grads["arg0"], [2.0, -4.0, 6.0])
    finally:
        sub.close()


def test_a_child_that_dies_between_calls_fails_the_rest_of_its_session(tmp_path):
    """A background thread ends the session's child after the call returned: the next call of the
    session fails as a crash, the zygote survives, and later plain calls work."""
    folder = tmp_path / "sub"
    folder.mkdir()
    (folder / "probe.py").write_text(SOURCE + '''

def leave_later():
    import threading
    import time

    def bye():
        time.sleep(0.3)
        os._exit(5)

    threading.Thread(target=bye, daemon=True).start()
    return torch.tensor(1.0)
''')
    sub = Submission(folder)
    try:
        with sub.session(timeout=60):
            assert sub.call("probe", "leave_later").ok
            import time

            time.sleep(1.0)
            res = sub.call("probe", "count")
            assert not res.ok and res.error["type"] == "Crash", res.error
        zygote = sub.sandbox.proc
        assert counts(sub, 1) == [1.0]
        assert sub.sandbox.proc is zygote  # the same zygote: it did not die
    finally:
        sub.close()
