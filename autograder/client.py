"""Parent-side API for calling a submission's functions through the sandbox (the sandbox's client).

Suites describe arguments with small spec helpers (``tensor``, ``generator``,
``env``, ``network``) and get back :class:`CallResult` objects holding plain
numpy arrays. Nothing returned here is a student object.

    sub = Submission("assignments")
    res = sub.call("ex1_values", "discounted_returns",
                   tensor(rewards), tensor(dones), 0.99)
    res.output().array       # numpy array of the student's returns
"""
from __future__ import annotations

import contextlib
import itertools
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .child.wire import ARRAY_KINDS, child_nodes, walk
from .options import GradingOptions
from .sandbox import Limits, Sandbox, plain_text

_counter = itertools.count()
RETRY_TIMEOUT = 3.0  # seconds, for a function that already timed out once


# ----------------------------------------------------------------- arg specs
@dataclass
class Spec:
    """A plain description of an argument, built inside the child."""

    data: dict
    arrays: dict = field(default_factory=dict)


def tensor(value, requires_grad: bool = False, dtype: str | None = None) -> Spec:
    """A tensor argument (built on the grading device in the child)."""
    arr = value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
    if dtype is None:
        if isinstance(value, torch.Tensor):
            dtype = str(value.dtype).replace("torch.", "")
        else:
            dtype = {"float64": "float64", "bool": "bool", "int64": "int64"}.get(str(arr.dtype), "float32")
    key = f"in{next(_counter)}"
    return Spec({"kind": "tensor", "key": key, "dtype": dtype, "requires_grad": requires_grad}, {key: arr})


def generator(seed: int) -> Spec:
    return Spec({"kind": "generator", "seed": int(seed)})


def device() -> Spec:
    return Spec({"kind": "device"})


def env(env_id: str = "CartPole-v1", seed: int | None = None, **kwargs) -> Spec:
    return Spec({"kind": "env", "env_id": env_id, "seed": seed, "kwargs": kwargs})


def network(module: torch.nn.Module, requires_grad: bool = False) -> Spec:
    """A ``common.networks`` module, rebuilt in the child from class, config and weights."""
    arrays, state = {}, {}
    for name, value in module.state_dict().items():
        key = f"in{next(_counter)}"
        arrays[key] = value.detach().cpu().numpy()
        state[name] = key
    return Spec({"kind": "network", "class": type(module).__name__, "config": module.config,
                 "state": state, "requires_grad": requires_grad}, arrays)


def listof(items: list) -> Spec:
    specs = [_as_spec(x) for x in items]
    arrays = {}
    for s in specs:
        arrays.update(s.arrays)
    return Spec({"kind": "list", "items": [s.data for s in specs]}, arrays)


def _as_spec(x) -> Spec:
    if isinstance(x, Spec):
        return x
    if isinstance(x, torch.Tensor):
        return tensor(x)
    if isinstance(x, (list, tuple)) and any(isinstance(v, (Spec, torch.Tensor)) for v in x):
        return listof(list(x))
    if isinstance(x, (bool, int, float, str)) or x is None:
        if isinstance(x, float) and not math.isfinite(x):
            raise ValueError("non-finite scalar arguments are not supported")
        return Spec(x)
    raise TypeError(f"cannot send {type(x).__name__} to the sandbox")


# ----------------------------------------------------------------- results
@dataclass
class Leaf:
    """One value the student returned, as plain data."""

    kind: str
    info: dict
    array: np.ndarray | None = None
    children: dict = field(default_factory=dict)

    @property
    def dtype(self) -> str | None:
        return self.info.get("dtype")

    @property
    def device(self) -> str | None:
        return self.info.get("device")

    @property
    def requires_grad(self) -> bool:
        return bool(self.info.get("requires_grad"))

    def describe(self) -> str:
        if self.kind == "tensor":
            return f"a {self.dtype} tensor of shape {list(self.array.shape)} on {self.device}"
        if self.kind == "ndarray":
            return f"a numpy array of shape {list(self.array.shape)}"
        if self.kind == "sequence":
            return f"a Python {self.info.get('type', 'sequence')} of length {len(self.children)}"
        if self.kind == "numbers":
            return f"a Python {self.info.get('type', 'list')} of {len(self.array)} numbers"
        if self.kind == "number":
            return f"a Python {self.info.get('type', 'number')}"
        if self.kind == "record":
            return f"a {self.info.get('type')} object"
        if self.kind == "none":
            return "None"
        return f"a {self.info.get('type', self.kind)}"

    def get(self, path: str) -> "Leaf | None":
        return walk(self, path, _leaf_step)


def _leaf_step(node: "Leaf | None", part: str) -> "Leaf | None":
    return None if node is None else node.children.get(part)


def _parse(info: dict, arrays: dict) -> Leaf:
    """The reader of a result tree (its kinds: ``child.wire.KINDS``)."""
    kind = info.get("kind", "unsupported")

    def arr(key):
        a = arrays.get(key)
        if a is None or a.dtype.kind not in "biuf":
            return None
        return a

    if kind in ARRAY_KINDS:
        a = arr(info.get("key"))
        if a is None:
            return Leaf("unsupported", {"type": "unreadable array"})
        if kind == "tensor" and list(a.shape) != list(info.get("shape", a.shape)):
            return Leaf("unsupported", {"type": "inconsistent tensor"})
        return Leaf(kind, info, a)
    if kind == "number":
        v = info.get("value")
        if not isinstance(v, (int, float)):
            return Leaf("unsupported", {"type": "bad number"})
        return Leaf(kind, info, np.asarray(v, dtype=np.float64))
    if kind == "bool":
        return Leaf(kind, info, np.asarray(bool(info.get("value"))))
    if kind in ("sequence", "record"):
        return Leaf(kind, info, None, {name: _parse(x, arrays) for name, x in child_nodes(info).items()})
    if kind == "network":
        state = {}
        for name, key in (info.get("state") or {}).items():
            a = arr(key)
            if a is None:
                return Leaf("unsupported", {"type": "unreadable network"})
            state[str(name)] = a
        return Leaf(kind, {"class": str(info.get("class")), "config": info.get("config") or {}, "state": state})
    if kind in ("none", "str"):
        return Leaf(kind, info)
    return Leaf("unsupported", {"type": str(info.get("type", kind))})


@dataclass
class CallResult:
    """What one call of the student's function produced, as plain data."""

    ok: bool
    error: dict | None = None
    output_leaf: Leaf | None = None
    grads: dict = field(default_factory=dict)
    inputs_after: dict = field(default_factory=dict)
    seconds: float = 0.0
    log_tail: str = ""

    def output(self, path: str = "") -> Leaf | None:
        return self.output_leaf.get(path) if self.output_leaf is not None else None

    @property
    def not_implemented(self) -> bool:
        return bool(self.error) and self.error.get("type") == "NotImplementedError"

    def error_text(self) -> str:
        if not self.error:
            return ""
        e = self.error
        where = f" ({e['where']})" if e.get("where") else ""
        msg = e.get("message", "")
        return f"{e.get('type', 'Error')}: {msg}{where}".strip()


# ----------------------------------------------------------------- calls
@dataclass
class Case:
    """One call: positional and keyword argument specs, optional gradient weights."""

    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    grad_weights: dict | None = None  # output path -> numpy weights (same shape as output)
    seed: int | None = None  # global torch seed set right before the call


class Submission:
    """A student's submission folder, graded through one sandbox per instance."""

    def __init__(self, path, device: str = "cpu", strict: bool = False, threads: int = 1,
                 module: str | None = None, kit_modules: dict | None = None,
                 allow_weak: bool = False, options: GradingOptions | None = None):
        """``options`` (a run's :class:`GradingOptions`, as the plugin passes it) sets ``device``,
        ``strict`` and ``allow_weak``; tests may pass those three directly."""
        if options is not None:
            device, strict, allow_weak = options.device, options.strict, options.allow_weak
        self.path = Path(path)
        self.device = device
        self.strict = strict
        self.allow_weak = allow_weak
        self.sandbox = Sandbox(self.path, device=device, strict=strict, threads=threads,
                               module=module, kit_modules=dict(kit_modules or {}),
                               allow_weak=allow_weak)
        # a function that timed out once gets a short leash afterwards, so one
        # infinite loop does not cost the full timeout in every check
        self.timed_out: set[tuple[str, str]] = set()

    def with_kit_modules(self, modules: dict) -> "Submission":
        """This submission, its sandbox's kit part now also holding the kit's ``modules`` (trusted
        suite drivers: ``{name: source}``; see :meth:`Sandbox.add_kit_modules`)."""
        self.sandbox.add_kit_modules(modules)
        return self

    def has_module(self, module: str) -> bool:
        return (self.path / f"{module}.py").is_file()

    def call(self, module: str, function: str, *args, timeout: float = 20, grad_weights=None,
             torch_seed=None, limits: Limits | None = None, **kwargs) -> CallResult:
        """One case. Every other keyword goes to the student's function (``seed=`` included);
        ``torch_seed`` seeds the worker's global torch RNG right before the call."""
        return self.call_many(module, function, [Case(args, kwargs, grad_weights, torch_seed)],
                              timeout=timeout, limits=limits)[0]

    def call_many(self, module: str, function: str, cases: list[Case], timeout: float = 20,
                  limits: Limits | None = None) -> list[CallResult]:
        """Run several cases in one child; a crash or hang fails the cases not yet done."""
        if not self.has_module(module) and module not in self.sandbox.kit_modules:
            err = {"type": "FileNotFoundError", "message": f"{module}.py is not in the submission", "where": ""}
            return [CallResult(False, err) for _ in cases]
        arrays: dict = {}
        wire = []
        for case in cases:
            specs = [_as_spec(a) for a in case.args]
            kspecs = {k: _as_spec(v) for k, v in case.kwargs.items()}
            for s in specs + list(kspecs.values()):
                arrays.update(s.arrays)
            item: dict[str, Any] = {"args": [s.data for s in specs], "kwargs": {k: s.data for k, s in kspecs.items()}}
            if case.grad_weights:
                gw = {}
                for path, w in case.grad_weights.items():
                    key = f"in{next(_counter)}"
                    arrays[key] = np.asarray(w, dtype=np.float64)
                    gw[path] = key
                item["grad_weights"] = gw
            if case.seed is not None:
                item["seed"] = int(case.seed)
            wire.append(item)
        if (module, function) in self.timed_out:
            timeout = min(timeout, RETRY_TIMEOUT)
        limits = limits or Limits(cpu_seconds=int(timeout) + 5)
        frames = self.sandbox.request(module, function, wire, arrays, timeout=timeout, limits=limits)
        results = _collect(frames, len(cases), timeout)
        if any(r.error and r.error.get("type") == "Timeout" for r in results):
            self.timed_out.add((module, function))
        return results

    @contextlib.contextmanager
    def session(self, timeout: float = 300, limits: Limits | None = None):
        """Within ``with sub.session():`` every call goes to one long-lived child (see
        :meth:`Sandbox.open_session`): a trusted training loop calls the student's functions
        without the cost of a fresh child per call. ``timeout``: wall seconds for the whole session."""
        self.sandbox.open_session(timeout, limits or Limits(cpu_seconds=int(timeout) + 5))
        try:
            yield self
        finally:
            self.sandbox.close_session()

    def close(self) -> None:
        self.sandbox.close()

    def twin(self) -> "Submission":
        """A second sandbox of this submission, alike in every setting: a learning run goes on in
        it while the suite's other checks use this one (see ``harness.in_background``)."""
        box = self.sandbox
        return Submission(self.path, device=self.device, strict=self.strict, threads=box.threads,
                          module=box.module, kit_modules=dict(box.kit_modules),
                          allow_weak=self.allow_weak)

    def forks_cheaply(self) -> bool:
        """Whether a second sandbox is a fork of this grade's fork server (milliseconds), not a
        new Python (seconds of CPU)."""
        from . import forkserver

        return forkserver.available(self.device, self.sandbox.threads)

    @property
    def protections(self) -> list[str]:
        return self.sandbox.protections

    @property
    def missing_protections(self) -> list[str]:
        return self.sandbox.missing


def _collect(frames: list[tuple[dict, dict]], n: int, timeout: float) -> list[CallResult]:
    results: list[CallResult | None] = [None] * n
    exit_frame: dict = {}
    early_error: dict | None = None
    for header, arrays in frames:
        event = header.get("event")
        if event == "case":
            i = header.get("index")
            if not isinstance(i, int) or not 0 <= i < n or results[i] is not None:
                continue
            if header.get("ok") is True:
                try:
                    out = _parse(header.get("output") or {}, arrays)
                except Exception:  # noqa: BLE001 - checked by _frame_ok, yet unreadable: the child's fault
                    results[i] = CallResult(False, {"type": "BadResult", "where": "",
                                                    "message": "the result could not be read back as plain data"})
                    continue
                grads = {}
                for p, key in (header.get("grads") or {}).items():
                    a = arrays.get(key) if isinstance(key, str) else None
                    grads[str(p)] = a if a is not None and a.dtype.kind in "biuf" else None
                after = {}
                for p, key in (header.get("inputs_after") or {}).items():
                    a = arrays.get(key) if isinstance(key, str) else None
                    after[str(p)] = a
                secs = header.get("seconds")
                results[i] = CallResult(True, None, out, grads, after,
                                        float(secs) if isinstance(secs, (int, float)) else 0.0)
            else:
                results[i] = CallResult(False, _clean_error(header.get("error")))
        elif event in ("import_error", "missing"):
            early_error = _clean_error(header.get("error"))
            if event == "import_error":
                early_error["message"] = "could not import the module: " + early_error["message"]
        elif event == "exit":
            exit_frame = header
    if early_error is None:
        if exit_frame.get("timed_out"):
            early_error = {"type": "Timeout", "message": f"did not finish within {timeout:g} s (infinite loop?)", "where": ""}
        else:
            ex = exit_frame.get("exit") or {}
            if "signal" in ex:
                msg = f"the process crashed (signal {ex['signal']}; out of memory or CPU time, or a segfault?)"
            elif "zygote" in ex:
                msg = "the grading process died"
            else:
                msg = f"the process exited (code {ex.get('code')}) before returning: sys.exit or os._exit?"
            early_error = {"type": "Crash", "message": msg, "where": ""}
    tail = plain_text(str(exit_frame.get("log_tail", ""))[-1000:], 1000)
    out = []
    for r in results:
        if r is None:
            r = CallResult(False, dict(early_error))
        r.log_tail = tail
        out.append(r)
    return out


def _clean_error(err) -> dict:
    if not isinstance(err, dict):
        return {"type": "Error", "message": "unknown error", "where": ""}
    return {
        "type": plain_text(err.get("type", "Error"), 100),
        "message": plain_text(err.get("message", ""), 300),
        "where": plain_text(err.get("where", ""), 200),
    }
