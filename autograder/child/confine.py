"""Confinement of a child, before any student code runs: rlimits, Landlock, seccomp, the audit hook.

:func:`limit_and_confine` is what every child does first (``main.py``);
:func:`probe_confinement` is the zygote's start-up check that the kernel
really refuses (``zygote.py``, ``runner.strict_preflight``).

Only the standard library (and torch, for its thread count) is used here.
"""
from __future__ import annotations

import json
import os
import resource
import signal
import sys

# --------------------------------------------------------------------------
# the audit hook (installed in the child, before student code is imported)
# --------------------------------------------------------------------------
_PROCESS_EVENTS = {
    "os.fork", "os.forkpty", "os.posix_spawn", "os.exec", "os.spawn", "os.system",
    "subprocess.Popen", "os.startfile", "os.killpg", "pty.spawn",
}
_PATH_WRITE_EVENTS = {
    "os.remove", "os.rmdir", "os.rename", "os.link", "os.symlink", "os.truncate",
    "os.chmod", "os.chown", "os.mkdir", "os.utime", "shutil.rmtree", "shutil.copyfile",
    "shutil.move", "shutil.copymode", "shutil.copystat", "shutil.chown",
}
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


class SandboxViolation(PermissionError):
    """Raised inside the child when student code does something the grader forbids."""


def install_audit_hook(deny_roots: list[str], allow_roots: list[str], write_root: str) -> None:
    realpath = os.path.realpath
    fspath = os.fspath
    deny = tuple(realpath(p) for p in deny_roots)
    allow = tuple(realpath(p) for p in allow_roots)
    write_ok = (realpath(write_root), "/dev/null")
    own_pid = os.getpid()
    # rlkit_worker: this package's name inside a sandbox (forkserver.CHILD_PACKAGE)
    banned_imports = ("solutions", "autograder", "tests", "tools", "rlkit_worker")

    def under(path: str, roots: tuple[str, ...]) -> bool:
        return any(path == r or path.startswith(r + os.sep) for r in roots)

    def resolve(path):
        if isinstance(path, int):
            return None
        try:
            path = fspath(path)
            if isinstance(path, bytes):
                path = path.decode(errors="replace")
            return realpath(path)
        except Exception:
            return None

    def check_read(path):
        p = resolve(path)
        if p is not None and under(p, deny) and not under(p, allow):
            raise SandboxViolation(f"the grader's files are off limits: {path!r}")
        # other processes' /proc entries (the grader's memory, cwd, fds, environment)
        if p is not None and p.startswith("/proc/"):
            pid = p.split("/")[2]
            if pid.isdigit() and int(pid) != own_pid:
                raise SandboxViolation(f"other processes are off limits: {path!r}")

    def check_write(path):
        p = resolve(path)
        if p is not None and not under(p, write_ok):
            raise SandboxViolation(f"writing outside the sandbox is not allowed: {path!r}")

    def hook(event: str, args: tuple) -> None:
        if event == "open":
            path, mode, flags = (tuple(args) + (None, None, None))[:3]
            check_read(path)
            writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                isinstance(flags, int) and flags & _WRITE_FLAGS
            )
            if writing:
                check_write(path)
            elif mode is None and isinstance(path, (str, bytes, os.PathLike)):
                # os.open of a directory outside the sandbox would give a dir_fd
                # for relative opens this hook cannot resolve
                p = resolve(path)
                if p is not None and os.path.isdir(p) and not under(p, write_ok):
                    raise SandboxViolation(f"opening directories outside the sandbox is not allowed: {path!r}")
        elif event == "sqlite3.connect":  # sqlite opens files natively
            db = args[0] if args else ""
            if isinstance(db, bytes):
                db = db.decode(errors="replace")
            if isinstance(db, str) and db.startswith("file:"):  # a URI: file:/path?mode=ro
                db = "/" + db[5:].split("?")[0].lstrip("/") if db[5:].startswith("/") else db[5:].split("?")[0]
            if db not in (":memory:", ""):
                check_read(db)
                check_write(db)
        elif event in ("resource.setrlimit", "resource.prlimit"):
            raise SandboxViolation("changing resource limits is not allowed in the grader")
        elif event in ("os.listdir", "os.scandir", "os.chdir", "glob.glob"):
            if args:
                check_read(args[0])
        elif event in _PROCESS_EVENTS:
            raise SandboxViolation(f"{event} is not allowed in the grader")
        elif event == "os.kill":
            # pid 0 is the child's own process group (it is a session leader)
            if args and args[0] not in (own_pid, 0):
                raise SandboxViolation("os.kill is not allowed in the grader (except on itself)")
        elif event in _PATH_WRITE_EVENTS:
            for a in args:
                if isinstance(a, (str, bytes, os.PathLike)):
                    check_write(a)
        elif event.startswith("socket.") or event.startswith("ctypes."):
            raise SandboxViolation(f"{event} is not allowed in the grader")
        elif event == "import":
            name = args[0] if args else ""
            if isinstance(name, str) and name.split(".")[0] in banned_imports:
                raise SandboxViolation(f"importing {name!r} is not allowed in the grader")

    sys.addaudithook(hook)


# --------------------------------------------------------------------------
# kernel confinement (Linux): Landlock + seccomp, installed in the child
# --------------------------------------------------------------------------
# The audit hook above sees only what Python reports. Native code that the
# preloaded libraries expose reaches the kernel without an audit event:
# torch.from_file (C++ file I/O), os.open(..., dir_fd=...) relative to an
# outside directory, subprocess._fork_exec / a fresh _posixsubprocess,
# os.pidfd_open + signal.pidfd_send_signal (signals to the grader), ... So
# the child also asks the kernel, when it can, to enforce the essentials:
#
# * Landlock (Linux >= 5.13): a file-system allow-list. The child may read
#   the Python installation (sys.prefix, sys.base_prefix, sys.path),
#   system libraries, /proc and /sys, and read and write only its sandbox
#   directory; everything else (the kit, other students' folders, other
#   sandboxes, home directories) is invisible whatever the uid. With ABI >= 4
#   TCP bind/connect is denied; with ABI >= 6 signals and abstract Unix
#   sockets cannot reach processes outside the child. Landlock also denies
#   ptrace-style access (/proc/<pid>/mem, cwd, environ) to outside processes.
# * seccomp: no new processes (fork, vfork, clone without CLONE_THREAD;
#   clone3 answers ENOSYS so threads fall back to clone), no exec, no
#   sockets, no ptrace / process_vm_*, no pidfd, no namespaces or mounts, no
#   io_uring, no open_by_handle_at, no raising resource limits, no changes
#   of file metadata (mode, owner, times, extended attributes: Landlock does
#   not cover them), no device nodes, and none of the administrator's calls
#   (host name, kernel log and modules, clock, reboot, swap, accounting).
#
# Both are best effort: if the kernel lacks them, confine() reports which
# were applied and grading goes on with the audit hook and rlimits (the
# report's protections line says what was active).
_LANDLOCK = (444, 445, 446)  # create_ruleset, add_rule, restrict_self (same on every arch)
_LL_FS_FILE = (1 << 0) | (1 << 1) | (1 << 2)  # execute, write_file, read_file
_LL_FS_READ = (1 << 0) | (1 << 2) | (1 << 3)  # execute, read_file, read_dir
_LL_TRUNCATE, _LL_IOCTL_DEV, _LL_REFER = 1 << 14, 1 << 15, 1 << 13
_SECCOMP_ARCH = {  # machine -> (AUDIT_ARCH, {name: nr})
    "x86_64": (0xC000003E, dict(
        clone=56, clone3=435, fork=57, vfork=58, execve=59, execveat=322, ptrace=101,
        process_vm_readv=310, process_vm_writev=311, socket=41, socketpair=53, unshare=272,
        setns=308, mount=165, umount2=166, pivot_root=155, chroot=161, pidfd_open=434,
        pidfd_send_signal=424, pidfd_getfd=438, bpf=321, userfaultfd=323, perf_event_open=298,
        io_uring_setup=425, io_uring_enter=426, io_uring_register=427, name_to_handle_at=303,
        open_by_handle_at=304, setrlimit=160, prlimit64=302,
        # file metadata (Landlock does not cover it) and what only an administrator may do
        chmod=90, fchmod=91, fchmodat=268, fchmodat2=452, chown=92, fchown=93, lchown=94, fchownat=260,
        utime=132, utimes=235, futimesat=261, utimensat=280, setxattr=188, lsetxattr=189, fsetxattr=190,
        removexattr=197, lremovexattr=198, fremovexattr=199, setxattrat=463, removexattrat=466, mknod=133,
        mknodat=259, sethostname=170, setdomainname=171, syslog=103, init_module=175, finit_module=313,
        delete_module=176, settimeofday=164, clock_settime=227, reboot=169, swapon=167, swapoff=168, acct=163,
        kexec_load=246, kexec_file_load=320,
        # memory outside the address-space limit: System V shared memory, message queues and
        # semaphores (kept by the kernel after the child is gone), POSIX queues, memory files
        shmget=29, shmat=30, semget=64, msgget=68, mq_open=240, memfd_create=319, memfd_secret=447,
        # kernel keyrings: a user's keys outlive the sandbox, and a grader that is not root shares its own
        add_key=248, request_key=249, keyctl=250)),
    "aarch64": (0xC00000B7, dict(
        clone=220, clone3=435, execve=221, execveat=281, ptrace=117, process_vm_readv=270,
        process_vm_writev=271, socket=198, socketpair=199, unshare=97, setns=268, mount=40,
        umount2=39, pivot_root=41, chroot=51, pidfd_open=434, pidfd_send_signal=424,
        pidfd_getfd=438, bpf=280, userfaultfd=282, perf_event_open=241, io_uring_setup=425,
        io_uring_enter=426, io_uring_register=427, name_to_handle_at=264, open_by_handle_at=265,
        setrlimit=164, prlimit64=261,
        fchmod=52, fchmodat=53, fchmodat2=452, fchownat=54, fchown=55, utimensat=88, setxattr=5, lsetxattr=6,
        fsetxattr=7, removexattr=14, lremovexattr=15, fremovexattr=16, setxattrat=463, removexattrat=466,
        mknodat=33, sethostname=161, setdomainname=162, syslog=116, init_module=105, finit_module=273,
        delete_module=106, settimeofday=170, clock_settime=112, reboot=142, swapon=224, swapoff=225, acct=89,
        kexec_load=104, shmget=194, shmat=196, semget=190, msgget=186, mq_open=180, memfd_create=279,
        memfd_secret=447, add_key=217, request_key=218, keyctl=219)),
}
_libc = None  # loaded once in the zygote (ctypes is denied to the child once its hook is in)


def load_libc() -> None:
    global _libc
    try:
        import ctypes

        _libc = ctypes.CDLL(None, use_errno=True)
        _libc.syscall.restype = ctypes.c_long
    except Exception:
        _libc = None


def _landlock(kit_dir: str, work_dir: str, device: str, deny_roots=()) -> int:
    """Restrict the file system to an allow-list; returns the Landlock ABI used (0: none)."""
    import ctypes

    abi = _libc.syscall(_LANDLOCK[0], None, ctypes.c_size_t(0), ctypes.c_uint32(1))  # ..._VERSION
    if abi < 1:
        return 0
    fs_all = (1 << 13) - 1  # ABI 1: execute .. make_sym
    if abi >= 2:
        fs_all |= _LL_REFER
    if abi >= 3:
        fs_all |= _LL_TRUNCATE
    if abi >= 5:
        fs_all |= _LL_IOCTL_DEV
    file_rights = _LL_FS_FILE | (fs_all & (_LL_TRUNCATE | _LL_IOCTL_DEV))
    attr = (ctypes.c_uint64 * 3)(fs_all, 3 if abi >= 4 else 0, 3 if abi >= 6 else 0)  # net: bind+connect TCP; scope: abstract unix + signals
    size = 24 if abi >= 6 else 16 if abi >= 4 else 8
    ruleset = _libc.syscall(_LANDLOCK[0], ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))
    if ruleset < 0:
        return 0

    class PathBeneath(ctypes.Structure):
        _pack_ = 1
        _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]

    def allow(path: str, rights: int) -> None:
        try:
            fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
        except OSError:
            return
        try:
            if not os.path.isdir(path):
                rights &= file_rights
            rule = PathBeneath(rights & fs_all, fd)
            _libc.syscall(_LANDLOCK[1], ruleset, 1, ctypes.byref(rule), ctypes.c_uint32(0))
        finally:
            os.close(fd)

    readable = {"/usr", "/lib", "/lib64", "/lib32", "/proc", "/sys", "/etc/ld.so.cache",
                "/etc/localtime", "/etc/passwd", "/etc/group", "/dev/urandom", "/dev/random",
                os.path.dirname(os.path.realpath(sys.executable)),
                sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix, kit_dir}
    # other sys.path entries (e.g. from a .pth file) only when they neither lie
    # in nor contain a denied folder: an editable install of the kit would
    # otherwise open the kit again
    deny = [os.path.realpath(d) for d in deny_roots]
    for p in sys.path:
        rp = os.path.realpath(p) if p else ""
        if rp and os.path.isdir(rp) and rp != os.path.realpath(os.path.dirname(kit_dir)) and not any(
                rp == d or rp.startswith(d + os.sep) or d.startswith(rp + os.sep) for d in deny):
            readable.add(rp)
    for path in sorted(readable):
        allow(os.path.realpath(path), _LL_FS_READ)
    allow("/dev/null", file_rights)
    allow("/dev/zero", file_rights)
    allow(os.path.realpath(work_dir), fs_all)  # the only folder the child may change
    if device.startswith("cuda"):  # the driver needs its device nodes, ioctls and shared memory
        allow("/dev", fs_all)
    ok = _libc.syscall(_LANDLOCK[2], ruleset, ctypes.c_uint32(0)) == 0
    os.close(ruleset)
    return int(abi) if ok else 0


def _seccomp() -> bool:
    """Install the syscall filter described above; True when it is active."""
    import ctypes
    import platform
    import struct as st

    arch = _SECCOMP_ARCH.get(platform.machine())
    if arch is None:
        return False
    audit_arch, nr = arch
    ld, jeq, jge, jset, ret = 0x20, 0x15, 0x35, 0x45, 0x06
    allow_, eperm, enosys = 0x7FFF0000, 0x00050000 | 1, 0x00050000 | 38
    lo = 0 if sys.byteorder == "little" else 4  # offset of the low 32 bits of a 64-bit argument
    prog = [(ld, 0, 0, 4), (jeq, 1, 0, audit_arch), (ret, 0, 0, eperm), (ld, 0, 0, 0)]
    if audit_arch == 0xC000003E:  # x32 system calls share the arch value: refuse them all
        prog += [(jge, 0, 1, 0x40000000), (ret, 0, 0, eperm)]
    denied = [n for k, n in nr.items() if k not in ("clone", "clone3", "prlimit64")]
    for n in denied:
        prog += [(jeq, 0, 1, n), (ret, 0, 0, eperm)]
    prog += [(jeq, 0, 1, nr["clone3"]), (ret, 0, 0, enosys)]
    # prlimit64: reading limits (new_limit, argument 2, == NULL) is fine, setting them is not
    prog += [(jeq, 0, 6, nr["prlimit64"]), (ld, 0, 0, 32), (jeq, 0, 3, 0), (ld, 0, 0, 36),
             (jeq, 0, 1, 0), (ret, 0, 0, allow_), (ret, 0, 0, eperm)]
    # clone: allowed only for threads (CLONE_THREAD in the flags, argument 0)
    prog += [(jeq, 0, 4, nr["clone"]), (ld, 0, 0, 16 + lo), (jset, 0, 1, 0x00010000),
             (ret, 0, 0, allow_), (ret, 0, 0, eperm)]
    prog += [(ret, 0, 0, allow_)]
    raw = b"".join(st.pack("=HBBI", *ins) for ins in prog)
    buf = ctypes.create_string_buffer(raw, len(raw))

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    fprog = SockFprog(len(prog), ctypes.cast(buf, ctypes.c_void_p))
    # PR_SET_SECCOMP = 22, SECCOMP_MODE_FILTER = 2
    return _libc.prctl(22, 2, ctypes.byref(fprog), 0, 0) == 0


def die_with_parent(parent_pid: int) -> None:
    """PR_SET_PDEATHSIG: the kernel SIGKILLs this process when its parent dies.

    A child lives in a session of its own, so killing the zygote's group does
    not reach it; with this, a child whose zygote dies dies at once instead of
    sleeping on as an orphan. (Not used for the zygote itself: the signal
    follows the *thread* that started a process, and the grader starts the
    zygote from a short-lived thread. A zygote whose grader dies exits when
    its request pipe closes. A suite run uses it too: it dies with its suite server.)
    """
    if _libc is not None and sys.platform.startswith("linux"):
        try:
            _libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG
        except Exception:
            pass
    if os.getppid() != parent_pid:  # the parent was gone before the line above
        os._exit(70)


def confine(kit_dir: str, work_dir: str, device: str, deny_roots=()) -> dict:
    """Apply the kernel layers in this (single-threaded, forked) process; say which worked."""
    done = {"landlock": 0, "seccomp": False}
    if _libc is None or not sys.platform.startswith("linux"):
        return done
    try:
        if _libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS: required, and no setuid gains
            return done
    except Exception:
        return done
    for key, layer in (("landlock", lambda: _landlock(kit_dir, work_dir, device, deny_roots)), ("seccomp", _seccomp)):
        try:
            done[key] = layer()
        except Exception:
            pass
    return done


def probe_confinement(kit_dir: str, work_dir: str, device: str, deny_roots: list) -> dict:
    """At zygote start: confine a throw-away child and check that the kernel really refuses.

    Returns {"landlock": ABI or 0, "seccomp": bool}, each true only when the
    refusal was observed (a fork fails; the first denied root, e.g. the kit,
    cannot be opened).
    """
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # ---- probe child (no student code here)
        code = 0
        try:
            os.close(r)
            done = confine(kit_dir, work_dir, device, deny_roots)
            try:
                p = os.fork()
                if p == 0:
                    os._exit(0)
                os.waitpid(p, 0)
                done["seccomp"] = False
            except OSError:
                pass
            try:
                os.close(os.open((list(deny_roots) or ["/"])[0], os.O_RDONLY))
                done["landlock"] = 0
            except OSError:
                pass
            try:  # the kit part of the sandbox must be read-only
                os.close(os.open(os.path.join(kit_dir, "config.json"), os.O_WRONLY | os.O_APPEND))
                done["landlock"] = 0
            except OSError:
                pass
            os.write(w, json.dumps(done).encode())
        except BaseException:
            code = 70
        os._exit(code)
    os.close(w)
    data = b""
    while True:
        chunk = os.read(r, 4096)
        if not chunk:
            break
        data += chunk
    os.close(r)
    os.waitpid(pid, 0)
    try:
        out = json.loads(data.decode())
        return {"landlock": int(out.get("landlock", 0)), "seccomp": bool(out.get("seccomp"))}
    except Exception:
        return {"landlock": 0, "seccomp": False}


def limit_and_confine(cfg: dict, limits: dict) -> None:
    """rlimits, then the kernel layers (Landlock, seccomp), then the audit hook: before any student code."""
    import torch

    cpu = int(limits.get("cpu_seconds", 60))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    fsize = int(limits.get("file_bytes", 64 << 20))
    resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
    nofile = int(limits.get("open_files", 256))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(nofile, hard), min(nofile, hard)))
    if limits.get("memory_bytes") and not cfg.get("device", "cpu").startswith("cuda"):
        # the address space already mapped by torch is large; allow that plus the budget
        with open("/proc/self/statm") as f:
            mapped = int(f.read().split()[0]) * resource.getpagesize()
        cap = mapped + int(limits["memory_bytes"])
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    nproc = limits.get("processes")
    if nproc:
        try:
            resource.setrlimit(resource.RLIMIT_NPROC, (int(nproc), int(nproc)))
        except (ValueError, OSError):
            pass
    # kernel layers first, while this forked child is still single-threaded
    # (seccomp and Landlock apply to the calling thread and its future threads)
    confine(cfg["kit_dir"], cfg["work_dir"], cfg.get("device", "cpu"), cfg.get("deny_roots") or [])
    torch.set_num_threads(int(cfg.get("threads", 1)))
    install_audit_hook(cfg["deny_roots"], cfg["allow_roots"], cfg["work_dir"])
