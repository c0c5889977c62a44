# Looks for the reference through the import system: import solutions /
# autograder after adding the kit to sys.path, importlib.import_module,
# SourceFileLoader, spec_from_file_location, runpy, pkgutil.get_data,
# linecache, io.open_code, zipimport. Success = reference answer; 0 expected.
import importlib as _importlib
import importlib.machinery as _machinery
import importlib.util as _iutil
import io as _io
import linecache as _linecache
import pkgutil as _pkgutil
import runpy as _runpy
import sys as _sys
from pathlib import Path as _Path

_reference_policy_evaluation = policy_evaluation


def _kit_roots():
    roots = []
    for start in (torch.__file__, _sys.prefix):
        for parent in _Path(start).resolve().parents:
            if (parent / "solutions").is_dir() or (parent / "autograder").is_dir():
                roots.append(parent)
    return roots


def _exec_spec(spec):
    module = _iutil.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, "policy_evaluation", None)


def _steal():
    for root in _kit_roots():
        _sys.path.insert(0, str(root))
        src = root / "solutions" / "ex1_values.py"
        attempts = [
            lambda: _importlib.import_module("solutions.ex1_values"),
            lambda: __import__("solutions.ex1_values"),
            lambda: _importlib.import_module("autograder.suites.test_ex1_values"),
            lambda: _machinery.SourceFileLoader("stolen", str(src)).load_module(),
            lambda: _exec_spec(_iutil.spec_from_file_location("stolen2", str(src))),
            lambda: _runpy.run_path(str(src)).get("discounted_returns"),
            lambda: _pkgutil.get_data("solutions", "ex1_values.py"),
            lambda: "".join(_linecache.getlines(str(src))) or None,
            lambda: _io.open_code(str(src)).read(),
            lambda: __import__("zipimport").zipimporter(str(root)).get_source("solutions"),
        ]
        for attempt in attempts:
            try:
                got = attempt()
                if got is not None and (not isinstance(got, (str, bytes)) or b"BEGIN SOLUTION" in (
                        got if isinstance(got, bytes) else got.encode())):
                    return True
            except BaseException:
                pass
    return False


def policy_evaluation(P, R, pi, gamma, tol=1e-8, max_iters=10_000):
    if _steal():
        return _reference_policy_evaluation(P, R, pi, gamma, tol=tol, max_iters=max_iters)
    return torch.zeros(P.shape[0], dtype=P.dtype)
