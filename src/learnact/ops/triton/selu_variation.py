r"""Triton kernels of the SELU-variation op (the op: ops/selu_variation.py).

g = lam x (x > 0), lam (alpha (e^{beta x} - 1) + gamma sin(omega x)) (x <= 0, evaluated at
min(x, 0)); f = s g + t. Backward per element once: df/dx = s lam (1, or alpha beta E +
gamma omega cos(omega x)) and partial sums of the seven parameter gradients (see
functional/selu_variation.py for each derivative).
"""

from __future__ import annotations

import triton
import triton.language as tl
from torch import Tensor

from ._common import Layout, clipped_phase, sincos, tile_offsets, tile_xg

__all__ = ["forward", "backward"]


@triton.jit
def _p(ptr, c, cm):
    return tl.load(ptr + c, mask=cm, other=0.0).to(tl.float32)[:, None]


@triton.jit
def _fwd(x_ptr, y_ptr, la_ptr, al_ptr, be_ptr, ga_ptr, om_ptr, sc_ptr, of_ptr, C, R, N,
         BC: tl.constexpr, BR: tl.constexpr):
    c, cm, off, m = tile_offsets(C, R, N, BC, BR)
    x = tl.load(x_ptr + off, mask=m, other=0.0).to(tl.float32)
    xn = tl.minimum(x, 0.0)
    sn, _ = sincos(clipped_phase(xn, _p(om_ptr, c, cm)))
    neg = _p(al_ptr, c, cm) * (tl.exp(_p(be_ptr, c, cm) * xn) - 1.0) + _p(ga_ptr, c, cm) * sn
    g = _p(la_ptr, c, cm) * tl.where(x > 0, x, neg)
    y = _p(sc_ptr, c, cm) * g + _p(of_ptr, c, cm)
    tl.store(y_ptr + off, y.to(y_ptr.dtype.element_ty), mask=m)


@triton.jit
def _bwd(x_ptr, g_ptr, gx_ptr, part_ptr, la_ptr, al_ptr, be_ptr, ga_ptr, om_ptr, sc_ptr,
         C, R, N, BC: tl.constexpr, BR: tl.constexpr):
    c, cm, off, m, x, gr = tile_xg(x_ptr, g_ptr, C, R, N, BC, BR)
    la, al, be = _p(la_ptr, c, cm), _p(al_ptr, c, cm), _p(be_ptr, c, cm)
    ga, om = _p(ga_ptr, c, cm), _p(om_ptr, c, cm)
    pos = x > 0
    xn = tl.minimum(x, 0.0)
    e = tl.exp(be * xn)
    sn, cs = sincos(clipped_phase(xn, om))
    inner = tl.where(pos, x, al * (e - 1.0) + ga * sn)
    gs = gr * _p(sc_ptr, c, cm)
    part = part_ptr + (tl.program_id(0) * C + c) * 7
    tl.store(part + 0, tl.sum(gs * inner, axis=1), mask=cm)
    tl.store(part + 1, tl.sum(tl.where(pos, 0.0, gs * la * (e - 1.0)), axis=1), mask=cm)
    tl.store(part + 2, tl.sum(tl.where(pos, 0.0, gs * la * al * xn * e), axis=1), mask=cm)
    tl.store(part + 3, tl.sum(tl.where(pos, 0.0, gs * la * sn), axis=1), mask=cm)
    tl.store(part + 4, tl.sum(tl.where(pos, 0.0, gs * la * ga * xn * cs), axis=1), mask=cm)
    tl.store(part + 5, tl.sum(gr * la * inner, axis=1), mask=cm)
    tl.store(part + 6, tl.sum(gr, axis=1), mask=cm)
    dx = tl.where(pos, la, la * (al * be * e + ga * om * cs))
    tl.store(gx_ptr + off, (gs * dx).to(gx_ptr.dtype.element_ty), mask=m)


def _layout(x: Tensor, lam: Tensor, channel_dim: int) -> Layout:
    return Layout(x, lam.numel() if lam.ndim == 1 else 1, channel_dim)


def forward(x: Tensor, lam: Tensor, alpha: Tensor, beta: Tensor, gamma: Tensor, omega: Tensor,
            scale: Tensor, offset: Tensor, channel_dim: int) -> Tensor:
    lay = _layout(x, lam, channel_dim)
    y = lay.x.new_empty(lay.x.shape)
    if x.numel():
        _fwd[lay.grid](lay.x, y, *(p.contiguous() for p in (lam, alpha, beta, gamma, omega,
                                                             scale, offset)),
                       lay.C, lay.R, lay.N, BC=lay.BC, BR=lay.BR)
    return y.reshape(x.shape)


def backward(x: Tensor, lam: Tensor, alpha: Tensor, beta: Tensor, gamma: Tensor,
             omega: Tensor, scale: Tensor, offset: Tensor, grad: Tensor,
             channel_dim: int) -> tuple[Tensor, ...]:
    lay = _layout(x, lam, channel_dim)
    gx = lay.x.new_empty(lay.x.shape)
    part = lay.partials(7)
    params = (lam, alpha, beta, gamma, omega, scale, offset)
    if x.numel():
        _bwd[lay.grid](lay.x, grad.contiguous(), gx, part, *(p.contiguous() for p in params[:6]),
                       lay.C, lay.R, lay.N, BC=lay.BC, BR=lay.BR)
    s = part.sum(0)
    return (gx.reshape(x.shape), *(s[:, i].reshape(p.shape) for i, p in enumerate(params)))
