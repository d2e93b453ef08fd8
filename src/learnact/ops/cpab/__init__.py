"""DiTAC's ops: the exact CPAB flow (flow.py) and the lookup-table mode (lut.py: the grid op
and the table-read op), on shared per-element math (common.py) and the native CPU kernels
(native/cpab.c, built and loaded by ops/_native.py).

The module (modules/ditac.py) calls :func:`ditac_op` and :func:`gate` only.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .._library import _forward_mode_active
from ..._tensor import compute_dtype
from ...functional.cpab import flow_tables

from .common import (GATES, FlowConfig, _channel_ids, _take, _Tables, _trajectory, binsum,
                     flow_reference, gate_and_slope)
from .flow import cpab_op
from .lut import (_grid, _lut_index, _lut_tables, cpab_grid, cpab_lut_op, cpab_lut_padded_op,
                  grid_jacobian_fits, lut_grid, lut_tables, native_grid, native_lut_grid)

__all__ = ["ditac_op", "export_form", "integrate", "gate", "cpab_op", "cpab_lut_op", "cpab_grid", "lut_tables", "binsum",
           "lut_grid", "native_lut_grid", "cpab_lut_padded_op",
           "grid_jacobian_fits", "native_grid", "GATES"]


def ditac_op(x: Tensor, a2: Tensor, b2: Tensor, tau2: Tensor, *, lo: float, hi: float,
             gate: str = "identity", alpha: float = 0.01, channel_dim: int | None = None,
             lut: int | None = None) -> Tensor:
    """x~(x) s(x): the CPAB flow of the tables on [lo, hi] (identity outside) times the gate,
    exactly (``lut=None``, :func:`cpab_op`) or through an ``lut``-point table
    (:func:`lut_tables` + :func:`cpab_lut_op`, straight-through backward)."""
    if a2.device != x.device:
        raise ValueError(f"DiTAC: the input is on {x.device} but theta (its tables) on "
                         f"{a2.device}; move the module with .to({str(x.device)!r})")
    if torch.compiler.is_exporting():
        return export_form(x, a2, b2, tau2, lo=lo, hi=hi, gate=gate, alpha=alpha,
                           channel_dim=channel_dim, lut=lut)
    if _forward_mode_active():  # torch.func transforms, forward-mode AD
        if lut is not None:
            raise NotImplementedError(
                "torch.func transforms (grad, vmap, jacrev, jvp) and forward-mode AD do not run "
                "through DiTAC's lookup table (its straight-through derivative is an autograd "
                "Function rule); use the exact mode (lut=None) or torch.autograd")
        # the closed form in standard differentiable operators (what export records)
        return export_form(x, a2, b2, tau2, lo=lo, hi=hi, gate=gate, alpha=alpha,
                           channel_dim=channel_dim, lut=None)
    if lut is None:
        return cpab_op(x, a2, b2, tau2, lo=lo, hi=hi, gate=gate, alpha=alpha,
                       channel_dim=channel_dim)
    table, dtable = lut_tables(a2, b2, tau2, lut)
    return cpab_lut_op(x, table, dtable, lo=lo, hi=hi, gate=gate, alpha=alpha,
                       channel_dim=channel_dim)


def gate(x: Tensor, name: str, alpha: float = 0.01) -> Tensor:
    """DiTAC's gate s(x): ``gelu`` (Phi), ``silu`` (sigmoid), ``leaky_relu`` (1 or alpha) or
    ``identity`` (1), in x's dtype (plain torch, differentiable)."""
    if name not in GATES:
        raise ValueError(f"gate must be one of {GATES}, got {name!r}")
    return gate_and_slope(x, name, alpha, False)[0]


def integrate(x: Tensor, theta: Tensor, basis: Tensor, t: float = 1.0) -> Tensor:
    """T(x) = phi(x, t) for x in [0, 1] by the closed-form flow op (analytic backward saving x
    only); the reference is :func:`learnact.functional.cpab.integrate_stepwise`.

    theta (d,) with x of any shape, or theta (C, d) with x (C, M) (one field per channel).
    Computed in x's precision (float32 for half inputs); the small tables in theta's. Points
    outside [0, 1] move with the first/last cell's affine field.
    """
    a2, b2, tau2 = flow_tables(theta, basis, t)
    return cpab_op(x, a2, b2, tau2, t=abs(t), channel_dim=0 if theta.ndim == 2 else None)


def export_form(x: Tensor, a2: Tensor, b2: Tensor, tau2: Tensor, *, lo: float, hi: float,
                gate: str = "identity", alpha: float = 0.01, channel_dim: int | None = None,
                lut: int | None = None) -> Tensor:
    """:func:`ditac_op`'s value in standard operators only (what ``torch.export`` and
    ``torch.onnx.export`` record: no learnact custom op, no cummin or searchsorted, so an
    exported program runs without learnact and onnxruntime runs the ONNX model). Exact mode:
    the closed-form flow (:func:`~.common.flow_reference`); lookup-table mode: the
    ``lut``-point table computed in the graph from the tables by the same closed form, then
    read exactly as :func:`cpab_lut_op` reads it. Forward values only (an exported graph is
    an inference graph)."""
    if lut is None:
        return flow_reference(x, a2, b2, tau2, FlowConfig(1.0, lo, hi, gate, alpha,
                                                          channel_dim))
    u, ch = _grid(a2, lut)
    tb = _Tables(a2, b2, tau2, 1.0, torch.float64, differentiable=True)
    table, _ = _trajectory(u, ch, tb, 1.0, want_grad=False)
    dtype = compute_dtype(x)
    D, _ = _lut_tables(table, table, lo, hi, dtype)
    xx = x.to(dtype)
    cid = _channel_ids(xx, channel_dim, tb.channels)
    xt = _take(D, _lut_index(xx, cid, lut, lo, hi)) + xx
    return (xt * gate_and_slope(xx, gate, alpha, False)[0]).to(x.dtype)
