r"""Fused tropical polynomial / tropical rational ops: save only the input and the parameters.

Math: :mod:`learnact.functional.tropical`. d max_k(s_k x + c_k)/dx = s_idx, d/dc_k = [idx == k],
d/ds_k = x [idx == k], with idx the (first) argmax.

The CPU eager kernel runs a running ``maximum`` over the d+1 lines of a cache-resident chunk
(2 ops per line forward); backward tracks the first argmax as a float and reduces the
parameter gradients with dot products against float masks (see the measurements below).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..functional.tropical import (
    tropical,
    tropical_backward,
    tropical_rational,
    tropical_rational_backward,
)
from ._chunks import as_bcr, axpy, coefficient_getter, scalar_tensor, slices
from ._library import FamilyOp, Param

__all__ = ["tropical_op", "tropical_rational_op", "op", "rational_op"]


# --------------------------------------------------------------------------------------------
# CPU eager kernels
# --------------------------------------------------------------------------------------------
# Measured per 128K-element fp32 chunk, 2 threads: float elementwise ops ~10 us; bool-output
# comparisons ~40 us, masked_fill_ ~380 us, where ~270 us, index_add_/bincount ~150 us.
# So the argmax is tracked as a float (k_best += [v > best] * (k - k_best)) and every
# reduction is a dot product with a float mask.


def _envelope_chunk(xs: Tensor, s, c, n: int, best: Tensor, kbest: Tensor | None,
                    v: Tensor, m: Tensor) -> None:
    """best = max_k (s_k x + c_k); kbest (if given) = first argmax as a float."""
    torch.mul(xs, scalar_tensor(s(0), xs), out=best)
    best.add_(c(0))
    if kbest is not None:
        kbest.zero_()
    for k in range(1, n):
        torch.mul(xs, scalar_tensor(s(k), xs), out=v)
        v.add_(c(k))
        if kbest is not None:
            torch.gt(v, best, out=m)
            torch.maximum(best, v, out=best)
            torch.sub(kbest, k, out=v)  # k_best - k
            kbest.addcmul_(m, v, value=-1.0)
        else:
            torch.maximum(best, v, out=best)


def _forward_cpu(x: Tensor, envelopes: list[tuple[Tensor, Tensor]], scale: Tensor,
                 offset: Tensor, channel_dim: int, dtype: torch.dtype) -> Tensor:
    per_channel = envelopes[0][1].ndim == 2
    x3 = as_bcr(x.to(dtype), channel_dim, per_channel)
    out = torch.empty_like(x3)
    getters = [(_getter(sl, co, dtype), co.shape[-1]) for sl, co in envelopes]
    sc = scale.detach().to(dtype).reshape(1, -1, 1)
    of = offset.detach().to(dtype).reshape(1, -1, 1)
    for bs, rs in slices(x3):
        xs, o = x3[bs, :, rs], out[bs, :, rs]
        v, tmp = torch.empty_like(xs), torch.empty_like(xs)
        (s, c), n = getters[0]
        _envelope_chunk(xs, s, c, n, o, None, v, v)
        if len(getters) == 2:
            (s, c), n = getters[1]
            _envelope_chunk(xs, s, c, n, tmp, None, v, v)
            o.sub_(tmp)
        o.mul_(sc).add_(of)
    return out.reshape(x.shape)


def _getter(slopes: Tensor, coeffs: Tensor, dtype: torch.dtype):
    per_channel = coeffs.ndim == 2
    if per_channel and slopes.ndim == 1:
        slopes = slopes.expand_as(coeffs)
    return coefficient_getter(slopes, dtype), coefficient_getter(coeffs, dtype)


def _backward_cpu(x: Tensor, envelopes: list[tuple[Tensor, Tensor]], scale: Tensor,
                  grad: Tensor, channel_dim: int, dtype: torch.dtype, need_slopes: bool):
    """Returns gx, [(g_slopes|None, g_coeffs) per envelope], g_scale, g_offset."""
    per_channel = envelopes[0][1].ndim == 2
    x3 = as_bcr(x.to(dtype), channel_dim, per_channel)
    g3 = as_bcr(grad.to(dtype), channel_dim, per_channel)
    gx = torch.empty_like(x3)
    getters = [(_getter(sl, co, dtype), co.shape[-1]) for sl, co in envelopes]
    sc = scale.detach().to(dtype).reshape(1, -1, 1)
    sign = [1.0, -1.0]
    parts: list[list[Tensor]] = []
    for bs, rs in slices(x3):
        xs, gs, o = x3[bs, :, rs], g3[bs, :, rs], gx[bs, :, rs]
        best, kbest, v, m = (torch.empty_like(xs) for _ in range(4))
        gsc = gs * sc
        gscx = gsc * xs if need_slopes else None
        if per_channel:
            tmp = torch.empty_like(xs)

            def red(a: Tensor, b: Tensor) -> Tensor:
                return torch.mul(a, b, out=tmp).sum(dim=(0, 2))
        else:
            def red(a: Tensor, b: Tensor) -> Tensor:
                return torch.dot(a.reshape(-1), b.reshape(-1))
        env_total = torch.zeros_like(xs)
        o.zero_()
        chunk_parts: list[Tensor] = []
        for e, ((s, c), n) in enumerate(getters):
            _envelope_chunk(xs, s, c, n, best, kbest, v, m)
            env_total.add_(best, alpha=sign[e])
            gc, gsl = [], []
            for k in range(n):
                torch.eq(kbest, k, out=m)
                sk = s(k)
                axpy(o, m, sk * sign[e] if not isinstance(sk, Tensor) else sk * sign[e])
                gc.append(red(gsc, m) * sign[e])
                if gscx is not None:
                    gsl.append(red(gscx, m) * sign[e])
            chunk_parts.append(torch.stack(gsl, -1) if gsl else torch.zeros(()))
            chunk_parts.append(torch.stack(gc, -1))
        o.mul_(gsc)
        chunk_parts.append(red(gs, env_total))
        chunk_parts.append(gs.sum(dim=(0, 2)) if per_channel else gs.sum())
        parts.append(chunk_parts)
    summed = [torch.stack([p[i] for p in parts]).sum(0) for i in range(len(parts[0]))]
    per_env = [(summed[2 * e] if need_slopes else None, summed[2 * e + 1])
               for e in range(len(getters))]
    return gx.reshape(x.shape), per_env, summed[-2], summed[-1]


# --------------------------------------------------------------------------------------------
# the ops: learnact::tropical(_backward), learnact::tropical_rational(_backward)
# --------------------------------------------------------------------------------------------


def _tropical_cpu_backward(x, slopes, coeffs, scale, offset, grad, channel_dim):
    gx, envs, gsc, gof = _backward_cpu(x, [(slopes, coeffs)], scale, grad, channel_dim, x.dtype,
                                       need_slopes=False)
    return gx, envs[0][1], gsc, gof


def _rational_cpu_backward(x, ns, nc, ds, dc, scale, offset, grad, channel_dim):
    gx, envs, gsc, gof = _backward_cpu(x, [(ns, nc), (ds, dc)], scale, grad, channel_dim,
                                       x.dtype, need_slopes=True)
    return gx, envs[0][0], envs[0][1], envs[1][0], envs[1][1], gsc, gof


op = FamilyOp(
    "tropical",
    [Param("slopes", differentiable=False), Param("coeffs"), Param("scale"), Param("offset")],
    tropical, tropical_backward,
    cpu_forward=lambda x, sl, co, sc, of, cd: _forward_cpu(x, [(sl, co)], sc, of, cd, x.dtype),
    cpu_backward=_tropical_cpu_backward, triton="learnact.ops.triton.tropical",
)

rational_op = FamilyOp(
    "tropical_rational",
    [Param("num_slopes"), Param("num_coeffs"), Param("den_slopes"), Param("den_coeffs"),
     Param("scale"), Param("offset")],
    tropical_rational, tropical_rational_backward,
    cpu_forward=lambda x, ns, nc, ds, dc, sc, of, cd: _forward_cpu(
        x, [(ns, nc), (ds, dc)], sc, of, cd, x.dtype),
    cpu_backward=_rational_cpu_backward, triton="learnact.ops.triton.tropical:rational",
)


def tropical_op(x: Tensor, slopes: Tensor, coeffs: Tensor, scale: Tensor, offset: Tensor,
                channel_dim: int = 1) -> Tensor:
    """Fused tropical polynomial activation (slopes are not differentiated)."""
    return op(x, slopes, coeffs, scale, offset, channel_dim=channel_dim)


def tropical_rational_op(x: Tensor, num_slopes: Tensor, num_coeffs: Tensor, den_slopes: Tensor,
                         den_coeffs: Tensor, scale: Tensor, offset: Tensor,
                         channel_dim: int = 1) -> Tensor:
    """Fused tropical rational activation (all parameters differentiable)."""
    return rational_op(x, num_slopes, num_coeffs, den_slopes, den_coeffs, scale, offset,
                       channel_dim=channel_dim)
