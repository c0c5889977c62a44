# Forges, ahead of the first case of every request for four functions, a well-formed frame of the grader's
# wire format whose values are hostile (found by a red team: each made the
# trusted side raise, so the report said "grader error" instead of grading):
# an int too large for a float, a "seconds" of 10**400, a device name torch
# does not know, a 0-d "numbers" array and a big-endian tensor. Then each
# returns the right answer. The forged frames must count as missing, never
# crash the grader: full marks, no grader error.
import json as _json
import os as _os
import struct as _struct
import sys as _sys

import numpy as _np


def _local(name):
    f = _sys._getframe()
    while f is not None:
        if name in f.f_locals:
            return f.f_locals[name]
        f = f.f_back
    return None


def _frame(header, arrays=None, dtype=None):
    arrays = arrays or {}
    table = [[k, dtype or a.dtype.str, list(a.shape)] for k, a in arrays.items()]
    meta = _json.dumps({"header": header, "arrays": table}).encode()
    data = b"RLKW" + _struct.pack(">I", len(meta)) + meta + b"".join(a.tobytes() for a in arrays.values())
    return _struct.pack(">Q", len(data)) + data


_forged = set()  # a child answers one request: forge once per child and attack, for case 0


def _forge(output, arrays=None, seconds=0.0, dtype=None):
    # ahead of the real answers (an answer holds one frame per case and only a few more: a flood
    # of frames would lose the real ones)
    key = (_sys._getframe(1).f_code.co_name, dtype)
    if key in _forged:
        return
    _forged.add(key)
    _os.write(_local("out_fd"), _frame({"event": "case", "index": 0, "ok": True, "seconds": seconds,
                                        "inputs_after": {}, "output": output}, arrays, dtype))


_reference_discounted_returns = discounted_returns  # noqa: F821
_reference_policy_evaluation = policy_evaluation  # noqa: F821
_reference_action_values = action_values  # noqa: F821
_reference_monte_carlo_value = monte_carlo_value  # noqa: F821


def discounted_returns(*args, **kwargs):
    _forge({"kind": "number", "value": 10 ** 400, "type": "int"})
    return _reference_discounted_returns(*args, **kwargs)


def policy_evaluation(*args, **kwargs):
    _forge({"kind": "none"}, seconds=10 ** 400)
    return _reference_policy_evaluation(*args, **kwargs)


def action_values(*args, **kwargs):
    out = _reference_action_values(*args, **kwargs)
    arr = out.detach().cpu().numpy()
    node = {"kind": "tensor", "key": "a0", "dtype": str(out.dtype).replace("torch.", ""), "device": "no-such-device",
            "requires_grad": False, "shape": list(arr.shape), "exact_type": True}
    _forge(node, {"a0": arr})
    _forge(dict(node, device="cpu"), {"a0": arr.astype(arr.dtype.newbyteorder(">"))}, dtype=arr.dtype.newbyteorder(">").str)
    return out


def monte_carlo_value(*args, **kwargs):
    _forge({"kind": "numbers", "key": "a0", "type": "list"}, {"a0": _np.array(1.0)})
    return _reference_monte_carlo_value(*args, **kwargs)
