"""The fork server: sandboxes' zygotes forked from one warm Python (``autograder/forkserver.py``).

A forked zygote must be what a zygote started as a new Python is: the same
answers, the same protections, the same confinement of its children, and
nothing more in its memory or its file descriptors. The fork server must not
become a way out: no child holds its socket, no zygote inherits another
sandbox's request, and a sandbox whose keeper dies dies with it.
"""
from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest
import torch

from autograder import forkserver, sandbox
from autograder.client import Submission
from autograder.forkserver import ForkedZygote

MODES = ["standard", "strict"]

SOURCE = r'''
import os
import time


def add(a, b):
    return a + b


def identity():
    """What this child is: user, capabilities, namespace, file descriptors."""
    status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines() if ":" in line)
    fds = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            fds.append(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:
            pass
    pids = [int(p) for p in os.listdir("/proc") if p.isdigit()]
    try:
        nets = [line.split(":")[0].strip() for line in open("/proc/self/net/dev").read().splitlines()[2:]]
    except OSError:
        nets = ["?"]
    return {"uid": os.getuid(), "euid": os.geteuid(), "groups": len(os.getgroups()),
            "caps": " ".join(status[k].strip() for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")),
            "seccomp": status["Seccomp"].strip(), "no_new_privs": status["NoNewPrivs"].strip(),
            "max_pid": max(pids), "sockets": sum(f.startswith("socket:") for f in fds),
            "interfaces": " ".join(sorted(nets))}


def find(first, second):
    """1 if first+second lies anywhere in this process's writable memory, else 0 (the needle is
    never built here: its halves are separate objects)."""
    first, second = first.encode(), second.encode()
    size = len(first) + len(second)
    maps = [line.split() for line in open("/proc/self/maps").read().splitlines()]
    with open("/proc/self/mem", "rb", buffering=0) as mem:
        for fields in maps:
            if not fields[1].startswith("rw"):
                continue
            start, end = (int(x, 16) for x in fields[0].split("-"))
            pos = start
            while pos < end:
                n = min(end - pos, 8 << 20)
                try:
                    mem.seek(pos)
                    chunk = mem.read(n + size)
                except OSError:
                    break
                at = chunk.find(first)
                while at != -1:
                    if chunk[at + len(first):at + size] == second:
                        return 1
                    at = chunk.find(first, at + 1)
                pos += n
    return 0


def sleep(tag):
    with open(f"pid-{tag}.txt", "w") as fh:
        fh.write(str(os.getpid()))
    time.sleep(1000)
'''


@pytest.fixture(scope="module")
def server():
    forks = sandbox.start_fork_server()
    if forks is None:
        pytest.skip("no fork server on this platform")
    yield forks
    forks.close()


@pytest.fixture
def use_server(server, monkeypatch):
    closed = sandbox.unreadable_for_others(os.path.dirname(os.__file__)) if os.geteuid() == 0 else None
    if closed:  # (.ci/run opens it) the sandbox users could not import from it: no forked zygotes
        pytest.skip(f"the standard library is closed to the sandbox users at {closed}")
    monkeypatch.setenv(forkserver.ENV, str(server.fd))
    return server


def _folder(tmp_path: Path, name: str = "sub") -> Path:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "mod.py").write_text(SOURCE)
    return folder


def _strict(mode: str) -> bool:
    if mode == "strict" and os.geteuid() != 0:
        pytest.skip("strict mode's users need root")
    return mode == "strict"


def _value(res, key=""):
    leaf = res.output(key)
    return leaf.info.get("value") if leaf.array is None else leaf.array.item()


@pytest.mark.parametrize("mode", MODES)
def test_a_forked_zygote_answers_and_protects_like_a_new_python(use_server, tmp_path, mode, monkeypatch):
    strict = _strict(mode)
    folder = _folder(tmp_path)
    forked = Submission(folder, strict=strict)
    try:
        res = forked.call("mod", "add", torch.tensor([1.0, 2.0]), torch.tensor([3.0, 4.0]))
        assert res.ok and res.output("").array.tolist() == [4.0, 6.0]
        assert isinstance(forked.sandbox.proc, ForkedZygote)
        ident = forked.call("mod", "identity")
        assert ident.ok, ident.error
        forked_protections = (forked.sandbox.protections, forked.sandbox.missing)
    finally:
        forked.close()
    monkeypatch.delenv(forkserver.ENV)
    fresh = Submission(folder, strict=strict)
    try:
        assert fresh.call("mod", "add", torch.tensor([1.0]), torch.tensor([2.0])).ok
        assert not isinstance(fresh.sandbox.proc, ForkedZygote)
        assert forked_protections == (fresh.sandbox.protections, fresh.sandbox.missing)
        again = fresh.call("mod", "identity")
        assert again.ok
        for key in ("caps", "seccomp", "no_new_privs", "sockets", "groups", "interfaces"):
            assert _value(ident, key) == _value(again, key), key
    finally:
        fresh.close()


@pytest.mark.parametrize("mode", MODES)
def test_a_forked_zygotes_child_is_confined(use_server, tmp_path, mode):
    """Its own user without any capability, seccomp, its own PID namespace (and network in
    strict mode), and no socket: nothing to reach the fork server with."""
    strict = _strict(mode)
    sub = Submission(_folder(tmp_path), strict=strict)
    try:
        res = sub.call("mod", "identity")
        assert res.ok, res.error
        assert isinstance(sub.sandbox.proc, ForkedZygote)
        assert _value(res, "sockets") == 0
        assert _value(res, "seccomp") == "2" and _value(res, "no_new_privs") == "1"
        if "its own PID namespace (other processes are invisible)" in " ".join(sub.sandbox.protections):
            assert _value(res, "max_pid") < 10  # the zygote, the probe, this child: nothing of the host
        if os.geteuid() == 0:
            assert _value(res, "uid") == _value(res, "euid") == sub.sandbox.lease.uid
            assert _value(res, "groups") == 0
            assert _value(res, "caps") == " ".join(["0000000000000000"] * 5)
        if strict:
            assert _value(res, "interfaces") == "lo"
    finally:
        sub.close()


def test_no_zygote_inherits_another_sandboxs_request(use_server, tmp_path):
    """The server forks a spare before each request and never reads one itself: the memory a
    zygote inherits holds no other sandbox's folder name (it is in that sandbox's request)."""
    alice = Submission(_folder(tmp_path, "alice"))
    bob = Submission(_folder(tmp_path, "bob"))
    try:
        assert alice.call("mod", "add", torch.tensor(1.0), torch.tensor(1.0)).ok
        token = os.path.basename(alice.sandbox.dir)  # rlkit-sandbox-XXXXXXXX
        assert bob.call("mod", "add", torch.tensor(1.0), torch.tensor(1.0)).ok  # forked after alice's request
        own = os.path.basename(bob.sandbox.dir)
        half = len(own) // 2
        found_own = bob.call("mod", "find", own[:half], own[half:], timeout=120)
        assert found_own.ok and _value(found_own) == 1  # the search works: bob's own request is there
        half = len(token) // 2
        found = bob.call("mod", "find", token[:half], token[half:], timeout=120)
        assert found.ok, found.error
        assert _value(found) == 0, "a zygote's memory holds another sandbox's request"
    finally:
        alice.close()
        bob.close()


def test_a_sandbox_dies_with_its_keeper(use_server, tmp_path):
    """The zygote is killed by the kernel when its keeper dies, and its children with it."""
    sub = Submission(_folder(tmp_path))
    try:
        assert sub.call("mod", "add", torch.tensor(1.0), torch.tensor(1.0)).ok
        keeper = sub.sandbox.proc
        assert isinstance(keeper, ForkedZygote)
        caller = threading.Thread(target=lambda: sub.call("mod", "sleep", "x", timeout=120))
        caller.start()
        pid_file = Path(sub.sandbox.work_dir, "pid-x.txt")
        end = time.monotonic() + 60
        while not (pid_file.is_file() and pid_file.read_text()) and time.monotonic() < end:
            time.sleep(0.05)
        ns_pid = int(pid_file.read_text())
        host = [int(p) for p in os.listdir("/proc") if p.isdigit() and _ns_pid(int(p)) == ns_pid
                and _has_ancestor(int(p), keeper.pid)]
        assert len(host) == 1
        os.kill(keeper.pid, signal.SIGKILL)
        end = time.monotonic() + 10
        while _alive(host[0]) and time.monotonic() < end:
            time.sleep(0.05)
        assert not _alive(host[0]), "a child outlived its keeper"
        caller.join(timeout=60)
        assert keeper.poll() is not None
    finally:
        sub.close()


def test_without_its_fork_server_a_sandbox_starts_a_new_python(tmp_path, monkeypatch):
    """A fork server that is gone (or a closed descriptor) costs speed, never a grade."""
    forks = sandbox.start_fork_server()
    if forks is None:
        pytest.skip("no fork server on this platform")
    monkeypatch.setenv(forkserver.ENV, str(forks.fd))
    os.killpg(forks.proc.pid, signal.SIGKILL)
    forks.proc.wait()
    sub = Submission(_folder(tmp_path))
    try:
        assert sub.call("mod", "add", torch.tensor(1.0), torch.tensor(2.0)).ok
        assert not isinstance(sub.sandbox.proc, ForkedZygote)
    finally:
        sub.close()
        forks.close()
    monkeypatch.setenv(forkserver.ENV, "999")  # no such descriptor
    sub = Submission(_folder(tmp_path, "other"))
    try:
        assert sub.call("mod", "add", torch.tensor(1.0), torch.tensor(2.0)).ok
    finally:
        sub.close()


def test_a_sandbox_user_who_cannot_read_the_servers_python_gets_a_new_one(use_server, tmp_path, monkeypatch):
    """A root grader's sandbox users must import the rest of the standard library the server
    loaded; where they cannot read it, the zygote starts as a new Python (which finds its own)."""
    if os.geteuid() != 0:
        pytest.skip("sandbox users of their own need root")
    monkeypatch.setattr(sandbox, "unreadable_for_others", lambda path: "/closed")
    sub = Submission(_folder(tmp_path))
    try:
        assert sub.call("mod", "add", torch.tensor(1.0), torch.tensor(2.0)).ok
        assert not isinstance(sub.sandbox.proc, ForkedZygote)
    finally:
        sub.close()


def test_the_runner_shares_one_fork_server_with_its_suites(tmp_path):
    from autograder import runner

    env, fds = runner._fork_server()
    assert forkserver.ENV in env and fds and int(env[forkserver.ENV]) == fds[0]
    assert runner._fork_server() == (env, fds)  # one per process, not one per suite


def _stat_field(pid: int, index: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[index])


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _ns_pid(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("NSpid:"):
                return int(line.split()[-1])
    except (OSError, ValueError):
        return None
    return None


def _has_ancestor(pid: int, ancestor: int) -> bool:
    while pid > 1:
        if pid == ancestor:
            return True
        try:
            pid = _stat_field(pid, 1)
        except (OSError, ValueError, IndexError):
            return False
    return False
