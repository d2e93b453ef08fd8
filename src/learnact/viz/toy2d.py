"""Figures of the 2-D toy tasks: decision regions and regression reconstructions."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .curves import _plt, save_figure

__all__ = ["plot_decision_regions", "plot_regression"]


def _grid_shape(n: int, cols: int = 4) -> tuple[int, int]:
    cols = min(cols, n)
    return math.ceil(n / cols), cols


def plot_decision_regions(preds: dict[str, np.ndarray], lin: np.ndarray, x: np.ndarray,
                          y: np.ndarray, path: str | Path, *, accuracies: dict[str, float],
                          bayes: float) -> Path:
    plt = _plt()
    names = list(preds)
    rows, cols = _grid_shape(len(names))
    fig, axes = plt.subplots(rows, cols, figsize=(3.1 * cols, 3.1 * rows), dpi=100, squeeze=False)
    n = len(lin)
    ext = (lin[0], lin[-1], lin[0], lin[-1])
    k = int(max(y.max(), max(p.max() for p in preds.values()))) + 1
    cmap = plt.get_cmap("Set2", k)
    for ax, name in zip(axes.flat, names):
        ax.imshow(preds[name].reshape(n, n), origin="lower", extent=ext, cmap=cmap, vmin=-0.5,
                  vmax=k - 0.5, alpha=0.55, interpolation="nearest")
        ax.scatter(x[:, 0], x[:, 1], c=y, cmap=cmap, vmin=-0.5, vmax=k - 0.5, s=3,
                   edgecolors="k", linewidths=0.15)
        acc = accuracies.get(name, float("nan"))
        ax.set_title(f"{name}\nacc {acc:.3f} ({100 * acc / bayes:.0f}% of Bayes)", fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    fig.suptitle(f"GMM decision regions (Bayes-optimal accuracy {bayes:.3f})", fontsize=10)
    return save_figure(fig, path)


def plot_regression(target: np.ndarray, preds: dict[str, np.ndarray], path: str | Path, *,
                    r2: dict[str, float]) -> Path:
    plt = _plt()
    names = ["target"] + list(preds)
    rows, cols = _grid_shape(len(names), 5)
    fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols, 2.6 * rows), dpi=100, squeeze=False)
    vmax = float(np.abs(target).max())
    for ax, name in zip(axes.flat, names):
        img = target if name == "target" else preds[name]
        ax.imshow(img, origin="lower", extent=(-1, 1, -1, 1), cmap="RdBu_r", vmin=-vmax, vmax=vmax)
        ax.set_title(name if name == "target" else f"{name}\nR² {r2.get(name, float('nan')):.3f}",
                     fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    return save_figure(fig, path)
