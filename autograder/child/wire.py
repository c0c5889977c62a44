"""The wire format between the parent and the child: frames, the result tree ("kinds") and output paths.

A frame is an 8-byte big-endian length (:data:`HDR`) and a payload: the magic
``RLKW``, a 4-byte big-endian length, that many bytes of JSON (``{"header": ...,
"arrays": [[key, dtype, shape], ...]}``) and the arrays' raw bytes, one after
the other in the table's order (C order). Only plain numeric dtypes are
allowed (:data:`NUMERIC`, in numpy's canonical spelling such as ``"<f4"``). A case's result is a tree of
JSON nodes ``{"kind": K, ...}`` whose arrays are named by key; :data:`KINDS`
defines every kind and its fields once. The child writes nodes with
:func:`node` (``values.Flattener``), the parent checks them with
:func:`tree_ok` (``sandbox._frame_ok``) and reads them with :func:`child_nodes`
(``client._parse``). :func:`walk` is the one walker of dotted output paths.

Runs on both sides: only the standard library and numpy.
"""
from __future__ import annotations

import json
import os
import re
import select
import struct
import sys
import time
import traceback

# --------------------------------------------------------------------------
# framing: 8-byte big-endian length + payload (magic, JSON table, raw arrays)
# --------------------------------------------------------------------------
HDR = struct.Struct(">Q")
MAGIC = b"RLKW"
_META = struct.Struct(">I")  # the length of the JSON part
# numpy's canonical spelling of a plain numeric dtype in this machine's byte order (or none, for
# one-byte types): a non-native array would reach torch, which refuses it
_NATIVE = "<" if sys.byteorder == "little" else ">"
_DTYPE = re.compile(rf"[{_NATIVE}|][biuf][1248]\Z")
MAX_HEADER_BYTES = 4 << 20  # the JSON part of one frame
MAX_MEMBERS = 4096  # arrays in one frame (a result holds a few dozen)
MAX_DIMS = 32


def pack(header: dict, arrays: dict | None = None) -> bytes:
    """One frame: ``header`` (plain JSON) and ``arrays`` (name -> numeric numpy array)."""
    import numpy as np

    table, blobs = [], []
    for key, arr in (arrays or {}).items():
        arr = np.asarray(arr)
        if not arr.dtype.isnative:
            arr = arr.astype(arr.dtype.newbyteorder("="))
        if arr.dtype.kind not in NUMERIC or not _DTYPE.match(arr.dtype.str):
            raise TypeError(f"unsupported array dtype {arr.dtype}")
        table.append([str(key), arr.dtype.str, list(arr.shape)])
        blobs.append(arr.tobytes())  # C order, whatever the array's layout
    meta = json.dumps({"header": header, "arrays": table}).encode()
    body = b"".join([MAGIC, _META.pack(len(meta)), meta, *blobs])
    return HDR.pack(len(body)) + body


def json_length(head: bytes) -> int:
    """The length a payload's head (its first 8 bytes) gives for its JSON part, 0 for no such
    head: what parsing it would cost, known before parsing."""
    if len(head) < len(MAGIC) + _META.size or head[:len(MAGIC)] != MAGIC:
        return 0
    return _META.unpack_from(head, len(MAGIC))[0]


def _malformed() -> ValueError:
    return ValueError("malformed frame")


def unpack(data: bytes) -> tuple[dict, dict]:
    """``(header, arrays)`` of a frame's payload; ValueError for anything but a well-formed one.

    The other side may be hostile: every length is checked against the bytes at hand before it
    is used, the JSON part before it is parsed, and each array's dtype against a short list of
    plain numeric ones (never an object dtype, which would read pointers)."""
    import numpy as np

    data = bytes(data)
    head = len(MAGIC) + _META.size
    if len(data) < head or data[:len(MAGIC)] != MAGIC:
        raise _malformed()
    (n,) = _META.unpack_from(data, len(MAGIC))
    if n > MAX_HEADER_BYTES:  # checked before json.loads builds anything
        raise ValueError("frame header too large")
    if n > len(data) - head:
        raise _malformed()
    try:
        meta = json.loads(data[head:head + n].decode())
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise _malformed() from None
    if not isinstance(meta, dict) or not isinstance(meta.get("header"), dict) or not isinstance(meta.get("arrays"), list):
        raise _malformed()
    table = meta["arrays"]
    if len(table) > MAX_MEMBERS:  # each array costs the reader time and memory of its own
        raise ValueError(f"frame with too many arrays ({len(table)})")
    buf = bytearray(data[head + n:])  # one copy, so that the arrays are writable, as np.load's were
    arrays, pos = {}, 0
    for entry in table:
        if not (isinstance(entry, list) and len(entry) == 3):
            raise _malformed()
        key, dtype, shape = entry
        if (not isinstance(key, str) or key in arrays or not isinstance(dtype, str) or not _DTYPE.match(dtype)
                or not isinstance(shape, list) or len(shape) > MAX_DIMS
                or not all(type(d) is int and d >= 0 for d in shape)):
            raise _malformed()
        dt = np.dtype(dtype)
        if dt.str != dtype or dt.kind not in NUMERIC:
            raise _malformed()
        count = 1
        for d in shape:
            count *= d
        size = count * dt.itemsize
        if size > len(buf) - pos:
            raise _malformed()
        try:
            arrays[key] = (np.frombuffer(buf, dtype=dt, count=count, offset=pos) if count
                           else np.empty(0, dtype=dt)).reshape(shape)
        except (ValueError, OverflowError, MemoryError):  # e.g. an empty array of absurd dimensions
            raise _malformed() from None
        pos += size
    if pos != len(buf):
        raise _malformed()
    return meta["header"], arrays


MAX_RESULT_BYTES = 256 << 20  # per request; the child checks it, the zygote enforces it too, on the raw bytes


class ParentGone(EOFError):
    """The grader that asked hung up while an answer was awaited: nobody will read it."""


def watching(fd: int, watch: int):
    """A poller of ``fd`` for input and of ``watch`` for its hang-up alone (registered for no
    event: poll reports only a hang-up or an error), for :func:`hung_up`."""
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    poller.register(watch, 0)
    return poller


def hung_up(poller, fd: int, timeout: float) -> tuple[bool, bool]:
    """``(fd readable, watched descriptor hung up)`` of a :func:`watching` poller within ``timeout`` seconds."""
    events = dict(poller.poll(timeout * 1000))
    readable = bool(events.get(fd, 0))
    return readable, any(e for k, e in events.items() if k != fd)


def read_exact(fd: int, n: int, deadline: float | None = None, watch: int | None = None) -> bytes:
    """Exactly ``n`` bytes from ``fd``, or EOFError; with a ``deadline`` (``time.monotonic()``),
    TimeoutError once it has passed; with ``watch`` (a descriptor whose writer is the one
    waiting for this answer), ParentGone as soon as that writer is gone."""
    poller = watching(fd, watch) if watch is not None else None
    chunks = []
    while n:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            if poller is not None:
                ready, gone = hung_up(poller, fd, min(left, 1.0))
                if gone:
                    raise ParentGone
            else:
                ready, _, _ = select.select([fd], [], [], min(left, 1.0))
            if not ready:
                continue
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


MAX_EXTRA_FRAMES = 8  # frames an answer may hold beyond one per case (import errors, exit, ...)


def whole_frames(data: bytes, max_frames: int | None = None) -> bytes:
    """The longest prefix of ``data`` made of complete frames (at most ``max_frames`` of them:
    an answer holds one frame per case and a few more, and every frame costs its reader)."""
    pos = count = 0
    while pos + HDR.size <= len(data) and (max_frames is None or count < max_frames):
        (n,) = HDR.unpack_from(data, pos)
        if n > len(data) - pos - HDR.size:
            break
        pos += HDR.size + n
        count += 1
    return data[:pos]


# --------------------------------------------------------------------------
# errors: the "error" field of a frame
# --------------------------------------------------------------------------
MAX_MESSAGE = 300  # characters of an exception message that reach the parent


def describe_exception(exc: BaseException, filename_hint: str) -> dict:
    """A one-line description plus the last frame inside the student's file."""
    where = ""
    tb = exc.__traceback__
    for frame in traceback.extract_tb(tb):
        if filename_hint in (frame.filename or ""):
            where = f"{os.path.basename(frame.filename)}, line {frame.lineno}, in {frame.name}"
    if isinstance(exc, SyntaxError):
        where = f"{os.path.basename(exc.filename or '?')}, line {exc.lineno}"
    try:
        message = str(exc)
    except BaseException:
        message = "(the exception could not be printed)"
    return {
        "type": type(exc).__name__[:100],
        "message": message[:MAX_MESSAGE],
        "where": where[:200],
    }


# --------------------------------------------------------------------------
# the result tree: every kind of node and its fields, defined once
# --------------------------------------------------------------------------
# What a field must hold for the parent to accept the node (tree_ok). A field
# checked "when present" may be left out; the others are required.
ANY = "any"  # not checked (read only as text, or not at all)
LABEL = "label"  # a str or a bool, when present
SHAPE = "shape"  # a list of ints, when present
NAME = "name"  # a str, when present
ARRAY = "array"  # the key of a numeric array of the frame
VECTOR = "vector"  # the key of a numeric array of the frame with one axis
NUMBER = "number"  # a float, or an int that converts to one (not a bool)
DEVICE = "device"  # a device name torch reads (cpu, cuda:0, ...), when present
BOOL = "bool"  # a bool
NODES = "nodes"  # a list of nodes (the children, named "0", "1", ...)
NODE_MAP = "node_map"  # {name: node} (the children, by name)
ARRAY_MAP = "array_map"  # {name: key of a numeric array}, each entry counting as a node
CONFIG = "config"  # a JSON object of fewer than 4096 characters, when present

# every array kind may carry this metadata (each writes the part it has)
_ARRAY_FIELDS = {"exact_type": ANY, "dtype": LABEL, "device": DEVICE, "requires_grad": LABEL, "shape": SHAPE,
                 "key": ARRAY, "type": LABEL}
KINDS: dict[str, dict[str, str]] = {
    "tensor": _ARRAY_FIELDS,  # a torch.Tensor (exact type): dtype, device, requires_grad, shape
    "ndarray": _ARRAY_FIELDS,  # a numpy array (exact type): dtype, shape
    "numbers": {**_ARRAY_FIELDS, "key": VECTOR},  # a long list or tuple of Python numbers (type: list or tuple)
    "number": {"value": NUMBER, "type": ANY},  # int, float, numpy scalar (value as a float)
    "bool": {"value": BOOL},
    "none": {},
    "str": {"value": ANY},  # cut to 1000 characters
    "sequence": {"type": ANY, "items": NODES},  # a list or tuple
    "record": {"type": ANY, "fields": NODE_MAP},  # a dataclass or a dict
    "network": {"class": NAME, "config": CONFIG, "state": ARRAY_MAP},  # a torch.nn.Module: its state_dict
    "unsupported": {"type": ANY},  # anything else: says what it was
}
ARRAY_KINDS = tuple(k for k, fields in KINDS.items() if fields.get("key") in (ARRAY, VECTOR))
NUMERIC = "biuf"  # the only array dtype kinds a frame may hold


def node(kind: str, **fields) -> dict:
    """A node of the result tree (the writer's one way to make one); fields in the order given."""
    allowed = KINDS[kind]
    for name in fields:
        if name not in allowed:
            raise ValueError(f"a {kind} node has no field {name!r}")
    return {"kind": kind, **fields}


def child_nodes(info: dict) -> dict:
    """The children of a node by name (items "0", "1", ... or record fields); {} for a leaf."""
    out: dict = {}
    for name, what in KINDS.get(info.get("kind"), {}).items():
        if what == NODES:
            out.update((str(i), x) for i, x in enumerate(info.get(name) or []))
        elif what == NODE_MAP:
            out.update((str(k), v) for k, v in (info.get(name) or {}).items())
    return out


MAX_NUMBER = 2 ** 1023  # an int beyond this does not convert to a float
_DEVICE_NAME = re.compile(r"(cpu|cuda|mps|xpu|meta)(:\d{1,4})?\Z")


def is_number(v) -> bool:
    """A float, or an int that ``float()`` takes (a number in a frame is read as a float)."""
    return isinstance(v, float) or (isinstance(v, int) and not isinstance(v, bool) and abs(v) <= MAX_NUMBER)


def is_str_map(d, values=(str,)) -> bool:
    return isinstance(d, dict) and all(isinstance(k, str) and (v is None or isinstance(v, values))
                                       for k, v in d.items())


_MISSING = object()


def tree_ok(node: dict, arrays: dict, max_nodes: int, max_depth: int = 12) -> bool:
    """Whether an untrusted result tree is made of :data:`KINDS` only, with fields of the right types,
    arrays that exist and are numeric, at most ``max_nodes`` nodes and ``max_depth`` levels."""
    budget = [max_nodes]

    def array(v) -> bool:
        return isinstance(v, str) and v in arrays and arrays[v].dtype.kind in NUMERIC

    def field_ok(what: str, v, depth: int) -> bool:
        if what == ANY:
            return True
        if what == LABEL:
            return v is _MISSING or isinstance(v, (str, bool))
        if what == SHAPE:
            return v is _MISSING or (isinstance(v, list) and all(isinstance(x, int) for x in v))
        if what == NAME:
            return v is _MISSING or isinstance(v, str)
        if what == ARRAY:
            return array(v)
        if what == VECTOR:
            return array(v) and arrays[v].ndim == 1
        if what == NUMBER:
            return is_number(v)
        if what == DEVICE:
            return v is _MISSING or (isinstance(v, str) and _DEVICE_NAME.match(v) is not None)
        if what == BOOL:
            return isinstance(v, bool)
        if what == NODES:
            return isinstance(v, list) and all(check(x, depth + 1) for x in v)
        if what == NODE_MAP:
            return is_str_map(v, (dict,)) and all(check(x, depth + 1) for x in v.values())
        if what == ARRAY_MAP:
            budget[0] -= len(v) if isinstance(v, dict) else 0
            return budget[0] >= 0 and is_str_map(v) and all(x in arrays and arrays[x].dtype.kind in NUMERIC
                                                            for x in v.values())
        if what == CONFIG:
            v = {} if v is _MISSING else v
            return isinstance(v, dict) and len(json.dumps(v)) < 4096
        return False

    def check(n, depth: int) -> bool:
        budget[0] -= 1
        if budget[0] < 0 or depth > max_depth or not isinstance(n, dict) or not isinstance(n.get("kind"), str):
            return False
        fields = KINDS.get(n["kind"])
        return fields is not None and all(field_ok(what, n.get(name, _MISSING), depth)
                                          for name, what in fields.items())

    return check(node, 0)


# --------------------------------------------------------------------------
# output paths: "" is the whole output, "1.returns" field ``returns`` of item 1
# --------------------------------------------------------------------------
def value_step(obj, part: str):
    """One step down a Python value: an item of a list or tuple, a key of a dict, else an attribute."""
    if isinstance(obj, (list, tuple)):
        return obj[int(part)]
    if isinstance(obj, dict):
        return obj[part]
    return getattr(obj, part)


def walk(root, path: str, step=value_step):
    """What the dotted ``path`` names in ``root``: the one walker of output paths.

    By default ``root`` is a Python value (the child's output, a reference
    output). The parent's parsed results (``client.Leaf``) pass a ``step`` of
    their own: there a node's children sit in a dict, and a part that is not
    there gives None instead of an error.
    """
    node = root
    for part in path.split(".") if path else []:
        node = step(node, part)
    return node
