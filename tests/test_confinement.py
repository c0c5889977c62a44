"""The kernel layer of the sandbox (Landlock + seccomp) holds on its own, without the audit hook.

The audit hook is Python-level and can be bypassed by native code; these
tests confine a forked process exactly as the worker confines a child, but
install no audit hook, and check what the kernel itself refuses. They are
skipped where the kernel lacks the feature (the report then says
"NOT ACTIVE").
"""
from __future__ import annotations

import json
import os
import signal
import socket
import time
from pathlib import Path

import pytest

from autograder.child import confine

from conftest import ROOT


def _ipc_get(kind: str, *args) -> None:
    """``shmget``/``msgget`` made the way native code would make them (OSError when refused); an
    object the kernel did create is removed at once (IPC_RMID), so a failing test leaves none."""
    import ctypes

    ident = getattr(confine._libc, f"{kind}get")(*args)
    if ident == -1:
        raise OSError(ctypes.get_errno(), f"{kind}get failed")
    getattr(confine._libc, f"{kind}ctl")(ident, 0, None)


_SYSCALLS = {"x86_64": {"keyctl": 250}, "aarch64": {"keyctl": 219}}


def _syscall(name: str, *args) -> None:
    """A raw system call by name, OSError when it fails."""
    import ctypes
    import platform

    number = _SYSCALLS[platform.machine()][name]
    if confine._libc.syscall(number, *(ctypes.c_long(a) for a in args)) == -1:
        raise OSError(ctypes.get_errno(), f"{name} failed")


def _in_confined_child(tmp_path, probes: dict) -> dict:
    """Fork, confine like a sandbox child (no audit hook), run each probe; name -> 'ok' or the error."""
    confine.load_libc()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        out = {}
        try:
            os.close(r)
            kit = tmp_path / "kit"
            kit.mkdir(exist_ok=True)
            (kit / "config.json").write_text("{}")
            out["_confined"] = confine.confine(str(kit), str(tmp_path / "work"), "cpu", [str(ROOT)])
            for name, probe in probes.items():
                try:
                    probe()
                    out[name] = "ok"
                except OSError as exc:
                    out[name] = f"{type(exc).__name__} errno={exc.errno}"
                except Exception as exc:  # torch wraps errno in RuntimeError
                    out[name] = f"{type(exc).__name__}: {str(exc)[:80]}"
            os.write(w, json.dumps(out).encode())
        finally:
            os._exit(0)
    os.close(w)
    data = b""
    while chunk := os.read(r, 65536):
        data += chunk
    os.close(r)
    os.waitpid(pid, 0)
    return json.loads(data)


@pytest.fixture(scope="module")
def kernel(tmp_path_factory):
    d = tmp_path_factory.mktemp("probe")
    (d / "kit").mkdir()
    (d / "kit" / "config.json").write_text("{}")
    (d / "work").mkdir()
    confine.load_libc()
    return confine.probe_confinement(str(d / "kit"), str(d / "work"), "cpu", [str(ROOT)])


def _fork_and_reap():
    p = os.fork()
    if p == 0:
        os._exit(0)
    os.waitpid(p, 0)


def test_landlock_keeps_the_kit_unreadable_even_to_native_code(tmp_path, kernel):
    if not kernel["landlock"]:
        pytest.skip("Landlock is not available on this kernel")
    import torch

    (tmp_path / "work").mkdir()
    solution = str(ROOT / "solutions" / "ex1_values.py")
    res = _in_confined_child(tmp_path, {
        "open": lambda: open(solution).read(),
        "torch.from_file": lambda: torch.from_file(solution, shared=False, size=16, dtype=torch.uint8),
        "list kit": lambda: os.listdir(str(ROOT)),
        "read /root": lambda: os.listdir("/root"),
        "write own dir": lambda: (tmp_path / "work" / "scratch.txt").write_text("fine"),
        "read kit part": lambda: open(tmp_path / "kit" / "config.json").read(),
        "write kit part": lambda: open(tmp_path / "kit" / "config.json", "a").write("x"),
        "new file in kit part": lambda: open(tmp_path / "kit" / "planted.py", "w").write("x"),
        "write /tmp": lambda: open("/tmp/rlkit-confinement-test.txt", "w").write("x"),
        "read torch": lambda: open(torch.__file__).read(10),
        "read /proc/self": lambda: open("/proc/self/status").read(10),
    })
    assert res["_confined"]["landlock"]
    for name in ("open", "torch.from_file", "list kit", "read /root", "write /tmp", "write kit part",
                 "new file in kit part"):
        assert res[name] != "ok", (name, res)
    assert not (tmp_path / "kit" / "planted.py").exists()
    for name in ("write own dir", "read kit part", "read torch", "read /proc/self"):
        assert res[name] == "ok", (name, res)
    assert not os.path.exists("/tmp/rlkit-confinement-test.txt")


def test_seccomp_stops_processes_sockets_and_pidfd_but_not_threads(tmp_path, kernel):
    if not kernel["seccomp"]:
        pytest.skip("seccomp is not available here")
    import subprocess
    import threading

    def raw_spawn():  # the C function behind Popen: no audit event, only the kernel can say no
        rr, ww = os.pipe()
        subprocess._fork_exec([b"/bin/true"], [b"/bin/true"], True, (), None, None, -1, -1, -1, -1, -1, -1, rr, ww,
                              True, False, -1, None, None, None, -1, None, False)

    def thread():
        t = threading.Thread(target=lambda: None)
        t.start()
        t.join()

    res = _in_confined_child(tmp_path, {
        "fork": _fork_and_reap,
        "raw spawn": raw_spawn,
        "socket": lambda: socket.socket(),
        "pidfd": lambda: os.pidfd_open(os.getppid()),
        "setrlimit": lambda: __import__("resource").setrlimit(__import__("resource").RLIMIT_CORE, (0, 0)),
        "getrlimit": lambda: __import__("resource").getrlimit(__import__("resource").RLIMIT_NOFILE),
        "thread": thread,
        "chmod": lambda: os.chmod(str(tmp_path), 0o777),
        "utime": lambda: os.utime(str(tmp_path), (0, 0)),
        "mknod": lambda: os.mknod(str(tmp_path / "node"), 0o600 | 0o010000),  # a FIFO
        # memory the address-space limit does not count, some of it kept after the child is gone
        "shmget": lambda: _ipc_get("shm", 0, 1 << 20, 0o1666),  # IPC_PRIVATE, IPC_CREAT | 0666
        "msgget": lambda: _ipc_get("msg", 0, 0o1666),
        "memfd": lambda: os.close(os.memfd_create("hog")),
        # keyrings: a key left in the sandbox user's keyring outlives the sandbox (KEYCTL_GET_KEYRING_ID of
        # the user keyring only reads; add_key would create)
        "keyctl": lambda: _syscall("keyctl", 0, -4, 0),
    })
    assert res["_confined"]["seccomp"] is True
    for name in ("fork", "raw spawn", "socket", "pidfd", "chmod", "utime", "mknod", "shmget", "msgget", "memfd",
                 "keyctl"):
        assert "errno=1" in res[name], (name, res)  # EPERM
    # even setting the limits it already has is refused (Python words EPERM this way)
    assert "not allowed" in res["setrlimit"], res
    assert res["thread"] == "ok" and res["getrlimit"] == "ok", res


# ------------------------------------------------------------------ process lifetime
def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _descendants(root: int) -> list[int]:
    """Live processes below ``root`` (not counting it)."""
    parent = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and _alive(int(entry)):
            try:
                parent[int(entry)] = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                pass
    out, frontier = [], [root]
    while frontier:
        kids = [p for p, pp in parent.items() if pp in frontier]
        out += kids
        frontier = kids
    return out


def _host_pid(ns_pid: int, ancestor: int) -> int:
    """The pid, as this process sees it, of the sandbox process that calls itself ``ns_pid``
    (the sandbox runs in a PID namespace of its own)."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            status = Path(f"/proc/{entry}/status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        if fields.get("NSpid", "").split()[-1:] != [str(ns_pid)]:
            continue
        pid = int(entry)
        while pid > 1:  # is it a descendant of the sandbox's first process?
            if pid == ancestor:
                return int(entry)
            try:
                pid = int(dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                               if ":" in line)["PPid"])
            except (OSError, KeyError, ValueError):
                break
    return ns_pid if ancestor is None else -1


def _wait_dead(pid: int, seconds: float = 10.0) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return not _alive(pid)


SLEEPER = '''import os, threading, time

def f(tag):
    with open(f"pid-{tag}.txt", "w") as fh:
        fh.write(str(os.getpid()))
    threading.Thread(target=time.sleep, args=(1000,)).start()  # a non-daemon thread
    time.sleep(1000)
'''


def test_no_child_outlives_a_timeout_or_the_grader(tmp_path):
    """A timed-out child dies with its threads; a child whose worker dies mid-call dies too."""
    import threading

    from autograder.client import Submission

    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "mod.py").write_text(SLEEPER)
    sub = Submission(tmp_path / "sub")
    try:
        res = sub.call("mod", "f", "a", timeout=2)
        assert not res.ok and res.error["type"] == "Timeout"
        assert Path(sub.sandbox.work_dir, "pid-a.txt").read_text()
        end = time.monotonic() + 10
        while len(_descendants(sub.sandbox.proc.pid)) > 1 and time.monotonic() < end:
            time.sleep(0.05)
        # left: the worker (zygote), and unshare's own process where the sandbox has a PID namespace
        assert len(_descendants(sub.sandbox.proc.pid)) <= 1, "the timed-out child survived"
        # now the worker (zygote) itself is killed while a child sleeps in a call
        sandbox_dir = sub.sandbox.work_dir
        caller = threading.Thread(target=lambda: sub.call("mod", "f", "b", timeout=120))
        caller.start()
        pid_file = Path(sandbox_dir, "pid-b.txt")
        end = time.monotonic() + 60
        while not (pid_file.is_file() and pid_file.read_text()) and time.monotonic() < end:
            time.sleep(0.05)
        pid_b = _host_pid(int(pid_file.read_text()), sub.sandbox.proc.pid)
        assert pid_b > 0
        os.kill(sub.sandbox.proc.pid, signal.SIGKILL)
        assert _wait_dead(pid_b), "a child outlived its worker (no parent-death signal?)"
        caller.join(timeout=60)
    finally:
        sub.close()
