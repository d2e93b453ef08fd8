r"""Triton kernels of the Fourier op (the CPU kernels and the op: ops/fourier.py).

f(x) = a_0 + sum_k c_k cos(theta_k), theta_k = w_k x - phi_k. Backward, per element once:
df/dx = -sum_k c_k w_k sin theta_k, and the partial sums of g, g cos theta_k, g sin theta_k and
g x sin theta_k, from which dL/dc_k = sum g cos, dL/dw_k = -c_k sum g x sin,
dL/dphi_k = c_k sum g sin, dL/da_0 = sum g.
"""

from __future__ import annotations

import triton
import triton.language as tl
from torch import Tensor

from ._common import clipped_phase, layout, sincos, tile_offsets, tile_xg

__all__ = ["forward", "backward"]


@triton.jit
def _fwd(x_ptr, y_ptr, b_ptr, a_ptr, w_ptr, p_ptr, C, R, N, D: tl.constexpr,
         BC: tl.constexpr, BR: tl.constexpr):
    c, cm, off, m = tile_offsets(C, R, N, BC, BR)
    x = tl.load(x_ptr + off, mask=m, other=0.0).to(tl.float32)
    f = tl.zeros_like(x) + tl.load(b_ptr + c, mask=cm, other=0.0).to(tl.float32)[:, None]
    for k in tl.static_range(D):
        a = tl.load(a_ptr + c * D + k, mask=cm, other=0.0).to(tl.float32)[:, None]
        w = tl.load(w_ptr + c * D + k, mask=cm, other=0.0).to(tl.float32)[:, None]
        p = tl.load(p_ptr + c * D + k, mask=cm, other=0.0).to(tl.float32)[:, None]
        _, co = sincos(clipped_phase(x, w) - p)
        f += a * co
    tl.store(y_ptr + off, f.to(y_ptr.dtype.element_ty), mask=m)


@triton.jit
def _bwd(x_ptr, g_ptr, gx_ptr, part_ptr, a_ptr, w_ptr, p_ptr, C, R, N, D: tl.constexpr,
         BC: tl.constexpr, BR: tl.constexpr):
    c, cm, off, m, x, g = tile_xg(x_ptr, g_ptr, C, R, N, BC, BR)
    part = part_ptr + (tl.program_id(0) * C + c) * (1 + 3 * D)
    tl.store(part, tl.sum(g, axis=1), mask=cm)
    gxs = g * x
    df = tl.zeros_like(x)
    for k in tl.static_range(D):
        a = tl.load(a_ptr + c * D + k, mask=cm, other=0.0).to(tl.float32)[:, None]
        w = tl.load(w_ptr + c * D + k, mask=cm, other=0.0).to(tl.float32)[:, None]
        p = tl.load(p_ptr + c * D + k, mask=cm, other=0.0).to(tl.float32)[:, None]
        t = clipped_phase(x, w) - p
        s, co = sincos(t)
        df -= a * w * s
        tl.store(part + 1 + k, tl.sum(g * co, axis=1), mask=cm)
        tl.store(part + 1 + D + k, tl.sum(g * s, axis=1), mask=cm)
        tl.store(part + 1 + 2 * D + k, tl.sum(gxs * s, axis=1), mask=cm)
    tl.store(gx_ptr + off, (g * df).to(gx_ptr.dtype.element_ty), mask=m)


def forward(x: Tensor, bias: Tensor, amplitude: Tensor, frequency: Tensor, phase: Tensor,
            channel_dim: int) -> Tensor:
    lay = layout(x, amplitude, channel_dim)
    y = lay.x.new_empty(lay.x.shape)
    if x.numel():
        _fwd[lay.grid](lay.x, y, bias.contiguous(), amplitude.contiguous(),
                       frequency.contiguous(), phase.contiguous(), lay.C, lay.R, lay.N,
                       D=amplitude.shape[-1], BC=lay.BC, BR=lay.BR)
    return y.reshape(x.shape)


def backward(x: Tensor, bias: Tensor, amplitude: Tensor, frequency: Tensor, phase: Tensor,
             grad: Tensor, channel_dim: int) -> tuple[Tensor, ...]:
    lay = layout(x, amplitude, channel_dim)
    d = amplitude.shape[-1]
    gx = lay.x.new_empty(lay.x.shape)
    part = lay.partials(1 + 3 * d)
    a = amplitude.contiguous()
    if x.numel():
        _bwd[lay.grid](lay.x, grad.contiguous(), gx, part, a, frequency.contiguous(),
                       phase.contiguous(), lay.C, lay.R, lay.N, D=d, BC=lay.BC, BR=lay.BR)
    sums = part.sum(0)  # (C, 1 + 3D)
    g_cos, g_sin, g_xsin = sums[:, 1:].split(d, -1)
    af = a.float().reshape(-1, d)
    return (gx.reshape(x.shape), sums[:, 0].reshape(bias.shape), g_cos.reshape(a.shape),
            (-af * g_xsin).reshape(a.shape), (af * g_sin).reshape(a.shape))
