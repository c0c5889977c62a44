"""Which kit this is, told without importing torch: the full kit or a student kit.

The full kit holds the answer code behind the seam (``autograder/answers/``)
and computes every answer live; a student kit holds only the recorded answers
(``autograder/recorded/``) and replays them. ``RLKIT_ORACLE`` forces a mode
(``record`` is what ``make record`` uses). The runner asks before it starts
any suite, so this module stays light.
"""
from __future__ import annotations

import os
from pathlib import Path

HERE = Path(__file__).resolve().parent


def mode() -> str:
    """``"live"`` (the full kit), ``"replay"`` (a student kit) or ``"record"``."""
    forced = os.environ.get("RLKIT_ORACLE")
    if forced in ("live", "record", "replay"):
        return forced
    return "live" if (HERE / "answers" / "__init__.py").is_file() else "replay"


def recording() -> bool:
    return mode() == "record"
