"""Parent side of the sandbox: starts and talks to the worker zygote.

The parent (pytest + scoring) never imports student code. It copies the
submission's ``.py`` files into a fresh temporary directory next to a copy of
``common/`` and of the child package (``autograder/child/``, there named
``rlkit_worker``), and starts ``python -I`` there with a scrubbed environment in
a new session. See ``docs/THREAT_MODEL.md``.
"""
from __future__ import annotations

import fcntl
import json
import os
import random
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import forkserver
from .forkserver import CHILD_PACKAGE
from .child import wire
from .exercises import BY_NAME, ORDER, earlier, is_given
from .given import given_source

KIT_ROOT = Path(__file__).resolve().parent.parent
# What a submission may bring into a sandbox (checked before anything is copied)
MAX_FILE_BYTES = 2 << 20  # one .py file
MAX_FILES = 64  # .py files in the submission folder
MAX_TOTAL_BYTES = 8 << 20  # all of them together
# What a child may send back (checked before anything is parsed)
MAX_FRAME_BYTES = wire.MAX_RESULT_BYTES + (16 << 20)
MAX_NODES = 50_000  # nodes in one result tree
# strict mode: each live sandbox runs as a user of its own, taken from this range
UID_BASE, UID_COUNT = 1_200_000_000, 1 << 20
# one lock folder per machine, not per TMPDIR: two root graders with different temporary folders
# (a per-job TMPDIR, PrivateTmp) must still see each other's leases; /run is local, root's, emptied at boot
UID_LOCKS = Path("/run/rlkit-uid-locks")
# where sandbox folders go when set (a batch gives each submission's grader a folder of its own,
# and removes it after that grader, even one killed on timeout that could not clean up)
SANDBOX_ROOT_ENV = "RLKIT_SANDBOX_ROOT"
# glibc's malloc asks the kernel for transparent huge pages (madvise; nothing changes where THP is
# off or glibc is older than 2.35). After ``import torch`` a process holds about 150 MB of heap, and
# each fork copies the page table that maps it and each exit tears it down: with 2 MB pages that
# table is 512 times smaller. A fresh child costs 25 -> 17 ms of CPU. For zygotes, the fork server
# and the suite servers (``runner``), which all fork for a living.
MALLOC_HUGE_PAGES = ("GLIBC_TUNABLES", "glibc.malloc.hugetlb=1")


class GraderError(RuntimeError):
    """The grader itself could not run (not the student's fault)."""


class SubmissionRejected(ValueError):
    """The submission cannot be graded as uploaded (too many or too large files); says why."""


def _works(cmd: list[str]) -> bool:
    try:
        return subprocess.run(cmd, capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


_NS_CACHE: dict = {}


def namespace_prefix(network: bool) -> list[str]:
    """``unshare`` arguments for a PID namespace with its own /proc, an IPC namespace (and a network
    namespace).

    Root needs nothing more; another user gets them inside a user namespace of
    its own where the kernel allows that. Returns [] where neither works.
    """
    key = (network, os.geteuid() == 0)
    if key not in _NS_CACHE:
        exe = shutil.which("unshare")
        flags = ["--pid", "--fork", "--mount-proc", "--ipc"] + (["--net"] if network else [])
        tries = [flags] if os.geteuid() == 0 else [["--user", "--map-root-user"] + flags]
        _NS_CACHE[key] = []
        for f in tries if exe else []:
            if _works([exe, *f, "--", "true"]):
                _NS_CACHE[key] = [exe, *f, "--"]
                break
    return list(_NS_CACHE[key])


def _lock_dir() -> int:
    """A descriptor of ``UID_LOCKS``, created if missing, checked on the opened directory itself: a
    real directory (a link in its place is refused, not followed), owned by this user, writable by
    no one else. Every lock file is then opened, checked and removed relative to it, so no other
    local user can point the grader's lock files, or their removal, somewhere else."""
    try:
        os.mkdir(UID_LOCKS, 0o700)
    except FileExistsError:
        pass
    except OSError as exc:
        raise GraderError(f"strict sandbox: cannot create the sandbox-user lock folder {UID_LOCKS} "
                          f"({exc.strerror})") from None
    try:
        fd = os.open(UID_LOCKS, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        raise GraderError(f"refusing to grade: {UID_LOCKS} is not a directory ({exc.strerror})") from None
    st = os.fstat(fd)
    if st.st_uid != os.geteuid() or st.st_mode & 0o077:
        os.close(fd)
        raise GraderError(f"refusing to grade: {UID_LOCKS} must be a directory of this user that no one else "
                          f"can use (owner uid {st.st_uid}, mode {stat.S_IMODE(st.st_mode):o}); remove it")
    return fd


def _locked(name: str, dir_fd: int, create: bool) -> int | None:
    """The lock file ``name`` in the lock folder, opened and locked by this process, or None when
    another one holds it. It may have been removed by its last holder between our open and our lock:
    then the lock is on a file nobody else will look at, counts for nothing, and None it is too."""
    flags = os.O_RDWR | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | (os.O_CREAT if create else 0)
    try:
        fd = os.open(name, flags, 0o600, dir_fd=dir_fd)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        if os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_ino == os.fstat(fd).st_ino:
            return fd
    except OSError:
        pass
    os.close(fd)
    return None


class UidLease:
    """A user id no other live sandbox on this machine holds (a lock file per id, held while alive,
    removed on release)."""

    def __init__(self):
        self.dir = _lock_dir()
        for _ in range(64):
            uid = UID_BASE + random.randrange(UID_COUNT)
            fd = _locked(str(uid), self.dir, create=True)
            if fd is not None:
                self.uid, self.fd, self.name = uid, fd, str(uid)
                _remove_stale_locks(self.dir, self.name)
                return
        os.close(self.dir)
        raise GraderError("no free sandbox user id")

    def release(self) -> None:
        if self.fd is not None:
            try:
                os.unlink(self.name, dir_fd=self.dir)  # while still locked: the next holder creates a new file
            except OSError:
                pass
            os.close(self.fd)
            os.close(self.dir)
            self.fd = None


STALE_LOCKS_LOOKED_AT, STALE_LOCKS_REMOVED = 16, 4  # per new lease: cheap, and drains a backlog


def _remove_stale_locks(dir_fd: int, own: str) -> None:
    """Remove a few lock files that nobody holds. A grader killed with SIGKILL cannot release its
    ids, so their files stay (the kernel drops the locks, not the files); each new lease removes up
    to ``STALE_LOCKS_REMOVED`` of them. Safe against a grader that opened such a file just before:
    it locks either while this one holds the lock (it fails and draws again) or after the file is
    gone (its inode check in ``_locked`` fails, and it draws again). Never fails the lease."""
    removed = 0
    try:
        with os.scandir(dir_fd) as entries:
            for looked, entry in enumerate(entries):
                if looked >= STALE_LOCKS_LOOKED_AT or removed >= STALE_LOCKS_REMOVED:
                    break
                fd = None if entry.name == own else _locked(entry.name, dir_fd, create=False)
                if fd is None:  # ours, or a live sandbox's
                    continue
                try:
                    if stat.S_ISREG(os.fstat(fd).st_mode):
                        os.unlink(entry.name, dir_fd=dir_fd)
                        removed += 1
                finally:
                    os.close(fd)
    except OSError:
        pass


# ---------------------------------------------------------------- frame checks
# Everything in a frame comes from the untrusted child. Before the parent's
# code (client._collect, checks) looks at a frame, its shape is checked here:
# JSON of the expected types only (a result tree of wire.KINDS), and arrays of
# plain numeric/bool dtypes. A frame that fails is dropped ("garbage"), which
# fails its case, never the grader.
MAX_ANSWER_JSON = 16 << 20  # JSON bytes parsed per answer, all frames together (its text costs ~30x in objects)


def parse_answer(blob: bytes, n_cases: int) -> list[tuple[dict, dict]]:
    """The frames of a zygote's answer to a request of ``n_cases`` cases, each checked (a frame that
    does not parse or check is "garbage": missing). A hostile child's answer costs this process
    little: at most one frame per case and a few more are parsed, with at most
    ``MAX_ANSWER_JSON`` bytes of JSON in all, garbage is noted once, and the zygote's summary
    (always the last frame) is read whatever came before it."""
    frames: list[tuple[dict, dict]] = []
    garbage = ({"event": "garbage"}, {})
    pos, parsed, json_left = 0, 0, MAX_ANSWER_JSON
    while pos + wire.HDR.size <= len(blob):
        (n,) = wire.HDR.unpack_from(blob, pos)
        pos += wire.HDR.size
        last = pos + n >= len(blob)
        json_size = wire.json_length(blob[pos:pos + min(n, 8)])  # (its head only: no copy of the frame)
        if (parsed < n_cases + wire.MAX_EXTRA_FRAMES and json_size <= json_left) or last:
            parsed += 1
            json_left -= json_size
            try:
                header, arrays = wire.unpack(blob[pos:pos + n])
                frame = (header, arrays) if _frame_ok(header, arrays) else garbage
            except Exception:  # a frame that does not parse is treated as missing
                frame = garbage
            if frame is not garbage or not frames or frames[-1] is not garbage:
                frames.append(frame)
        pos += n
    return frames


def _frame_ok(header, arrays: dict) -> bool:
    if not isinstance(header, dict) or not isinstance(header.get("event"), str):
        return False
    if any(a.dtype.kind not in wire.NUMERIC for a in arrays.values()):
        return False
    event = header["event"]
    if header.get("error") is not None and not wire.is_str_map(header["error"], (str,)):
        return False
    if event == "case" and header.get("ok") is True:
        refs = [header.get("grads", {}), header.get("inputs_after", {})]
        return (isinstance(header.get("index"), int) and wire.tree_ok(header.get("output"), arrays, MAX_NODES)
                and all(wire.is_str_map(r) and all(v is None or v in arrays for v in r.values()) for r in refs)
                and wire.is_number(header.get("seconds", 0.0)))
    if event == "exit":
        return isinstance(header.get("exit", {}), dict) and isinstance(header.get("log_tail", ""), str)
    return True


@dataclass
class Limits:
    cpu_seconds: int = 60
    memory_bytes: int = 3 << 30
    file_bytes: int = 64 << 20
    open_files: int = 256
    processes: int = 64

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class Sandbox:
    """One zygote per submission and exercise; restarted if it dies.

    Its folder ``D`` (a fresh temporary directory) has two parts:

    * ``D/kit``: the worker, ``common/`` and the kit's modules (given code,
      suite drivers). The child reads them and cannot change them (Landlock;
      in strict mode also file ownership).
    * ``D/work``: the child's only writable folder (its cwd, HOME and TMPDIR),
      holding ``submission/``: copies of the student's ``.py`` files.

    No reference code is ever copied here: the graded module imports the
    student's own earlier exercises (see ``docs/THREAT_MODEL.md``).
    """

    submission: Path
    device: str = "cpu"
    threads: int = 1
    strict: bool = False
    module: str | None = None  # the exercise this sandbox grades (None: copy every file)
    kit_modules: dict = field(default_factory=dict)  # name -> trusted source (suite drivers)
    allow_weak: bool = False  # strict mode only: grade even without Landlock and seccomp
    protections: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    def __post_init__(self):
        self.submission = Path(self.submission).resolve()
        self.proc: subprocess.Popen | None = None
        self.dir: str | None = None
        self.counter = 0
        self.lease: UidLease | None = None
        self._zlog = None
        self.in_session = False

    # ------------------------------------------------------------------ setup
    @property
    def kit_dir(self) -> str:
        return os.path.join(self.dir, "kit")

    @property
    def work_dir(self) -> str:
        return os.path.join(self.dir, "work")

    def student_files(self) -> list[Path]:
        """The submission's ``.py`` files that go into the sandbox; refuses oversized submissions."""
        if not self.submission.is_dir():
            return []
        files = []
        with os.scandir(self.submission) as it:
            for n, entry in enumerate(it):
                if n > 10 * MAX_FILES + 1000:
                    raise SubmissionRejected(f"the submission folder holds more than {10 * MAX_FILES + 1000} "
                                             f"entries; upload only your ex*_*.py files")
                if entry.name.endswith(".py") and entry.is_file(follow_symlinks=False):
                    files.append(Path(entry.path))
        files.sort()
        if len(files) > MAX_FILES:
            raise SubmissionRejected(f"the submission holds {len(files)} .py files; the grader takes at most "
                                     f"{MAX_FILES} (your ex*_*.py files and a few helpers)")
        total = 0
        for f in files:
            size = f.stat(follow_symlinks=False).st_size
            if size > MAX_FILE_BYTES:
                raise SubmissionRejected(f"{f.name} is {size / 2**20:.1f} MB; the grader takes .py files of at "
                                         f"most {MAX_FILE_BYTES >> 20} MB")
            total += size
        if total > MAX_TOTAL_BYTES:
            raise SubmissionRejected(f"the submission's .py files add up to {total / 2**20:.1f} MB; the grader "
                                     f"takes at most {MAX_TOTAL_BYTES >> 20} MB")
        return files

    def _prepare_dir(self) -> str:
        files = self.student_files()
        root = os.environ.get(SANDBOX_ROOT_ENV) or None
        if root and not os.path.isdir(root):  # its batch removed it: this grade was stopped
            raise GraderError(f"the folder for this grade's sandboxes ({root}) is gone")
        d = tempfile.mkdtemp(prefix="rlkit-sandbox-", dir=root)
        kit, work = os.path.join(d, "kit"), os.path.join(d, "work")
        sub = os.path.join(work, "submission")
        os.makedirs(os.path.join(kit, "modules"))
        os.makedirs(sub)
        os.makedirs(os.path.join(work, "mpl"))
        for p in files:
            if p.stem not in self.kit_modules:
                _copy_regular(p, os.path.join(sub, p.name))
        shutil.copytree(KIT_ROOT / "common", os.path.join(kit, "common"),
                        ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copytree(Path(__file__).with_name("child"), os.path.join(kit, CHILD_PACKAGE),
                        ignore=shutil.ignore_patterns("__pycache__"))
        for name, text in self._kit_module_sources().items():
            Path(kit, "modules", f"{name}.py").write_text(text)
        return d

    def _kit_module_sources(self) -> dict[str, str]:
        """The kit's given code for the graded exercise, and the suite's drivers."""
        out = dict(self.kit_modules)
        names = [self.module] if self.module in BY_NAME else list(ORDER)
        for m in names:
            text = given_source(m)
            if text is not None:
                out[f"__given_{m}"] = text
        return out

    def _graded_modules(self) -> dict:
        """For the worker: each exercise's student functions and the earlier exercises it may import."""
        return {m: {"functions": list(BY_NAME[m].functions), "earlier": earlier(m)} for m in ORDER}

    def start(self) -> None:
        self.dir = self._prepare_dir()
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        prefix = os.path.realpath(sys.prefix)
        cfg = {
            "kit_dir": self.kit_dir,
            "work_dir": self.work_dir,
            "device": self.device,
            "threads": self.threads,
            "graded": self._graded_modules(),
            "kit_modules": sorted(self._kit_module_sources()),
            "in_fd": to_child_r,
            "out_fd": from_child_w,
            # the kit and the original submission are unreadable from the child;
            # the virtualenv (often inside the kit) stays readable for imports
            "deny_roots": [str(KIT_ROOT), str(self.submission)] + self._more_deny_roots(),
            "allow_roots": [prefix, os.path.realpath(sys.base_prefix), self.dir],
        }
        with open(os.path.join(self.kit_dir, "config.json"), "w") as f:
            json.dump(cfg, f)
        env = zygote_env(self.work_dir, self.threads, self.device)
        cmd = [sys.executable, "-I", os.path.join(self.kit_dir, CHILD_PACKAGE),
               os.path.join(self.kit_dir, "config.json")]
        self.protections = [
            "a separate process per check",
            "a fresh folder holding copies of the student's files only (no reference code)",
            "an environment with nothing of the grader's",
            "limits on CPU time, memory, file size and open files",
            "killed on timeout",
        ]
        self.missing = []
        # the zygote's own output goes to a file with no name (nothing the child can plant a link at)
        self._zlog = tempfile.TemporaryFile()
        uid = self._own_user()
        try:
            self.proc, namespaces = self._fork(env, uid, to_child_r, from_child_w)
            if self.proc is None:  # no fork server here: a new Python
                prefix = namespace_prefix(network=self.strict)
                namespaces = bool(prefix)
                if uid is not None and not shutil.which("setpriv"):
                    raise GraderError("the grader runs as root and setpriv (util-linux) is not installed, so student "
                                      "code would run as root: refusing to grade. Install util-linux, or grade as "
                                      "another user")
                if uid is not None:
                    # a root grader's child would otherwise keep root's capabilities (Landlock does not
                    # cover file metadata; seccomp refuses those calls too)
                    prefix += [shutil.which("setpriv"), f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
                               "--inh-caps=-all", "--bounding-set=-all", "--"]
                self.proc = subprocess.Popen(
                    prefix + cmd, cwd=self.work_dir, env=env, stdin=subprocess.DEVNULL, stdout=self._zlog,
                    stderr=self._zlog, pass_fds=(to_child_r, from_child_w), start_new_session=True,
                )
        finally:
            os.close(to_child_r)
            os.close(from_child_w)
        self._confinement_protections(namespaces, uid)
        self.to_child = to_child_w
        self.from_child = from_child_r
        try:
            header, _ = wire.unpack(self._read_frame(time.monotonic() + 120))
        except (TimeoutError, EOFError, ValueError) as exc:
            tail = self._zygote_log_tail()
            forked = isinstance(self.proc, forkserver.ForkedZygote)
            self.close()
            if forked:  # what a forked zygote cannot do here, a new Python may: this process stops forking
                forkserver.give_up(tail)
                return self.start()
            hint = ""
            if self.strict and os.geteuid() == 0:
                hint = (f" [strict mode runs the worker as a user of its own, who must be able to read the Python "
                        f"environment {sys.prefix} and every folder above it]")
            raise GraderError(f"the sandbox worker did not start ({type(exc).__name__}){hint}: {tail}") from None
        if header.get("event") != "ready":
            self.close()
            raise GraderError("unexpected first message from the sandbox worker")
        kernel = header.get("kernel") if isinstance(header.get("kernel"), dict) else {}
        self._kernel_protections(kernel)
        if self.strict and not (kernel.get("landlock") and kernel.get("seccomp")) and not self.allow_weak:
            lacking = [n for n, k in (("Landlock", "landlock"), ("seccomp", "seccomp")) if not kernel.get(k)]
            self.close()
            raise GraderError(
                f"strict sandbox: {' and '.join(lacking)} not active on this kernel, so student code would not be "
                f"confined by the kernel; refusing to grade. Run on Linux >= 5.13 with Landlock enabled, or pass "
                f"--allow-weak-sandbox (every report then says so)")
        if self.strict and self.allow_weak and self.missing:
            self.missing.append("WEAK SANDBOX ALLOWED by the instructor (--allow-weak-sandbox)")

    def _zygote_log_tail(self) -> str:
        if self._zlog is None:
            return ""
        try:
            self._zlog.seek(0, 2)
            size = self._zlog.tell()
            self._zlog.seek(max(0, size - 2000))
            return plain_text(self._zlog.read().decode(errors="replace"), 2000)
        except (OSError, ValueError):
            return ""

    def _more_deny_roots(self) -> list[str]:
        """Folders beside the submission (other students' work in a batch) and the
        temporary directory (other live sandboxes, the grader's result files)."""
        roots = [tempfile.gettempdir()] + ([os.environ[SANDBOX_ROOT_ENV]] if os.environ.get(SANDBOX_ROOT_ENV) else [])
        parent = self.submission.parent
        if parent != Path(parent.anchor):
            roots.append(str(parent))
        return [os.path.realpath(r) for r in roots]

    def _kernel_protections(self, kernel: dict) -> None:
        """What the worker's start-up probe saw the kernel enforce (see child/confine.py)."""
        if kernel.get("landlock"):
            self.protections.append(f"a kernel file-system allow-list (Landlock ABI {int(kernel['landlock'])}): it "
                                    f"reads the Python installation and its own folder, and writes only the latter")
        else:
            self.missing.append("Landlock (a kernel file-system allow-list)")
        if kernel.get("seccomp"):
            self.protections.append("a seccomp filter: no new processes, exec, sockets, ptrace, pidfd or shared memory")
        else:
            self.missing.append("seccomp (a system-call filter)")
        self.protections.append("Python audit hook (for clear error messages only)")

    def _own_user(self) -> int | None:
        """Whenever the grader is root: a user id no other sandbox has (leased), owning the work
        part alone; the kit part stays root's (read-only to the child). None otherwise. (A forked
        zygote drops to it itself; a new Python does it with ``setpriv``, and without it refuses.)"""
        if os.geteuid() != 0:
            return None
        self.lease = UidLease()
        uid = self.lease.uid
        os.chmod(self.dir, 0o711)
        for root, dirs, files in os.walk(self.kit_dir):
            os.chmod(root, 0o755)
            for name in files:
                os.chmod(os.path.join(root, name), 0o644)
        for root, dirs, files in os.walk(self.work_dir):
            os.chown(root, uid, uid, follow_symlinks=False)
            os.chmod(root, 0o700)
            for name in files:
                os.chown(os.path.join(root, name), uid, uid, follow_symlinks=False)
        return uid

    def _fork(self, env: dict, uid: int | None, in_fd: int, out_fd: int):
        """(the zygote, whether it has its namespaces) forked from this grade's fork server, or
        (None, False) where there is none, it is gone, its zygote could not set itself up (one
        that cannot read every folder of the server's ``sys.path`` as the sandbox user says so),
        or it could not give the namespaces that ``unshare`` gives here. Then the zygote starts
        as a new Python, as without a fork server."""
        if not forkserver.available(self.device, self.threads):
            return None, False
        server = forkserver.inherited()
        if server is None:
            return None, False
        try:
            got = forkserver.fork_zygote(server, {"config": os.path.join(self.kit_dir, "config.json"), "env": env,
                                                  "namespaces": {"net": self.strict}, "uid": uid},
                                         in_fd, out_fd, self._zlog.fileno(), timeout=120)
        finally:
            server.close()
        if got is None:
            return None, False
        handle, answer = got
        if not answer.get("namespaces") and namespace_prefix(network=self.strict):
            handle.kill()
            handle.close()
            return None, False
        return handle, bool(answer.get("namespaces"))

    def _confinement_protections(self, namespaces: bool, uid: int | None) -> None:
        """Namespaces (other processes invisible; no network in strict mode) and, whenever the
        grader is root, a user id no other sandbox has, with every capability dropped."""
        if namespaces:
            self.protections.append("its own PID namespace (other processes are invisible)"
                                    + ("; no network" if self.strict else ""))
        else:
            self.missing.append("PID namespace (unshare unavailable)")
        if uid is not None:
            self.protections.append("an unprivileged user of its own, without capabilities (no other sandbox "
                                    "shares it)")
        else:
            self.missing.append("a user of its own (needs a root grader)")

    # --------------------------------------------------------------- protocol
    def _read_frame(self, deadline: float) -> bytes:
        (n,) = wire.HDR.unpack(wire.read_exact(self.from_child, wire.HDR.size, deadline))
        if n > MAX_FRAME_BYTES:  # more than any answer needs: never read, never parsed
            raise EOFError
        return wire.read_exact(self.from_child, n, deadline)

    def add_kit_modules(self, modules: dict[str, str]) -> None:
        """Add trusted suite drivers (``{name: source}``) to the kit part of this sandbox.

        They go where :meth:`start` puts them (``kit/modules/``, read-only to the
        child), now if the sandbox runs and on every restart; a "kit" request
        loads them from there. One sandbox serves the suite's plain checks and its
        drivers, so a suite with drivers starts one zygote, not two.
        """
        self.kit_modules.update(modules)
        if self.dir:
            for name, text in modules.items():
                Path(self.kit_dir, "modules", f"{name}.py").write_text(text)

    def restart(self, tries: int = 3) -> None:
        """(Re)start the zygote; a start can fail on an overloaded machine, so retry."""
        for attempt in range(tries):
            self.close()
            try:
                self.start()
                return
            except SubmissionRejected:
                raise
            except GraderError:
                if attempt == tries - 1 or "refusing to grade" in str(sys.exc_info()[1]):
                    raise
                time.sleep(1.0 + attempt)

    def request(self, module: str, function: str, cases: list[dict], arrays: dict,
                timeout: float, limits: Limits) -> list[tuple[dict, dict]]:
        """Run ``cases`` of ``module.function`` in a fresh child; return its frames.

        Always returns; a dead zygote is restarted and reported as a crash frame.
        """
        if self.in_session and (self.proc is None or self.proc.poll() is not None):
            return [({"event": "exit", "timed_out": False, "exit": {"zygote": "gone"}, "log_tail": ""}, {})]
        if self.proc is None or self.proc.poll() is not None:
            try:
                self.restart()
            except SubmissionRejected as exc:
                return [({"event": "import_error", "error": {"type": "SubmissionRejected", "message": str(exc),
                                                              "where": ""}}, {})]
        self.counter += 1
        kind = "kit" if module in self.kit_modules else "given" if is_given(module, function) else "student"
        header = {
            "id": self.counter, "module": module, "function": function, "kind": kind, "cases": cases,
            "graded": self.module, "timeout": timeout, "limits": limits.as_dict(),
        }
        try:
            wire.write_all(self.to_child, wire.pack(header, arrays))
            blob = self._read_frame(time.monotonic() + timeout + 30)
        except (TimeoutError, EOFError, OSError, BrokenPipeError) as exc:
            self.close()
            return [({"event": "exit", "timed_out": isinstance(exc, TimeoutError),
                      "exit": {"zygote": type(exc).__name__}, "log_tail": ""}, {})]
        return parse_answer(blob, len(cases))

    def open_session(self, timeout: float, limits: Limits) -> None:
        """From now until :meth:`close_session`, requests go to one child that stays alive.

        It is confined like any child (``limits`` cover the whole session: its
        CPU seconds add up over every request). A learning test's trusted loop
        uses it to call the student's functions hundreds of times without a
        fork, a confinement and an import per call. Student state survives
        between those calls, which only ever come from that loop.
        """
        if self.proc is None or self.proc.poll() is not None:
            self.restart()
        self.counter += 1
        header = {"id": self.counter, "session": "open", "graded": self.module, "timeout": timeout,
                  "limits": limits.as_dict()}
        try:
            wire.write_all(self.to_child, wire.pack(header))
            self._read_frame(time.monotonic() + 30)
        except (TimeoutError, EOFError, OSError) as exc:
            self.close()
            raise GraderError(f"the sandbox could not open a session ({type(exc).__name__})") from None
        self.in_session = True

    def close_session(self) -> None:
        """End the session: its child is killed; requests fork a child each again."""
        if not self.in_session:
            return
        self.in_session = False
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            wire.write_all(self.to_child, wire.pack({"session": "close"}))
            self._read_frame(time.monotonic() + 30)
        except (TimeoutError, EOFError, OSError):
            self.close()

    def close(self) -> None:
        self.in_session = False
        try:
            self._close()
        finally:  # whatever the child left behind, the lease and the log are released
            if self.lease is not None:
                self.lease.release()
                self.lease = None
            if self._zlog is not None:
                self._zlog.close()
                self._zlog = None

    def _close(self) -> None:
        if self.proc is not None:
            if isinstance(self.proc, forkserver.ForkedZygote):
                self.proc.kill()
            else:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
            if isinstance(self.proc, forkserver.ForkedZygote):
                self.proc.close()
            for fd in (getattr(self, "to_child", None), getattr(self, "from_child", None)):
                if fd is not None:
                    try:
                        os.close(fd)
                    except OSError:
                        pass
            self.to_child = self.from_child = None
            self.proc = None
        if self.dir:
            remove_tree(self.dir)
            self.dir = None


def unreadable_for_others(path) -> str | None:
    """The first folder on the way to ``path`` that other users cannot enter (None: all can)."""
    p = Path(os.path.realpath(path))
    for folder in [*reversed(p.parents), p]:
        try:
            if not os.stat(folder).st_mode & 0o001:
                return str(folder)
        except OSError:
            return str(folder)
    return None


def zygote_env(home: str, threads: int, device: str = "cpu") -> dict:
    """The whole environment of a zygote (and of the fork server): nothing of the grader's."""
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": home,
        "TMPDIR": home,
        "MPLCONFIGDIR": os.path.join(home, "mpl"),
        "MPLBACKEND": "Agg",
        "OMP_NUM_THREADS": str(threads),
        "MKL_NUM_THREADS": str(threads),
        "PYTHONHASHSEED": "0",
        "LANG": "C.UTF-8",
        MALLOC_HUGE_PAGES[0]: MALLOC_HUGE_PAGES[1],
    }
    if device.startswith("cuda") and "CUDA_VISIBLE_DEVICES" in os.environ:
        env["CUDA_VISIBLE_DEVICES"] = os.environ["CUDA_VISIBLE_DEVICES"]
    return env


def start_fork_server() -> forkserver.ForkServer | None:
    """A fork server for this grade's CPU sandboxes (None where forking zygotes is not supported)."""
    if not forkserver.supported("cpu", 1):
        return None
    try:
        return forkserver.ForkServer(lambda home: zygote_env(home, 1))
    except OSError:
        return None


def remove_tree(path: str) -> None:
    """Remove a sandbox folder whatever the child built in it.

    ``shutil.rmtree`` is fd-based (it never follows a planted link) but recursive
    in Python: a tree thousands of folders deep raises RecursionError. Then
    ``rm -rf`` (iterative, also link-safe, one file system) finishes the job.
    """
    try:
        shutil.rmtree(path)
    except BaseException:  # RecursionError, MemoryError, an odd file: fall through
        pass
    if os.path.lexists(path):
        subprocess.run(["rm", "-rf", "--one-file-system", "--", path], stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=300, check=False)


def _copy_regular(src: Path, dst: str) -> None:
    """Copy one student file: a regular file only (O_NOFOLLOW), into a new name (O_EXCL)."""
    fd = os.open(src, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        if not __import__("stat").S_ISREG(os.fstat(fd).st_mode):
            return
        data = os.read(fd, MAX_FILE_BYTES + 1)[:MAX_FILE_BYTES]
    finally:
        os.close(fd)
    out = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    try:
        wire.write_all(out, data)
    finally:
        os.close(out)


_CONTROL = {c: None for c in range(32) if c not in (9,)}
_CONTROL.update({127: None, 0x9B: None})


def plain_text(text: str, limit: int = 300) -> str:
    """Untrusted text made safe for a terminal and a one-line report field: no control
    characters (escape sequences included), whitespace collapsed, cut to ``limit``."""
    text = str(text).translate(_CONTROL).replace("\t", " ")
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1] + "\u2026"
