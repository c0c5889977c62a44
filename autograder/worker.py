"""The sandbox worker: the only grader code that ever shares a process with student code.

This file is copied into a fresh temporary directory and started as
``python -I rlkit_worker.py CONFIG.json`` (see ``sandbox.py``). It runs as a
*zygote*: it imports torch, numpy, gymnasium and ``common`` once, then for
every request from the parent it forks a child that

1. becomes its own session (the parent kills the whole group on timeout),
2. closes the protocol pipes, sends stdout/stderr to a log file,
3. sets resource limits (CPU time, address space, file size, open files, core),
4. installs an audit hook that forbids new processes, sockets, ctypes, and
   any file access to the kit's own files (hooks cannot be removed),
5. imports the student's module from the submission copy,
6. runs each case and streams one result frame per case back to the zygote.

Nothing in here is trusted by the parent: results are plain arrays and JSON,
and the parent checks and compares them. The child holds no secret (no
reference output ever reaches it), so a compromised child can only send
wrong answers.

Only the standard library, numpy, torch and gymnasium are used here.
"""
from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import io
import json
import os
import resource
import select
import signal
import struct
import sys
import time
import traceback
import types

# --------------------------------------------------------------------------
# framing: 8-byte big-endian length + payload (an .npz with a JSON header)
# --------------------------------------------------------------------------
_HDR = struct.Struct(">Q")


def pack(header: dict, arrays: dict | None = None) -> bytes:
    import numpy as np

    buf = io.BytesIO()
    payload = {"__header__": np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)}
    for key, arr in (arrays or {}).items():
        payload[key] = arr
    np.savez(buf, **payload)
    data = buf.getvalue()
    return _HDR.pack(len(data)) + data


def unpack(data: bytes) -> tuple[dict, dict]:
    import zipfile

    import numpy as np

    # np.savez never compresses; a frame with compressed (or oversized)
    # members is forged, and could be a zip bomb for whoever reads it
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        infos = zf.infolist()
        if any(i.compress_type != zipfile.ZIP_STORED for i in infos) or sum(i.file_size for i in infos) > len(data):
            raise ValueError("malformed frame")
        if len(infos) > MAX_MEMBERS:  # each array costs the reader time and memory of its own
            raise ValueError(f"frame with too many arrays ({len(infos)})")
    with np.load(io.BytesIO(data), allow_pickle=False) as z:
        raw = z["__header__"]
        if raw.nbytes > MAX_HEADER_BYTES:  # checked before json.loads builds anything
            raise ValueError("frame header too large")
        header = json.loads(bytes(raw).decode())
        arrays = {k: z[k] for k in z.files if k != "__header__"}
    return header, arrays


MAX_HEADER_BYTES = 4 << 20  # the JSON part of one frame
MAX_MEMBERS = 4096  # arrays in one frame (a result holds a few dozen)


def read_exact(fd: int, n: int) -> bytes:
    chunks = []
    while n:
        chunk = os.read(fd, min(n, 1 << 20))
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


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
        kexec_load=246, kexec_file_load=320)),
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
        kexec_load=104)),
}
_libc = None  # loaded once in the zygote (ctypes is denied to the child once its hook is in)


def _load_libc() -> None:
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
    its request pipe closes.)
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


# --------------------------------------------------------------------------
# building arguments from specs
# --------------------------------------------------------------------------
def build_arg(spec, arrays, device, grad_inputs: dict, path: str):
    """Turn one plain spec from the parent into a Python/torch object."""
    import torch

    if not isinstance(spec, dict):
        return spec  # JSON scalar, string, None, bool
    kind = spec.get("kind")
    if kind == "tensor":
        arr = arrays[spec["key"]]
        t = torch.as_tensor(arr.copy())
        if spec.get("dtype"):
            t = t.to(getattr(torch, spec["dtype"]))
        t = t.to(device)
        if spec.get("requires_grad"):
            t.requires_grad_(True)
        grad_inputs[path] = t
        return t
    if kind == "list":
        return [build_arg(s, arrays, device, grad_inputs, f"{path}.{i}") for i, s in enumerate(spec["items"])]
    if kind == "tuple":
        return tuple(build_arg(s, arrays, device, grad_inputs, f"{path}.{i}") for i, s in enumerate(spec["items"]))
    if kind == "generator":
        g = torch.Generator(device=device)
        g.manual_seed(int(spec["seed"]))
        return g
    if kind == "device":
        return torch.device(device)
    if kind == "env":
        from common.envs import make_env

        return make_env(spec["env_id"], seed=spec.get("seed"), **spec.get("kwargs", {}))
    if kind == "network":
        from common.networks import rebuild

        net = rebuild(spec["class"], spec["config"], {k: torch.as_tensor(arrays[v].copy()) for k, v in spec["state"].items()})
        net.to(device)
        if spec.get("requires_grad"):
            for name, p in net.named_parameters():
                grad_inputs[f"{path}:{name}"] = p
        return net
    raise ValueError(f"unknown argument spec kind {kind!r}")


# --------------------------------------------------------------------------
# flattening results into plain data
# --------------------------------------------------------------------------
class Flattener:
    """Collects arrays into a dict and returns a JSON tree that refers to them."""

    def __init__(self):
        self.arrays: dict = {}

    def add(self, arr) -> str:
        import numpy as np

        arr = np.asarray(arr, order="C")  # (ascontiguousarray would make 0-d arrays 1-d)
        if arr.dtype.kind not in "biuf":
            raise TypeError(f"unsupported array dtype {arr.dtype}")
        key = f"a{len(self.arrays)}"
        self.arrays[key] = arr
        return key

    def tensor(self, t) -> dict:
        import torch

        base = torch.Tensor
        with torch._C.DisableTorchFunction():  # read the data, never the subclass's story
            return self._tensor(t, base)

    def _tensor(self, t, base) -> dict:
        import torch

        d = base.detach(t)
        info = {
            "kind": "tensor",
            "exact_type": type(t) is base,
            "dtype": str(d.dtype).replace("torch.", ""),
            "device": str(d.device),
            "requires_grad": bool(t.requires_grad),
            "shape": list(d.shape),
        }
        info["key"] = self.add(base.numpy(base.cpu(d.to(torch.float64) if d.dtype in (torch.bfloat16, torch.float16) else d)))
        return info

    def flatten(self, obj, depth: int = 0):
        import numpy as np
        import torch

        if depth > 6:
            return {"kind": "unsupported", "type": "too deeply nested"}
        # type(), not isinstance(): isinstance believes a faked __class__. A
        # Tensor/ndarray subclass may override __eq__, __sub__, __abs__ or
        # __torch_function__; the parent never calls them, and such an output
        # earns nothing, whatever its data (torch.nn.Parameter included).
        if isinstance(obj, torch.Tensor) or isinstance(obj, np.ndarray):
            if type(obj) not in (torch.Tensor, np.ndarray):
                base = torch.Tensor if isinstance(obj, torch.Tensor) else np.ndarray
                name = f"{base.__module__.split('.')[0]}.{base.__name__}"
                what = "subclass" if issubclass(type(obj), base) else "look-alike (a faked __class__)"
                return {"kind": "unsupported",
                        "type": f"{name} {what} {type(obj).__name__} (return a plain {name})"}
        if type(obj) is torch.Tensor:
            return self.tensor(obj)
        if isinstance(obj, torch.nn.Module):
            state = {}
            for name, value in obj.state_dict().items():
                state[name] = self.add(value.detach().cpu().numpy())
            try:
                config = json.loads(json.dumps(getattr(obj, "config", {})))
            except Exception:
                config = {}
            return {"kind": "network", "class": type(obj).__name__, "config": config, "state": state}
        if type(obj) is np.ndarray:
            return {"kind": "ndarray", "key": self.add(obj), "dtype": str(obj.dtype), "shape": list(obj.shape)}
        if isinstance(obj, (bool, np.bool_)):
            return {"kind": "bool", "value": bool(obj)}
        if isinstance(obj, (int, float, np.integer, np.floating)):
            return {"kind": "number", "value": float(obj), "type": type(obj).__name__}
        if obj is None:
            return {"kind": "none"}
        if isinstance(obj, str):
            return {"kind": "str", "value": obj[:1000]}
        if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
            return {
                "kind": "record",
                "type": type(obj).__name__,
                "fields": {f.name: self.flatten(getattr(obj, f.name), depth + 1) for f in dataclasses.fields(obj)},
            }
        if isinstance(obj, dict):
            return {
                "kind": "record",
                "type": "dict",
                "fields": {str(k): self.flatten(v, depth + 1) for k, v in list(obj.items())[:200]},
            }
        if isinstance(obj, (list, tuple)):
            items = list(obj)
            if items and len(items) > 8 and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in items):
                return {"kind": "numbers", "key": self.add(np.asarray(items, dtype=np.float64)), "type": type(obj).__name__}
            return {
                "kind": "sequence",
                "type": type(obj).__name__,
                "items": [self.flatten(x, depth + 1) for x in items[:10000]],
            }
        return {"kind": "unsupported", "type": type(obj).__name__}


# --------------------------------------------------------------------------
# running one request in the forked child
# --------------------------------------------------------------------------
def describe_exception(exc: BaseException, filename_hint: str) -> dict:
    """A one-line description plus the last frame inside the student's file."""
    where = ""
    tb = exc.__traceback__
    for frame in traceback.extract_tb(tb):
        if filename_hint in (frame.filename or ""):
            where = f"{os.path.basename(frame.filename)}, line {frame.lineno}, in {frame.name}"
    if isinstance(exc, SyntaxError):
        where = f"{os.path.basename(exc.filename or '?')}, line {exc.lineno}"
    try:
        message = str(exc)
    except BaseException:
        message = "(the exception could not be printed)"
    return {
        "type": type(exc).__name__[:100],
        "message": message[:MAX_MESSAGE],
        "where": where[:200],
    }


MAX_MESSAGE = 300  # characters of an exception message that reach the parent


class DependencyError(ImportError):
    """A function of an earlier exercise is needed, but that module could not be imported."""


def _package(work_dir: str):
    if "submission" not in sys.modules:
        pkg = types.ModuleType("submission")
        pkg.__path__ = [os.path.join(work_dir, "submission")]
        pkg.__package__ = "submission"
        sys.modules["submission"] = pkg
    return sys.modules["submission"]


def _placeholder(module, dep: str, reason: str) -> None:
    """Turn ``module`` into one whose every attribute is a function raising DependencyError."""
    for key in [k for k in module.__dict__ if not k.startswith("__")]:
        del module.__dict__[key]

    def missing(name):
        if name.startswith("__"):
            raise AttributeError(name)

        def unavailable(*args, **kwargs):
            raise DependencyError(f"{name}() of {dep}.py is needed here, but {dep}.py {reason}; fix {dep} first")

        unavailable.__name__ = name
        return unavailable

    module.__getattr__ = missing


class _EarlierExercises:
    """Import hook for the student's EARLIER exercises (``from .ex1_values import ...``).

    The graded module imports the student's own earlier work, never a
    reference. An earlier module that is missing or fails to import becomes a
    placeholder whose functions raise DependencyError, so only the checks
    that really call it fail, and their feedback names the module to fix.
    """

    def __init__(self, work_dir: str, names: list[str]):
        self.dir = os.path.join(work_dir, "submission")
        self.names = {f"submission.{n}": n for n in names}

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in self.names:
            return None
        origin = os.path.join(self.dir, self.names[fullname] + ".py")
        return importlib.util.spec_from_loader(fullname, self, origin=origin)

    def create_module(self, spec):
        return None

    def exec_module(self, module) -> None:
        dep = self.names[module.__name__]
        path = os.path.join(self.dir, dep + ".py")
        module.__file__ = path
        if not os.path.isfile(path):
            return _placeholder(module, dep, "is not in the submission")
        try:
            # the standard loader keeps the bytecode in the submission's __pycache__ (the child's own
            # folder), so the next child of this sandbox skips compiling it again (milliseconds a call)
            code = importlib.machinery.SourceFileLoader(module.__name__, path).get_code(module.__name__)
            exec(code, module.__dict__)  # noqa: S102 (student code, inside the sandbox)
        except BaseException as exc:  # SyntaxError, ImportError, SystemExit at import, ...
            info = describe_exception(exc, "/submission/")
            where = f" ({info['where']})" if info["where"] else ""
            _placeholder(module, dep, f"could not be imported: {info['type']}{where}")


def load_student_module(work_dir: str, module: str, earlier: list[str] | None = None):
    """Import submission/<module>.py as submission.<module> (a synthetic package)."""
    _package(work_dir)
    if earlier and not any(isinstance(f, _EarlierExercises) for f in sys.meta_path):
        sys.meta_path.insert(0, _EarlierExercises(work_dir, earlier))
    path = os.path.join(work_dir, "submission", module + ".py")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{module}.py is not in the submission")
    return importlib.import_module(f"submission.{module}")


def load_kit_module(kit_dir: str, work_dir: str, name: str, fresh: bool = False):
    """Import the kit's own module ``name`` (given code, a suite driver) into the submission package.

    It is read from the kit's read-only folder, never from the submission, and
    its relative imports (``from .ex2_reinforce import ...``) reach the
    student's modules.
    """
    full = f"submission.{name}"
    if fresh:
        full = f"submission.{name}_{os.urandom(6).hex()}"
    elif full in sys.modules:
        return sys.modules[full]
    _package(work_dir)
    spec = importlib.util.spec_from_file_location(full, os.path.join(kit_dir, "modules", name + ".py"))
    mod = importlib.util.module_from_spec(spec)
    mod.__package__ = "submission"
    sys.modules[full] = mod
    spec.loader.exec_module(mod)
    return mod


def given_function(kit_dir: str, work_dir: str, module: str, function: str, student, functions: list[str]):
    """``function`` from the kit's copy of ``module``, with the student's functions bound into it.

    The module is executed afresh from the kit's read-only file (never taken from
    ``sys.modules``, where student code could have planted one). Code that runs
    in this process can still tamper with it in memory; the suites therefore
    grant a learning test only when the functions it trains with pass their own
    checks (``Exercise.trains_with``).
    """
    given = load_kit_module(kit_dir, work_dir, f"__given_{module}", fresh=True)
    for name in functions:
        fn = getattr(student, name, None)
        if fn is None:
            def fn(*args, _name=name, **kwargs):
                raise AttributeError(f"{module}.py defines no function {_name}()")
        setattr(given, name, fn)
    return getattr(given, function, None)


def run_case(fn, case: dict, arrays: dict, device: str) -> tuple[dict, dict]:
    import torch

    flat = Flattener()
    grad_inputs: dict = {}
    args = [build_arg(s, arrays, device, grad_inputs, f"arg{i}") for i, s in enumerate(case.get("args", []))]
    kwargs = {k: build_arg(s, arrays, device, grad_inputs, k) for k, s in case.get("kwargs", {}).items()}
    tensor_inputs = {p: t for p, t in grad_inputs.items() if ":" not in p}
    if case.get("seed") is not None:
        torch.manual_seed(int(case["seed"]))
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    seconds = time.perf_counter() - t0
    try:
        result = {"ok": True, "seconds": seconds, "output": flat.flatten(out)}
    except Exception as exc:  # e.g. a tensor on the meta device, an exploding __iter__
        raise UnreadableResult(f"the grader could not read the result ({type(exc).__name__}: {exc})") from None
    _check_size(flat)

    # gradients of sum_k <w_k, output_k> with respect to every input that asked for one
    weights = case.get("grad_weights")
    if weights:
        leaves = _select_outputs(out, list(weights))
        total = None
        for path, leaf in leaves.items():
            if isinstance(leaf, torch.Tensor) and leaf.requires_grad:
                w = torch.as_tensor(arrays[weights[path]].copy()).to(device=leaf.device, dtype=leaf.dtype)
                term = (torch.Tensor.reshape(leaf, w.shape) * w).sum()
                total = term if total is None else total + term
        wanted = [(p, t) for p, t in grad_inputs.items() if t.requires_grad]
        grads: dict = {}
        if total is not None and wanted:
            gs = torch.autograd.grad(total, [t for _, t in wanted], allow_unused=True)
            for (p, _), g in zip(wanted, gs):
                grads[p] = None if g is None else flat.add(g.detach().cpu().numpy())
        else:
            grads = {p: None for p, _ in wanted}
        result["grads"] = grads
    # inputs after the call (the parent checks that nothing was mutated)
    with torch._C.DisableTorchFunction():
        result["inputs_after"] = {
            p: flat.add(torch.Tensor.detach(t).cpu().numpy()) for p, t in tensor_inputs.items()
        }
    _check_size(flat)
    return result, flat.arrays


class UnreadableResult(Exception):
    """The function returned something the grader cannot turn into plain data."""


class ResultTooLarge(Exception):
    """The function returned more data than any exercise needs."""


MAX_RESULT_BYTES = 256 << 20  # per request; the zygote enforces it too, on the raw bytes


def _check_size(flat: "Flattener") -> None:
    total = sum(a.nbytes for a in flat.arrays.values())
    if total > MAX_RESULT_BYTES:
        raise ResultTooLarge(f"the result is too large: {total / 2**20:.0f} MB of data "
                             f"(the grader accepts at most {MAX_RESULT_BYTES >> 20} MB)")


def _select_outputs(out, paths: list[str]) -> dict:
    chosen = {}
    for path in paths:
        obj = out
        for part in path.split(".") if path else []:
            if isinstance(obj, (list, tuple)):
                obj = obj[int(part)]
            elif isinstance(obj, dict):
                obj = obj[part]
            else:
                obj = getattr(obj, part)
        chosen[path] = obj
    return chosen


def _limit_and_confine(cfg: dict, limits: dict) -> None:
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


def _resolve(cfg: dict, request: dict):
    """The function a request names, or the frame that says why there is none."""
    kit_dir, work_dir = cfg["kit_dir"], cfg["work_dir"]
    module_name = request["module"]
    fn_name = request["function"]
    graded = cfg.get("graded", {})
    kind = request.get("kind", "student")
    student_module = module_name if kind != "kit" else request.get("graded")
    info = graded.get(student_module or "", {})
    try:
        if kind == "kit":
            if student_module:  # the driver imports the graded module: its earlier exercises resolve as usual
                load_student_module(work_dir, student_module, info.get("earlier"))
            mod = load_kit_module(kit_dir, work_dir, module_name)
        else:
            mod = load_student_module(work_dir, module_name, info.get("earlier"))
    except BaseException as exc:  # SyntaxError, ImportError, SystemExit at import, ...
        return None, {"event": "import_error", "error": describe_exception(exc, "/submission/")}
    if kind == "given":
        try:
            fn = given_function(kit_dir, work_dir, module_name, fn_name, mod, info.get("functions", []))
        except BaseException as exc:
            return None, {"event": "import_error", "error": describe_exception(exc, "/submission/")}
    else:
        fn = getattr(mod, fn_name, None)
    if fn is None or not callable(fn):
        return None, {"event": "missing", "error": {"type": "AttributeError",
                                                    "message": f"{module_name}.py defines no function {fn_name}()",
                                                    "where": ""}}
    return fn, None


def _run_request(cfg: dict, request: dict, arrays: dict, emit) -> None:
    """Every case of one request, each answered by one frame, then a "done" frame."""
    fn, failure = _resolve(cfg, request)
    if failure is not None:
        emit(failure)
        return
    for index, case in enumerate(request["cases"]):
        try:
            result, out_arrays = run_case(fn, case, arrays, cfg.get("device", "cpu"))
            result["event"] = "case"
            result["index"] = index
            emit(result, out_arrays)
        except BaseException as exc:  # includes SystemExit and KeyboardInterrupt
            emit({"event": "case", "index": index, "ok": False, "error": describe_exception(exc, "/submission/")})
    emit({"event": "done"})


def child_main(cfg: dict, request: dict, arrays: dict, out_fd: int) -> None:
    """Runs in the forked child. Never returns: ends with os._exit."""
    _limit_and_confine(cfg, request.get("limits", {}))

    def emit(header: dict, arr: dict | None = None) -> None:
        write_all(out_fd, pack(header, arr))

    _run_request(cfg, request, arrays, emit)
    os._exit(0)


def session_main(cfg: dict, opening: dict, in_fd: int, out_fd: int) -> None:
    """A session child: confined once, then it answers request after request. Never returns.

    Each request arrives as one frame on ``in_fd``; its answer leaves as one
    outer frame (length, then the case frames and "done") on ``out_fd``.
    Student code keeps its state between the requests of one session: only
    the trusted loop that opened it (a learning test) talks to it.
    """
    _limit_and_confine(cfg, opening.get("limits", {}))
    while True:
        try:
            (n,) = _HDR.unpack(read_exact(in_fd, _HDR.size))
            request, arrays = unpack(read_exact(in_fd, n))
        except EOFError:
            os._exit(0)
        frames: list[bytes] = []

        def emit(header: dict, arr: dict | None = None) -> None:
            frames.append(pack(header, arr))

        _run_request(cfg, request, arrays, emit)
        body = b"".join(frames)
        write_all(out_fd, _HDR.pack(len(body)) + body)


# --------------------------------------------------------------------------
# the zygote loop
# --------------------------------------------------------------------------
def serve(cfg: dict, in_fd: int, out_fd: int) -> None:
    while True:
        try:
            (n,) = _HDR.unpack(read_exact(in_fd, _HDR.size))
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
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            timed_out = True
            break
        ready, _, _ = select.select([r], [], [], min(left, 1.0))
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
    body = whole_frames(bytes(buf))
    if too_large:
        body += _too_large_frames(request)
    return _HDR.pack(len(body) + len(summary)) + body + summary


def _read_until(fd: int, n: int, deadline: float) -> bytes:
    """Exactly ``n`` bytes from ``fd`` by ``deadline`` (TimeoutError), or EOFError."""
    chunks = []
    while n:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        ready, _, _ = select.select([fd], [], [], min(left, 1.0))
        if ready:
            chunk = os.read(fd, min(n, 1 << 20))
            if not chunk:
                raise EOFError
            chunks.append(chunk)
            n -= len(chunk)
    return b"".join(chunks)


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
    write_all(out_fd, _HDR.pack(0))  # open: an empty answer
    summary = None  # the exit frame, once the child is gone
    while True:
        try:
            (n,) = _HDR.unpack(read_exact(in_fd, _HDR.size))
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
                _write_until(req_w, _HDR.pack(n) + data, deadline)
                (m,) = _HDR.unpack(_read_until(r, _HDR.size, deadline))
                if m > MAX_RESULT_BYTES + (8 << 20):  # the child bypassed its own check
                    summary = _reap(pid, r, log, False)
                    body = _too_large_frames(request) + summary
                    write_all(out_fd, _HDR.pack(len(body)) + body)
                    continue
                body = whole_frames(_read_until(r, m, deadline))
                write_all(out_fd, _HDR.pack(len(body)) + body)
                continue
            except (TimeoutError, EOFError) as exc:
                summary = _reap(pid, r, log, isinstance(exc, TimeoutError))
        write_all(out_fd, _HDR.pack(len(summary)) + summary)
    os.close(req_w)
    if summary is None:
        summary = _reap(pid, r, log, False)
    return _HDR.pack(len(summary)) + summary


def whole_frames(data: bytes) -> bytes:
    """The longest prefix of ``data`` made of complete frames."""
    pos = 0
    while pos + _HDR.size <= len(data):
        (n,) = _HDR.unpack_from(data, pos)
        if n > len(data) - pos - _HDR.size:
            break
        pos += _HDR.size + n
    return data[:pos]


def main() -> None:
    with open(sys.argv[1]) as f:
        cfg = json.load(f)
    sys.path.insert(0, cfg["kit_dir"])  # for `common` (a trusted copy lives here)
    # preload what every submission needs, once, before any fork
    import numpy  # noqa: F401
    import torch

    torch.set_num_threads(int(cfg.get("threads", 1)))
    import gymnasium  # noqa: F401

    if cfg.get("preload_optim"):
        # The first optimizer a process builds imports torch._dynamo (seconds);
        # suites that train do it once here so every forked child inherits it.
        torch.optim.Adam([torch.zeros(1, requires_grad=True)], lr=1e-3)

    for name in ("common", "common.device", "common.envs", "common.networks", "common.rollout", "common.validate"):
        try:
            importlib.import_module(name)
        except ImportError:
            pass
    in_fd, out_fd = int(cfg["in_fd"]), int(cfg["out_fd"])
    _load_libc()
    kernel = probe_confinement(cfg["kit_dir"], cfg["work_dir"], cfg.get("device", "cpu"), cfg.get("deny_roots") or [])
    write_all(out_fd, pack({"event": "ready", "kernel": kernel}))
    serve(cfg, in_fd, out_fd)


if __name__ == "__main__":
    main()
