"""The fork server: one warm Python from which sandboxes' zygotes are forked.

A zygote that starts as a new Python pays 1.3 CPU-seconds for numpy, torch
and gymnasium. The grader starts this server once per grade (once per
batch: ``autograder/forkserver.py``); it pays that once, and every sandbox's
zygote is then a fork of it.

``python -I DIR/rlkit_worker --fork-server FD`` runs :func:`main`. ``FD`` is
one end of a SOCK_SEQPACKET socket pair whose other end only the trusted
grader holds. The server itself never reads a request: it forks a *spare*
that waits for the next one, and forks the next spare when that one says it
took a request. So the memory every zygote inherits holds no other sandbox's
request (no neighbour's folder names), only the imports.

A request is a JSON message (``config``: the sandbox's ``config.json``;
``env``; ``namespaces``: null or ``{"net": bool}``; ``uid``: null or the
sandbox user) with four file descriptors: the zygote's request pipe, its
answer pipe, its log, and a reply socket. The spare becomes:

* the **keeper** (A): its own session; the namespaces asked for (with a user
  namespace of its own when the grader is not root); forks the zygote,
  replies ``{"pid", "namespaces"}`` with pidfds of itself and of the zygote,
  waits for the zygote and exits with it;
* the **zygote** (Z, its child, pid 1 of the new PID namespace): killed by
  the kernel when the keeper dies; mounts its own ``/proc``; drops to the
  sandbox user without capabilities; then :func:`zygote.run`, exactly as a
  zygote started by ``python -I`` after its imports.
"""
from __future__ import annotations

import json
import os
import select
import signal
import socket
import sys
import traceback

from . import confine, loading, main as child_main_module, values, wire, zygote  # noqa: F401 (all preloaded)

CLONE_NEWNS, CLONE_NEWIPC = 0x00020000, 0x08000000
CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x10000000, 0x20000000, 0x40000000
MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REC, MS_PRIVATE = 2, 4, 8, 0x4000, 0x40000
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_CAPBSET_DROP = 1, 4, 24
MAX_REQUEST_BYTES = 1 << 16


def main(sock_fd: int) -> None:
    zygote.preload(1)
    confine.load_libc()
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # keepers are reaped by the kernel
    while True:
        took_r, took_w = os.pipe()
        if os.fork() == 0:
            os.close(took_r)
            _spare(sock_fd, took_w)
        os.close(took_w)
        took = os.read(took_r, 1)
        os.close(took_r)
        if took != b"r":  # the socket reached its end (the grader is gone), or the spare failed
            return


def _spare(sock_fd: int, took_w: int) -> None:
    """Wait for one request, tell the server (so it forks the next spare), become its keeper."""
    code = 70
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        sock = socket.socket(fileno=sock_fd)
        msg, fds, _, _ = socket.recv_fds(sock, MAX_REQUEST_BYTES, 4)
        os.write(took_w, b"r" if msg else b"")
        os.close(took_w)
        sock.close()  # from here on, nothing of the server's is left open
        if msg:
            code = _keeper(json.loads(msg), fds)
        else:
            code = 0
    except BaseException:  # noqa: BLE001 - the grader sees a zygote that never said ready
        traceback.print_exc()
    os._exit(code)


def _keeper(request: dict, fds: list[int]) -> int:
    if len(fds) != 4:
        return 70
    in_fd, out_fd, log_fd, reply_fd = fds
    reply = socket.socket(fileno=reply_fd)
    os.setsid()
    asked = request.get("namespaces")
    ns = asked is not None and _unshare(bool(asked.get("net")))
    status_r, status_w = os.pipe()
    alive_r, alive_w = os.pipe()  # this keeper never writes here: its end closes when it dies
    pid = os.fork()
    if pid == 0:
        try:
            reply.close()
            os.close(status_r)
            os.close(alive_w)
            _zygote(request, in_fd, out_fd, log_fd, status_w, alive_r, ns)
        except BaseException:  # noqa: BLE001
            traceback.print_exc()
        os._exit(70)
    os.close(status_w)
    os.close(alive_r)
    for fd in (in_fd, out_fd, log_fd):
        os.close(fd)
    # the zygote's word: b"1" set up, b"0" set up without /proc, b"2" it cannot read its own Python
    # (so it could not import the rest), b"" it died
    status = os.read(status_r, 1)
    pidfds = [os.pidfd_open(os.getpid()), os.pidfd_open(pid)]
    answer = {"pid": os.getpid(), "namespaces": ns and status == b"1", "started": status in (b"0", b"1")}
    socket.send_fds(reply, [json.dumps(answer).encode()], pidfds)
    for fd in pidfds:
        os.close(fd)
    reply.close()
    os.close(status_r)
    _, wstatus = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(wstatus) & 0xFF


def _unshare(network: bool) -> bool:
    """New PID, mount and IPC namespaces (and network); a user namespace first where the grader is
    not root. (IPC: System V objects a child could leave behind die with the sandbox.)"""
    libc = confine._libc
    if libc is None:
        return False
    flags = CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWIPC | (CLONE_NEWNET if network else 0)
    uid, gid = os.getuid(), os.getgid()
    if uid != 0:
        flags |= CLONE_NEWUSER
    if libc.unshare(flags) != 0:
        return False
    try:
        if uid != 0:  # what `unshare --map-root-user` does: this user is root inside, nowhere else
            for name, text in (("setgroups", "deny"), ("uid_map", f"0 {uid} 1"), ("gid_map", f"0 {gid} 1")):
                with open(f"/proc/self/{name}", "w") as f:
                    f.write(text)
        # the /proc mounted below must not propagate back to the grader's mount namespace
        return libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None) == 0
    except OSError:
        return False


def _zygote(request: dict, in_fd: int, out_fd: int, log_fd: int, status_w: int, alive_r: int, ns: bool) -> None:
    libc = confine._libc
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    os.close(log_fd)
    mounted = ns and libc.mount(b"proc", b"/proc", b"proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, None) == 0
    uid = request.get("uid")
    python_path = [p for p in sys.path if p and os.path.isdir(p)]  # (seen before the change of user)
    if uid is not None:
        _become(int(uid))
    # the kernel kills this zygote (and so its PID namespace) when the keeper dies (set after the
    # change of user, which clears it); a keeper that died before this line has closed its end
    # of the alive pipe (EOF: readable)
    libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    if select.select([alive_r], [], [], 0)[0]:
        os._exit(70)
    os.close(alive_r)
    os.environ.clear()
    os.environ.update({str(k): str(v) for k, v in request["env"].items()})
    if "tempfile" in sys.modules:
        sys.modules["tempfile"].tempdir = None  # read again from TMPDIR
    with open(request["config"]) as f:
        cfg = json.load(f)
    cfg["in_fd"], cfg["out_fd"] = in_fd, out_fd
    os.chdir(cfg["work_dir"])
    # later imports of this package come from the sandbox's own copy (the server's folder is
    # not on the child's allow-list)
    sys.modules[__package__].__path__ = [os.path.join(cfg["kit_dir"], __package__)]
    if not all(os.access(p, os.R_OK | os.X_OK) for p in python_path):
        os.write(status_w, b"2")
        os._exit(70)
    os.write(status_w, b"1" if mounted or not ns else b"0")
    os.close(status_w)
    zygote.preload(int(cfg.get("threads", 1)))  # done: sets the sandbox's thread count
    zygote.run(cfg)
    os._exit(0)


def _become(uid: int) -> None:
    """Drop from root to ``uid`` with no groups and no capability left (as ``setpriv --reuid
    --regid --clear-groups --inh-caps=-all --bounding-set=-all``)."""
    import ctypes

    libc = confine._libc
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            last = int(f.read())
    except (OSError, ValueError):
        last = 63
    for cap in range(last + 1):
        libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    data = (ctypes.c_uint32 * 6)()  # effective, permitted, inheritable for both 32-bit halves: all none
    if libc.capset(ctypes.byref(Header(0x20080522, 0)), data) != 0:  # _LINUX_CAPABILITY_VERSION_3
        os._exit(70)
    if os.getuid() != uid or os.geteuid() != uid:
        os._exit(70)
    # a process that changed its user is not "dumpable": /proc/self/* would stay root's, and the
    # child could not read its own /proc/self/mem or fd list as a child started by this user can
    libc.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)
