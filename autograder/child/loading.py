"""Loading modules in the child: the student's, the kit's (given code, suite drivers), earlier exercises.

The graded module is imported from the child's copy of the submission as
``submission.<module>`` (a synthetic package); the kit's own modules come from
its read-only folder; an earlier exercise that does not import becomes a
placeholder raising :class:`DependencyError`.
"""
from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import types

from .wire import describe_exception


class DependencyError(ImportError):
    """A function of an earlier exercise is needed, but that module could not be imported."""


def _package(work_dir: str):
    if "submission" not in sys.modules:
        pkg = types.ModuleType("submission")
        pkg.__path__ = [os.path.join(work_dir, "submission")]
        pkg.__package__ = "submission"
        sys.modules["submission"] = pkg
    return sys.modules["submission"]


def _placeholder(module, dep: str, reason: str) -> None:
    """Turn ``module`` into one whose every attribute is a function raising DependencyError."""
    for key in [k for k in module.__dict__ if not k.startswith("__")]:
        del module.__dict__[key]

    def missing(name):
        if name.startswith("__"):
            raise AttributeError(name)

        def unavailable(*args, **kwargs):
            raise DependencyError(f"{name}() of {dep}.py is needed here, but {dep}.py {reason}; fix {dep} first")

        unavailable.__name__ = name
        return unavailable

    module.__getattr__ = missing


class _EarlierExercises:
    """Import hook for the student's EARLIER exercises (``from .ex1_values import ...``).

    The graded module imports the student's own earlier work, never a
    reference. An earlier module that is missing or fails to import becomes a
    placeholder whose functions raise DependencyError, so only the checks
    that really call it fail, and their feedback names the module to fix.
    """

    def __init__(self, work_dir: str, names: list[str]):
        self.dir = os.path.join(work_dir, "submission")
        self.names = {f"submission.{n}": n for n in names}

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in self.names:
            return None
        origin = os.path.join(self.dir, self.names[fullname] + ".py")
        return importlib.util.spec_from_loader(fullname, self, origin=origin)

    def create_module(self, spec):
        return None

    def exec_module(self, module) -> None:
        dep = self.names[module.__name__]
        path = os.path.join(self.dir, dep + ".py")
        module.__file__ = path
        if not os.path.isfile(path):
            return _placeholder(module, dep, "is not in the submission")
        try:
            # the standard loader keeps the bytecode in the submission's __pycache__ (the child's own
            # folder), so the next child of this sandbox skips compiling it again (milliseconds a call)
            code = importlib.machinery.SourceFileLoader(module.__name__, path).get_code(module.__name__)
            exec(code, module.__dict__)  # noqa: S102 (student code, inside the sandbox)
        except BaseException as exc:  # SyntaxError, ImportError, SystemExit at import, ...
            info = describe_exception(exc, "/submission/")
            where = f" ({info['where']})" if info["where"] else ""
            _placeholder(module, dep, f"could not be imported: {info['type']}{where}")


def load_student_module(work_dir: str, module: str, earlier: list[str] | None = None):
    """Import submission/<module>.py as submission.<module> (a synthetic package)."""
    _package(work_dir)
    if earlier and not any(isinstance(f, _EarlierExercises) for f in sys.meta_path):
        sys.meta_path.insert(0, _EarlierExercises(work_dir, earlier))
    path = os.path.join(work_dir, "submission", module + ".py")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{module}.py is not in the submission")
    return importlib.import_module(f"submission.{module}")


def load_kit_module(kit_dir: str, work_dir: str, name: str, fresh: bool = False):
    """Import the kit's own module ``name`` (given code, a suite driver) into the submission package.

    It is read from the kit's read-only folder, never from the submission, and
    its relative imports (``from .ex2_reinforce import ...``) reach the
    student's modules.
    """
    full = f"submission.{name}"
    if fresh:
        full = f"submission.{name}_{os.urandom(6).hex()}"
    elif full in sys.modules:
        return sys.modules[full]
    _package(work_dir)
    spec = importlib.util.spec_from_file_location(full, os.path.join(kit_dir, "modules", name + ".py"))
    mod = importlib.util.module_from_spec(spec)
    mod.__package__ = "submission"
    sys.modules[full] = mod
    spec.loader.exec_module(mod)
    return mod


def given_function(kit_dir: str, work_dir: str, module: str, function: str, student, functions: list[str]):
    """``function`` from the kit's copy of ``module``, with the student's functions bound into it.

    The module is executed afresh from the kit's read-only file (never taken from
    ``sys.modules``, where student code could have planted one). Code that runs
    in this process can still tamper with it in memory; the suites therefore
    grant a learning test only when the functions it trains with pass their own
    checks (``Exercise.trains_with``).
    """
    given = load_kit_module(kit_dir, work_dir, f"__given_{module}", fresh=True)
    for name in functions:
        fn = getattr(student, name, None)
        if fn is None:
            def fn(*args, _name=name, **kwargs):
                raise AttributeError(f"{module}.py defines no function {_name}()")
        setattr(given, name, fn)
    return getattr(given, function, None)
