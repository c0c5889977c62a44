"""Learning-curve plots (matplotlib, headless ``Agg`` backend), saved as PNGs under ``plots/``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display needed (CI, ssh, grader)
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

__all__ = ["smooth", "curve_band", "plot_learning_curves", "save_figure", "PLOTS_DIR"]

PLOTS_DIR = Path("plots")


def smooth(values: Sequence[float], window: int = 20) -> np.ndarray:
    """Trailing moving average: ``out[i] = mean(values[max(0, i-window+1) : i+1])``."""
    x = np.asarray(values, dtype=np.float64)
    if window <= 1 or x.size == 0:
        return x
    c = np.cumsum(np.insert(x, 0, 0.0))
    idx = np.arange(1, x.size + 1)
    lo = np.maximum(0, idx - window)
    return (c[idx] - c[lo]) / (idx - lo)


def curve_band(runs: Sequence[Sequence[float]], window: int = 20, spread: str = "std"):
    """Mean and spread of several learning curves (one per seed).

    Curves are smoothed, then cut to the shortest length so they align.

    Args:
        runs: one list of episode returns per seed.
        window: moving-average window.
        spread: ``"std"`` (mean +- one std) or ``"minmax"`` (min..max band).

    Returns:
        ``(x, mean, low, high)``, numpy arrays of the common length.
    """
    if len(runs) == 0:
        raise ValueError("runs must hold at least one curve")
    curves = [smooth(r, window) for r in runs]
    n = min(len(c) for c in curves)
    a = np.stack([c[:n] for c in curves])
    mean = a.mean(axis=0)
    if spread == "std":
        s = a.std(axis=0)
        low, high = mean - s, mean + s
    elif spread == "minmax":
        low, high = a.min(axis=0), a.max(axis=0)
    else:
        raise ValueError(f"spread must be 'std' or 'minmax', got {spread!r}")
    return np.arange(n), mean, low, high


def plot_learning_curves(
    curves: Mapping[str, Sequence[Sequence[float]]],
    path: str | Path | None = None,
    *,
    title: str = "Learning curves",
    xlabel: str = "episode",
    ylabel: str = "episode return",
    window: int = 20,
    spread: str = "std",
    target: float | None = None,
):
    """Plot one band (mean +- spread over seeds) per method.

    Args:
        curves: ``{"REINFORCE": [returns_seed0, returns_seed1, ...], ...}``.
        path: where to save the PNG (a bare file name goes into ``plots/``);
            ``None`` returns the figure without saving.
        title, xlabel, ylabel: labels.
        window: moving-average window.
        spread: ``"std"`` or ``"minmax"``.
        target: draw a dashed horizontal line at this return (e.g. 475).

    Returns:
        The saved path when ``path`` is given, else the matplotlib ``Figure``.
    """
    fig, ax = plt.subplots(figsize=(7, 4))
    for label, runs in curves.items():
        x, mean, low, high = curve_band(runs, window, spread)
        (line,) = ax.plot(x, mean, label=f"{label} ({len(runs)} seeds)")
        ax.fill_between(x, low, high, color=line.get_color(), alpha=0.2)
    if target is not None:
        ax.axhline(target, color="gray", linestyle="--", linewidth=1)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    if path is None:
        return fig
    return save_figure(fig, path)


def save_figure(fig, path: str | Path) -> Path:
    """Save ``fig`` as a PNG (bare names go into ``plots/``), close it, return the path."""
    path = Path(path)
    if path.parent == Path("."):
        path = PLOTS_DIR / path
    if path.suffix == "":
        path = path.with_suffix(".png")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
