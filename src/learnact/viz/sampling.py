"""Where activations are sampled over training, and the loss derivatives they receive:
heat maps (epoch x value) from a :class:`~learnact.viz.Recorder` state."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .curves import _plt, save_figure

__all__ = ["plot_sampling", "density"]


def density(hist: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(bin centres, per-epoch density (epochs, bins), out-of-range fraction per epoch)."""
    counts = np.asarray(hist["counts"], dtype=np.float64)
    if counts.ndim != 2 or counts.shape[0] == 0:
        raise ValueError("histogram has no completed epoch (call Recorder.end_epoch())")
    lo, hi, bins = hist["lo"], hist["hi"], hist["bins"]
    total = counts.sum(1, keepdims=True)
    total[total == 0] = 1
    width = (hi - lo) / bins
    centres = lo + width * (np.arange(bins) + 0.5)
    inner = counts[:, 1:-1] / total / width
    outside = (counts[:, 0] + counts[:, -1]) / total[:, 0]
    return centres, inner, outside


def plot_sampling(state: Mapping[str, Mapping[str, Any]], path: str | Path, *,
                  kind: str = "inputs", shapes: Mapping[str, Any] | None = None,
                  layers: list[str] | None = None, max_layers: int = 12, title: str = "") -> Path:
    """One row per layer: a heat map of log10 density, epoch (y) against value (x).

    ``kind="inputs"``: pre-activation values, with the layer's activation f drawn over it (white,
    right axis) when ``shapes`` maps the layer to its module; ``"grads"``: dL/d(pre-activation)
    on the Recorder's symmetric log scale (x = sign(g) log10(|g|/floor)).
    """
    if kind not in ("inputs", "grads"):
        raise ValueError(f"kind must be 'inputs' or 'grads', got {kind!r}")
    names = layers or list(state)
    names = names[:max_layers]
    if not names:
        raise ValueError("plot_sampling: empty recorder state")
    plt = _plt()
    fig, axes = plt.subplots(len(names), 1, figsize=(7.5, 1.7 * len(names) + 0.6), dpi=100,
                             squeeze=False)
    for ax, name in zip(axes[:, 0], names):
        hist = state[name][kind]
        centres, dens, outside = density(hist)
        with np.errstate(divide="ignore"):
            img = np.log10(dens)
        finite = img[np.isfinite(img)]
        vmin = np.percentile(finite, 5) if finite.size else -6
        epochs = dens.shape[0]
        im = ax.imshow(np.where(np.isfinite(img), img, vmin), aspect="auto", origin="lower",
                       extent=(hist["lo"], hist["hi"], 0.5, epochs + 0.5), cmap="magma",
                       vmin=vmin, interpolation="nearest")
        fig.colorbar(im, ax=ax, pad=0.01, fraction=0.03).ax.tick_params(labelsize=6)
        ax.set_ylabel("epoch", fontsize=7)
        out = ", ".join(f"{o:.1%}" for o in outside[-3:])
        ax.set_title(f"{name}: log10 density of {kind} (outside range, last epochs: {out})",
                     fontsize=7)
        ax.tick_params(labelsize=6)
        if kind == "grads":
            dec = hist["hi"]
            floor = hist.get("floor", 1e-10)
            ticks = np.linspace(-dec, dec, 7)
            ax.set_xticks(ticks)
            ax.set_xticklabels([_symlog_label(t, floor) for t in ticks], fontsize=6)
        elif shapes is not None and name in shapes:
            import torch

            from .shapes import activation_curves

            z = torch.linspace(hist["lo"], hist["hi"], 301, dtype=torch.float64)
            f, _, _ = activation_curves(shapes[name], z, 1)
            twin = ax.twinx()
            twin.plot(z.numpy(), f[0], color="white", lw=1.3)
            twin.plot(z.numpy(), f[0], color="tab:cyan", lw=0.6)
            twin.set_ylabel("f", fontsize=7)
            twin.tick_params(labelsize=6)
    axes[-1, 0].set_xlabel("pre-activation value" if kind == "inputs"
                           else "dL/dx (symmetric log scale)", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    return save_figure(fig, path)


def _symlog_label(t: float, floor: float) -> str:
    if abs(t) < 1e-9:
        return "0"
    mag = floor * 10 ** abs(t)
    return f"{'-' if t < 0 else ''}{mag:.0e}"
