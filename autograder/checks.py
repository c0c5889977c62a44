"""Comparisons done in the trusted parent, with feedback written for students.

Every check raises :class:`CheckFailed` with one short sentence a student can
act on. Suites pass the reference output (computed here in the parent) and,
optionally, known-wrong variants: when the student's output matches one of
them, the feedback names that mistake instead of printing numbers.
"""
from __future__ import annotations

from typing import Callable, Iterable

import numpy as np
import torch

from .client import CallResult, Leaf


class CheckFailed(AssertionError):
    """A check failed; the message is the feedback shown to the student."""


# A known mistake: (short key, message, function computing the wrong output).
Mistake = tuple[str, str, Callable[[], "torch.Tensor | np.ndarray"]]


def to_numpy(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu()
        if x.dtype in (torch.bfloat16, torch.float16):
            x = x.double()
        return x.numpy()
    return np.asarray(x)


def fmt(v) -> str:
    a = np.asarray(v)
    if a.dtype == bool:
        return str(a.tolist())
    if a.ndim == 0:
        return f"{float(a):.6g}"
    if a.size <= 6:
        return "[" + ", ".join(f"{float(x):.4g}" for x in a.ravel()) + "]"
    return "[" + ", ".join(f"{float(x):.4g}" for x in a.ravel()[:5]) + ", ...]"


# ------------------------------------------------------------------ results
def require_ok(res: CallResult, what: str) -> None:
    """Fail with a readable message if the call raised, crashed or timed out."""
    if res.ok:
        return
    if res.not_implemented:
        raise CheckFailed(f"{what}() is not implemented yet (it raises NotImplementedError)")
    raise CheckFailed(f"{what}() failed: {res.error_text()}")


def output_leaf(res: CallResult, what: str, path: str = "", label: str | None = None) -> Leaf:
    require_ok(res, what)
    leaf = res.output(path)
    label = label or (f"output {path!r}" if path else "the result")
    if leaf is None:
        raise CheckFailed(f"{what}() returned {res.output().describe() if res.output() else 'nothing'}; "
                          f"{label} is missing")
    return leaf


def tensor_output(res: CallResult, what: str, path: str = "", label: str | None = None) -> Leaf:
    """The output at ``path`` must be a torch.Tensor (not a list, array or number)."""
    leaf = output_leaf(res, what, path, label)
    label = label or ("output " + path if path else "the result")
    if leaf.kind != "tensor":
        raise CheckFailed(f"{what}(): {label} should be a torch.Tensor, got {leaf.describe()}")
    return leaf


# ------------------------------------------------------------------ values
def close_enough(a: np.ndarray, b: np.ndarray, rtol: float, atol: float) -> bool:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return a.shape == b.shape and bool(np.all(np.isfinite(a))) and bool(
        np.allclose(a, b, rtol=rtol, atol=atol, equal_nan=False))


def assert_tensor(leaf: Leaf, expected, what: str, *, device: str, label: str = "the result",
                  dtype: str | None = "float32", rtol: float = 1e-4, atol: float = 1e-5,
                  mistakes: Iterable[Mistake] = (), context: str = "") -> None:
    """Shape, dtype, device, finiteness and values of a returned tensor."""
    mistakes = _all_mistakes(mistakes)
    exp = to_numpy(expected)
    got = leaf.array
    ctx = f" ({context})" if context else ""
    if leaf.kind != "tensor":
        raise CheckFailed(f"{what}(): {label} should be a torch.Tensor, got {leaf.describe()}")
    if list(got.shape) != list(exp.shape):
        raise CheckFailed(f"{what}(): {label} has shape {list(got.shape)}, expected {list(exp.shape)}{ctx}")
    if dtype is not None and leaf.dtype != dtype:
        raise CheckFailed(f"{what}(): {label} has dtype {leaf.dtype}, expected {dtype}{ctx}")
    if not _same_device(leaf.device, device):
        raise CheckFailed(f"{what}(): {label} is on {leaf.device}, expected {device} "
                          f"(return results on the device of the inputs){ctx}")
    if exp.dtype == bool or got.dtype == bool:
        if got.dtype != bool and dtype is not None:
            raise CheckFailed(f"{what}(): {label} should be a bool tensor{ctx}")
        if not np.array_equal(got.astype(bool), exp.astype(bool)):
            idx = tuple(int(i) for i in np.argwhere(got.astype(bool) != exp.astype(bool))[0])
            _raise_mistake(got, mistakes, what, rtol, atol, exact=True)
            raise CheckFailed(f"{what}(): {label} differs at index {list(idx)}: expected "
                              f"{bool(exp[idx])}, got {bool(got[idx])}{ctx}")
        return
    g64 = got.astype(np.float64)
    if not np.all(np.isfinite(g64)):
        idx = tuple(int(i) for i in np.argwhere(~np.isfinite(g64))[0])
        raise CheckFailed(f"{what}(): {label} contains {g64[idx]} at index {list(idx)}{ctx}")
    if close_enough(g64, exp, rtol, atol):
        return
    _raise_mistake(g64, mistakes, what, rtol, atol)
    bad = ~np.isclose(g64, exp.astype(np.float64), rtol=rtol, atol=atol)
    idx = tuple(int(i) for i in np.argwhere(bad)[0]) if bad.ndim else ()
    raise CheckFailed(f"{what}(): {label} is wrong at index {list(idx)}: expected {fmt(exp[idx])}, "
                      f"got {fmt(g64[idx])}{ctx}")


def assert_number(leaf: Leaf, expected: float, what: str, *, label: str = "the result",
                  rtol: float = 1e-4, atol: float = 1e-5, mistakes: Iterable[Mistake] = ()) -> None:
    """A scalar: a 0-d tensor or a Python number."""
    mistakes = _all_mistakes(mistakes)
    if leaf.kind not in ("tensor", "number") or leaf.array is None or leaf.array.size != 1:
        raise CheckFailed(f"{what}(): {label} should be a scalar, got {leaf.describe()}")
    got = float(np.asarray(leaf.array, dtype=np.float64).reshape(()))
    if not np.isfinite(got):
        raise CheckFailed(f"{what}(): {label} is {got}")
    if abs(got - float(expected)) <= atol + rtol * abs(float(expected)):
        return
    _raise_mistake(np.asarray(got), mistakes, what, rtol, atol)
    raise CheckFailed(f"{what}(): {label} is {got:.6g}, expected {float(expected):.6g}")


def _all_mistakes(mistakes: Iterable[Mistake]) -> Iterable[Mistake]:
    """The mistakes, still lazy: they are iterated (and their values computed) only on a mismatch.
    While answers are being recorded for the student kit, every variant is computed now, whatever
    this submission's output: a variant computed only on a mismatch would be missing when another
    submission needs it."""
    from .oracle import recording

    if not recording():
        return mistakes or ()
    mistakes = list(mistakes or ())
    for _, _, make in mistakes:
        try:
            make()
        except Exception:
            pass
    return mistakes


def _raise_mistake(got, mistakes: Iterable[Mistake], what: str, rtol: float, atol: float,
                   exact: bool = False) -> None:
    for key, message, make in mistakes:
        try:
            wrong = to_numpy(make())
        except Exception:
            continue
        if np.shape(wrong) != np.shape(got):
            if np.size(wrong) == np.size(got) == 1:
                wrong = np.reshape(wrong, np.shape(got))
            else:
                continue
        if exact:
            if np.array_equal(np.asarray(got).astype(bool), wrong.astype(bool)):
                raise CheckFailed(f"{what}(): {message}")
        elif close_enough(got, wrong, rtol, atol):
            raise CheckFailed(f"{what}(): {message}")


def _same_device(got: str | None, want: str) -> bool:
    if not isinstance(got, str):
        return False
    try:
        g = torch.device(got)
    except (RuntimeError, TypeError, ValueError):  # a name no device has: not the expected one
        return False
    w = torch.device(want)
    return g.type == w.type and (w.index is None or g.index in (None, w.index))


# ------------------------------------------------------------------ gradients
def assert_grad(res: CallResult, path: str, expected, what: str, label: str,
                rtol: float = 1e-4, atol: float = 1e-5, mistakes: Iterable[Mistake] = ()) -> None:
    """Gradient of the weighted sum of outputs w.r.t. one input.

    ``expected=None`` means the input must receive no gradient; ``None`` from
    the student (no graph) counts as zeros.
    """
    mistakes = _all_mistakes(mistakes)
    require_ok(res, what)
    got = res.grads.get(path, "absent")
    if isinstance(got, str):
        raise CheckFailed(f"{what}(): could not compute the gradient for {label}")
    if expected is None or not np.any(to_numpy(expected)):
        if got is not None and np.any(np.abs(np.asarray(got, dtype=np.float64)) > atol):
            _raise_mistake(np.asarray(got, dtype=np.float64), mistakes, what, rtol, atol)
            raise CheckFailed(f"{what}(): gradient flows into {label}, but it should not "
                              f"(detach it: it is treated as a constant)")
        return
    exp = to_numpy(expected).astype(np.float64)
    if got is None or not np.any(got):
        raise CheckFailed(f"{what}(): no gradient reaches {label} (did you detach it, or "
                          f"leave the autograd graph?)")
    got = np.asarray(got, dtype=np.float64)
    if got.shape != exp.shape:
        raise CheckFailed(f"{what}(): the gradient for {label} has shape {list(got.shape)}, "
                          f"expected {list(exp.shape)}")
    if not close_enough(got, exp, rtol, atol):
        _raise_mistake(got, mistakes, what, rtol, atol)
        bad = ~np.isclose(got, exp, rtol=rtol, atol=atol)
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        raise CheckFailed(f"{what}(): the gradient for {label} is wrong at index {list(idx)}: "
                          f"expected {fmt(exp[idx])}, got {fmt(got[idx])}")


def assert_inputs_unchanged(res: CallResult, originals: dict, what: str) -> None:
    """Inputs (by arg path) must be bitwise unchanged after the call."""
    require_ok(res, what)
    for path, orig in originals.items():
        after = res.inputs_after.get(path)
        if after is None:
            raise CheckFailed(f"{what}(): could not read input {path} back after the call")
        o = to_numpy(orig)
        if after.shape != o.shape or not np.array_equal(after.astype(np.float64), o.astype(np.float64)):
            raise CheckFailed(f"{what}() modified its input {path} in place; inputs must not be mutated "
                              f"(use out-of-place operations)")
