"""Values in the child: arguments built from the parent's plain specs, results flattened to plain data.

:func:`run_case` builds a case's arguments (:func:`build_arg`), calls the
function, and turns what it returned, the gradients asked for and the inputs
after the call into a result tree of :data:`wire.KINDS` nodes and numeric
arrays (:class:`Flattener`). Nothing a student object says about itself is
believed: only exact tensor and array types are read.
"""
from __future__ import annotations

import dataclasses
import json
import time

from .wire import MAX_RESULT_BYTES, node, walk


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
        info = node("tensor",
                    exact_type=type(t) is base,
                    dtype=str(d.dtype).replace("torch.", ""),
                    device=str(d.device),
                    requires_grad=bool(t.requires_grad),
                    shape=list(d.shape))
        info["key"] = self.add(base.numpy(base.cpu(d.to(torch.float64) if d.dtype in (torch.bfloat16, torch.float16) else d)))
        return info

    def flatten(self, obj, depth: int = 0):
        import numpy as np
        import torch

        if depth > 6:
            return node("unsupported", type="too deeply nested")
        # type(), not isinstance(): isinstance believes a faked __class__. A
        # Tensor/ndarray subclass may override __eq__, __sub__, __abs__ or
        # __torch_function__; the parent never calls them, and such an output
        # earns nothing, whatever its data (torch.nn.Parameter included).
        if isinstance(obj, torch.Tensor) or isinstance(obj, np.ndarray):
            if type(obj) not in (torch.Tensor, np.ndarray):
                base = torch.Tensor if isinstance(obj, torch.Tensor) else np.ndarray
                name = f"{base.__module__.split('.')[0]}.{base.__name__}"
                what = "subclass" if issubclass(type(obj), base) else "look-alike (a faked __class__)"
                return node("unsupported", type=f"{name} {what} {type(obj).__name__} (return a plain {name})")
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
            return node("network", **{"class": type(obj).__name__}, config=config, state=state)
        if type(obj) is np.ndarray:
            return node("ndarray", key=self.add(obj), dtype=str(obj.dtype), shape=list(obj.shape))
        if isinstance(obj, (bool, np.bool_)):
            return node("bool", value=bool(obj))
        if isinstance(obj, (int, float, np.integer, np.floating)):
            return node("number", value=float(obj), type=type(obj).__name__)
        if obj is None:
            return node("none")
        if isinstance(obj, str):
            return node("str", value=obj[:1000])
        if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
            return node("record", type=type(obj).__name__,
                        fields={f.name: self.flatten(getattr(obj, f.name), depth + 1) for f in dataclasses.fields(obj)})
        if isinstance(obj, dict):
            return node("record", type="dict",
                        fields={str(k): self.flatten(v, depth + 1) for k, v in list(obj.items())[:200]})
        if isinstance(obj, (list, tuple)):
            items = list(obj)
            if items and len(items) > 8 and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in items):
                return node("numbers", key=self.add(np.asarray(items, dtype=np.float64)), type=type(obj).__name__)
            return node("sequence", type=type(obj).__name__, items=[self.flatten(x, depth + 1) for x in items[:10000]])
        return node("unsupported", type=type(obj).__name__)


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


def _check_size(flat: "Flattener") -> None:
    total = sum(a.nbytes for a in flat.arrays.values())
    if total > MAX_RESULT_BYTES:
        raise ResultTooLarge(f"the result is too large: {total / 2**20:.0f} MB of data "
                             f"(the grader accepts at most {MAX_RESULT_BYTES >> 20} MB)")


def _select_outputs(out, paths: list[str]) -> dict:
    return {path: walk(out, path) for path in paths}
