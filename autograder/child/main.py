"""The child's main: confine itself, then answer one request (or, in a session, request after request).

Every child is forked by the zygote (``zygote.py``) and starts in
:func:`child_main` or :func:`session_main`; both confine the process
(``confine.limit_and_confine``) before any student code is imported, then
stream one frame per case back.
"""
from __future__ import annotations

import os

from .confine import limit_and_confine
from .loading import given_function, load_kit_module, load_student_module
from .values import run_case
from .wire import HDR, describe_exception, pack, read_exact, unpack, write_all


def _resolve(cfg: dict, request: dict):
    """The function a request names, or the frame that says why there is none."""
    kit_dir, work_dir = cfg["kit_dir"], cfg["work_dir"]
    module_name = request["module"]
    fn_name = request["function"]
    graded = cfg.get("graded", {})
    kind = request.get("kind", "student")
    student_module = module_name if kind != "kit" else request.get("graded")
    info = graded.get(student_module or "", {})
    try:
        if kind == "kit":
            if student_module:  # the driver imports the graded module: its earlier exercises resolve as usual
                load_student_module(work_dir, student_module, info.get("earlier"))
            mod = load_kit_module(kit_dir, work_dir, module_name)
        else:
            mod = load_student_module(work_dir, module_name, info.get("earlier"))
    except BaseException as exc:  # SyntaxError, ImportError, SystemExit at import, ...
        return None, {"event": "import_error", "error": describe_exception(exc, "/submission/")}
    if kind == "given":
        try:
            fn = given_function(kit_dir, work_dir, module_name, fn_name, mod, info.get("functions", []))
        except BaseException as exc:
            return None, {"event": "import_error", "error": describe_exception(exc, "/submission/")}
    else:
        fn = getattr(mod, fn_name, None)
    if fn is None or not callable(fn):
        return None, {"event": "missing", "error": {"type": "AttributeError",
                                                    "message": f"{module_name}.py defines no function {fn_name}()",
                                                    "where": ""}}
    return fn, None


def _run_request(cfg: dict, request: dict, arrays: dict, emit) -> None:
    """Every case of one request, each answered by one frame, then a "done" frame."""
    fn, failure = _resolve(cfg, request)
    if failure is not None:
        emit(failure)
        return
    for index, case in enumerate(request["cases"]):
        try:
            result, out_arrays = run_case(fn, case, arrays, cfg.get("device", "cpu"))
            result["event"] = "case"
            result["index"] = index
            emit(result, out_arrays)
        except BaseException as exc:  # includes SystemExit and KeyboardInterrupt
            emit({"event": "case", "index": index, "ok": False, "error": describe_exception(exc, "/submission/")})
    emit({"event": "done"})


def child_main(cfg: dict, request: dict, arrays: dict, out_fd: int) -> None:
    """Runs in the forked child. Never returns: ends with os._exit."""
    limit_and_confine(cfg, request.get("limits", {}))

    def emit(header: dict, arr: dict | None = None) -> None:
        write_all(out_fd, pack(header, arr))

    _run_request(cfg, request, arrays, emit)
    os._exit(0)


def session_main(cfg: dict, opening: dict, in_fd: int, out_fd: int) -> None:
    """A session child: confined once, then it answers request after request. Never returns.

    Each request arrives as one frame on ``in_fd``; its answer leaves as one
    outer frame (length, then the case frames and "done") on ``out_fd``.
    Student code keeps its state between the requests of one session: only
    the trusted loop that opened it (a learning test) talks to it.
    """
    limit_and_confine(cfg, opening.get("limits", {}))
    while True:
        try:
            (n,) = HDR.unpack(read_exact(in_fd, HDR.size))
            request, arrays = unpack(read_exact(in_fd, n))
        except EOFError:
            os._exit(0)
        frames: list[bytes] = []

        def emit(header: dict, arr: dict | None = None) -> None:
            frames.append(pack(header, arr))

        _run_request(cfg, request, arrays, emit)
        body = b"".join(frames)
        write_all(out_fd, HDR.pack(len(body)) + body)
