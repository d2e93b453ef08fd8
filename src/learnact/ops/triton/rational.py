r"""Triton kernels of the rational (Padé, safe denominator) op (the op: ops/rational.py).

f = s P(x)/Q(x) + t, P = sum_{i<=n} a_i x^i, A = sum_{1<=j<=m} b_j x^j, Q = 1 + |A|, by Horner
with the derivative alongside. Backward per element once: df/dx = s (P'/Q - sign(A) A' P/Q^2)
and partial sums of g s x^i/Q (a_i), -g s sign(A) x^j P/Q^2 (b_j), g P/Q (s) and g (t).
"""

from __future__ import annotations

import triton
import triton.language as tl
from torch import Tensor

from ._common import layout, tile_offsets, tile_xg

__all__ = ["forward", "backward"]


@triton.jit
def _horner(x, ptr, c, cm, K: tl.constexpr):
    """(sum_k coef_k x^k, its derivative) for a channel's K coefficients at ptr."""
    val = tl.load(ptr + c * K + K - 1, mask=cm, other=0.0).to(tl.float32)[:, None] + 0.0 * x
    der = tl.zeros_like(x)
    for i in tl.static_range(K - 1):
        k = K - 2 - i
        der = der * x + val
        val = val * x + tl.load(ptr + c * K + k, mask=cm, other=0.0).to(tl.float32)[:, None]
    return val, der


@triton.jit
def _pq(x, num_ptr, den_ptr, c, cm, NN: tl.constexpr, ND: tl.constexpr):
    p, dp = _horner(x, num_ptr, c, cm, NN)
    a0, da0 = _horner(x, den_ptr, c, cm, ND)  # sum_j b_j x^(j-1)
    a = a0 * x
    da = da0 * x + a0
    return p, dp, a, da


@triton.jit
def _fwd(x_ptr, y_ptr, num_ptr, den_ptr, sc_ptr, of_ptr, C, R, N, NN: tl.constexpr,
         ND: tl.constexpr, BC: tl.constexpr, BR: tl.constexpr):
    c, cm, off, m = tile_offsets(C, R, N, BC, BR)
    x = tl.load(x_ptr + off, mask=m, other=0.0).to(tl.float32)
    p, _, a, _ = _pq(x, num_ptr, den_ptr, c, cm, NN, ND)
    sc = tl.load(sc_ptr + c, mask=cm, other=0.0).to(tl.float32)[:, None]
    of = tl.load(of_ptr + c, mask=cm, other=0.0).to(tl.float32)[:, None]
    tl.store(y_ptr + off, (sc * p / (1.0 + tl.abs(a)) + of).to(y_ptr.dtype.element_ty), mask=m)


@triton.jit
def _bwd(x_ptr, g_ptr, gx_ptr, part_ptr, num_ptr, den_ptr, sc_ptr, C, R, N,
         NN: tl.constexpr, ND: tl.constexpr, BC: tl.constexpr, BR: tl.constexpr):
    c, cm, off, m, x, g = tile_xg(x_ptr, g_ptr, C, R, N, BC, BR)
    sc = tl.load(sc_ptr + c, mask=cm, other=0.0).to(tl.float32)[:, None]
    p, dp, a, da = _pq(x, num_ptr, den_ptr, c, cm, NN, ND)
    inv_q = 1.0 / (1.0 + tl.abs(a))
    sig = tl.where(a > 0, 1.0, tl.where(a < 0, -1.0, 0.0))
    gq = g * sc * inv_q
    gb = -gq * sig * p * inv_q
    part = part_ptr + (tl.program_id(0) * C + c) * (NN + ND + 2)
    xp = tl.full(x.shape, 1.0, tl.float32)
    for i in tl.static_range(NN):
        tl.store(part + i, tl.sum(gq * xp, axis=1), mask=cm)
        xp = xp * x
    xp = x
    for j in tl.static_range(ND):
        tl.store(part + NN + j, tl.sum(gb * xp, axis=1), mask=cm)
        xp = xp * x
    tl.store(part + NN + ND, tl.sum(g * p * inv_q, axis=1), mask=cm)
    tl.store(part + NN + ND + 1, tl.sum(g, axis=1), mask=cm)
    gx = gq * (dp - sig * da * p * inv_q)
    tl.store(gx_ptr + off, gx.to(gx_ptr.dtype.element_ty), mask=m)


def forward(x: Tensor, num: Tensor, den: Tensor, scale: Tensor, offset: Tensor,
            channel_dim: int) -> Tensor:
    lay = layout(x, num, channel_dim)
    y = lay.x.new_empty(lay.x.shape)
    if x.numel():
        _fwd[lay.grid](lay.x, y, num.contiguous(), den.contiguous(), scale.contiguous(),
                       offset.contiguous(), lay.C, lay.R, lay.N, NN=num.shape[-1],
                       ND=den.shape[-1], BC=lay.BC, BR=lay.BR)
    return y.reshape(x.shape)


def backward(x: Tensor, num: Tensor, den: Tensor, scale: Tensor, offset: Tensor, grad: Tensor,
             channel_dim: int) -> tuple[Tensor, ...]:
    lay = layout(x, num, channel_dim)
    nn_, nd = num.shape[-1], den.shape[-1]
    gx = lay.x.new_empty(lay.x.shape)
    part = lay.partials(nn_ + nd + 2)
    if x.numel():
        _bwd[lay.grid](lay.x, grad.contiguous(), gx, part, num.contiguous(), den.contiguous(),
                       scale.contiguous(), lay.C, lay.R, lay.N, NN=nn_, ND=nd, BC=lay.BC,
                       BR=lay.BR)
    s = part.sum(0)
    return (gx.reshape(x.shape), s[:, :nn_].reshape(num.shape),
            s[:, nn_:nn_ + nd].reshape(den.shape), s[:, -2].reshape(scale.shape),
            s[:, -1].reshape(offset.shape))
