"""Learned shapes: f and f' of every activation of a model, per channel, with the init shape
and a reference activation overlaid."""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from .curves import _plt, save_figure

__all__ = ["activation_curves", "plot_shapes"]

Acts = nn.Module | Mapping[str, nn.Module] | Sequence[tuple[str, nn.Module]]


def _named(acts: Acts) -> list[tuple[str, nn.Module]]:
    if isinstance(acts, nn.Module):
        from ..surgery import find_activations

        found = find_activations(acts, "all")
        if not found and _is_act(acts):
            return [("activation", acts)]
        return found
    if isinstance(acts, Mapping):
        return list(acts.items())
    return list(acts)


def _is_act(m: nn.Module) -> bool:
    from ..kinds import is_activation

    return is_activation(m)


def activation_curves(act: nn.Module, z: Tensor, max_channels: int = 8
                      ) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """(f, f') of ``act`` on the 1-D grid z, float64 arrays of shape (K, len(z)).

    Per-channel activations give one row per channel (at most ``max_channels``, evenly
    sampled, their indices returned); shared or fixed ones give one row (index [0]).
    """
    z = z.to(torch.float64).reshape(-1)
    fd = getattr(act, "function_and_derivative", None)
    if fd is not None:
        try:
            f, d = fd(z)
        except NotImplementedError:
            f = None
        if f is not None:
            f, d = f.reshape(-1, z.numel()), d.reshape(-1, z.numel())
            idx = _sample(f.shape[0], max_channels)
            return f[idx].numpy(), d[idx].numpy(), idx
    m = copy.deepcopy(act).double().eval()
    zz = z.clone().requires_grad_(True)
    channels = getattr(m, "num_parameters", 1)  # nn.PReLU(num_parameters=C)
    with torch.enable_grad():
        if channels > 1:
            y = m(zz[:, None].expand(-1, channels))
            idx = _sample(channels, max_channels)
            fs, ds = [], []
            for c in idx:
                (g,) = torch.autograd.grad(y[:, c].sum(), zz, retain_graph=True)
                fs.append(y[:, c].detach())
                ds.append(g)
            return torch.stack(fs).numpy(), torch.stack(ds).numpy(), idx
        y = m(zz)
        (g,) = torch.autograd.grad(y.sum(), zz)
    return y.detach()[None].numpy(), g[None].numpy(), [0]


def _sample(n: int, k: int) -> list[int]:
    if n <= k:
        return list(range(n))
    if k <= 1:
        return [0]
    return sorted({round(i * (n - 1) / (k - 1)) for i in range(k)})


def plot_shapes(acts: Acts, path: str | Path, *, init: Acts | None = None,
                reference: str | None = "gelu", lo: float = -4.0, hi: float = 4.0,
                points: int = 401, max_channels: int = 8, title: str = "",
                cols: int = 2) -> Path:
    """Grid of f (left) and f' (right) for every activation (a model, a dict or (name, module)
    pairs): one thin line per (sampled) channel, the init shape dashed (``init`` = the same
    activations before training, matched by name), the ``reference`` activation dotted."""
    from ..registry import create

    if not lo < hi:
        raise ValueError(f"need lo < hi, got lo={lo}, hi={hi}")
    named = _named(acts)
    if not named:
        raise ValueError("plot_shapes: no activation module found")
    inits = dict(_named(init)) if init is not None else {}
    z = torch.linspace(lo, hi, points, dtype=torch.float64)
    ref = activation_curves(create(reference), z) if reference else None
    plt = _plt()
    rows = len(named)
    fig, axes = plt.subplots(rows, 2, figsize=(4.2 * 2, 2.3 * rows + 0.4), dpi=100,
                             squeeze=False)
    cmap = plt.get_cmap("viridis")
    zn = z.numpy()
    for r, (name, act) in enumerate(named):
        f, d, idx = activation_curves(act, z, max_channels)
        for col, vals, label in ((0, f, "f"), (1, d, "f'")):
            ax = axes[r, col]
            for k in range(vals.shape[0]):
                ax.plot(zn, vals[k], lw=1.0, color=cmap(k / max(1, vals.shape[0] - 1)),
                        alpha=0.9, label=f"ch {idx[k]}" if vals.shape[0] > 1 and k < 4 else None)
            if name in inits:
                fi, di, _ = activation_curves(inits[name], z, 1)
                ax.plot(zn, (fi if col == 0 else di)[0], "k--", lw=1.0, label="init")
            if ref is not None:
                ax.plot(zn, ref[col][0], ":", color="gray", lw=1.2, label=reference)
            ax.axhline(0, color="k", lw=0.3)
            ax.axvline(0, color="k", lw=0.3)
            ax.grid(alpha=0.25)
            kind = type(act).__name__
            ax.set_title(f"{name} ({kind}): {label}", fontsize=8)
            ax.tick_params(labelsize=7)
            lim = np.nanmax(np.abs(vals))
            if math.isfinite(lim) and lim > 0:
                ax.set_ylim(-1.1 * lim if vals.min() < 0 else -0.1 * lim, 1.1 * lim)
        axes[r, 0].legend(fontsize=6, loc="upper left")
    if title:
        fig.suptitle(title, fontsize=10)
    return save_figure(fig, path)
