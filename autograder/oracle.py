"""The one seam between the hidden suites and answer code: live in the full kit, replayed in the student kit.

A suite never imports ``solutions`` and never computes an answer itself. It asks

    ref = answers("ex1_values")
    expected = ref.discounted_returns(rewards, dones, 0.9)     # the reference
    wrong = ref.returns_variant(rewards, dones, 0.9, reset=False)   # a named mistake

where ``answers(name)`` is a :class:`Seam` over ``autograder/answers/<name>.py``
(the suite's answer helpers, which import the reference). Each call is keyed by
what it is given (function name and a digest of every argument) and:

* ``live`` (the full kit, default): runs the function;
* ``record`` (``RLKIT_ORACLE=record``, see ``tools/record_answers.py``): runs it
  and keeps (key -> output) for the student kit;
* ``replay`` (the student kit: no ``autograder/answers/``): looks the
  output up in ``autograder/recorded/<name>.npz``. A miss raises
  :class:`RecordingMiss`: a clear grader error, never a silent pass or fail.

Every mode returns the same kind of values (detached tensors, plain containers),
so a verdict cannot depend on the mode. Side effects a suite can see are
replayed too: the global torch and numpy random states after the call.

The record format is an ``.npz`` (``allow_pickle=False``) holding the arrays
and one JSON index (``__index__``): key -> output tree.
"""
from __future__ import annotations

import dataclasses
import hashlib
import importlib
import io
import json
import os
import types
from pathlib import Path

import numpy as np
import torch

from .kit_mode import mode, recording  # noqa: F401 (the seam's mode, told without torch)

HERE = Path(__file__).resolve().parent
RECORDED = HERE / "recorded"
FORMAT = 1


class RecordingMiss(BaseException):
    """The student kit has no recorded answer for this call (BaseException: no check may swallow it)."""


# ---------------------------------------------------------------- keys
def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:32]


def canon(x):
    """A JSON-able, exact description of an argument (tensors and states by digest)."""
    if x is None or isinstance(x, (bool, str)):
        return x
    if isinstance(x, int):
        return {"int": str(x)}
    if isinstance(x, float):
        return {"float": x.hex()}
    if isinstance(x, torch.Tensor):
        t = x.detach().cpu().contiguous()
        raw = t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""  # (0-d too)
        return {"tensor": str(t.dtype), "shape": list(t.shape), "data": _digest(raw)}
    if isinstance(x, np.ndarray):
        a = np.asarray(x, order="C")  # (ascontiguousarray would make a 0-d array 1-d)
        return {"array": str(a.dtype), "shape": list(a.shape), "data": _digest(a.tobytes())}
    if isinstance(x, (np.integer, np.floating, np.bool_)):
        return canon(x.item())
    if isinstance(x, (list, tuple)):
        return {type(x).__name__ if type(x) in (list, tuple) else "seq": [canon(v) for v in x]}
    if isinstance(x, dict):
        return {"dict": [[canon(k), canon(v)] for k, v in sorted(x.items(), key=lambda kv: repr(kv[0]))]}
    if isinstance(x, torch.Generator):
        return {"generator": _digest(x.get_state().numpy().tobytes())}
    if isinstance(x, np.random.Generator):
        return {"np_generator": _digest(json.dumps(x.bit_generator.state, sort_keys=True, default=str).encode())}
    if isinstance(x, torch.nn.Module):
        return {"module": type(x).__name__, "config": canon(getattr(x, "config", None)),
                "state": canon({k: v for k, v in x.state_dict().items()})}
    if isinstance(x, (torch.dtype, torch.device)):
        return {"torch": str(x)}
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return {"record": type(x).__name__, "fields": {f.name: canon(getattr(x, f.name)) for f in dataclasses.fields(x)}}
    if isinstance(x, (types.FunctionType, types.BuiltinFunctionType)):
        return {"function": f"{x.__module__}.{x.__qualname__}"}
    if isinstance(x, SeamFunction):
        return {"function": f"{x.seam}.{x.name}"}
    raise TypeError(f"the answer seam cannot key an argument of type {type(x).__name__}")


def key_of(seam: str, name: str, args: tuple, kwargs: dict) -> str:
    text = json.dumps([FORMAT, seam, name, canon(list(args)), canon(dict(kwargs))], sort_keys=True)
    return _digest(text.encode())


# ---------------------------------------------------------------- values
class _Encoder:
    """Output -> (JSON tree, arrays); arrays are shared by content."""

    def __init__(self, arrays: dict):
        self.arrays = arrays

    def array(self, a: np.ndarray) -> str:
        a = np.asarray(a, order="C")  # (ascontiguousarray would make a 0-d array 1-d)
        key = "a" + _digest(str(a.dtype).encode() + str(a.shape).encode() + a.tobytes())[:24]
        self.arrays.setdefault(key, a)
        return key

    def encode(self, x):
        if x is None or isinstance(x, (bool, str)):
            return {"k": "v", "v": x}
        if isinstance(x, (int, float, np.integer, np.floating, np.bool_)):
            v = x.item() if hasattr(x, "item") else x
            return {"k": "n", "t": type(x).__name__, "v": float(v).hex() if isinstance(v, float) else v}
        if isinstance(x, torch.Tensor):
            t = x.detach().cpu()
            wide = t.dtype in (torch.bfloat16, torch.float16)
            return {"k": "t", "dtype": str(t.dtype).replace("torch.", ""),
                    "a": self.array((t.double() if wide else t).numpy())}
        if isinstance(x, np.ndarray):
            return {"k": "a", "a": self.array(x)}
        if isinstance(x, (list, tuple)):
            return {"k": type(x).__name__ if type(x) in (list, tuple) else "tuple",
                    "items": [self.encode(v) for v in x]}
        if isinstance(x, dict):
            return {"k": "dict", "items": [[self.encode(k), self.encode(v)] for k, v in x.items()]}
        if isinstance(x, torch.nn.Module):
            return {"k": "module", "class": type(x).__name__, "config": getattr(x, "config", None),
                    "state": {k: self.encode(v) for k, v in x.state_dict().items()}}
        if dataclasses.is_dataclass(x) and not isinstance(x, type):
            return {"k": "record", "type": type(x).__name__,
                    "fields": {f.name: self.encode(getattr(x, f.name)) for f in dataclasses.fields(x)}}
        if isinstance(x, torch.dtype):
            return {"k": "dtype", "v": str(x)}
        raise TypeError(f"the answer seam cannot record an output of type {type(x).__name__}")


def decode(tree, arrays):
    k = tree["k"]
    if k == "v":
        return tree["v"]
    if k == "n":
        v = tree["v"]
        if tree["t"] in ("float", "float64", "float32", "floating"):
            return float.fromhex(v) if isinstance(v, str) else float(v)
        if tree["t"] in ("bool", "bool_"):
            return bool(v)
        return int(v)
    if k == "t":
        return torch.from_numpy(np.array(arrays[tree["a"]])).to(getattr(torch, tree["dtype"]))
    if k == "a":
        return np.array(arrays[tree["a"]])
    if k in ("list", "tuple"):
        items = [decode(v, arrays) for v in tree["items"]]
        return items if k == "list" else tuple(items)
    if k == "dict":
        return {decode(a, arrays): decode(b, arrays) for a, b in tree["items"]}
    if k == "module":
        from common.networks import rebuild

        return rebuild(tree["class"], tree["config"] or {}, {n: decode(v, arrays) for n, v in tree["state"].items()})
    if k == "record":
        fields = {n: decode(v, arrays) for n, v in tree["fields"].items()}
        from common import rollout

        cls = getattr(rollout, tree["type"], None)
        return cls(**fields) if dataclasses.is_dataclass(cls) else types.SimpleNamespace(**fields)
    if k == "dtype":
        return getattr(torch, tree["v"].replace("torch.", ""))
    raise ValueError(f"unknown recorded kind {k!r}")


def _plain(x, arrays_cache=None):
    """What every mode returns: the value after one encode/decode round trip (detached, plain)."""
    arrays: dict = {}
    return decode(_Encoder(arrays).encode(x), arrays)


# ---------------------------------------------------------------- random states
def _rng_states():
    return torch.get_rng_state(), np.random.get_state()


def _rng_entry(before, enc: _Encoder) -> dict:
    t_after, n_after = _rng_states()
    out = {}
    if not torch.equal(before[0], t_after):
        out["torch"] = enc.array(t_after.numpy())
    if any(not np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(before[1], n_after)):
        out["numpy"] = [n_after[0], enc.array(n_after[1]), int(n_after[2]), int(n_after[3]), float(n_after[4])]
    return out


def _apply_rng(entry: dict, arrays: dict) -> None:
    if "torch" in entry:
        torch.set_rng_state(torch.from_numpy(np.array(arrays[entry["torch"]])))
    if "numpy" in entry:
        name, key, pos, has_gauss, cached = entry["numpy"]
        np.random.set_state((name, np.array(arrays[key]), pos, has_gauss, cached))


# ---------------------------------------------------------------- the store
class Store:
    """Recorded outputs of one exercise's seam: ``{key: {"out": tree, "rng": {...}}}`` + arrays."""

    def __init__(self, name: str):
        self.name = name
        self.index: dict = {}
        self.arrays: dict = {}
        self.loaded = False

    def path(self) -> Path:
        return Path(os.environ.get("RLKIT_RECORDED_DIR") or RECORDED) / f"{self.name}.npz"

    def load(self) -> None:
        if self.loaded:
            return
        self.loaded = True
        p = self.path()
        if not p.is_file():
            raise RecordingMiss(f"the student kit has no recorded answers for {self.name} ({p} is missing): "
                                f"rebuild the kit with `make student-kit`")
        with np.load(p, allow_pickle=False) as z:
            meta = json.loads(bytes(z["__index__"]).decode())
            self.arrays = {k: z[k] for k in z.files if k != "__index__"}
        if meta.get("format") != FORMAT:
            raise RecordingMiss(f"recorded answers for {self.name} have format {meta.get('format')}, "
                                f"this grader reads format {FORMAT}")
        self.index = meta["index"]

    def save(self, path: Path) -> None:
        blob = json.dumps({"format": FORMAT, "exercise": self.name, "index": self.index},
                          sort_keys=True).encode()
        used = set()

        def walk(t):
            if isinstance(t, dict):
                for k, v in t.items():
                    if k in ("a", "torch") and isinstance(v, str):
                        used.add(v)
                    walk(v)
            elif isinstance(t, list):
                for v in t:
                    if isinstance(v, str) and v in self.arrays:
                        used.add(v)
                    walk(v)

        walk(self.index)
        payload = {k: self.arrays[k] for k in sorted(used)}
        payload["__index__"] = np.frombuffer(blob, dtype=np.uint8)
        path.parent.mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        np.savez_compressed(buf, **payload)
        path.write_bytes(buf.getvalue())

    def merge(self, other: "Store") -> None:
        for k, v in other.index.items():
            self.index.setdefault(k, v)
        for k, a in other.arrays.items():
            self.arrays.setdefault(k, a)


_STORES: dict[str, Store] = {}


def store(name: str) -> Store:
    if name not in _STORES:
        _STORES[name] = Store(name)
    return _STORES[name]


def flush_recordings(folder: Path | str | None = None) -> list[Path]:
    """Record mode: write what this process recorded (one file per exercise, merged later)."""
    folder = Path(folder or os.environ.get("RLKIT_RECORD_DIR") or RECORDED)
    out = []
    for name, st in _STORES.items():
        if st.index:
            p = folder / f"{name}.{os.getpid()}.part.npz"
            st.save(p)
            out.append(p)
    return out


# ---------------------------------------------------------------- the seam
class SeamFunction:
    def __init__(self, seam: "Seam", name: str):
        self.seam = seam.name
        self._seam = seam
        self.name = name
        self.__name__ = name

    def __call__(self, *args, **kwargs):
        return self._seam._call(self.name, args, kwargs)

    def gradients(self, args: tuple, kwargs: dict, keys: list, weights: dict) -> dict:
        """The float64 gradients of this reference function (``answers._base.gradients_of``), keyed too."""
        return self._seam._call("gradients_of", (self.name, args, kwargs, keys, weights), {})

    def __repr__(self) -> str:
        return f"<answer {self.seam}.{self.name}>"


class Seam:
    """``answers(name)``: attribute access gives a keyed, recordable function of the answers module."""

    def __init__(self, name: str):
        self.name = name
        self._module = None

    def _live(self):
        if self._module is None:
            self._module = importlib.import_module(f"autograder.answers.{self.name}")
        return self._module

    def __getattr__(self, attr: str):
        if attr.startswith("__"):
            raise AttributeError(attr)
        return SeamFunction(self, attr)

    def _call(self, fn: str, args: tuple, kwargs: dict):
        m = mode()
        key = key_of(self.name, fn, args, kwargs)
        st = store(self.name)
        if m == "replay":
            st.load()
            entry = st.index.get(key)
            if entry is None:
                raise RecordingMiss(
                    f"no recorded answer for {self.name}.{fn} with these inputs (the student kit holds "
                    f"answers for the published inputs only; a different torch/numpy version can change "
                    f"the inputs: use the versions in requirements.txt)")
            if "raise" in entry:
                raise _rebuild_exception(entry["raise"])
            _apply_rng(entry.get("rng", {}), st.arrays)
            return decode(entry["out"], st.arrays)
        before = _rng_states()
        module = self._live()
        if fn == "gradients_of" and not hasattr(module, fn):  # every answers module offers it
            from .answers._base import gradients_of

            def target(name, *rest):
                return gradients_of(getattr(module, name), *rest)
        else:
            target = getattr(module, fn)
        try:
            out = target(*args, **kwargs)
        except (ValueError, TypeError, RuntimeError, ZeroDivisionError, IndexError) as exc:
            enc = _Encoder(st.arrays if m == "record" else {})
            entry = {"raise": [type(exc).__name__, str(exc)[:500]], "rng": _rng_entry(before, enc)}
            if m == "record":
                st.index[key] = entry
            _log_call(self.name, fn, key, entry)
            raise
        enc = _Encoder(st.arrays if m == "record" else {})
        tree = enc.encode(out)
        entry = {"out": tree, "rng": _rng_entry(before, enc)}
        if m == "record":
            st.index[key] = entry
        _log_call(self.name, fn, key, entry)
        return decode(tree, enc.arrays)


def entry_digest(entry: dict) -> str:
    """A digest of one answer (its output or exception, and the random state it leaves). Arrays are
    named by their content, so equal digests mean a replay returns exactly what the live call did."""
    return _digest(json.dumps(entry, sort_keys=True).encode())


def _log_call(seam: str, fn: str, key: str, entry: dict) -> None:
    """``RLKIT_SEAM_LOG=dir`` (the kit's tests): note every live answer, to prove the recorded data
    covers it (tests/test_student_kit.py: whatever a submission makes the suite ask, a replay finds)."""
    folder = os.environ.get("RLKIT_SEAM_LOG")
    if not folder or mode() != "live":
        return
    from .seeds import fingerprint

    line = json.dumps({"seam": seam, "fn": fn, "key": key, "digest": entry_digest(entry), "inputs": fingerprint()})
    with open(os.path.join(folder, f"seam-{os.getpid()}.jsonl"), "a") as f:
        f.write(line + "\n")


def _rebuild_exception(spec):
    name, msg = spec
    cls = {"ValueError": ValueError, "TypeError": TypeError, "RuntimeError": RuntimeError,
           "ZeroDivisionError": ZeroDivisionError, "IndexError": IndexError}.get(name, RuntimeError)
    return cls(msg)


def answers(name: str) -> Seam:
    return Seam(name)
