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
    import numpy as np

    with np.load(io.BytesIO(data), allow_pickle=False) as z:
        header = json.loads(bytes(z["__header__"]).decode())
        arrays = {k: z[k] for k in z.files if k != "__header__"}
    return header, arrays


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
        from common.networks import NETWORKS

        net = NETWORKS[spec["class"]](**spec["config"])
        state = {k: torch.as_tensor(arrays[v].copy()) for k, v in spec["state"].items()}
        net.load_state_dict(state)
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
        if isinstance(obj, torch.Tensor):
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
        if isinstance(obj, np.ndarray):
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
    return {
        "type": type(exc).__name__,
        "message": str(exc)[:2000],
        "where": where,
    }


def load_student_module(sandbox_dir: str, module: str):
    """Import submission/<module>.py as submission.<module> (a synthetic package)."""
    pkg_dir = os.path.join(sandbox_dir, "submission")
    if "submission" not in sys.modules:
        pkg = types.ModuleType("submission")
        pkg.__path__ = [pkg_dir]
        pkg.__package__ = "submission"
        sys.modules["submission"] = pkg
    path = os.path.join(pkg_dir, module + ".py")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{module}.py is not in the submission")
    return importlib.import_module(f"submission.{module}")


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
    result = {"ok": True, "seconds": seconds, "output": flat.flatten(out)}

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
    result["inputs_after"] = {
        p: flat.add(torch.Tensor.detach(t).cpu().numpy()) for p, t in tensor_inputs.items()
    }
    return result, flat.arrays


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


def child_main(cfg: dict, request: dict, arrays: dict, out_fd: int) -> None:
    """Runs in the forked child. Never returns: ends with os._exit."""
    import torch

    sandbox_dir = cfg["sandbox_dir"]
    limits = request.get("limits", {})
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
    torch.set_num_threads(int(cfg.get("threads", 1)))

    module_name = request["module"]
    fn_name = request["function"]
    device = cfg.get("device", "cpu")
    install_audit_hook(cfg["deny_roots"], cfg["allow_roots"], sandbox_dir)

    def emit(header: dict, arr: dict | None = None) -> None:
        write_all(out_fd, pack(header, arr))

    try:
        mod = load_student_module(sandbox_dir, module_name)
    except BaseException as exc:  # SyntaxError, ImportError, SystemExit at import, ...
        emit({"event": "import_error", "error": describe_exception(exc, "/submission/")})
        os._exit(0)
    fn = getattr(mod, fn_name, None)
    if fn is None or not callable(fn):
        emit({"event": "missing", "error": {"type": "AttributeError", "message": f"{module_name}.py defines no function {fn_name}()", "where": ""}})
        os._exit(0)
    for index, case in enumerate(request["cases"]):
        try:
            result, out_arrays = run_case(fn, case, arrays, device)
            result["event"] = "case"
            result["index"] = index
            emit(result, out_arrays)
        except BaseException as exc:  # includes SystemExit and KeyboardInterrupt
            emit({"event": "case", "index": index, "ok": False, "error": describe_exception(exc, "/submission/")})
    emit({"event": "done"})
    os._exit(0)


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
        frames = handle(cfg, request, arrays, in_fd, out_fd)
        write_all(out_fd, frames)


def handle(cfg: dict, request: dict, arrays: dict, in_fd: int, out_fd: int) -> bytes:
    """Fork a child for one request; collect its frames until it exits or times out."""
    r, w = os.pipe()
    log_path = os.path.join(cfg["sandbox_dir"], "log", f"{request.get('id', 'x')}.txt")
    pid = os.fork()
    if pid == 0:  # ---- child
        try:
            os.setsid()
            os.close(r)
            for fd in (in_fd, out_fd):
                os.close(fd)
            devnull = os.open(os.devnull, os.O_RDONLY)
            os.dup2(devnull, 0)
            log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.dup2(log, 1)
            os.dup2(log, 2)
            os.chdir(cfg["sandbox_dir"])
            child_main(cfg, request, arrays, w)
        except BaseException:
            traceback.print_exc()
        os._exit(70)
    # ---- zygote
    os.close(w)
    deadline = time.monotonic() + float(request.get("timeout", 10))
    buf = bytearray()
    timed_out = False
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
    # kill the whole group, whatever happened (a child that escaped with a
    # grandchild holding the pipe is killed too)
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
        with open(log_path, "rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - 2000))
            log_tail = f.read().decode(errors="replace")
    except OSError:
        log_tail = ""
    summary = pack({"event": "exit", "timed_out": timed_out, "exit": exit_info, "log_tail": log_tail})
    return _HDR.pack(len(buf) + len(summary)) + bytes(buf) + summary


def main() -> None:
    with open(sys.argv[1]) as f:
        cfg = json.load(f)
    sys.path.insert(0, cfg["sandbox_dir"])  # for `common` (a trusted copy lives here)
    os.makedirs(os.path.join(cfg["sandbox_dir"], "log"), exist_ok=True)
    # preload what every submission needs, once, before any fork
    import numpy  # noqa: F401
    import torch

    torch.set_num_threads(int(cfg.get("threads", 1)))
    import gymnasium  # noqa: F401

    for name in ("common", "common.device", "common.envs", "common.networks", "common.rollout", "common.validate"):
        try:
            importlib.import_module(name)
        except ImportError:
            pass
    in_fd, out_fd = int(cfg["in_fd"]), int(cfg["out_fd"])
    write_all(out_fd, pack({"event": "ready"}))
    serve(cfg, in_fd, out_fd)


if __name__ == "__main__":
    main()
