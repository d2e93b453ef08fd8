r"""Triton kernels of DiTAC's lookup-table mode (the op: ops/cpab/lut.py ``cpab_lut_op``).

Per element, as the CPU kernels: bin r = clamp(floor(off + k x), 0, n + 1) of the padded
displacement table D (C (n + 2) entries), x~ = x + D[r], y = x~ s(x). Backward: dL/dx =
g s(x) S[r] + g x~ s'(x) with S the padded slope table, and the table's gradient: g s(x) added
into bin r (atomic adds into a (C, n + 2) fp32 buffer; the outside bins are dropped by the
caller). Gates by constexpr id in GATES order: gelu, leaky_relu, silu, identity.
"""

from __future__ import annotations

import math

import torch
import triton
import triton.language as tl
from torch import Tensor

from ._common import Layout, tile_offsets

__all__ = ["lut_forward", "lut_backward"]

_INV_SQRT2 = 1.0 / math.sqrt(2.0)
_INV_SQRT2PI = 1.0 / math.sqrt(2.0 * math.pi)


@triton.jit
def _gate(x, alpha, GATE: tl.constexpr):
    """(s(x), s'(x))."""
    if GATE == 0:  # gelu
        s = 0.5 + 0.5 * tl.math.erf(x * 0.7071067811865476)
        ds = tl.exp(-0.5 * x * x) * 0.3989422804014327
    elif GATE == 1:  # leaky_relu
        s = tl.where(x > 0, 1.0, alpha)
        ds = tl.zeros_like(x)
    elif GATE == 2:  # silu
        s = 1.0 / (1.0 + tl.exp(-x))
        ds = s * (1.0 - s)
    else:
        s = tl.full(x.shape, 1.0, tl.float32)
        ds = tl.zeros_like(x)
    return s, ds


@triton.jit
def _bins(x, c, k, off, NB: tl.constexpr):
    r = tl.minimum(tl.maximum(off + k * x, 0.0), NB - 1 + 0.5)
    r = tl.minimum(tl.maximum(r.to(tl.int32), 0), NB - 1)
    return c[:, None] * NB + r


@triton.jit
def _fwd(x_ptr, y_ptr, d_ptr, C, R, N, k, off, alpha, NB: tl.constexpr, GATE: tl.constexpr,
         BC: tl.constexpr, BR: tl.constexpr):
    c, cm, offs, m = tile_offsets(C, R, N, BC, BR)
    x = tl.load(x_ptr + offs, mask=m, other=0.0).to(tl.float32)
    xt = x + tl.load(d_ptr + _bins(x, c, k, off, NB), mask=m, other=0.0).to(tl.float32)
    s, _ = _gate(x, alpha, GATE)
    tl.store(y_ptr + offs, (xt * s).to(y_ptr.dtype.element_ty), mask=m)


@triton.jit
def _bwd(x_ptr, g_ptr, gx_ptr, hist_ptr, d_ptr, s_ptr, C, R, N, k, off, alpha,
         NB: tl.constexpr, GATE: tl.constexpr, WANT: tl.constexpr, BC: tl.constexpr,
         BR: tl.constexpr):
    c, cm, offs, m = tile_offsets(C, R, N, BC, BR)
    x = tl.load(x_ptr + offs, mask=m, other=0.0).to(tl.float32)
    g = tl.load(g_ptr + offs, mask=m, other=0.0).to(tl.float32)
    b = _bins(x, c, k, off, NB)
    xt = x + tl.load(d_ptr + b, mask=m, other=0.0).to(tl.float32)
    s, ds = _gate(x, alpha, GATE)
    gxt = g * s
    gx = gxt * tl.load(s_ptr + b, mask=m, other=1.0).to(tl.float32) + g * xt * ds
    tl.store(gx_ptr + offs, gx.to(gx_ptr.dtype.element_ty), mask=m)
    if WANT:
        tl.atomic_add(hist_ptr + b, gxt, mask=m)


def _layout(x: Tensor, channels: int, channel_dim: int | None) -> Layout:
    return Layout(x, channels, 0 if channel_dim is None else channel_dim)


def lut_forward(x: Tensor, D: Tensor, channels: int, channel_dim: int | None, k: float,
                off: float, gate: int, alpha: float) -> Tensor:
    """y = (x + D[bin(x)]) s(x) in x's dtype; D the padded displacement table (C (n + 2),)."""
    lay = _layout(x, channels, channel_dim)
    y = lay.x.new_empty(lay.x.shape)
    if x.numel():
        _fwd[lay.grid](lay.x, y, D.float().contiguous(), lay.C, lay.R, lay.N, k, off, alpha,
                       NB=D.numel() // channels, GATE=gate, BC=lay.BC, BR=lay.BR)
    return y.reshape(x.shape)


def lut_backward(x: Tensor, grad: Tensor, D: Tensor, S: Tensor, channels: int,
                 channel_dim: int | None, k: float, off: float, gate: int, alpha: float,
                 want_table: bool) -> tuple[Tensor, Tensor]:
    """(dL/dx in x's dtype, per-bin sums of g s(x) in fp32 ((C (n + 2),), empty unless
    ``want_table``))."""
    lay = _layout(x, channels, channel_dim)
    gx = lay.x.new_empty(lay.x.shape)
    hist = torch.zeros(D.numel() if want_table else 1, dtype=torch.float32, device=x.device)
    if x.numel():
        _bwd[lay.grid](lay.x, grad.contiguous(), gx, hist, D.float().contiguous(),
                       S.float().contiguous(), lay.C, lay.R, lay.N, k, off, alpha,
                       NB=D.numel() // channels, GATE=gate, WANT=want_table, BC=lay.BC,
                       BR=lay.BR)
    return gx.reshape(x.shape), hist[:D.numel()] if want_table else hist[:0]
