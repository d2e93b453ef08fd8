r"""Triton kernels of the rational (Padé, safe denominator) op (the op: ops/rational.py).

f = s P(x)/Q(x) + t, P = sum_{i<=n} a_i x^i, A = sum_{1<=j<=m} b_j x^j, Q = 1 + |A|, evaluated
scaled as learnact.functional.rational explains (S = max(1, |x|), r = 1/S, u = x r; homogeneous
Horner sums N, B with their u-derivatives; nothing overflows before f does). Backward per
element once: dL/dx and partial sums of dL/da_i, dL/db_j, dL/ds and dL/dt.
"""

from __future__ import annotations

import triton
import triton.language as tl
from torch import Tensor

from ._common import layout, tile_offsets, tile_xg

__all__ = ["forward", "backward"]


@triton.jit
def _horner(u, r, ptr, c, cm, K: tl.constexpr):
    """(sum_k coef_k u^k r^(K-1-k), its u-derivative) for a channel's K coefficients at ptr."""
    val = tl.load(ptr + c * K + K - 1, mask=cm, other=0.0).to(tl.float32)[:, None] + 0.0 * u
    der = tl.zeros_like(u)
    rk = tl.full(u.shape, 1.0, tl.float32)
    for i in tl.static_range(K - 1):
        k = K - 2 - i
        rk = rk * r
        der = der * u + val
        val = val * u + tl.load(ptr + c * K + k, mask=cm, other=0.0).to(tl.float32)[:, None] * rk
    return val, der


@triton.jit
def _spow(big, r, E: tl.constexpr):
    """S^E for a compile-time integer E of either sign."""
    out = tl.full(big.shape, 1.0, tl.float32)
    if E >= 0:
        for _ in tl.static_range(E):
            out = out * big
    else:
        for _ in tl.static_range(-E):
            out = out * r
    return out


@triton.jit
def _pq(x, num_ptr, den_ptr, c, cm, NN: tl.constexpr, ND: tl.constexpr):
    big = tl.maximum(tl.abs(x), 1.0)
    r = 1.0 / big
    u = tl.where(x > 1.0, 1.0, tl.where(x < -1.0, -1.0, x))  # x r, exact (NaN kept)
    p, dp = _horner(u, r, num_ptr, c, cm, NN)
    a0, da0 = _horner(u, r, den_ptr, c, cm, ND)  # sum_j b_j u^(j-1) r^(m-j)
    a = a0 * u
    da = da0 * u + a0
    return big, r, u, p, dp, a, da


@triton.jit
def _fwd(x_ptr, y_ptr, num_ptr, den_ptr, sc_ptr, of_ptr, C, R, N, NN: tl.constexpr,
         ND: tl.constexpr, BC: tl.constexpr, BR: tl.constexpr):
    c, cm, off, m = tile_offsets(C, R, N, BC, BR)
    x = tl.load(x_ptr + off, mask=m, other=0.0).to(tl.float32)
    big, r, _, p, _, a, _ = _pq(x, num_ptr, den_ptr, c, cm, NN, ND)
    sc = tl.load(sc_ptr + c, mask=cm, other=0.0).to(tl.float32)[:, None]
    of = tl.load(of_ptr + c, mask=cm, other=0.0).to(tl.float32)[:, None]
    # n = NN - 1, m = ND: f = s S^(n-m) N / (r^m + |B|) + t
    y = sc * (_spow(big, r, NN - 1 - ND) * p / (_spow(big, r, -ND) + tl.abs(a))) + of
    tl.store(y_ptr + off, y.to(y_ptr.dtype.element_ty), mask=m)


@triton.jit
def _bwd(x_ptr, g_ptr, gx_ptr, part_ptr, num_ptr, den_ptr, sc_ptr, C, R, N,
         NN: tl.constexpr, ND: tl.constexpr, BC: tl.constexpr, BR: tl.constexpr):
    c, cm, off, m, x, g = tile_xg(x_ptr, g_ptr, C, R, N, BC, BR)
    sc = tl.load(sc_ptr + c, mask=cm, other=0.0).to(tl.float32)[:, None]
    big, r, u, p, dp, a, da = _pq(x, num_ptr, den_ptr, c, cm, NN, ND)
    inv_d = 1.0 / (_spow(big, r, -ND) + tl.abs(a))
    sig = tl.where(a > 0, 1.0, tl.where(a < 0, -1.0, 0.0))
    gq = g * sc * inv_d
    gb = -gq * sig * p * inv_d
    part = part_ptr + (tl.program_id(0) * C + c) * (NN + ND + 2)
    uk = tl.full(x.shape, 1.0, tl.float32)
    for i in tl.static_range(NN):  # dL/da_i = g s u^i S^(i-m) / D
        tl.store(part + i, tl.sum(gq * uk * _spow(big, r, i - ND), axis=1), mask=cm)
        uk = uk * u
    uk = u
    for j in tl.static_range(ND):  # dL/db_(j+1) = -g s sign(B) N u^(j+1) S^(n+j+1-2m) / D^2
        tl.store(part + NN + j, tl.sum(gb * uk * _spow(big, r, NN + j - 2 * ND), axis=1),
                 mask=cm)
        uk = uk * u
    tl.store(part + NN + ND, tl.sum(g * p * inv_d * _spow(big, r, NN - 1 - ND), axis=1),
             mask=cm)
    tl.store(part + NN + ND + 1, tl.sum(g, axis=1), mask=cm)
    gx = gq * (dp - sig * da * p * inv_d) * _spow(big, r, NN - 2 - ND)
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
                       BR=lay.BR, num_warps=8)  # 4 elements a thread: <= 128 registers
    s = part.sum(0)
    return (gx.reshape(x.shape), s[:, :nn_].reshape(num.shape),
            s[:, nn_:nn_ + nd].reshape(den.shape), s[:, -2].reshape(scale.shape),
            s[:, -1].reshape(offset.shape))
