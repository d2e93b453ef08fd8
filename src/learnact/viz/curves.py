"""Loss curves and sweep plots (matplotlib, Agg backend)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .._files import write_atomic

__all__ = ["plot_loss_curves", "plot_sweep"]


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str | Path, *, tight: bool = True,
                rect: tuple[float, float, float, float] | None = None) -> Path:
    """tight_layout (within ``rect`` if given; skipped with ``tight=False``), save, close."""
    if tight:
        fig.tight_layout(**({"rect": rect} if rect is not None else {}))
    path = Path(path)
    fmt = path.suffix.lstrip(".").lower() or "png"
    write_atomic(path, lambda f: fig.savefig(f, format=fmt))  # atomic, never through a link
    _plt().close(fig)
    return path


def plot_loss_curves(curves: dict[str, list[list[float]]], path: str | Path, *,
                     title: str = "", ylabel: str = "test loss", log: bool = True,
                     baseline: tuple[str, float] | None = None) -> Path:
    """One line per activation: mean over seeds, with a min-max band; legend sorted by final.

    ``curves[name]`` is a list of per-seed loss lists (ragged lists are cut to the shortest;
    diverged seeds, whose last value is not finite, are dropped from the band).
    """
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8.5, 5.2), dpi=110)
    finals = {}
    cmap = plt.get_cmap("tab20")
    for i, (name, seeds) in enumerate(curves.items()):
        good = [s for s in seeds if s and all(math.isfinite(v) for v in s)]
        if not good:
            continue
        n = min(len(s) for s in good)
        arr = np.array([s[:n] for s in good], dtype=float)
        ep = np.arange(1, n + 1)
        mean = arr.mean(0)
        style = "--" if name.startswith("identity") else "-"
        (line,) = ax.plot(ep, mean, style, color=cmap(i % 20), lw=1.8, marker="o", ms=3,
                          label=name)
        if arr.shape[0] > 1:
            ax.fill_between(ep, arr.min(0), arr.max(0), color=line.get_color(), alpha=0.15)
        finals[name] = (mean[-1], line)
    if baseline is not None:
        ax.axhline(baseline[1], color="gray", lw=1, ls=":", label=baseline[0])
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("epoch")
    # whole epochs only (with 2-3 epochs matplotlib's default locator ticks 1.5, 2.5)
    ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
    ax.set_ylabel(ylabel + (" (log scale)" if log else ""))
    if title:
        ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    order = sorted(range(len(labels)),
                   key=lambda j: finals.get(labels[j], (float("inf"),))[0])
    ax.legend([handles[j] for j in order],
              [f"{labels[j]} ({finals[labels[j]][0]:.4g})" if labels[j] in finals else labels[j]
               for j in order], fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return save_figure(fig, path)


def plot_sweep(x: dict[str, Sequence[float]], y: dict[str, Sequence[float]], path: str | Path, *,
               xlabel: str, ylabel: str, title: str = "", logx: bool = True,
               logy: bool = True) -> Path:
    """One line per activation of y against x (e.g. final loss vs parameter count)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.5, 4.8), dpi=110)
    for name in x:
        ax.plot(x[name], y[name], marker="o", label=name)
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return save_figure(fig, path)
