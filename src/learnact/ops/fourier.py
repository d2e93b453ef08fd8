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

from .._tensor import compute_dtype, use_fast_cpu_path
from ..functional.fourier import fourier, fourier_backward
from ._chunks import as_bcr, axpy, cast_grads, coefficient_getter, scalar_tensor, slices

__all__ = ["fourier_op", "FourierFunction"]


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


class FourierFunction(torch.autograd.Function):
    """f(x) = a_0 + sum_k c_k cos(w_k x - phi_k); saves (x, params) only."""

    @staticmethod
    def forward(ctx, x: Tensor, bias: Tensor, amp: Tensor, freq: Tensor, phase: Tensor,  # type: ignore[override]
                channel_dim: int) -> Tensor:
        ctx.save_for_backward(x, bias, amp, freq, phase)
        ctx.channel_dim = channel_dim
        params = (bias, amp, freq, phase)
        dtype = compute_dtype(x, *params)
        if use_fast_cpu_path(x):
            y = _forward_cpu(x, params, channel_dim, dtype)
        else:
            y = fourier(x.to(dtype), *(t.to(dtype) for t in params), channel_dim=channel_dim)
        return y.to(x.dtype)

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        x, *params = ctx.saved_tensors
        dtype = compute_dtype(x, *params)
        if use_fast_cpu_path(x):
            grads = _backward_cpu(x, tuple(params), grad, ctx.channel_dim, dtype)
        else:
            grads = fourier_backward(x.to(dtype), *(t.to(dtype) for t in params),
                                     grad=grad.to(dtype), channel_dim=ctx.channel_dim)
        return (*cast_grads(ctx.needs_input_grad, grads, (x, *params)), None)


def fourier_op(x: Tensor, bias: Tensor, amplitude: Tensor, frequency: Tensor, phase: Tensor,
               channel_dim: int = 1) -> Tensor:
    """Fused Fourier activation; parameter shapes as in :func:`learnact.functional.fourier.fourier`."""
    return FourierFunction.apply(x, bias, amplitude, frequency, phase, channel_dim)
