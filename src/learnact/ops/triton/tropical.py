r"""Triton kernels of the tropical ops (the CPU kernels and the ops: ops/tropical.py).

E(x) = max_k (s_k x + c_k), first argmax k*. Tropical: f = scale E(x) + offset, slopes fixed;
tropical rational: f = scale (E_P(x) - E_Q(x)) + offset, every parameter learned. Backward:
dE/dx = s_{k*}, dE/dc_k = [k* = k], dE/ds_k = x [k* = k]; partial sums of g scale [k* = k]
(and times x for the slopes), g E and g per program.
"""

from __future__ import annotations

import triton
import triton.language as tl
from torch import Tensor

from ._common import layout, tile_offsets, tile_xg

__all__ = ["forward", "backward", "rational_forward", "rational_backward"]


@triton.jit
def _envelope(x, s_ptr, c_ptr, c, cm, SC: tl.constexpr, K: tl.constexpr):
    """(max_k s_k x + c_k, the slope of the first maximising line, its index) per element;
    SC: slopes per channel (else one shared row)."""
    if SC:
        s0 = tl.load(s_ptr + c * K, mask=cm, other=0.0).to(tl.float32)[:, None]
    else:
        s0 = tl.load(s_ptr + c * 0, mask=cm, other=0.0).to(tl.float32)[:, None]
    best = s0 * x + tl.load(c_ptr + c * K, mask=cm, other=0.0).to(tl.float32)[:, None]
    sbest = s0 + tl.zeros_like(x)
    kbest = tl.zeros(x.shape, tl.int32)
    for k in tl.static_range(1, K):
        if SC:
            sk = tl.load(s_ptr + c * K + k, mask=cm, other=0.0).to(tl.float32)[:, None]
        else:
            sk = tl.load(s_ptr + c * 0 + k, mask=cm, other=0.0).to(tl.float32)[:, None]
        v = sk * x + tl.load(c_ptr + c * K + k, mask=cm, other=0.0).to(tl.float32)[:, None]
        up = v > best
        best = tl.where(up, v, best)
        sbest = tl.where(up, sk, sbest)
        kbest = tl.where(up, k, kbest)
    return best, sbest, kbest


@triton.jit
def _fwd(x_ptr, y_ptr, ps_ptr, pc_ptr, qs_ptr, qc_ptr, sc_ptr, of_ptr, C, R, N,
         K: tl.constexpr, SC: tl.constexpr, RATIONAL: tl.constexpr, BC: tl.constexpr,
         BR: tl.constexpr):
    c, cm, off, m = tile_offsets(C, R, N, BC, BR)
    x = tl.load(x_ptr + off, mask=m, other=0.0).to(tl.float32)
    e, _, _ = _envelope(x, ps_ptr, pc_ptr, c, cm, SC, K)
    if RATIONAL:
        eq, _, _ = _envelope(x, qs_ptr, qc_ptr, c, cm, SC, K)
        e = e - eq
    sc = tl.load(sc_ptr + c, mask=cm, other=0.0).to(tl.float32)[:, None]
    of = tl.load(of_ptr + c, mask=cm, other=0.0).to(tl.float32)[:, None]
    tl.store(y_ptr + off, (sc * e + of).to(y_ptr.dtype.element_ty), mask=m)


@triton.jit
def _sums(part, g, x, kbest, sign, cm, K: tl.constexpr, SLOPES: tl.constexpr):
    """Partial sums of sign g [k* = k] (and x times it) for every line k."""
    for k in tl.static_range(K):
        hit = tl.where(kbest == k, g, 0.0)
        tl.store(part + k, sign * tl.sum(hit, axis=1), mask=cm)
        if SLOPES:
            tl.store(part + K + k, sign * tl.sum(hit * x, axis=1), mask=cm)


@triton.jit
def _bwd(x_ptr, g_ptr, gx_ptr, part_ptr, ps_ptr, pc_ptr, qs_ptr, qc_ptr, sc_ptr, C, R, N,
         K: tl.constexpr, SC: tl.constexpr, RATIONAL: tl.constexpr, BC: tl.constexpr,
         BR: tl.constexpr):
    c, cm, off, m, x, g = tile_xg(x_ptr, g_ptr, C, R, N, BC, BR)
    sc = tl.load(sc_ptr + c, mask=cm, other=0.0).to(tl.float32)[:, None]
    gs = g * sc
    # per channel: [P: coeffs K (| slopes K)] [Q: the same] [scale] [offset]
    W: tl.constexpr = 2 * K if RATIONAL else K
    NP: tl.constexpr = (2 * W if RATIONAL else W) + 2
    part = part_ptr + (tl.program_id(0) * C + c) * NP
    e, sp, kp = _envelope(x, ps_ptr, pc_ptr, c, cm, SC, K)
    _sums(part, gs, x, kp, 1.0, cm, K, RATIONAL)
    slope = sp
    if RATIONAL:
        eq, sq, kq = _envelope(x, qs_ptr, qc_ptr, c, cm, SC, K)
        _sums(part + W, gs, x, kq, -1.0, cm, K, RATIONAL)
        e = e - eq
        slope = slope - sq
    tl.store(part + NP - 2, tl.sum(g * e, axis=1), mask=cm)
    tl.store(part + NP - 1, tl.sum(g, axis=1), mask=cm)
    tl.store(gx_ptr + off, (gs * slope).to(gx_ptr.dtype.element_ty), mask=m)


def _meta(x: Tensor, envs, channel_dim: int):
    """(layout, kernel constants, the four table pointers) for one or two envelopes."""
    (ps, pc), (qs, qc) = envs if len(envs) == 2 else (envs[0], envs[0])
    lay = layout(x, pc, channel_dim)
    meta = dict(K=pc.shape[-1], SC=ps.ndim == 2, RATIONAL=len(envs) == 2, BC=lay.BC, BR=lay.BR)
    return lay, meta, (ps.contiguous(), pc.contiguous(), qs.contiguous(), qc.contiguous())


def _forward(x, envs, scale, offset, channel_dim):
    lay, meta, tabs = _meta(x, envs, channel_dim)
    y = lay.x.new_empty(lay.x.shape)
    if x.numel():
        _fwd[lay.grid](lay.x, y, *tabs, scale.contiguous(), offset.contiguous(), lay.C, lay.R,
                       lay.N, **meta)
    return y.reshape(x.shape)


def _backward(x, envs, scale, grad, channel_dim):
    lay, meta, tabs = _meta(x, envs, channel_dim)
    K = meta["K"]
    W = 2 * K if meta["RATIONAL"] else K
    NP = (2 * W if meta["RATIONAL"] else W) + 2
    gx = lay.x.new_empty(lay.x.shape)
    part = lay.partials(NP)
    if x.numel():
        _bwd[lay.grid](lay.x, grad.contiguous(), gx, part, *tabs, scale.contiguous(), lay.C,
                       lay.R, lay.N, **meta)
    return gx.reshape(x.shape), part.sum(0)  # (C, NP)


def forward(x: Tensor, slopes: Tensor, coeffs: Tensor, scale: Tensor, offset: Tensor,
            channel_dim: int) -> Tensor:
    return _forward(x, [(slopes, coeffs)], scale, offset, channel_dim)


def backward(x: Tensor, slopes: Tensor, coeffs: Tensor, scale: Tensor, offset: Tensor,
             grad: Tensor, channel_dim: int) -> tuple[Tensor, ...]:
    gx, s = _backward(x, [(slopes, coeffs)], scale, grad, channel_dim)
    K = coeffs.shape[-1]
    return gx, s[:, :K].reshape(coeffs.shape), s[:, -2].reshape(scale.shape), \
        s[:, -1].reshape(offset.shape)


def rational_forward(x: Tensor, num_slopes: Tensor, num_coeffs: Tensor, den_slopes: Tensor,
                     den_coeffs: Tensor, scale: Tensor, offset: Tensor,
                     channel_dim: int) -> Tensor:
    return _forward(x, [(num_slopes, num_coeffs), (den_slopes, den_coeffs)], scale, offset,
                    channel_dim)


def rational_backward(x: Tensor, num_slopes: Tensor, num_coeffs: Tensor, den_slopes: Tensor,
                      den_coeffs: Tensor, scale: Tensor, offset: Tensor, grad: Tensor,
                      channel_dim: int) -> tuple[Tensor, ...]:
    gx, s = _backward(x, [(num_slopes, num_coeffs), (den_slopes, den_coeffs)], scale, grad,
                      channel_dim)
    K = num_coeffs.shape[-1]
    shp = num_coeffs.shape
    return (gx, s[:, K:2 * K].reshape(shp), s[:, :K].reshape(shp),
            s[:, 3 * K:4 * K].reshape(shp), s[:, 2 * K:3 * K].reshape(shp),
            s[:, -2].reshape(scale.shape), s[:, -1].reshape(offset.shape))
