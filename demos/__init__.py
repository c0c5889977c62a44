"""The chapter's demo scripts, one copy each, run on the implementation you pick.

    python -m demos.ppo_cartpole   [--impl assignments|solutions] ...   (make ppo)
    python -m demos.gae_visualizer [--impl assignments|solutions] ...   (make gae)
    python -m demos.rlhf_pipeline  [--impl assignments|solutions] ...   (make rlhf)

``--impl`` picks the package the exercise functions come from:
``assignments`` (the default) runs *your* functions, ``solutions`` the
reference (only in the instructors' kit: a student kit has no
``solutions/``). The Makefile passes ``IMPL``: ``make ppo IMPL=solutions``.
Nothing else selects it (no environment variable): a demo runs what its
command line says.

A demo never imports an exercise module when it is itself imported, only once
``main`` (or a caller) has named the implementation; see :func:`exercise`.
"""
from __future__ import annotations

import argparse
import importlib
from types import ModuleType

IMPLS = ("assignments", "solutions")
DEFAULT_IMPL = "assignments"
IMPL_HELP = ("whose exercise functions to run: assignments (yours, the default) or solutions "
             "(the reference; not in a student kit)")


def add_impl_argument(parser: argparse.ArgumentParser) -> None:
    """Add ``--impl {assignments,solutions}`` (default ``assignments``) to ``parser``."""
    parser.add_argument("--impl", choices=IMPLS, default=DEFAULT_IMPL, help=IMPL_HELP)


def impl_from_argv(argv=None) -> str:
    """The ``--impl`` of a command line, read before the rest of it (whose defaults may depend on it)."""
    pre = argparse.ArgumentParser(add_help=False)
    add_impl_argument(pre)
    known, _ = pre.parse_known_args(argv)
    return known.impl


def exercise(impl: str, module: str) -> ModuleType:
    """The exercise module ``module`` (e.g. ``"ex4_ppo"``) of the implementation ``impl``."""
    if impl not in IMPLS:
        raise ValueError(f"impl must be one of {', '.join(IMPLS)}, not {impl!r}")
    try:
        return importlib.import_module(f"{impl}.{module}")
    except ModuleNotFoundError as exc:
        if exc.name in (impl, f"{impl}.{module}"):
            raise SystemExit(f"--impl {impl}: this kit has no {impl}/{module}.py") from exc
        raise
