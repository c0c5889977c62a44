"""What a benchmark ran on: the CPU, the cores, the kernel and the load (one place for all reports)."""
from __future__ import annotations

import os
import platform
from pathlib import Path


def machine() -> str:
    """``"<cpu model>, <n> cores, <system> <release>"``."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}"


def load_average() -> str:
    """The 1, 5 and 15 minute load averages (``"?"`` where the system has none)."""
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"
