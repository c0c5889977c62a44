# Writes forged protocol frames into every open descriptor: "case ok" frames
# for every index, a forged exit summary, a frame header claiming 2**62
# bytes, and a truncated header. The grader must neither crash (no "grader
# error") nor count any of it: policy_evaluation 0, the rest full: 11 / 15.
import json as _json
import os as _os
import struct as _struct

import numpy as _np


def _frame(header, arrays=None):
    # the grader's own wire format (autograder/child/wire.py), written by hand
    arrays = arrays or {}
    meta = _json.dumps({"header": header, "arrays": [[k, a.dtype.str, list(a.shape)] for k, a in arrays.items()]})
    data = b"RLKW" + _struct.pack(">I", len(meta)) + meta.encode() + b"".join(a.tobytes() for a in arrays.values())
    return _struct.pack(">Q", len(data)) + data


def _forge(shape):
    zeros = _np.zeros(shape, dtype=_np.float32)
    frames = b""
    for i in range(12):
        frames += _frame({"event": "case", "index": i, "ok": True, "seconds": 0.0, "inputs_after": {},
                          "output": {"kind": "tensor", "key": "a0", "dtype": "float32", "device": "cpu",
                                     "requires_grad": False, "shape": list(shape), "exact_type": True}},
                         {"a0": zeros})
    frames += _frame({"event": "exit", "timed_out": False, "exit": {"code": 0}, "log_tail": "all passed"})
    frames += _frame({"event": "done"})
    frames += b"\x7f" + b"\xff" * 7  # a header claiming ~2**63 bytes
    frames += b"\x00\x00\x00"  # and a truncated one
    for fd in range(3, 64):
        try:
            _os.write(fd, frames)
        except OSError:
            pass


def policy_evaluation(P, R, pi, gamma, tol=1e-8, max_iters=10_000):
    _forge((P.shape[0],))
    return torch.zeros(P.shape[0], dtype=P.dtype)
