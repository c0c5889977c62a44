"""Parent side of the sandbox: starts and talks to the worker zygote.

The parent (pytest + scoring) never imports student code. It copies the
submission's ``.py`` files into a fresh temporary directory next to a copy of
``common/`` and of ``worker.py``, and starts ``python -I`` there with a
scrubbed environment in a new session. See ``docs/THREAT_MODEL.md``.
"""
from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import worker as proto

KIT_ROOT = Path(__file__).resolve().parent.parent
MAX_FILE_BYTES = 2 << 20  # a submission file larger than this is not copied
NOBODY = 65534
# the exercise modules, in the order in which later ones may import earlier ones
EXERCISE_ORDER = ["ex1_values", "ex2_reinforce", "ex3_baseline", "ex4_ppo", "ex5_rlhf"]


class GraderError(RuntimeError):
    """The grader itself could not run (not the student's fault)."""


def _unshare_works() -> bool:
    exe = shutil.which("unshare")
    if not exe:
        return False
    try:
        return subprocess.run([exe, "-n", "true"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


# ---------------------------------------------------------------- frame checks
# Everything in a frame comes from the untrusted child. Before the parent's
# code (student._collect, checks) looks at a frame, its shape is checked here:
# JSON of the expected types only, and arrays of plain numeric/bool dtypes. A
# frame that fails is dropped ("garbage"), which fails its case, never the grader.
_NUMERIC = "biuf"


def _is_str_map(d, values=(str,)) -> bool:
    return isinstance(d, dict) and all(isinstance(k, str) and (v is None or isinstance(v, values))
                                       for k, v in d.items())


def _tree_ok(node, arrays: dict, depth: int = 0) -> bool:
    if depth > 12 or not isinstance(node, dict) or not isinstance(node.get("kind"), str):
        return False
    kind = node["kind"]
    if kind in ("tensor", "ndarray", "numbers"):
        key = node.get("key")
        if not isinstance(key, str) or key not in arrays or arrays[key].dtype.kind not in _NUMERIC:
            return False
        shape = node.get("shape", [])
        return isinstance(shape, list) and all(isinstance(x, int) for x in shape) and all(
            isinstance(node.get(k, ""), (str, bool)) for k in ("dtype", "device", "type", "requires_grad"))
    if kind == "sequence":
        return isinstance(node.get("items"), list) and all(_tree_ok(x, arrays, depth + 1) for x in node["items"])
    if kind == "record":
        return _is_str_map(node.get("fields"), (dict,)) and all(
            _tree_ok(x, arrays, depth + 1) for x in node["fields"].values())
    if kind == "network":
        state = node.get("state")
        return (_is_str_map(state) and all(v in arrays and arrays[v].dtype.kind in _NUMERIC for v in state.values())
                and isinstance(node.get("config", {}), dict) and isinstance(node.get("class", ""), str))
    if kind == "number":
        return isinstance(node.get("value"), (int, float)) and not isinstance(node.get("value"), bool)
    if kind == "bool":
        return isinstance(node.get("value"), bool)
    return kind in ("none", "str", "unsupported")


def _frame_ok(header, arrays: dict) -> bool:
    if not isinstance(header, dict) or not isinstance(header.get("event"), str):
        return False
    if any(a.dtype.kind not in _NUMERIC for a in arrays.values()):
        return False
    event = header["event"]
    if header.get("error") is not None and not _is_str_map(header["error"], (str,)):
        return False
    if event == "case" and header.get("ok") is True:
        refs = [header.get("grads", {}), header.get("inputs_after", {})]
        return (isinstance(header.get("index"), int) and _tree_ok(header.get("output"), arrays)
                and all(_is_str_map(r) and all(v is None or v in arrays for v in r.values()) for r in refs)
                and isinstance(header.get("seconds", 0.0), (int, float)))
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
    """One zygote per submission and exercise; restarted if it dies."""

    submission: Path
    device: str = "cpu"
    threads: int = 1
    strict: bool = False
    preload_optim: bool = False
    module: str | None = None  # the exercise this sandbox grades (None: copy every file)
    protections: list[str] = field(default_factory=list)

    def __post_init__(self):
        self.submission = Path(self.submission).resolve()
        self.proc: subprocess.Popen | None = None
        self.dir: str | None = None
        self.counter = 0

    # ------------------------------------------------------------------ setup
    def _prepare_dir(self) -> str:
        d = tempfile.mkdtemp(prefix="rlkit-sandbox-")
        sub = os.path.join(d, "submission")
        os.makedirs(sub)
        if self.submission.is_dir():
            for p in sorted(self.submission.glob("*.py")):
                if self._takes_student_copy(p.stem) and p.is_file() and not p.is_symlink() \
                        and p.stat().st_size <= MAX_FILE_BYTES:
                    shutil.copyfile(p, os.path.join(sub, p.name))
        for dep in self._reference_dependencies():
            shutil.copyfile(KIT_ROOT / "solutions" / f"{dep}.py", os.path.join(sub, f"{dep}.py"))
        shutil.copytree(KIT_ROOT / "common", os.path.join(d, "common"),
                        ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copyfile(Path(__file__).with_name("worker.py"), os.path.join(d, "rlkit_worker.py"))
        os.makedirs(os.path.join(d, "log"))
        os.makedirs(os.path.join(d, "mpl"))
        return d

    def _takes_student_copy(self, stem: str) -> bool:
        """The graded exercise and the student's own helper files come from the submission."""
        return self.module is None or stem == self.module or stem not in EXERCISE_ORDER

    def _reference_dependencies(self) -> list[str]:
        """Earlier exercises, which the graded one may import, come from the reference.

        Each exercise is graded on its own: ex2's ``reinforce_update`` calls
        ``discounted_returns`` from ex1, and a bug (or a syntax error) in the
        student's ex1 must cost ex1's points, not ex2's as well.
        """
        if self.module not in EXERCISE_ORDER:
            return []
        earlier = EXERCISE_ORDER[:EXERCISE_ORDER.index(self.module)]
        return [m for m in earlier if (KIT_ROOT / "solutions" / f"{m}.py").is_file()]

    def start(self) -> None:
        self.dir = self._prepare_dir()
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        prefix = os.path.realpath(sys.prefix)
        cfg = {
            "sandbox_dir": self.dir,
            "device": self.device,
            "threads": self.threads,
            "preload_optim": self.preload_optim,
            "in_fd": to_child_r,
            "out_fd": from_child_w,
            # the kit and the original submission are unreadable from the child;
            # the virtualenv (often inside the kit) stays readable for imports
            "deny_roots": [str(KIT_ROOT), str(self.submission)] + self._more_deny_roots(),
            "allow_roots": [prefix, os.path.realpath(sys.base_prefix), self.dir],
        }
        with open(os.path.join(self.dir, "config.json"), "w") as f:
            json.dump(cfg, f)
        env = {
            "PATH": "/usr/bin:/bin",
            "HOME": self.dir,
            "TMPDIR": self.dir,
            "MPLCONFIGDIR": os.path.join(self.dir, "mpl"),
            "MPLBACKEND": "Agg",
            "OMP_NUM_THREADS": str(self.threads),
            "MKL_NUM_THREADS": str(self.threads),
            "PYTHONHASHSEED": "0",
            "LANG": "C.UTF-8",
        }
        if self.device.startswith("cuda") and "CUDA_VISIBLE_DEVICES" in os.environ:
            env["CUDA_VISIBLE_DEVICES"] = os.environ["CUDA_VISIBLE_DEVICES"]
        cmd = [sys.executable, "-I", os.path.join(self.dir, "rlkit_worker.py"), os.path.join(self.dir, "config.json")]
        self.protections = [
            "separate process (python -I) per check",
            "fresh temporary directory with copies of the files",
            "scrubbed environment",
            "own process group, killed on timeout",
            "limits on CPU time, memory, file size, open files, core dumps",
            "audit hook: no subprocesses, sockets, ctypes, or access to the kit's files",
        ]
        if self.strict:
            cmd = self._strict_prefix() + cmd
        log = open(os.path.join(self.dir, "zygote.log"), "wb")
        try:
            self.proc = subprocess.Popen(
                cmd, cwd=self.dir, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                pass_fds=(to_child_r, from_child_w), start_new_session=True,
            )
        finally:
            log.close()
            os.close(to_child_r)
            os.close(from_child_w)
        self.to_child = to_child_w
        self.from_child = from_child_r
        try:
            header, _ = proto.unpack(self._read_frame(time.monotonic() + 120))
        except (TimeoutError, EOFError) as exc:
            tail = Path(self.dir, "zygote.log").read_text(errors="replace")[-2000:]
            self.close()
            hint = ""
            if self.strict and os.geteuid() == 0:
                hint = (f" [strict mode runs the worker as nobody, who must be able to read the Python "
                        f"environment {sys.prefix} and every folder above it]")
            raise GraderError(f"the sandbox worker did not start ({type(exc).__name__}){hint}: {tail}") from None
        if header.get("event") != "ready":
            raise GraderError(f"unexpected first message from the sandbox worker: {header}")
        kernel = header.get("kernel") if isinstance(header.get("kernel"), dict) else {}
        self.protections += self._kernel_protections(kernel)

    def _more_deny_roots(self) -> list[str]:
        """Folders beside the submission (other students' work in a batch) and the
        temporary directory (other live sandboxes, the grader's result files)."""
        roots = [tempfile.gettempdir()]
        parent = self.submission.parent
        if parent != Path(parent.anchor):
            roots.append(str(parent))
        return [os.path.realpath(r) for r in roots]

    def _kernel_protections(self, kernel: dict) -> list[str]:
        """What the worker's start-up probe saw the kernel enforce (see worker.confine)."""
        out = []
        if kernel.get("landlock"):
            out.append(f"kernel file-system allow-list (Landlock ABI {int(kernel['landlock'])}): reads only the "
                       f"Python installation, system libraries and its own folder")
        else:
            out.append("NOT ACTIVE: kernel file-system allow-list (Landlock unavailable)")
        if kernel.get("seccomp"):
            out.append("seccomp: no new processes, exec, sockets, ptrace or pidfd")
        else:
            out.append("NOT ACTIVE: seccomp system-call filter")
        return out

    def _strict_prefix(self) -> list[str]:
        """Commands that put the worker in a network namespace and drop root (when possible)."""
        prefix: list[str] = []
        if _unshare_works():
            prefix += [shutil.which("unshare"), "-n", "--"]
            self.protections.append("no network (unshare -n)")
        else:
            self.protections.append("NOT ACTIVE: no network namespace (unshare -n unavailable)")
        setpriv = shutil.which("setpriv")
        if os.geteuid() == 0 and setpriv:
            for root, dirs, files in os.walk(self.dir):
                os.chown(root, NOBODY, NOBODY)
                for name in files:
                    os.chown(os.path.join(root, name), NOBODY, NOBODY)
            # after unshare (which needs root), become nobody for good
            prefix += [setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--"]
            self.protections.append("unprivileged user (nobody)")
        else:
            self.protections.append("NOT ACTIVE: unprivileged user (needs root and setpriv)")
        return prefix

    # --------------------------------------------------------------- protocol
    def _read_exact(self, n: int, deadline: float) -> bytes:
        chunks = []
        while n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            ready, _, _ = select.select([self.from_child], [], [], left)
            if not ready:
                continue
            chunk = os.read(self.from_child, min(n, 1 << 20))
            if not chunk:
                raise EOFError
            chunks.append(chunk)
            n -= len(chunk)
        return b"".join(chunks)

    def _read_frame(self, deadline: float) -> bytes:
        (n,) = proto._HDR.unpack(self._read_exact(proto._HDR.size, deadline))
        if n > 1 << 30:
            raise EOFError
        return self._read_exact(n, deadline)

    def _restart(self, tries: int = 3) -> None:
        """(Re)start the zygote; a start can fail on an overloaded machine, so retry."""
        for attempt in range(tries):
            self.close()
            try:
                self.start()
                return
            except GraderError:
                if attempt == tries - 1:
                    raise
                time.sleep(1.0 + attempt)

    def request(self, module: str, function: str, cases: list[dict], arrays: dict,
                timeout: float, limits: Limits) -> list[tuple[dict, dict]]:
        """Run ``cases`` of ``module.function`` in a fresh child; return its frames.

        Always returns; a dead zygote is restarted and reported as a crash frame.
        """
        if self.proc is None or self.proc.poll() is not None:
            self._restart()
        self.counter += 1
        header = {
            "id": self.counter, "module": module, "function": function, "cases": cases,
            "timeout": timeout, "limits": limits.as_dict(),
        }
        try:
            proto.write_all(self.to_child, proto.pack(header, arrays))
            blob = self._read_frame(time.monotonic() + timeout + 30)
        except (TimeoutError, EOFError, OSError, BrokenPipeError) as exc:
            self.close()
            return [({"event": "exit", "timed_out": isinstance(exc, TimeoutError),
                      "exit": {"zygote": type(exc).__name__}, "log_tail": ""}, {})]
        frames = []
        pos = 0
        while pos + proto._HDR.size <= len(blob):
            (n,) = proto._HDR.unpack_from(blob, pos)
            pos += proto._HDR.size
            try:
                header, arrays = proto.unpack(blob[pos:pos + n])
                frames.append((header, arrays) if _frame_ok(header, arrays) else ({"event": "garbage"}, {}))
            except Exception:  # a frame that does not parse is treated as missing
                frames.append(({"event": "garbage"}, {}))
            pos += n
        return frames

    def close(self) -> None:
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
            for fd in (getattr(self, "to_child", None), getattr(self, "from_child", None)):
                if fd is not None:
                    try:
                        os.close(fd)
                    except OSError:
                        pass
            self.to_child = self.from_child = None
            self.proc = None
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None
