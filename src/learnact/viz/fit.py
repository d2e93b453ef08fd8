"""Figure of a fit: target vs fitted activation, and both derivatives."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .curves import _plt, save_figure

__all__ = ["plot_fit"]


def plot_fit(report: Any, path: str | Path | None = None):
    """Two panels (value, derivative) over the fitting points; returns the figure or the path."""
    plt = _plt()
    ex = report.extra
    x = ex["x"].numpy()
    order = np.argsort(x)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), dpi=110)
    for ax, (fit_key, tgt_key, title) in zip(axes, (("f", "y", "f(x)"), ("df", "dy", "f'(x)"))):
        ax.plot(x[order], ex[tgt_key].numpy()[order], "k-", lw=2.2, alpha=0.5,
                label=f"target ({ex['target']})")
        ax.plot(x[order], ex[fit_key].numpy()[order], "C1--", lw=1.4, label="fit")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"{ex['act']}: max|f-t| {report.max_error:.2g}, max|f'-t'| "
                 f"{report.max_deriv_error:.2g} on {report.domain}", fontsize=9)
    fig.tight_layout()
    if path is None:
        return fig
    return save_figure(fig, path, tight=False)
