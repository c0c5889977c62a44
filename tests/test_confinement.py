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
import socket

import pytest

from autograder import worker

from conftest import ROOT


def _in_confined_child(tmp_path, probes: dict) -> dict:
    """Fork, confine like a sandbox child (no audit hook), run each probe; name -> 'ok' or the error."""
    worker._load_libc()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        out = {}
        try:
            os.close(r)
            out["_confined"] = worker.confine(str(tmp_path), "cpu", [str(ROOT)])
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
    worker._load_libc()
    return worker.probe_confinement(str(d), "cpu", [str(ROOT)])


def _fork_and_reap():
    p = os.fork()
    if p == 0:
        os._exit(0)
    os.waitpid(p, 0)


def test_landlock_keeps_the_kit_unreadable_even_to_native_code(tmp_path, kernel):
    if not kernel["landlock"]:
        pytest.skip("Landlock is not available on this kernel")
    import torch

    solution = str(ROOT / "solutions" / "ex1_values.py")
    res = _in_confined_child(tmp_path, {
        "open": lambda: open(solution).read(),
        "torch.from_file": lambda: torch.from_file(solution, shared=False, size=16, dtype=torch.uint8),
        "list kit": lambda: os.listdir(str(ROOT)),
        "read /root": lambda: os.listdir("/root"),
        "write own dir": lambda: (tmp_path / "scratch.txt").write_text("fine"),
        "write /tmp": lambda: open("/tmp/rlkit-confinement-test.txt", "w").write("x"),
        "read torch": lambda: open(torch.__file__).read(10),
        "read /proc/self": lambda: open("/proc/self/status").read(10),
    })
    assert res["_confined"]["landlock"]
    for name in ("open", "torch.from_file", "list kit", "read /root", "write /tmp"):
        assert res[name] != "ok", (name, res)
    for name in ("write own dir", "read torch", "read /proc/self"):
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
    })
    assert res["_confined"]["seccomp"] is True
    for name in ("fork", "raw spawn", "socket", "pidfd"):
        assert "errno=1" in res[name], (name, res)  # EPERM
    # even setting the limits it already has is refused (Python words EPERM this way)
    assert "not allowed" in res["setrlimit"], res
    assert res["thread"] == "ok" and res["getrlimit"] == "ok", res
