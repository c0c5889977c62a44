"""Hidden-suite checks run from inside a Jupyter notebook (nbgrader hidden test cells).

Every graded test cell of a generated notebook holds one line::

    from autograder.notebook import check; check("ex1_values", "test_returns_single_env")

``check`` runs the test ``test_returns_single_env`` of
``autograder/suites/test_ex1_values.py`` with pytest, in this process, as
``make grade`` runs it, with one difference: the ``sub`` fixture is a
:class:`NotebookSubmission`, which calls the student's function from the
notebook's namespace *in this process* instead of in the sandbox (and a
suite's second, "driver" submission is loaded the same way). Everything else
is shared with ``make grade``: the inputs, the reference values, the
comparisons, the feedback sentences, the fixtures and the points.

What keeps this honest inside a student's kernel
------------------------------------------------
* The student's result never reaches a comparison as an object. Each call
  goes through :func:`autograder.child.values.run_case` (the sandbox's own code),
  its output is flattened to plain numpy arrays and JSON, serialised and
  parsed back with the sandbox's wire format, and the checks compare those
  numbers. An answer whose ``__eq__`` always returns True, a tensor subclass
  or a list that pretends to be a tensor earns nothing.
* The checks use their own module-level names, so helpers the student
  defines or redefines in the notebook (``check``, ``assert_close``, ``np``)
  are never consulted.
* Library functions the checks rely on (numpy, torch, builtins, the kit's own
  modules) are snapshotted when this module is first imported, which the
  generated notebooks do in their locked setup cell, before any answer cell
  runs on the grading machine; every check restores them before it compares
  anything, so ``np.allclose = lambda *a, **k: True`` in an answer cell has
  no effect on the grade.
* A failure is an exception whose traceback IPython renders as the single
  feedback line (no frames of the grader, no inputs, no reference values; a
  reference number that a message would quote is redacted). Output the
  student's code prints while it is checked is swallowed, so a warning or a
  progress bar on stderr does not cost points (nbgrader scores a test cell
  with any stderr output as zero).

What it cannot do: the kernel is the student's. Code in an answer cell can
import the reference solutions (the kit is on the kernel's path), find
anything the grader holds (``sys.modules``, frames, ``gc``), rewrite later
cells before they run (IPython input or AST transformers), replace modules in
``sys.modules``, or add a cell above the setup cell.
nbgrader restores every locked cell it knows, but it cannot stop code that
runs in the same process. The isolated grade is ``make grade`` on modules
extracted from the notebooks (see docs/INSTRUCTORS.md and the "Notebooks"
section of docs/THREAT_MODEL.md).
"""
from __future__ import annotations

import contextlib
import inspect
import io
import os
import re
import signal
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

import pytest
import torch

from .child import values as _values
from .child import wire as _wire
from .checks import CheckFailed
from .client import CallResult, Submission

__all__ = ["check", "run_test", "NotebookSubmission", "NotebookCheckFailed"]

SUITES = Path(__file__).resolve().parent / "suites"
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class NotebookCheckFailed(AssertionError):
    """A hidden check failed; IPython shows only the feedback sentence."""

    def _render_traceback_(self):  # IPython uses this instead of the frames (no grader code shown)
        return [f"{type(self).__name__}: {self}"]


class _CallTimeout(BaseException):
    """Raised by the interval timer inside a student call that runs too long."""


# ---------------------------------------------------------------- library guard
_GUARDED_MODULES = (
    "builtins", "math", "numpy", "numpy.linalg", "numpy.testing", "torch", "torch.nn", "torch.nn.functional",
    "torch.linalg", "torch.autograd", "torch.nn.modules.module", "torch.nn.modules.linear",
    "torch.nn.modules.container", "torch.nn.modules.activation", "torch._tensor",
)
_GUARDED_PREFIXES = ("autograder.", "common.", "solutions.")


def _is_code(value) -> bool:
    return callable(value) or isinstance(value, (staticmethod, classmethod, property))


class _Guard:
    """Snapshot of the functions and methods the checks rely on; restores them on demand."""

    def __init__(self) -> None:
        self.snapshot: list[tuple[object, bool, dict]] = []
        self.seen: set[int] = set()
        self.take()

    def _targets(self):
        for name, mod in list(sys.modules.items()):
            if mod is None:
                continue
            if name in _GUARDED_MODULES or name in ("autograder", "common", "solutions") or name.startswith(_GUARDED_PREFIXES):
                yield mod, False
                for value in list(vars(mod).values()):
                    if isinstance(value, type) and getattr(value, "__module__", None) == name:
                        yield value, True
        yield torch.Tensor, True
        yield torch.nn.Module, True

    def take(self) -> None:
        """Add what is loaded now and not yet snapshotted (called again after new imports)."""
        for obj, is_class in self._targets():
            if id(obj) in self.seen:
                continue
            self.seen.add(id(obj))
            try:
                saved = {k: v for k, v in vars(obj).items() if _is_code(v)}
            except TypeError:
                continue
            self.snapshot.append((obj, is_class, saved))

    def restore(self) -> int:
        """Put back every function that was replaced or removed; drop methods added to classes."""
        changed = 0
        for obj, is_class, saved in self.snapshot:
            current = vars(obj)
            for key, value in saved.items():
                if current.get(key, None) is not value:
                    try:
                        setattr(obj, key, value)
                        changed += 1
                    except (AttributeError, TypeError):
                        pass
            if is_class:
                for key in [k for k, v in list(current.items()) if k not in saved and _is_code(v)]:
                    try:
                        delattr(obj, key)
                        changed += 1
                    except (AttributeError, TypeError):
                        pass
        return changed


_GUARD = _Guard()


# ---------------------------------------------------------------- output handling
@contextlib.contextmanager
def _quiet():
    """Swallow everything printed meanwhile, at the Python and the file-descriptor level.

    nbgrader gives a test cell zero points when it writes anything to stderr,
    so a warning from the student's code (or torch) must not reach the cell.
    """
    import warnings

    saved_fds = []
    sink = None
    try:
        sink = tempfile.TemporaryFile()
        for fd in (1, 2):
            try:
                saved_fds.append((fd, os.dup(fd)))
                os.dup2(sink.fileno(), fd)
            except OSError:
                pass
    except OSError:
        pass
    buf = io.StringIO()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
                yield
    finally:
        for fd, copy in saved_fds:
            try:
                os.dup2(copy, fd)
                os.close(copy)
            except OSError:
                pass
        if sink is not None:
            sink.close()


@contextlib.contextmanager
def _time_limit(seconds: float):
    """Interrupt the student's call after ``seconds`` (main thread only; else no limit)."""
    if threading.current_thread() is not threading.main_thread() or not seconds or seconds <= 0:
        yield
        return

    def on_alarm(signum, frame):
        raise _CallTimeout()

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, float(seconds))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _describe(exc: BaseException) -> dict:
    """The error of a student call, as the sandbox reports it (type, message, where)."""
    if isinstance(exc, _CallTimeout):
        return {"type": "Timeout", "message": "did not finish in time (an infinite loop, or far too slow?)",
                "where": ""}
    where = ""
    frames = traceback.extract_tb(exc.__traceback__)
    for frame in frames:
        fname = frame.filename or ""
        if "ipykernel_" in fname or fname.startswith("<ipython-input") or fname.startswith("<cell"):
            where = f"in {frame.name}, line {frame.lineno} of its cell"
    try:
        message = str(exc)[:2000]
    except Exception:
        message = "(the exception could not be printed)"
    if isinstance(exc, NotImplementedError) and not message.strip() and frames:
        # nbgrader's stub is a bare `raise NotImplementedError()`; the script stubs say
        # "<function>: ...". Name the function that raised, as they do, so the feedback blames
        # the answer still to write (ppo_policy_loss), not the given code that called it (train_ppo).
        message = f"{frames[-1].name}: not implemented yet"
    return {"type": type(exc).__name__[:100], "message": message, "where": where}


# ---------------------------------------------------------------- the in-process submission
class _InProcess:
    """Stands in for :class:`autograder.sandbox.Sandbox`: runs the cases here, returns frames."""

    protections: list[str] = []

    def __init__(self, namespace: dict, device: str, modules: dict | None = None):
        self.namespace = namespace
        self.device = device
        self.modules = modules or {}  # module name -> namespace (drivers); anything else: the notebook

    def request(self, module: str, function: str, cases: list[dict], arrays: dict,
                timeout: float, limits=None) -> list[tuple[dict, dict]]:
        fn = self.modules.get(module, self.namespace).get(function)
        frames: list[tuple[dict, dict]] = []
        if fn is None or not callable(fn):
            frames.append(({"event": "missing", "error": {
                "type": "NameError", "where": "",
                "message": f"the notebook defines no function {function}() (run its answer cell first)"}}, {}))
        else:
            deadline = time.monotonic() + float(timeout or 0)
            for index, case in enumerate(cases):
                left = deadline - time.monotonic() if timeout else 0
                if timeout and left <= 0:
                    frames.append(({"event": "case", "index": index, "ok": False,
                                    "error": _describe(_CallTimeout())}, {}))
                    continue
                threads = torch.get_num_threads()
                try:
                    torch.set_num_threads(1)  # as in the sandbox: small networks run fastest on one thread
                    with _quiet(), _time_limit(left):
                        result, out = _values.run_case(fn, case, arrays, self.device)
                    result["event"] = "case"
                    result["index"] = index
                    frames.append(_roundtrip(result, out))
                except KeyboardInterrupt:
                    raise
                except BaseException as exc:  # noqa: BLE001 - SystemExit included: the student's fault
                    frames.append(({"event": "case", "index": index, "ok": False, "error": _describe(exc)}, {}))
                finally:
                    torch.set_num_threads(threads)
                    _GUARD.restore()
        frames.append(({"event": "exit", "timed_out": False, "exit": {"code": 0}, "log_tail": ""}, {}))
        return frames

    def open_session(self, timeout: float, limits=None) -> None:
        """Calls here already share one interpreter (the kernel's): a session changes nothing."""

    def close_session(self) -> None:
        pass

    def close(self) -> None:
        pass


def _roundtrip(header: dict, arrays: dict) -> tuple[dict, dict]:
    """Serialise and parse back with the sandbox's wire format: plain JSON and arrays only."""
    try:
        blob = _wire.pack(header, arrays)
        return _wire.unpack(blob[_wire.HDR.size:])
    except Exception as exc:  # an output that does not serialise is the student's problem
        return ({"event": "case", "index": header.get("index"), "ok": False,
                 "error": {"type": "TypeError", "message": f"the result cannot be read as plain data ({exc})",
                           "where": ""}}, {})


_TIMED_OUT: set[tuple[str, int]] = set()  # (function name, id of the function object) that timed out here


NO_FOLDER = Path(tempfile.gettempdir()) / "rlkit-notebook-has-no-folder"  # never created, never read


class NotebookSubmission(Submission):
    """The same API as :class:`autograder.client.Submission`, for functions in a notebook namespace."""

    def __init__(self, namespace: dict, device: str = "cpu", modules: dict | None = None):
        # no folder and no process: the functions live in this kernel (a folder made here, one per
        # check, was left behind in the temporary directory by every check a student ran)
        super().__init__(NO_FOLDER, device=device)
        self.sandbox = _InProcess(namespace, device, modules)

    def has_module(self, module: str) -> bool:
        return True

    def forks_cheaply(self) -> bool:
        return False  # its functions live in this kernel: no second sandbox runs training beside it

    def call_many(self, module: str, function: str, cases, timeout: float = 20, limits=None) -> list[CallResult]:
        # A function that timed out in an earlier check of this kernel gets the short leash at once
        # (each check builds a new submission): one infinite loop costs one full timeout per notebook.
        key = (function, id(self.sandbox.modules.get(module, self.sandbox.namespace).get(function)))
        if key in _TIMED_OUT:
            self.timed_out.add((module, function))
        results = super().call_many(module, function, cases, timeout=timeout, limits=limits)
        if (module, function) in self.timed_out:
            _TIMED_OUT.add(key)
        return results

    def with_kit_modules(self, modules: dict) -> "NotebookSubmission":
        """The suite's driver modules, run in process like every other call."""
        namespace = self.sandbox.namespace
        return NotebookSubmission(namespace, device=self.device, modules=_load_drivers(namespace, modules))


# ---------------------------------------------------------------- running one suite test
def _check_names(module: str, test_name: str) -> Path:
    if not _NAME.match(module):
        raise ValueError(f"bad exercise name {module!r}")
    if not _NAME.match(test_name) or not test_name.startswith("test_"):
        raise ValueError(f"bad test name {test_name!r}")
    path = SUITES / f"test_{module}.py"
    if not path.is_file():
        raise FileNotFoundError(f"no hidden suite for {module} ({path})")
    return path


def _device(namespace: dict, device) -> str:
    want = device if device is not None else namespace.get("DEVICE", "cpu")
    try:
        dev = torch.device(str(want))
    except (RuntimeError, TypeError):
        return "cpu"
    if dev.type == "cuda" and torch.cuda.is_available():
        return str(dev)
    return "cpu"


_EXPECTED = re.compile(r"expected (?P<value>-?(?:nan|inf|True|False|\d[\d.]*(?:e[-+]?\d+)?|\.\d+(?:e[-+]?\d+)?|\[[^\]]*\]))")


def redact(message: str) -> str:
    """Hide reference numbers quoted after "expected" (shapes, dtypes and devices stay)."""

    def sub(m: re.Match) -> str:
        before = message[max(0, m.start() - 60):m.start()]
        clause = re.split(r"[;:(]", before)[-1]
        if any(w in clause for w in ("shape", "dtype", " on ", "length", "device")):
            return m.group(0)
        return "expected a different value"

    return _EXPECTED.sub(sub, message)


def _load_drivers(namespace: dict, sources: dict) -> dict:
    """The suite's trusted driver modules, loaded here; their relative imports
    (``from .ex3_baseline import actor_critic_update``) reach the notebook's functions."""
    import types

    from .exercises import ORDER

    pkg_name = f"_rlkit_notebook_driver_{id(namespace)}_{len(sys.modules)}"
    pkg = types.ModuleType(pkg_name)
    pkg.__path__ = []
    sys.modules[pkg_name] = pkg
    for exercise in ORDER:  # the notebook holds the graded functions (and the earlier ones it pasted)
        student = types.ModuleType(f"{pkg_name}.{exercise}")
        student.__dict__.update({k: v for k, v in namespace.items() if not k.startswith("__")})
        sys.modules[student.__name__] = student
    modules = {}
    for name, text in sorted(sources.items()):
        mod = types.ModuleType(f"{pkg_name}.{name}")
        mod.__package__ = pkg_name
        mod.__file__ = f"<{name}>"
        sys.modules[mod.__name__] = mod
        exec(compile(text, f"<{name}>", "exec"), mod.__dict__)  # noqa: S102 - the suite's own driver text
        modules[name] = mod.__dict__
    return modules


class _Plugin:
    """The pytest plugin of one notebook check: fixtures ``sub`` / ``dev`` and the verdict."""

    def __init__(self, namespace: dict, exercise: str, device: str):
        self.namespace = namespace
        self.exercise = exercise
        self.device = device
        self.outcome: tuple[bool, str] | None = None
        self.marks: dict = {}

    def pytest_configure(self, config):
        for line in ("points(n): points", "function(name): graded function", "learning: trains an agent"):
            config.addinivalue_line("markers", line)

    @pytest.fixture(scope="session")
    def sub(self):
        return NotebookSubmission(self.namespace, device=self.device)

    @pytest.fixture(scope="session")
    def dev(self):
        return self.device

    @pytest.fixture(autouse=True)
    def _inputs_of_this_test(self, request):
        """The same inputs as ``make grade`` (``autograder/seeds.py``)."""
        from .seeds import reseed

        reseed(request.module, request.node.originalname or request.node.name)

    def pytest_runtest_setup(self, item):
        _GUARD.take()  # reference modules the suite imported just now, before any student call
        self.marks = {m.name: (m.args[0] if m.args else True) for m in item.iter_markers()}

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item, call):
        outcome = yield
        report = outcome.get_result()
        if report.when == "call" or (report.failed and report.when == "setup"):
            if report.passed:
                self.outcome = (True, "")
            elif call.excinfo is not None and isinstance(call.excinfo.value, CheckFailed):
                text = str(call.excinfo.value).strip().splitlines()
                self.outcome = (False, text[0] if text else "check failed")
            else:
                exc = call.excinfo.value if call.excinfo is not None else None
                detail = " ".join(str(exc).split())[:300] if exc is not None else report.longreprtext[-300:]
                name = type(exc).__name__ if exc is not None else "error"
                self.outcome = (False, f"grader error ({name}: {detail}); please report it")
            _GUARD.restore()


def run_test(module: str, test_name: str, namespace: dict, device: str = "cpu") -> tuple[bool, str, dict]:
    """Run one suite test against ``namespace`` with pytest, in this process.

    Returns (passed, feedback, markers). The suite module is imported afresh
    for every check, so its random inputs never depend on earlier checks.
    """
    path = _check_names(module, test_name)
    plugin = _Plugin(namespace, module, device)
    saved_path = list(sys.path)
    saved_env = os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD")
    os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"  # only our plugin: no third-party pytest plugins
    _forget_suite(path)
    _GUARD.restore()
    try:
        with _quiet():
            code = pytest.main([
                f"{path}::{test_name}", "-c", str(SUITES / "pytest.ini"), "--rootdir", str(SUITES),
                "-p", "no:cacheprovider", "-p", "no:warnings", "-p", "no:stepwise", "-p", "no:unraisableexception",
                "-p", "no:threadexception", "-p", "no:faulthandler", "-p", "no:doctest", "-p", "no:junitxml",
                "-p", "no:pastebin", "-p", "no:legacypath", "--noconftest",
                "-q", "-s", "--no-header", "-rN", "--tb=no",
            ], plugins=[plugin])
    finally:
        sys.path[:] = saved_path
        if saved_env is None:
            os.environ.pop("PYTEST_DISABLE_PLUGIN_AUTOLOAD", None)
        else:
            os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = saved_env
        _forget_suite(path)
        _GUARD.restore()
    if plugin.outcome is None:
        return False, f"grader error (the test {test_name} did not run: pytest exit code {int(code)}); please report it", plugin.marks
    passed, feedback = plugin.outcome
    return passed, feedback, plugin.marks


def _forget_suite(path: Path) -> None:
    """Drop the suite module from sys.modules so the next check imports it afresh."""
    target = str(path.resolve())
    for name, mod in list(sys.modules.items()):
        f = getattr(mod, "__file__", None)
        if name.startswith("_rlkit_notebook_driver_"):
            del sys.modules[name]
        elif isinstance(f, str) and f.endswith(path.name) and str(Path(f).resolve()) == target:
            del sys.modules[name]


def _repair_display() -> None:
    """Undo what would hide a failure in the cell's output: custom exception handlers, patched traceback display."""
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is None:
        return
    try:
        shell.custom_exceptions = ()
        for attr in ("showtraceback", "_showtraceback", "showsyntaxerror", "_render_traceback_"):
            shell.__dict__.pop(attr, None)
    except Exception:
        pass
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        original = getattr(_STREAMS, name, None)
        if original is not None and stream is not original:
            setattr(sys, name, original)


class _Streams:
    stdout = sys.stdout
    stderr = sys.stderr


_STREAMS = _Streams()


def check(module: str, test_name: str, namespace: dict | None = None, device=None) -> None:
    """Run one hidden test of ``module``'s suite on the notebook's functions.

    Passes silently apart from one "passed" line; on failure raises
    :class:`NotebookCheckFailed` whose message is the feedback sentence (the
    same sentence ``make grade`` prints, with reference numbers redacted).

    Args:
        module: exercise name, e.g. ``"ex1_values"``.
        test_name: a test function of ``autograder/suites/test_<module>.py``.
        namespace: where the student's functions live; default: the caller's
            globals (in a notebook, the kernel's user namespace).
        device: grading device; default: ``DEVICE`` from the namespace
            (falls back to the CPU when that device is not available).
    """
    if namespace is None:
        frame = inspect.currentframe()
        namespace = frame.f_back.f_globals if frame is not None and frame.f_back is not None else {}
    dev = _device(namespace, device)
    t0 = time.monotonic()
    passed, feedback, marks = run_test(module, test_name, namespace, dev)
    _repair_display()
    if not passed:
        raise NotebookCheckFailed(redact(feedback)) from None
    points = marks.get("points")
    pts = "" if points is None else f", {float(points):g} point{'s' if float(points) != 1 else ''}"
    print(f"passed: {marks.get('function', module)} ({test_name}{pts}, {time.monotonic() - t0:.1f} s)")
