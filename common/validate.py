"""Input checks shared by every exercise.

The exercise functions call these helpers *before* the part the student
writes, so a wrong argument fails with a message that names the argument and
the problem (``"rewards must have shape [T] or [T, N], got [3, 4, 5]"``)
instead of a shape error deep inside the computation.

Every helper only reads its arguments; none of them copies, moves or changes a
tensor. They raise ``TypeError`` for a wrong kind of object or dtype and
``ValueError`` for a wrong shape, device or value.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

__all__ = [
    "check_tensor",
    "check_same_shape",
    "check_same_device",
    "check_finite",
    "check_dones",
    "check_scalar",
    "check_probabilities",
    "check_bootstrap",
    "check_tensor_list",
    "check_trajectory",
    "shape_str",
]


def shape_str(shape: Sequence[int]) -> str:
    """``torch.Size([3, 4])`` -> ``"[3, 4]"`` (the notation used in every message)."""
    return "[" + ", ".join(str(int(s)) for s in shape) + "]"


def _dims_str(dims: Sequence[int], names: str) -> str:
    # names like "T, N": dims=(1, 2) -> "[T] or [T, N]"
    letters = [n.strip() for n in names.split(",")]
    options = ["[" + ", ".join(letters[:d]) + "]" for d in dims]
    return " or ".join(options)


def check_tensor(
    name: str,
    x,
    dims: Sequence[int] | int | None = None,
    *,
    dim_names: str = "T, N, D",
    floating: bool | None = None,
    integer: bool | None = None,
    allow_bool: bool = False,
    min_size: int | None = None,
) -> torch.Tensor:
    """Check that ``x`` is a tensor with an allowed number of dimensions and dtype.

    Args:
        name: the argument's name, used in the message.
        x: the object to check.
        dims: the allowed numbers of dimensions (``(1, 2)`` for a trajectory
            tensor ``[T]`` or ``[T, N]``); ``None`` allows any.
        dim_names: letters used to describe the shapes in the message.
        floating: require a floating-point dtype.
        integer: require an integer dtype (int8 ... int64, not bool).
        allow_bool: with ``floating`` or ``integer``, also accept ``torch.bool``.
        min_size: require every dimension to have at least this many entries
            (``min_size=1`` rejects empty trajectories).

    Returns:
        ``x`` itself (unchanged), so a call can be used inline.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if dims is not None:
        dims = (dims,) if isinstance(dims, int) else tuple(dims)
        if x.dim() not in dims:
            raise ValueError(
                f"{name} must have shape {_dims_str(dims, dim_names)}, got {shape_str(x.shape)}"
            )
    is_bool = x.dtype == torch.bool
    if floating and not x.is_floating_point() and not (allow_bool and is_bool):
        extra = " or bool" if allow_bool else ""
        raise TypeError(f"{name} must have a floating-point dtype{extra}, got {x.dtype}")
    if integer:
        is_int = not x.is_floating_point() and not x.is_complex() and not is_bool
        if not is_int and not (allow_bool and is_bool):
            raise TypeError(f"{name} must have an integer dtype (e.g. torch.int64), got {x.dtype}")
    if min_size is not None and any(s < min_size for s in x.shape):
        raise ValueError(
            f"{name} must have at least {min_size} entr{'y' if min_size == 1 else 'ies'} "
            f"along every dimension, got shape {shape_str(x.shape)}"
        )
    return x


def check_trajectory(name: str, x) -> torch.Tensor:
    """Check a float trajectory tensor: shape ``[T]`` or ``[T, N]`` with T, N >= 1, no NaN/inf."""
    check_tensor(name, x, dims=(1, 2), dim_names="T, N", floating=True, min_size=1)
    check_finite(name, x)
    return x


def check_same_shape(**tensors: torch.Tensor) -> None:
    """Check that all named tensors have the same shape.

    >>> check_same_shape(rewards=r, dones=d)   # "dones must have the same shape as rewards ..."
    """
    items = list(tensors.items())
    first_name, first = items[0]
    for name, x in items[1:]:
        if x.shape != first.shape:
            raise ValueError(
                f"{name} must have the same shape as {first_name} "
                f"({shape_str(first.shape)}), got {shape_str(x.shape)}"
            )


def check_same_device(**tensors: torch.Tensor) -> None:
    """Check that all named tensors live on the same device."""
    items = list(tensors.items())
    first_name, first = items[0]
    for name, x in items[1:]:
        if x.device != first.device:
            raise ValueError(
                f"{name} is on {x.device} but {first_name} is on {first.device}; "
                "move them to the same device"
            )


def check_finite(name: str, x: torch.Tensor, *, allow_neg_inf: bool = False) -> None:
    """Check that a floating tensor has no NaN (and no infinity).

    ``allow_neg_inf`` accepts ``-inf`` (a masked logit) but still rejects NaN and ``+inf``.
    """
    if not x.is_floating_point():
        return
    # Fast path, one reduction: a NaN or an infinity makes the sum NaN or infinite, so a
    # finite sum proves every entry finite (four times cheaper than isfinite().all() on
    # the small tensors of a training loop). A sum that overflowed from finite entries
    # only takes the exact path below.
    if math.isfinite(x.detach().sum().item()):
        return
    if torch.isnan(x).any():
        raise ValueError(f"{name} contains NaN")
    if allow_neg_inf:
        if torch.isposinf(x).any():
            raise ValueError(f"{name} contains +inf")
    elif torch.isinf(x).any():
        raise ValueError(f"{name} contains inf")


def check_dones(name: str, dones: torch.Tensor, like: torch.Tensor, like_name: str = "rewards") -> None:
    """Check an episode-end flag tensor: same shape as ``like``, bool or numbers that are all 0 or 1."""
    check_tensor(name, dones)
    if dones.is_complex():
        raise TypeError(f"{name} must be bool or a real 0/1 tensor, got {dones.dtype}")
    check_same_shape(**{like_name: like, name: dones})
    check_same_device(**{like_name: like, name: dones})
    if dones.dtype != torch.bool:
        ok = (dones == 0) | (dones == 1)
        if not bool(ok.all()):
            raise ValueError(f"{name} must contain only 0 and 1 (or be a bool tensor)")


def check_scalar(
    name: str,
    value,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    integer: bool = False,
) -> float:
    """Check a Python number (or a 0-d tensor) against a range; return it as a float/int.

    ``low_open``/``high_open`` exclude the bound itself (``gamma < 1``).
    """
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ValueError(f"{name} must be a number, got a tensor of shape {shape_str(value.shape)}")
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if integer and int(value) != value:
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if isinstance(value, float) and math.isnan(value):
        raise ValueError(f"{name} must not be NaN")
    if low is not None and (value < low or (low_open and value == low)):
        raise ValueError(f"{name} must be {'>' if low_open else '>='} {low}, got {value}")
    if high is not None and (value > high or (high_open and value == high)):
        raise ValueError(f"{name} must be {'<' if high_open else '<='} {high}, got {value}")
    return int(value) if integer else value


def check_probabilities(name: str, p: torch.Tensor, *, atol: float | None = None) -> None:
    """Check that the last dimension of ``p`` is a probability distribution (>= 0, sums to 1).

    ``atol`` defaults to 1e-6 for float64 and 1e-4 for lower precisions.
    """
    if atol is None:
        atol = 1e-6 if p.dtype == torch.float64 else 1e-4
    if (p < 0).any():
        raise ValueError(f"{name} contains negative probabilities")
    sums = p.sum(dim=-1)
    if not torch.allclose(sums, torch.ones_like(sums), atol=atol, rtol=0.0):
        worst = (sums - 1).abs().max().item()
        raise ValueError(f"{name} must sum to 1 over its last dimension (largest error {worst:.3g})")


def check_bootstrap(name: str, last_value: torch.Tensor, values: torch.Tensor) -> None:
    """Check ``last_value = V(s_T)`` against ``values [T]`` / ``[T, N]``.

    Allowed shapes: ``[]`` for either layout, ``[1]`` with ``values [T]``, ``[N]`` with ``values [T, N]``.
    """
    check_tensor(name, last_value, floating=True)
    check_same_device(values=values, **{name: last_value})
    allowed = [torch.Size([])]
    if values.dim() == 1:
        allowed.append(torch.Size([1]))
    else:
        allowed.append(values.shape[1:])
    if last_value.shape not in allowed:
        want = "[]" + (" or [1]" if values.dim() == 1 else f" or {shape_str(values.shape[1:])} ([N])")
        raise ValueError(
            f"{name} must have shape {want} for values of shape {shape_str(values.shape)}, "
            f"got {shape_str(last_value.shape)}"
        )
    check_finite(name, last_value)


def check_tensor_list(name: str, xs, *, min_len: int = 1) -> list:
    """Check that ``xs`` is a list/tuple of tensors with at least ``min_len`` items."""
    if not isinstance(xs, (list, tuple)):
        raise TypeError(f"{name} must be a list of tensors (one per episode), got {type(xs).__name__}")
    if len(xs) < min_len:
        raise ValueError(f"{name} must hold at least {min_len} episodes, got {len(xs)}")
    for i, x in enumerate(xs):
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{name}[{i}] must be a torch.Tensor, got {type(x).__name__}")
    return list(xs)
