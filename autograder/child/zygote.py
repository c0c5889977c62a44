"""The zygote: started once per sandbox, it preloads what children need, then forks one per request.

``python -I KIT/rlkit_worker CONFIG.json`` (see ``sandbox.py`` and
``__main__.py``) runs :func:`main`: it imports torch, numpy, gymnasium and
``common`` once, checks what the kernel confines (``confine.probe_confinement``),
says "ready", then serves the parent's requests: each one in a fresh child
(:func:`handle`), or a session's in one child that stays (:func:`run_session`).
Only whole frames of a child go on to the parent, followed by an exit frame.

A zygote can also be forked, already warm, from the fork server
(``forkserver.py``): it then skips :func:`preload` and starts at :func:`run`.
"""
from __future__ import annotations

import gc
import importlib
import json
import os
import select
import signal
import sys
import time
import traceback

from .confine import die_with_parent, load_libc, probe_confinement
from .main import child_main, session_main
from .wire import HDR, MAX_EXTRA_FRAMES, MAX_RESULT_BYTES, ParentGone, hung_up, pack, read_exact, unpack, watching, whole_frames, write_all


def serve(cfg: dict, in_fd: int, out_fd: int) -> None:
    while True:
        try:
            (n,) = HDR.unpack(read_exact(in_fd, HDR.size))
            data = read_exact(in_fd, n)
        except EOFError:
            return
        request, arrays = unpack(data)
        if request.get("session") == "open":
            frames = run_session(cfg, request, in_fd, out_fd)
        else:
            frames = handle(cfg, request, arrays, in_fd, out_fd)
        write_all(out_fd, frames)


def _spawn(cfg: dict, in_fd: int, out_fd: int, body, keep: tuple = ()) -> tuple[int, int, int]:
    """Fork a child that runs ``body(w)``; return (pid, r, log): its pid, the read end of its
    result pipe and its stdout/stderr (an anonymous in-memory file, no path the child could
    replace by a link). ``keep``: more fds of the zygote the child closes."""
    r, w = os.pipe()
    log = os.memfd_create("rlkit-child-log", 0)
    zygote = os.getpid()
    pid = os.fork()
    if pid == 0:  # ---- child
        try:
            os.setsid()
            die_with_parent(zygote)
            os.close(r)
            for fd in (in_fd, out_fd, *keep):
                os.close(fd)
            devnull = os.open(os.devnull, os.O_RDONLY)
            os.dup2(devnull, 0)
            os.dup2(log, 1)
            os.dup2(log, 2)
            os.close(log)
            os.chdir(cfg["work_dir"])
            body(w)
        except BaseException:
            traceback.print_exc()
        os._exit(70)
    os.close(w)
    return pid, r, log


def _reap(pid: int, r: int, log: int, timed_out: bool) -> bytes:
    """Kill the child's whole group (a grandchild holding a pipe too), wait, and pack the exit frame."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    _, status = os.waitpid(pid, 0)
    os.close(r)
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            exit_info = {"signal": signal.Signals(sig).name}
        except ValueError:
            exit_info = {"signal": str(sig)}
    else:
        exit_info = {"code": os.WEXITSTATUS(status)}
    try:
        size = os.lseek(log, 0, os.SEEK_END)
        os.lseek(log, max(0, size - 2000), os.SEEK_SET)
        log_tail = os.read(log, 2000).decode(errors="replace")
    except OSError:
        log_tail = ""
    os.close(log)
    return pack({"event": "exit", "timed_out": timed_out, "exit": exit_info, "log_tail": log_tail})


def _too_large_frames(request: dict) -> bytes:
    """Fail every case of ``request`` (the parent keeps the first frame per case, so finished ones stand)."""
    err = {"type": "ResultTooLarge", "message": f"the result is too large (more than {MAX_RESULT_BYTES >> 20} MB)",
           "where": ""}
    return b"".join(pack({"event": "case", "index": i, "ok": False, "error": err})
                    for i in range(len(request.get("cases", []))))


def handle(cfg: dict, request: dict, arrays: dict, in_fd: int, out_fd: int) -> bytes:
    """Fork a child for one request; collect its frames until it exits or times out."""
    pid, r, log = _spawn(cfg, in_fd, out_fd, lambda w: child_main(cfg, request, arrays, w))
    deadline = time.monotonic() + float(request.get("timeout", 10))
    buf = bytearray()
    timed_out = too_large = False
    poller = watching(r, in_fd)  # in_fd's hang-up: the grader that asked is gone (killed on a batch's timeout)
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            timed_out = True
            break
        ready, gone = hung_up(poller, r, min(left, 1.0))
        if gone:  # nobody waits for this answer: end the child now, not at its deadline
            _reap(pid, r, log, True)
            os._exit(0)
        if ready:
            chunk = os.read(r, 1 << 20)
            if not chunk:
                break
            buf.extend(chunk)
            if len(buf) > MAX_RESULT_BYTES + (8 << 20):  # the child bypassed its own check
                too_large = True
                break
    summary = _reap(pid, r, log, timed_out)
    # Only whole frames go on: a child that wrote a torn or bogus frame header
    # (a length running past the end) must not swallow the summary below.
    body = whole_frames(bytes(buf), len(request.get("cases", [])) + MAX_EXTRA_FRAMES)
    if too_large:
        body += _too_large_frames(request)
    return HDR.pack(len(body) + len(summary)) + body + summary


def _write_until(fd: int, data: bytes, deadline: float) -> None:
    """All of ``data`` to the non-blocking ``fd`` by ``deadline`` (TimeoutError: the reader stopped reading)."""
    view = memoryview(data)
    while view:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        _, ready, _ = select.select([], [fd], [], min(left, 1.0))
        if ready:
            try:
                view = view[os.write(fd, view):]
            except BlockingIOError:
                pass


def run_session(cfg: dict, opening: dict, in_fd: int, out_fd: int) -> bytes:
    """One child for a run of requests (a learning test's loop): fork it, relay until "close".

    The zygote stays between the parent and the child: it forwards each
    request, gives the child the request's time (and the session's), and
    passes on whole frames only. When the child dies or overruns, it is
    killed, and this call and every later one of the session is answered
    by its exit frame. Returns the answer to "close" (the exit frame).
    """
    req_r, req_w = os.pipe()
    pid, r, log = _spawn(cfg, in_fd, out_fd, lambda w: session_main(cfg, opening, req_r, w), keep=(req_w,))
    os.close(req_r)
    os.set_blocking(req_w, False)
    ends = time.monotonic() + float(opening.get("timeout", 60))
    write_all(out_fd, HDR.pack(0))  # open: an empty answer
    summary = None  # the exit frame, once the child is gone
    while True:
        try:
            (n,) = HDR.unpack(read_exact(in_fd, HDR.size))
            data = read_exact(in_fd, n)
            request, _ = unpack(data)
        except EOFError:  # the parent is gone (serve() then reads EOF too, and ends)
            if summary is None:
                _reap(pid, r, log, False)
            os.close(req_w)
            return b""
        if request.get("session") == "close":
            break
        if summary is None:
            deadline = min(ends, time.monotonic() + float(request.get("timeout", 10)))
            try:
                _write_until(req_w, HDR.pack(n) + data, deadline)
                (m,) = HDR.unpack(read_exact(r, HDR.size, deadline, watch=in_fd))
                if m > MAX_RESULT_BYTES + (8 << 20):  # the child bypassed its own check
                    summary = _reap(pid, r, log, False)
                    body = _too_large_frames(request) + summary
                    write_all(out_fd, HDR.pack(len(body)) + body)
                    continue
                body = whole_frames(read_exact(r, m, deadline, watch=in_fd),
                                    len(request.get("cases", [])) + MAX_EXTRA_FRAMES)
                write_all(out_fd, HDR.pack(len(body)) + body)
                continue
            except ParentGone:  # nobody waits for this answer: end the child now, not at its deadline
                _reap(pid, r, log, True)
                os._exit(0)
            except (TimeoutError, EOFError, OSError) as exc:  # OSError: a child gone between calls (EPIPE)
                summary = _reap(pid, r, log, isinstance(exc, TimeoutError))
        write_all(out_fd, HDR.pack(len(summary)) + summary)
    os.close(req_w)
    if summary is None:
        summary = _reap(pid, r, log, False)
    return HDR.pack(len(summary)) + summary


def preload(threads: int) -> None:
    """Import what every child needs, once, before any fork (also the fork server's warm-up).

    Not torch.optim: its first optimizer imports torch._dynamo (1.3 CPU-seconds), so the kit's
    training loops use ``common.adam`` and a sandbox whose own code builds one pays for it there."""
    import numpy  # noqa: F401
    import torch

    torch.set_num_threads(threads)
    import gymnasium  # noqa: F401


def run(cfg: dict) -> None:
    """Load the sandbox's ``common``, probe the kernel, say "ready" and serve until the parent goes."""
    sys.path.insert(0, cfg["kit_dir"])  # for `common` (a trusted copy lives here)
    for name in ("common", "common.adam", "common.device", "common.envs", "common.networks", "common.rollout", "common.validate"):
        try:
            importlib.import_module(name)
        except ImportError:
            pass
    in_fd, out_fd = int(cfg["in_fd"]), int(cfg["out_fd"])
    load_libc()
    kernel = probe_confinement(cfg["kit_dir"], cfg["work_dir"], cfg.get("device", "cpu"), cfg.get("deny_roots") or [])
    # the imports are never garbage: frozen, the collections during a student's training run do
    # not walk torch's modules again and again (and forks of this zygote keep its pages shared)
    gc.freeze()
    write_all(out_fd, pack({"event": "ready", "kernel": kernel}))
    serve(cfg, in_fd, out_fd)


def main() -> None:
    with open(sys.argv[1]) as f:
        cfg = json.load(f)
    preload(int(cfg.get("threads", 1)))
    run(cfg)
