r"""DiTAC's exact mode: the CPAB flow op, closed-form T(x) without a per-element loop,
analytic backward.

Math and notation: functional/cpab.py. Inputs are the small per-cell tables of
:func:`learnact.functional.cpab.flow_tables` (a2, b2, tau2: the field and its mirror, and the
knot-to-knot crossing times), so autograd carries their gradients to theta; this op does the
per-element work in the input's precision (float32 for half inputs) and saves only the input
and the tables.

Per element (in the frame where it moves right, u -> 1 - u for v(u) < 0):

* first cell c0: time to its right edge t0 = (e - x)/v(x) * log1p(z)/z, z = a (e - x)/v(x);
* if t0 >= t it stays: T = x + t E(t a) v(x), E(z) = expm1(z)/z;
* else it enters knot k1 = c0 + 1 with time t1 = t - t0 left, crosses every cell whose
  cumulative time P[j] - P[k1] <= t1 (one binary search in P = cumsum(tau)), and ends in cell
  m at the knot m/N with t_m = t1 - (P[m] - P[k1]): T = m/N + t_m E(t_m a_m) v(m/N).

Backward (saved: x and the tables; everything else recomputed):

* dT/dx = e^{t a} (stays) or v(T)/v(x) (crosses);
* last cell: dT/db_m = t_m E, dT/da_m = t_m^2 E'(t_m a_m) v_m + x_m t_m E;
* every crossed time s (t0 and each full tau_j) enters as dT/ds = -v(T);
  dt0/db = -(e - x)/(v(x) v(e)), dt0/da = ((e - x)/v(x))^2 L'(z) + x dt0/db, L(z) = log1p(z)/z;
* per-cell sums over elements by index_add (the tau_j by a difference array: each element adds
  to a contiguous run of cells).

Double backward (``create_graph=True``, e.g. a gradient penalty): the backward then runs the same
closed form in differentiable PyTorch ops (common.flow_reference) and lets autograd
differentiate it, so second derivatives are exact too (almost everywhere, as the first are).

The op fuses DiTAC's input window and gate: for x in [lo, hi], x~ = lo + (hi - lo) T((x - lo)/
(hi - lo)), elsewhere x~ = x; output x~ s(x) with s in gelu/silu/leaky_relu/identity.

On the CPU (float32/float64, windowed, t > 0: DiTAC's case) the whole per-element
computation above, window and gate included, is one fused C kernel each way
(native/cpab.c ``la_flow_*``; custom ops ``learnact::flow_apply``/``flow_apply_backward``,
called by eager and compiled code alike; speed: benchmarks/RESULTS.md). Without it (no C
compiler, ``LEARNACT_NATIVE=0``; ops/_native.py warns once) the per-element trajectory
above runs in PyTorch, chunked on the CPU. On CUDA, in eager mode, one Triton kernel each way
(ops/triton/ditac.py: the same closed form, the knot search unrolled, the table gradients by
atomic adds); under torch.compile the PyTorch trajectory is traced and inductor fuses it.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..._tensor import compute_dtype
from ...core.cpab import GATE_IDS
from .. import _native
from .common import (GATES, FlowConfig, _backward_pieces, _channel_ids,
                     _forward_pieces, _native_layout, flow_reference, _native_ok, _run, _Tables,
                     _trajectory_grads, _triton_kernels)

__all__ = ["cpab_op", "flow_apply", "flow_apply_backward"]



# Exact mode on the CPU: one fused C kernel each way (native/cpab.c, the closed form of
# _trajectory and _table_terms per element, window and gate included), for windowed inputs
# moving forward in time (DiTAC's case); the PyTorch paths stay for the rest and as fallback.
def _native_flow(xx: Tensor, lo, t: float) -> bool:
    return lo is not None and t > 0 and _native_ok(xx)


def _run_flow(x: Tensor, g: Tensor | None, A: Tensor, B: Tensor, P: Tensor, stop: Tensor,
              channels: int, inner: int, t: float, lo: float, hi: float, gate: int,
              alpha: float, want_tables: bool) -> tuple[Tensor, Tensor]:
    out = torch.empty_like(x)
    n = A.numel() // (2 * channels)
    lib = _native.library()
    parts, _ = _native.split(x.numel())
    size = channels * 2 * n * 2 + channels * 2 * (n + 1)
    # per part (rows lib.la_flow_stride apart): lib.flow_copies interleaved copies of
    # [(dL/da, dL/db) pairs | D]
    hist = torch.zeros((parts, lib.la_flow_stride(channels, n)) if want_tables else (1, 0),
                       dtype=torch.float64)
    _native.launch(lib, "la_flow", x.dtype,
                   (x.data_ptr(), None if g is None else g.data_ptr(), out.data_ptr()),
                   x.numel(), (A.data_ptr(), B.data_ptr(), P.data_ptr(), stop.data_ptr(),
                               channels, inner, n, t, lo, hi, gate, alpha),
                   hist=hist if want_tables else None, hist_arg=True)
    if not want_tables:
        return out, hist.new_empty(0)
    return out, hist[:, :lib.flow_copies * size].reshape(-1, size).sum(0)


@torch.library.custom_op("learnact::flow_apply", mutates_args=())
def flow_apply(x: Tensor, A: Tensor, B: Tensor, P: Tensor, stop: Tensor, channels: int,
               inner: int, t: float, lo: float, hi: float, gate: int, alpha: float) -> Tensor:
    """x~ s(x) (exact CPAB flow on [lo, hi]) by the native kernel; x contiguous CPU
    float32/float64, A, B, P in x's dtype and stop int32 from _Tables."""
    return _run_flow(x, None, A, B, P, stop, channels, inner, t, lo, hi, gate, alpha,
                     False)[0]


@flow_apply.register_fake
def _(x, A, B, P, stop, channels, inner, t, lo, hi, gate, alpha):
    return torch.empty_like(x)


@torch.library.custom_op("learnact::flow_apply_backward", mutates_args=())
def flow_apply_backward(x: Tensor, g: Tensor, A: Tensor, B: Tensor, P: Tensor, stop: Tensor,
                        channels: int, inner: int, t: float, lo: float, hi: float, gate: int,
                        alpha: float, want_tables: bool) -> tuple[Tensor, Tensor]:
    """(dL/dx, [dL/dA | dL/dB | per-knot time differences] in float64, empty unless
    ``want_tables``) by the native kernel."""
    return _run_flow(x, g, A, B, P, stop, channels, inner, t, lo, hi, gate, alpha,
                     want_tables)


@flow_apply_backward.register_fake
def _(x, g, A, B, P, stop, channels, inner, t, lo, hi, gate, alpha, want_tables):
    n2 = A.numel()
    size = 2 * n2 + n2 + 2 * channels if want_tables else 0
    return torch.empty_like(x), x.new_empty((size,), dtype=torch.float64)


def _flow_table_grads(hist: Tensor, tb: _Tables) -> tuple[Tensor, Tensor, Tensor]:
    """dL/d(a2, b2, tau2), flat, from the kernel's [(dL/da, dL/db) pairs | D] sums (the
    crossing times' gradient is the cumulative sum of the per-knot differences D)."""
    C, n = tb.channels, tb.n
    AB, D = hist.split([C * 2 * n * 2, C * 2 * (n + 1)])
    Ga, Gb = AB.reshape(C * 2 * n, 2).unbind(1)
    return Ga, Gb, torch.cumsum(D.reshape(C * 2, n + 1), -1)[:, :n].reshape(-1)


def _flow_native_args(x: Tensor, xx: Tensor, tb: _Tables, channel_dim, cfg: FlowConfig) -> tuple:
    t, lo, hi, gate, alpha = cfg.t, cfg.lo, cfg.hi, cfg.gate, cfg.alpha
    _channel_ids(x, channel_dim, tb.channels)  # checks the channel count
    return (tb.a, tb.b, tb.P, tb.stop, *_native_layout(xx, channel_dim, tb.channels), t, lo, hi,
            GATE_IDS[gate], alpha)


class _CPABFlow(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, a2, b2, tau2, t, lo, hi, gate, alpha, channel_dim):
        ctx.save_for_backward(x, a2, b2, tau2)
        ctx.cfg = FlowConfig(t, lo, hi, gate, alpha, channel_dim)
        tri = _triton_kernels(x) if lo is not None and t > 0 else None
        if tri is not None:  # reads x in its own dtype
            tb = _Tables(a2, b2, tau2, t, torch.float32)
            ctx.tables = tb
            return tri.flow_forward(x, tb.a, tb.b, tb.P, tb.stop, tb.channels, channel_dim, t,
                                    lo, hi, GATE_IDS[gate], alpha)
        dtype = compute_dtype(x)
        xx = x.to(dtype)
        tb = _Tables(a2, b2, tau2, t, dtype)
        if _native_flow(xx, lo, t):
            ctx.tables = tb  # a few floats per cell: the backward's kernel call reuses them
            out = flow_apply(xx.contiguous(), *_flow_native_args(x, xx, tb, channel_dim,
                                                                 ctx.cfg))
            return out.reshape(x.shape).to(x.dtype)
        return _forward_pieces(x, xx, channel_dim, tb.channels, lambda xp, ch: _run(
            xp, tb, ch, t, lo, hi, gate, alpha, want_grad=False)[:2])

    @staticmethod
    def backward(ctx, gy):
        if torch.is_grad_enabled():  # create_graph=True: a backward autograd can differentiate
            return _double_differentiable_backward(ctx, gy)
        return _first_order_backward(ctx, gy)


def _double_differentiable_backward(ctx, gy: Tensor) -> tuple:
    """The gradients as autograd of :func:`flow_reference` (the same closed form in PyTorch
    ops) with ``create_graph=True``: gradient penalties through DiTAC get their true second
    derivatives (tests/test_ditac.py checks them by gradgradcheck)."""
    # partial derivatives in each input: the tables depend on each other upstream
    # (flow_tables computes tau2 from a2 and b2, all from theta), and autograd.grad with
    # respect to the saved tensors themselves would add the paths through tau2 to a2's and
    # b2's gradients a second time (the gradient with respect to theta came out wrong under
    # create_graph). Fresh views are downstream of everything: only their direct paths count.
    need = ctx.needs_input_grad[:4]
    with torch.enable_grad():
        inputs = tuple(t.view_as(t) for t in ctx.saved_tensors)
        wrt = [v for v, n in zip(inputs, need) if n]
        y = flow_reference(*inputs, ctx.cfg)
        got = iter(torch.autograd.grad(y, wrt, gy, create_graph=True, allow_unused=True))
    grads = [None] * 4
    for i, (v, n) in enumerate(zip(inputs, need)):
        if n:
            g = next(got)
            grads[i] = torch.zeros_like(v) if g is None else g
    return (*grads, None, None, None, None, None, None)


def _first_order_backward(ctx, gy: Tensor) -> tuple:
    """The fused backward (Triton, native C, or the chunked PyTorch trajectory)."""
    x, a2, b2, tau2 = ctx.saved_tensors
    t, lo, channel_dim = ctx.cfg.t, ctx.cfg.lo, ctx.cfg.channel_dim
    want_tables = any(ctx.needs_input_grad[1:4])
    tri = _triton_kernels(x) if lo is not None and t > 0 else None
    if tri is not None:
        tb = ctx.tables  # the forward took this path too
        cfg = ctx.cfg
        gx, tabs = tri.flow_backward(x, gy, tb.a, tb.b, tb.P, tb.stop, tb.channels,
                                     channel_dim, t, lo, cfg.hi, GATE_IDS[cfg.gate],
                                     cfg.alpha, want_tables)
        grads = [None, None, None] if tabs is None else [
            G.reshape(v.shape).to(v.dtype) for G, v in zip(tabs, (a2, b2, tau2))]
        return (gx.to(x.dtype) if ctx.needs_input_grad[0] else None, *grads, None, None,
                None, None, None, None)
    dtype = compute_dtype(x)
    xx, g = x.to(dtype), gy.to(dtype)
    if _native_flow(xx, lo, t):
        tb = ctx.tables  # the forward took this path too (same dtype and device)
        gx, hist = flow_apply_backward(xx.contiguous(), g.contiguous(), *_flow_native_args(
            x, xx, tb, channel_dim, ctx.cfg), want_tables)
        grads = [None, None, None]
        if want_tables:
            grads = [G.reshape(v.shape).to(v.dtype) for G, v in zip(
                _flow_table_grads(hist, tb), (a2, b2, tau2))]
        return (gx.reshape(x.shape).to(x.dtype) if ctx.needs_input_grad[0] else None,
                *grads, None, None, None, None, None, None)
    tb = _Tables(a2, b2, tau2, t, dtype)
    gx, sums = _backward_pieces(x, xx, g, channel_dim, tb.channels, lambda xp, gp, ch:
                                _trajectory_grads(xp, gp, ch, tb, ctx.cfg, want_tables))
    grads = [None, None, None]
    if want_tables:
        grads = [G.reshape(a2.shape).to(a2.dtype) for G in sums]
    return (gx if ctx.needs_input_grad[0] else None, *grads, None, None, None, None, None,
            None)


def cpab_op(x: Tensor, a2: Tensor, b2: Tensor, tau2: Tensor, *, t: float = 1.0,
            lo: float | None = None, hi: float | None = None, gate: str = "identity",
            alpha: float = 0.01, channel_dim: int | None = None) -> Tensor:
    """x~(x) s(x) with x~ the CPAB flow at time t (on [lo, hi] if given, identity outside).

    a2, b2, tau2: :func:`~learnact.functional.cpab.flow_tables` ((2N,) shared, or (C, 2N) with
    ``channel_dim`` naming x's channel dimension). Saves x and the tables only.
    """
    if gate not in GATES:
        raise ValueError(f"gate must be one of {GATES}, got {gate!r}")
    if (lo is None) != (hi is None) or (lo is not None and not lo < hi):
        raise ValueError(f"need lo < hi (both or neither), got lo={lo}, hi={hi}")
    if (a2.ndim == 2) != (channel_dim is not None):
        raise ValueError("per-channel tables (C, 2N) need channel_dim; shared tables (2N,) "
                         "must not get one")
    return _CPABFlow.apply(x, a2, b2, tau2, float(t), lo, hi, gate, float(alpha), channel_dim)
