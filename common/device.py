"""Device selection and seeding.

Every training function takes ``device`` and ``seed``; these two helpers are
what they call first, so a run is reproducible on one device.
"""

from __future__ import annotations

import random

import numpy as np
import torch

__all__ = ["get_device", "seed_everything"]


def get_device(device: str | torch.device | None = None) -> torch.device:
    """Turn a device request into a ``torch.device``.

    Args:
        device: ``None`` or ``"auto"`` picks CUDA when it is available and the
            CPU otherwise; anything else (``"cpu"``, ``"cuda"``, ``"cuda:1"``,
            a ``torch.device``) is used as given. Strings are case-insensitive.

    Returns:
        The ``torch.device``. Asking for CUDA on a machine without it raises
        ``RuntimeError`` here rather than later inside training.
    """
    if isinstance(device, str):
        device = device.strip().lower()
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not isinstance(device, (str, torch.device)):
        raise TypeError(f"device must be a str or torch.device, got {type(device).__name__}")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "the CPU only"
        raise RuntimeError(f"device {str(dev)!r} was requested but CUDA is not available on this machine "
                           f"(torch {torch.__version__} is built for {build}); use 'cpu' or 'auto'")
    return dev


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global RNG and torch (CPU and every CUDA device).

    The exercises draw their own randomness from explicit ``torch.Generator``s
    and seeded environments; this covers the rest (network initialisation,
    library code that uses a global RNG).
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device
