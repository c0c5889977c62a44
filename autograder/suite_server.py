"""A warm, trusted Python that forks one child per suite run (the runner's fast path).

Starting ``python -m pytest`` for every exercise costs about two CPU-seconds
before the first check runs (Python, pytest, torch, numpy, gymnasium and the
reference solutions). This server pays that once: it imports them, then
reads one JSON request per line on stdin and forks a child that runs
``pytest.main(args)`` with its output in a log file. When a child ends, the
server writes ``{"id": ..., "rc": ...}`` on stdout.

Only trusted code runs here: the suites and the reference. Student code still
runs only in the sandbox that each suite starts (``sandbox.py``).

The server is single-threaded (a forked child must not inherit locks held by
other threads), exits when stdin closes, and kills the process group of a
request on ``{"kill": id}`` and of every live request when it exits.
"""
from __future__ import annotations

import gc
import json
import os
import select
import signal
import sys

# replies go to a private copy of stdout; anything an import prints goes to stderr instead
_REPLIES = os.dup(1)
os.dup2(2, 1)

# warm-up: everything the suite processes import anyway (threads are set by the runner's env)
import numpy  # noqa: F401
import pytest
import torch  # noqa: F401

import autograder.checks  # noqa: F401
from autograder.child import confine
import autograder.harness  # noqa: F401
import autograder.plugin  # noqa: F401


def _warm_reference() -> None:
    import importlib

    from autograder.exercises import ORDER

    for name in ORDER:
        try:  # the answers behind the seam (they import the reference); a student kit has none
            importlib.import_module(f"autograder.answers.{name}")
        except Exception:  # a missing exercise is the suite's business, not the server's
            pass


def _child(request: dict) -> None:
    """In the forked child: run one suite, then leave without running the server's exit handlers."""
    code = 70
    try:
        os.close(_REPLIES)
        os.setpgid(0, 0)  # its own process group, so a timeout kills the whole run
        # the kernel kills this run when the server dies (killed with its runner on a batch's
        # timeout: the run would otherwise go on, orphaned, with its sandboxes)
        confine.load_libc()
        confine.die_with_parent(os.getppid())
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(log, 1)
        os.dup2(log, 2)
        # fresh file objects: the server's may hold buffered data or locks
        sys.stdin = open(0, "r", closefd=False)
        sys.stdout = open(1, "w", buffering=1, closefd=False)
        sys.stderr = open(2, "w", buffering=1, closefd=False)
        os.chdir(request["cwd"])
        os.environ.update({str(k): str(v) for k, v in (request.get("env") or {}).items()})
        code = int(pytest.main(list(request["args"])))
    except BaseException:  # noqa: BLE001 - report anything as a failed run
        try:
            import traceback

            traceback.print_exc()
        except BaseException:  # noqa: BLE001
            pass
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def _reply(message: dict) -> None:
    os.write(_REPLIES, (json.dumps(message) + "\n").encode())


def serve() -> None:
    _warm_reference()
    # the warm heap is never garbage: out of the collector's sight, a full collection (pytest runs
    # ten at its end) takes microseconds instead of 0.1 s, and a suite run's forked pages stay shared
    gc.freeze()
    live: dict[int, str] = {}  # pid -> request id
    pending = b""
    _reply({"ready": True})
    stdin_open = True
    while stdin_open or live:
        readable, _, _ = select.select([0] if stdin_open else [], [], [], 0.05)
        if readable:
            chunk = os.read(0, 65536)
            if not chunk:
                stdin_open = False
                for pid in live:  # the runner is gone: so are its suite runs
                    _kill(pid)
            pending += chunk
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                request = json.loads(line)
                if "kill" in request:
                    for pid, rid in live.items():
                        if rid == request["kill"]:
                            _kill(pid)
                    continue
                pid = os.fork()
                if pid == 0:
                    _child(request)
                live[pid] = request["id"]
        while live:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                live.clear()
                break
            if pid == 0:
                break
            rid = live.pop(pid, None)
            if rid is not None:
                rc = os.waitstatus_to_exitcode(status)
                if stdin_open:
                    _reply({"id": rid, "rc": rc})


def _kill(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except OSError:
        pass


if __name__ == "__main__":
    serve()
