r"""Triton kernels of the Hermite op (the CPU kernels and the op: ops/hermite.py).

f(x) = sum_k c_k h_k(xc) + (x - xc) sum_{k>=1} c_k h_{k-1}(xc), h_k = He_k/k!, xc = clamp(x, lo,
hi) with tails (xc = x without). Forward: Clenshaw in the h basis, b_k = c_k + x b_{k+1}/(k+1)
- b_{k+2}/(k+2), f = b_0. Backward: the recurrence h_{k+1} = (x h_k - h_{k-1})/(k+1) once,
accumulating df/dx = sum_{k>=1} c_k h_{k-1}(xc) and the partial sums of
g (h_k(xc) + (x - xc) h_{k-1}(xc)) for every c_k.
"""

from __future__ import annotations

import triton
import triton.language as tl
from torch import Tensor

from ._common import layout, tile_offsets, tile_xg

__all__ = ["forward", "backward"]


@triton.jit
def _clamped(x, lo_ptr, hi_ptr, c, cm, TAILS: tl.constexpr):
    """xc = clamp(x, lo, hi) per channel with tails, x itself without."""
    if TAILS:
        lo = tl.load(lo_ptr + c, mask=cm, other=0.0).to(tl.float32)[:, None]
        hi = tl.load(hi_ptr + c, mask=cm, other=0.0).to(tl.float32)[:, None]
        return tl.minimum(tl.maximum(x, lo), hi)
    return x


@triton.jit
def _fwd(x_ptr, y_ptr, c_ptr, lo_ptr, hi_ptr, C, R, N, D: tl.constexpr, TAILS: tl.constexpr,
         BC: tl.constexpr, BR: tl.constexpr):
    c, cm, off, m = tile_offsets(C, R, N, BC, BR)
    x = tl.load(x_ptr + off, mask=m, other=0.0).to(tl.float32)
    xc = _clamped(x, lo_ptr, hi_ptr, c, cm, TAILS)
    b1 = tl.zeros_like(x)
    b2 = tl.zeros_like(x)
    for i in tl.static_range(D + 1):
        k = D - i
        ck = tl.load(c_ptr + c * (D + 1) + k, mask=cm, other=0.0).to(tl.float32)[:, None]
        b = ck + xc * b1 * (1.0 / (k + 1)) - b2 * (1.0 / (k + 2))
        b2 = b1
        b1 = b
    f = b1
    if TAILS:  # + (x - xc) P'(xc), P' = sum_{k>=1} c_k h_{k-1}: Clenshaw on c_{k+1}
        s1 = tl.zeros_like(x)
        s2 = tl.zeros_like(x)
        for i in tl.static_range(D):
            k = D - 1 - i
            ck = tl.load(c_ptr + c * (D + 1) + k + 1, mask=cm, other=0.0).to(tl.float32)[:, None]
            s = ck + xc * s1 * (1.0 / (k + 1)) - s2 * (1.0 / (k + 2))
            s2 = s1
            s1 = s
        f = f + (x - xc) * s1
    tl.store(y_ptr + off, f.to(y_ptr.dtype.element_ty), mask=m)


@triton.jit
def _bwd(x_ptr, g_ptr, gx_ptr, part_ptr, c_ptr, lo_ptr, hi_ptr, C, R, N, D: tl.constexpr,
         TAILS: tl.constexpr, BC: tl.constexpr, BR: tl.constexpr):
    c, cm, off, m, x, g = tile_xg(x_ptr, g_ptr, C, R, N, BC, BR)
    xc = _clamped(x, lo_ptr, hi_ptr, c, cm, TAILS)
    delta = x - xc
    h_prev = tl.zeros_like(x)  # h_{k-1}
    h = tl.full(x.shape, 1.0, tl.float32)  # h_k
    slope = tl.zeros_like(x)
    part = part_ptr + (tl.program_id(0) * C + c) * (D + 1)
    for k in tl.static_range(D + 1):
        w = h
        if TAILS:
            w = h + delta * h_prev
        tl.store(part + k, tl.sum(g * w, axis=1), mask=cm)
        if k >= 1:
            ck = tl.load(c_ptr + c * (D + 1) + k, mask=cm, other=0.0).to(tl.float32)[:, None]
            slope += ck * h_prev
        h_next = (xc * h - h_prev) * (1.0 / (k + 1))
        h_prev = h
        h = h_next
    tl.store(gx_ptr + off, (g * slope).to(gx_ptr.dtype.element_ty), mask=m)


def _args(x: Tensor, coeffs: Tensor, lo: Tensor | None, hi: Tensor | None, channel_dim: int):
    lay = layout(x, coeffs, channel_dim)
    tails = lo is not None and hi is not None
    c = coeffs.contiguous()
    lo_t = lo.reshape(-1).contiguous() if tails else c
    hi_t = hi.reshape(-1).contiguous() if tails else c
    return lay, c, lo_t, hi_t, tails


def forward(x: Tensor, coeffs: Tensor, lo: Tensor | None, hi: Tensor | None,
            channel_dim: int) -> Tensor:
    lay, c, lo_t, hi_t, tails = _args(x, coeffs, lo, hi, channel_dim)
    y = lay.x.new_empty(lay.x.shape)
    if x.numel():
        _fwd[lay.grid](lay.x, y, c, lo_t, hi_t, lay.C, lay.R, lay.N, D=c.shape[-1] - 1,
                       TAILS=tails, BC=lay.BC, BR=lay.BR)
    return y.reshape(x.shape)


def backward(x: Tensor, coeffs: Tensor, lo: Tensor | None, hi: Tensor | None, grad: Tensor,
             channel_dim: int) -> tuple[Tensor, Tensor]:
    lay, c, lo_t, hi_t, tails = _args(x, coeffs, lo, hi, channel_dim)
    d = c.shape[-1] - 1
    gx = lay.x.new_empty(lay.x.shape)
    part = lay.partials(d + 1)
    if x.numel():
        _bwd[lay.grid](lay.x, grad.contiguous(), gx, part, c, lo_t, hi_t, lay.C, lay.R, lay.N,
                       D=d, TAILS=tails, BC=lay.BC, BR=lay.BR)
    gc = part.sum(0)
    return gx.reshape(x.shape), gc.reshape(coeffs.shape)
