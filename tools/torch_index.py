"""Install the pinned torch from the right wheel index (``make venv`` calls this).

    python tools/torch_index.py --spec torch==2.13.0 [--index auto|cpu|cuda|default|URL] [--dry-run]

On Linux, ``pip install torch==2.13.0`` from PyPI is the CUDA build, which pulls several GB of
``nvidia-*`` wheels; the pin does not prevent it, only the index does. So:

* ``auto`` (the default): the CPU index on Linux when no NVIDIA GPU is present
  (``nvidia-smi`` not on PATH); the default index otherwise (the CUDA build on Linux with a GPU;
  macOS and Windows get CPU/MPS builds from PyPI anyway);
* ``cpu``: always the CPU index; ``cuda`` or ``default``: the configured index, as pip would;
* anything else is taken as the URL of a wheel index (for example
  ``https://download.pytorch.org/whl/cu126``).

A custom index goes first with ``--extra-index-url`` for every index pip is already configured
with (pip.conf, ``PIP_INDEX_URL``, ``PIP_EXTRA_INDEX_URL``), and with ``--timeout 5 --retries 0``:
where the index cannot be reached (an offline mirror, a firewall) that try fails fast, and a
plain pinned install from the configured index follows. The torch version stays the pinned one.
Only the standard library is used: it runs before anything is installed.
"""
from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import subprocess
import sys

CPU_INDEX = "https://download.pytorch.org/whl/cpu"
PYPI = "https://pypi.org/simple"
FAST_FAIL = ["--timeout", "5", "--retries", "0"]


def has_nvidia_gpu() -> bool:
    return shutil.which("nvidia-smi") is not None


def choose_index(choice: str = "auto", system: str | None = None, gpu: bool | None = None) -> str | None:
    """The wheel index URL to try first, or None for pip's configured index."""
    choice = (choice or "auto").strip()
    system = system or platform.system()
    if choice in ("default", "cuda", "pypi"):
        return None
    if choice == "cpu":
        return CPU_INDEX
    if choice == "auto":
        if system != "Linux":
            return None
        return None if (has_nvidia_gpu() if gpu is None else gpu) else CPU_INDEX
    if re.match(r"^(https?|file)://", choice):
        return choice
    raise ValueError(f"TORCH_INDEX={choice!r}: use auto, cpu, cuda, default or a URL")


def configured_indexes(python: str = sys.executable, run=subprocess.run, env=None) -> list[str]:
    """Every index pip is configured with (the index-url first), from ``pip config list`` and the environment."""
    env = os.environ if env is None else env
    index, extra = [], []
    try:
        out = run([python, "-m", "pip", "config", "list"], capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        out = ""
    for line in out.splitlines():
        m = re.match(r"^[^.]*\.(index-url|extra-index-url)='(.*)'$", line.strip())
        if m:
            (index if m.group(1) == "index-url" else extra).extend(m.group(2).split())
    index += env.get("PIP_INDEX_URL", "").split()
    extra += env.get("PIP_EXTRA_INDEX_URL", "").split()
    return list(dict.fromkeys(index[-1:] or [PYPI])) + [u for u in dict.fromkeys(extra) if u not in index[-1:]]


def plan(spec: str, index: str | None, configured: list[str]) -> list[list[str]]:
    """The pip install argument lists to try, in order (the first that succeeds wins)."""
    plain = [spec]
    if index is None:
        return [plain]
    first = ["--index-url", index]
    for url in configured:
        if url != index:
            first += ["--extra-index-url", url]
    return [first + FAST_FAIL + [spec], plain]


def install(spec: str, choice: str = "auto", python: str = sys.executable, run=subprocess.run,
            dry_run: bool = False, configured: list[str] | None = None) -> int:
    if not re.fullmatch(r"torch\s*(==|~=|<=|>=|<|>)\s*[0-9][0-9A-Za-z.+*-]*(\s*,.*)?", spec):
        raise SystemExit(f"refusing an unpinned torch spec {spec!r} (expected e.g. torch==2.13.0)")
    index = choose_index(choice)
    tries = plan(spec, index, configured if configured is not None else
                 (configured_indexes(python, run) if index else []))
    for n, args in enumerate(tries, 1):
        cmd = [python, "-m", "pip", "install", "-q", *args]
        print(("would run: " if dry_run else "") + " ".join(cmd), flush=True)
        if dry_run:
            continue
        if run(cmd).returncode == 0:
            return 0
        if n < len(tries):
            print(f"torch from {index} did not install; trying the configured index", file=sys.stderr)
    return 0 if dry_run else 1


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python tools/torch_index.py", description=__doc__.splitlines()[0])
    p.add_argument("--spec", default="torch==2.13.0")
    p.add_argument("--index", default=os.environ.get("TORCH_INDEX", "auto"),
                   help="auto (default), cpu, cuda, default, or a wheel index URL")
    p.add_argument("--python", default=sys.executable, help="the Python whose environment gets torch")
    p.add_argument("--dry-run", action="store_true", help="print the pip commands only")
    args = p.parse_args(argv)
    return install(args.spec, args.index or "auto", python=args.python, dry_run=args.dry_run)


if __name__ == "__main__":
    sys.exit(main())
