"""The grader's side of the fork server (``child/forkserver.py``): start it, find it, ask it for a zygote.

One fork server serves every sandbox of a grade (of a whole batch with
``autograder.batch``). The process that starts it keeps one end of its socket
and hands that end down to the suite server and the suites' pytest runs as an
inherited file descriptor named in ``RLKIT_FORKSERVER`` (``"FD"``); a sandbox
built where that variable is absent starts its zygote as a new Python, as
before. Student code never holds the socket: zygotes get a scrubbed
environment and only the file descriptors passed to them.
"""
from __future__ import annotations

import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ENV = "RLKIT_FORKSERVER"
# the child package (autograder/child/) under the name it has in a sandbox's kit part and in the
# fork server's folder; the child's audit hook refuses student imports of this name
CHILD_PACKAGE = "rlkit_worker"


_gave_up: list[str] = []  # why this process stopped asking its fork server (empty: it did not)


def supported(device: str, threads: int) -> bool:
    """Forking a warm zygote is for CPU grading on Linux (CUDA does not survive a fork; the
    server's torch runs one thread)."""
    return (sys.platform.startswith("linux") and hasattr(os, "pidfd_open") and device == "cpu" and threads == 1
            and not os.environ.get("RLKIT_NO_FORKSERVER") and not _gave_up)


def available(device: str, threads: int) -> bool:
    """Whether sandboxes of this process are forked: supported, and a server handed down."""
    return supported(device, threads) and os.environ.get(ENV, "").isdigit()


def give_up(why: str) -> None:
    """A forked zygote never said ready: every later sandbox of this process starts a new Python."""
    _gave_up.append(why)


class SocketServer:
    """A trusted helper process that the grader reaches through a SOCK_SEQPACKET socket pair: the
    grader keeps one end (inheritable: processes given ``pass_fds=(self.fd,)`` and
    :meth:`environ` reach the server too), the server gets the other as the descriptor numbered
    in its command line. The server has a session of its own; :meth:`close` kills it with every
    process of its group. The fork server, and a batch's suite template (``runner.SuiteTemplate``)."""

    env_name = ""  # the environment variable that names the inherited descriptor

    def __init__(self, argv, cwd: str, env: dict, pass_fds: tuple = ()):
        """``argv(fd)``: the server's command line, given the number of its end of the socket."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self.proc = subprocess.Popen(argv(theirs.fileno()), cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                         pass_fds=(*pass_fds, theirs.fileno()), start_new_session=True)
        except OSError:
            ours.close()
            raise
        finally:
            theirs.close()
        self.sock = ours
        os.set_inheritable(self.sock.fileno(), True)

    @property
    def fd(self) -> int:
        return self.sock.fileno()

    def environ(self) -> dict:
        """What a process given ``pass_fds=(self.fd,)`` needs in its environment to use this server."""
        return {self.env_name: str(self.fd)}

    def close(self) -> None:
        self.sock.close()
        if self.proc.poll() is None:  # (never a group id the system may have given away since)
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)  # the server and what it forked in its group
            except (ProcessLookupError, PermissionError):
                pass
            self.proc.wait()


class ForkServer(SocketServer):
    """A running fork server: its process, its folder and the grader's end of its socket."""

    env_name = ENV

    def __init__(self, env_for):
        """``env_for(home)``: the server's whole environment (the zygotes', ``sandbox.zygote_env``)."""
        # private to the grader: the server imports every module of the package at its start, and a
        # zygote imports anything later from its own sandbox's copy
        self.dir = tempfile.mkdtemp(prefix="rlkit-forkserver-")
        shutil.copytree(Path(__file__).with_name("child"), os.path.join(self.dir, CHILD_PACKAGE),
                        ignore=shutil.ignore_patterns("__pycache__"))
        try:
            super().__init__(lambda fd: [sys.executable, "-I", os.path.join(self.dir, CHILD_PACKAGE),
                                         "--fork-server", str(fd)], cwd=self.dir, env=env_for(self.dir))
        except OSError:
            shutil.rmtree(self.dir, ignore_errors=True)
            raise

    def close(self) -> None:
        super().close()  # the server and its spare (keepers have sessions of their own)
        shutil.rmtree(self.dir, ignore_errors=True)


def inherited() -> socket.socket | None:
    """This process's socket to a fork server (from ``RLKIT_FORKSERVER``), or None."""
    value = os.environ.get(ENV, "")
    if not value.isdigit():
        return None
    fd = int(value)
    try:
        os.fstat(fd)
        sock = socket.socket(fileno=os.dup(fd))
    except OSError:
        return None
    if sock.family != socket.AF_UNIX or sock.type != socket.SOCK_SEQPACKET:
        sock.close()
        return None
    return sock


class ForkedZygote:
    """A zygote forked by the fork server: the keeper (``pid``) and the zygote, held by pidfds
    (never by a pid number, which the system may give to another process once they are gone)."""

    def __init__(self, pid: int, keeper_fd: int, zygote_fd: int):
        self.pid, self.keeper_fd, self.zygote_fd = pid, keeper_fd, zygote_fd

    def poll(self) -> int | None:
        """None while the zygote lives (as ``Popen.poll``; its exit code is the keeper's business)."""
        try:
            if self.zygote_fd is None or select.select([self.zygote_fd], [], [], 0)[0]:
                return -1
        except (OSError, ValueError):
            return -1
        return None

    def kill(self) -> None:
        """SIGKILL the keeper and the zygote (its PID namespace goes with the zygote)."""
        for fd in (self.keeper_fd, self.zygote_fd):
            if fd is not None:
                try:
                    signal.pidfd_send_signal(fd, signal.SIGKILL)
                except (ProcessLookupError, OSError):
                    pass

    def wait(self, timeout: float) -> None:
        """Until the zygote is gone (when a PID namespace's first process exits, every other one
        in it has exited: the kernel waits for them), or ``timeout``."""
        end = time.monotonic() + timeout
        for fd in (self.zygote_fd, self.keeper_fd):
            try:
                gone = fd is None or select.select([fd], [], [], max(0.0, end - time.monotonic()))[0]
            except (OSError, ValueError):  # closed meanwhile (by another thread's close)
                gone = True
            if not gone:
                raise subprocess.TimeoutExpired("zygote", timeout)

    def close(self) -> None:
        fds, self.keeper_fd, self.zygote_fd = (self.keeper_fd, self.zygote_fd), None, None
        for fd in fds:
            if fd is not None:
                os.close(fd)


def fork_zygote(server: socket.socket, request: dict, in_fd: int, out_fd: int, log_fd: int,
                timeout: float) -> tuple[ForkedZygote, dict] | None:
    """Ask the server for a zygote; (its handle, the keeper's answer), or None (no server)."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        try:
            socket.send_fds(server, [json.dumps(request).encode()], [in_fd, out_fd, log_fd, theirs.fileno()])
        except OSError:  # the server is gone
            return None
        theirs.close()
        if not select.select([ours], [], [], timeout)[0]:
            return None
        msg, fds, _, _ = socket.recv_fds(ours, 4096, 2)
    finally:
        ours.close()
        theirs.close()
    if len(fds) != 2 or not msg:
        for fd in fds:
            os.close(fd)
        return None
    answer = json.loads(msg)
    handle = ForkedZygote(int(answer["pid"]), fds[0], fds[1])
    if not answer.get("started"):
        handle.kill()
        handle.close()
        return None
    return handle, answer
