"""Depth-stability figure: per-layer std forward and backward, with and without normalisation."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from .curves import _plt, save_figure

__all__ = ["plot_depth"]


def plot_depth(rows: list[dict[str, Any]], path: str | Path, *, depth: int, width: int) -> Path:
    """2 x 2 panels (forward / backward x pre-norm residual / plain), log scale, one line per
    (family, init); references dashed; the [0.5, 2] band shaded."""
    plt = _plt()
    fig, axes = plt.subplots(2, 2, figsize=(13, 8.5), dpi=100, sharex=True)
    cmap = plt.get_cmap("tab20")
    styles = {"unit": "-", "paper": "--", "naive": ":", None: "-."}
    refs = iter(("black", "tab:gray", "saddlebrown", "darkgreen"))
    for i, r in enumerate(rows):
        color = next(refs, "black") if r["init"] is None else cmap(i % 20)
        for c, kind in enumerate(("prenorm", "plain")):
            for rr, key in enumerate(("forward", "backward")):
                v = np.array(r[kind][key], dtype=float)
                v[~np.isfinite(v)] = np.nan
                v = np.clip(v, 1e-30, 1e30)
                layers = np.arange(1, len(v) + 1)
                axes[rr, c].plot(layers, v, styles.get(r["init"], "-"), color=color, lw=1.2,
                                 label=f"{r['case']} (V'(1)={_f(r['vprime'])})")
    titles = {("forward", "prenorm"): "forward: std of f(.) per block, pre-norm residual",
              ("forward", "plain"): "forward: std of f(.) per layer, plain (no norm)",
              ("backward", "prenorm"): "backward: std of dL/d(block input), pre-norm residual",
              ("backward", "plain"): "backward: std of dL/d(layer input), plain"}
    for rr, key in enumerate(("forward", "backward")):
        for c, kind in enumerate(("prenorm", "plain")):
            ax = axes[rr, c]
            ax.set_yscale("log")
            ax.axhspan(0.5, 2.0, color="green", alpha=0.08)
            ax.set_title(titles[(key, kind)], fontsize=9)
            ax.grid(True, which="both", alpha=0.25)
            if rr == 1:
                ax.set_xlabel("layer")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="center right", fontsize=6.5, frameon=False)
    fig.suptitle(f"depth {depth}, width {width}, fan-in-scaled weights, at init "
                 "(solid: unit init, dashed: paper, dotted: naive N(0,1), dash-dot dark: "
                 "references)", fontsize=9)
    return save_figure(fig, path, rect=(0, 0, 0.78, 0.97))


def _f(v: float) -> str:
    return f"{v:.2f}" if math.isfinite(v) else "inf"
