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

``--template FD`` (a batch's, ``runner.SuiteTemplate``): the same warm-up once
for the whole batch; then each request on the SOCK_SEQPACKET socket ``FD``
(JSON ``{"env", "cwd"}`` with three file descriptors: the new server's stdin
and stdout, and a reply socket) forks one suite server, which answers on the
reply socket with its pid and a pidfd of itself and serves its runner exactly
as above. Only trusted processes hold that socket (the batch and its runners).
"""
from __future__ import annotations

import gc
import json
import os
import select
import signal
import socket
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


def _warm() -> None:
    _warm_reference()
    # the warm heap is never garbage: out of the collector's sight, a full collection (pytest runs
    # ten at its end) takes microseconds instead of 0.1 s, and a suite run's forked pages stay shared
    gc.freeze()


def serve() -> None:
    """Serve the runner on stdin (fd 0) and ``_REPLIES`` until stdin closes and the last run ends."""
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


MAX_REQUEST_BYTES = 1 << 16


def template(sock_fd: int) -> None:
    """``--template FD``: fork a warm suite server for each request, until the socket's end."""
    _warm()
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # its servers are reaped by the kernel
    sock = socket.socket(fileno=sock_fd)
    while True:
        try:
            msg, fds, _, _ = socket.recv_fds(sock, MAX_REQUEST_BYTES, 3)
        except OSError:
            return
        if not msg or len(fds) != 3:
            for fd in fds:
                os.close(fd)
            if not msg:  # the batch and every runner have closed their ends
                return
            continue
        try:
            if os.fork() == 0:
                _forked_server(sock, msg, *fds)
        except OSError:  # no process left to fork: that runner's reply socket closes, it starts its own
            pass
        for fd in fds:
            os.close(fd)


def _forked_server(sock: socket.socket, msg: bytes, in_fd: int, out_fd: int, reply_fd: int) -> None:
    """In a fork of the template: become the runner's suite server (never returns)."""
    global _REPLIES
    code = 70
    try:
        sock.close()  # the template's socket is the batch's: no suite run inherits it
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # serve() reaps its runs itself
        request = json.loads(msg)
        os.dup2(in_fd, 0)
        os.close(in_fd)
        os.close(_REPLIES)
        _REPLIES = out_fd
        os.environ.clear()  # the runner's environment, as a server it started would have
        os.environ.update({str(k): str(v) for k, v in request["env"].items()})
        if "tempfile" in sys.modules:
            sys.modules["tempfile"].tempdir = None  # read again from TMPDIR
        os.chdir(request["cwd"])
        reply = socket.socket(fileno=reply_fd)
        pidfd = os.pidfd_open(os.getpid())  # the runner's handle: never a pid number that can be reused
        socket.send_fds(reply, [json.dumps({"pid": os.getpid()}).encode()], [pidfd])
        os.close(pidfd)
        reply.close()
        serve()
        code = 0
    except BaseException:  # noqa: BLE001 - the runner sees a server that never said ready
        try:
            import traceback

            traceback.print_exc()
        except BaseException:  # noqa: BLE001
            pass
    finally:
        os._exit(code)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--template"]:
        template(int(sys.argv[2]))
    else:
        _warm()
        serve()
