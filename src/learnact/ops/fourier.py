r"""Fused Fourier op: saves only the input and the parameters, recomputes in backward.

Math and derivatives: :mod:`learnact.functional.fourier`. With theta_k = w_k x - phi_k:
df/dx = -sum_k c_k w_k sin theta_k; df/dc_k = cos theta_k; df/dw_k = -c_k x sin theta_k;
df/dphi_k = c_k sin theta_k; df/da_0 = 1.

The CPU eager kernel runs on cache-resident chunks and reduces the three per-term parameter
gradients with dot products (no full-size temporaries).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..functional.fourier import fourier, fourier_backward
from ._chunks import as_bcr, axpy, coefficient_getter, scalar_tensor, slices
from ._library import FamilyOp, Param

__all__ = ["fourier_op", "op"]


def _forward_cpu(x: Tensor, params: tuple[Tensor, ...], channel_dim: int,
                 dtype: torch.dtype) -> Tensor:
    bias, amp, freq, phase = params
    per_channel = amp.ndim == 2
    x3 = as_bcr(x.to(dtype), channel_dim, per_channel)
    out = torch.empty_like(x3)
    a0 = coefficient_getter(bias.reshape(-1, 1) if per_channel else bias.reshape(1), dtype)
    c, w, p = (coefficient_getter(t, dtype) for t in (amp, freq, phase))
    for bs, rs in slices(x3):
        xs, o = x3[bs, :, rs], out[bs, :, rs]
        theta = torch.empty_like(xs)
        o.copy_(scalar_tensor(a0(0), xs).expand_as(xs))
        for k in range(amp.shape[-1]):
            torch.mul(xs, scalar_tensor(w(k), xs), out=theta)
            theta.sub_(p(k)).cos_()
            axpy(o, theta, c(k))
    return out.reshape(x.shape)


def _backward_cpu(x: Tensor, params: tuple[Tensor, ...], grad: Tensor, channel_dim: int,
                  dtype: torch.dtype) -> tuple[Tensor, ...]:
    bias, amp, freq, phase = params
    per_channel = amp.ndim == 2
    x3 = as_bcr(x.to(dtype), channel_dim, per_channel)
    g3 = as_bcr(grad.to(dtype), channel_dim, per_channel)
    gx = torch.empty_like(x3)
    c, w, p = (coefficient_getter(t, dtype) for t in (amp, freq, phase))
    d = amp.shape[-1]
    parts: list[list[Tensor]] = []
    for bs, rs in slices(x3):
        xs, gs, o = x3[bs, :, rs], g3[bs, :, rs], gx[bs, :, rs]
        theta, s, gxs = (torch.empty_like(xs) for _ in range(3))
        torch.mul(gs, xs, out=gxs)  # g * x, reused for every frequency gradient
        if per_channel:
            tmp = torch.empty_like(xs)

            def red(a: Tensor, b: Tensor) -> Tensor:
                return torch.mul(a, b, out=tmp).sum(dim=(0, 2))
        else:
            def red(a: Tensor, b: Tensor) -> Tensor:
                return torch.dot(a.reshape(-1), b.reshape(-1))
        g_amp, g_sin, g_xsin = [], [], []
        o.zero_()
        for k in range(d):
            torch.mul(xs, scalar_tensor(w(k), xs), out=theta)
            theta.sub_(p(k))
            torch.sin(theta, out=s)
            theta.cos_()
            g_amp.append(red(gs, theta))
            g_sin.append(red(gs, s))
            g_xsin.append(red(gxs, s))
            ck, wk = c(k), w(k)
            axpy(o, s, -ck * wk)
        o.mul_(gs)
        gb = gs.sum(dim=(0, 2)) if per_channel else gs.sum()
        gsin = torch.stack(g_sin, -1)
        gxsin = torch.stack(g_xsin, -1)
        parts.append([gb, torch.stack(g_amp, -1), gsin, gxsin])
    gb = torch.stack([q[0] for q in parts]).sum(0)
    ga = torch.stack([q[1] for q in parts]).sum(0)
    gsin = torch.stack([q[2] for q in parts]).sum(0)
    gxsin = torch.stack([q[3] for q in parts]).sum(0)
    ampd = amp.detach().to(dtype)
    # df/dw_k = -c_k x sin, df/dphi_k = c_k sin
    return gx.reshape(x.shape), gb, ga, -ampd * gxsin, ampd * gsin


# the op: learnact::fourier / fourier_backward (ops/_library.py)
op = FamilyOp(
    "fourier", [Param("bias"), Param("amplitude"), Param("frequency"), Param("phase")],
    fourier, fourier_backward,
    cpu_forward=lambda x, *ps: _forward_cpu(x, ps[:-1], ps[-1], x.dtype),
    cpu_backward=lambda x, *ps: _backward_cpu(x, ps[:-2], ps[-2], ps[-1], x.dtype),
    triton="learnact.ops.triton.fourier",
)


def fourier_op(x: Tensor, bias: Tensor, amplitude: Tensor, frequency: Tensor, phase: Tensor,
               channel_dim: int = 1) -> Tensor:
    """Fused Fourier activation; parameter shapes as in :func:`learnact.functional.fourier.fourier`."""
    return op(x, bias, amplitude, frequency, phase, channel_dim=channel_dim)
