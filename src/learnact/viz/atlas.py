"""The 2-D input-space atlas: every unit of every layer drawn as an image over the input plane.

For a model whose input is 2-D (toy2d's MLPs, or any ``nn.Sequential`` starting with
``Linear(2, .)``), evaluate it on a res x res grid of [lo, hi]^2 and keep each module's output:
Linear outputs are the next activation's *pre*-activations, activation outputs the
*post*-activations. Each unit becomes one image; a diverging colormap with one symmetric scale
per layer shows at a glance where ReLU-like units are constant and how polynomial ones bend.

    layers = atlas(model, lo=-2, hi=2, res=96)
    plot_atlas(layers, "atlas.png", lo=-2, hi=2)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from .curves import _plt, save_figure

__all__ = ["AtlasLayer", "atlas", "atlas_grid", "plot_atlas", "parameter_derivative"]


@dataclass
class AtlasLayer:
    """One module's output over the grid: values (units, res, res), row 0 = top (x2 = hi)."""

    name: str
    kind: str  # "pre" (a Linear's output), "post" (an activation's output) or "out"
    values: np.ndarray


def atlas_grid(lo: float, hi: float, res: int, dtype=torch.float32) -> Tensor:
    """(res*res, 2) points, row-major with x1 along columns and x2 decreasing down the rows."""
    if not lo < hi:
        raise ValueError(f"atlas needs lo < hi, got lo={lo}, hi={hi}")
    if not 2 <= res <= 2048:
        raise ValueError(f"res must be in [2, 2048], got {res}")
    lin = torch.linspace(lo, hi, res, dtype=dtype)
    x2, x1 = torch.meshgrid(lin.flip(0), lin, indexing="ij")
    return torch.stack([x1.reshape(-1), x2.reshape(-1)], 1)


def _check(model: nn.Module) -> nn.Sequential:
    if not isinstance(model, nn.Sequential) or len(model) == 0:
        raise TypeError("atlas needs an nn.Sequential whose first module is Linear(2, n)")
    first = model[0]
    if not isinstance(first, nn.Linear) or first.in_features != 2:
        raise TypeError(f"atlas needs a first module Linear(2, n), got {first!r}")
    return model


@torch.no_grad()
def atlas(model: nn.Module, lo: float = -2.0, hi: float = 2.0, res: int = 96) -> list[AtlasLayer]:
    """Every module's output over the res x res grid of [lo, hi]^2 (see module docstring)."""
    from ..kinds import is_activation

    seq = _check(model)
    p = next(seq.parameters())
    h = atlas_grid(lo, hi, res, p.dtype).to(p.device)
    out: list[AtlasLayer] = []
    for i, m in enumerate(seq):
        h = m(h)
        last = i == len(seq) - 1
        kind = "out" if last else ("post" if is_activation(m) else "pre")
        vals = h.detach().float().cpu().numpy().T.reshape(-1, res, res)
        out.append(AtlasLayer(f"{i}:{type(m).__name__}", kind, vals))
    return out


def parameter_derivative(model: nn.Module, layer: int, unit: int, param: str, index: tuple,
                         lo: float = -2.0, hi: float = 2.0, res: int = 96) -> np.ndarray:
    """d(unit ``unit`` of module ``layer``'s output)/d(param[index]) over the grid (res, res).

    The model is differentiated in eval mode (its mode is restored afterwards): the function
    the atlas draws, without training-time gradient rules such as DiTAC's ``prior="released"``.
    Forward-mode AD (one jvp with a one-hot tangent). Modules whose custom autograd functions
    have no forward-mode rule (DiTAC, the surrogate-derivative activations) are differentiated
    by the double-vjp identity J t = d/du <J^T u, t>, which needs their backward to be
    differentiable; a module that supports neither raises a ValueError naming it.
    """
    seq = _check(model)
    params = dict(seq.named_parameters())
    if param not in params:
        raise KeyError(f"no parameter {param!r}; have {sorted(params)}")
    if not 0 <= layer < len(seq):
        raise ValueError(f"layer must be in [0, {len(seq) - 1}], got {layer}")
    if not param.startswith(tuple(f"{i}." for i in range(layer + 1))):
        raise ValueError(f"parameter {param!r} is not before module {layer}")
    p = params[param]
    tangent = torch.zeros_like(p)
    tangent[index] = 1.0
    x = atlas_grid(lo, hi, res, p.dtype).to(p.device)
    sub = seq[: layer + 1]
    rest = {k: v.detach() for k, v in sub.named_parameters()}

    def f(w: Tensor) -> Tensor:
        return torch.func.functional_call(sub, {**rest, param: w}, (x,))

    was_training = seq.training
    seq.eval()
    try:
        return _derivative(f, p, tangent, seq, layer, unit, res)
    finally:
        seq.train(was_training)


def _derivative(f, p: Tensor, tangent: Tensor, seq: nn.Sequential, layer: int, unit: int,
                res: int) -> np.ndarray:
    with torch.no_grad():
        width = f(p.detach()).shape[1]
    if not 0 <= unit < width:
        raise ValueError(f"unit must be in [0, {width - 1}] for module {layer}, got {unit}")
    try:
        _, dy = torch.func.jvp(f, (p.detach(),), (tangent,))
    except RuntimeError as exc:
        if "functorch" not in str(exc) and "forward AD" not in str(exc) \
                and "forward-mode" not in str(exc):
            raise
        dy = _jvp_by_double_vjp(f, p.detach(), tangent, seq, layer)
    return dy[:, unit].detach().float().cpu().numpy().reshape(res, res)


def _jvp_by_double_vjp(f, p: Tensor, tangent: Tensor, seq: nn.Sequential, layer: int) -> Tensor:
    """J t for f: p -> y by differentiating the vjp u -> J^T u (linear in u) along t."""
    with torch.enable_grad():
        w = p.clone().requires_grad_(True)
        y = f(w)
        u = torch.zeros_like(y, requires_grad=True)
        (g,) = torch.autograd.grad(y, w, grad_outputs=u, create_graph=True, allow_unused=True)
        if g is None:  # y does not depend on w at all: the derivative is zero everywhere
            return torch.zeros_like(y)
        if not g.requires_grad:
            names = sorted({type(m).__name__ for m in seq[: layer + 1]})
            raise ValueError(f"parameter_derivative: a module among {names} supports neither "
                             "forward-mode AD nor double backward")
        (jt,) = torch.autograd.grad(g, u, grad_outputs=tangent, allow_unused=True)
        # the identity needs u -> J^T u linear: a backward that depends on the sign of the
        # upstream gradient (left_right) has no Jacobian to show
        r = torch.randn(y.shape, generator=torch.Generator().manual_seed(0), dtype=y.dtype)
        r = r.to(y.device)
        (plus,) = torch.autograd.grad(y, w, grad_outputs=r, retain_graph=True)
        (minus,) = torch.autograd.grad(y, w, grad_outputs=-r)
        if not torch.allclose(plus, -minus, rtol=1e-4, atol=1e-6):
            names = sorted({type(m).__name__ for m in seq[: layer + 1]})
            raise ValueError(f"parameter_derivative: the backward of a module among {names} "
                             "is not linear in the upstream gradient (a sign-dependent "
                             "surrogate): it has no Jacobian to draw")
    return torch.zeros_like(y) if jt is None else jt


def plot_atlas(layers: list[AtlasLayer], path: str | Path, *, lo: float = -2.0, hi: float = 2.0,
               max_units: int = 12, title: str = "") -> Path:
    """Static PNG: one row per module output, one image per unit (at most ``max_units``),
    colormap RdBu_r with a symmetric scale shared within the row."""
    plt = _plt()
    cols = max(min(l.values.shape[0], max_units) for l in layers)
    rows = len(layers)
    fig, axes = plt.subplots(rows, cols, figsize=(1.25 * cols + 1.2, 1.25 * rows + 0.5),
                             dpi=100, squeeze=False)
    for r, layer in enumerate(layers):
        v = layer.values[:max_units]
        vmax = float(np.nanmax(np.abs(v))) or 1.0
        for c in range(cols):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c >= v.shape[0]:
                ax.axis("off")
                continue
            im = ax.imshow(v[c], cmap="RdBu_r", vmin=-vmax, vmax=vmax,
                           extent=(lo, hi, lo, hi), interpolation="nearest")
            if c == 0:
                ax.set_ylabel(f"{layer.name}\n{layer.kind}", fontsize=6)
        fig.colorbar(im, ax=axes[r, :].tolist(), fraction=0.015, pad=0.01).ax.tick_params(
            labelsize=5)
    if title:
        fig.suptitle(title, fontsize=9)
    return save_figure(fig, path, tight=False)  # colorbars span rows: no tight_layout
