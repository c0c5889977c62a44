"""Helpers every answers module shares."""
from __future__ import annotations

import torch

from autograder.child.wire import walk


def gradients_of(fn, args: tuple, kwargs: dict, keys: list, weights: dict) -> dict:
    """d sum_k <w_k, output_k> / d arg, in float64, for each positional index or keyword in ``keys``.

    Every other floating tensor argument is promoted to float64 too; a key that
    receives no gradient maps to None.
    """
    pos, kw = list(args), dict(kwargs)
    leaves = {}
    for key in keys:
        v = pos[key] if isinstance(key, int) else kw[key]
        leaf = v.detach().clone().double().requires_grad_(True)
        leaves[key] = leaf
        if isinstance(key, int):
            pos[key] = leaf
        else:
            kw[key] = leaf
    pos = [a.double() if isinstance(a, torch.Tensor) and a.is_floating_point() and i not in leaves else a
           for i, a in enumerate(pos)]
    out = fn(*pos, **kw)
    total = sum((walk(out, p).double() * torch.as_tensor(w)).sum() for p, w in weights.items()
                if isinstance(walk(out, p), torch.Tensor) and walk(out, p).requires_grad)
    grads = {}
    for key in keys:
        if isinstance(total, torch.Tensor):
            (g,) = torch.autograd.grad(total, [leaves[key]], retain_graph=True, allow_unused=True)
        else:
            g = None
        grads[key] = None if g is None else g.detach()
    return grads
