r"""Fused Hermite op: saves only the input and the coefficients, recomputes in backward.

Reads top to bottom: CPU eager kernels (chunked, in-place), then the custom op (reference
and kernels per device, ops/_library.py), then the public entry point. Math lives in :mod:`learnact.functional.hermite`.

Derivatives: with h_k = He_k/k!, df/dx = sum_{k>=1} c_k h_{k-1} and df/dc_k = h_k.

Performance notes ((16, 256, 768) fp32, degree 8, 2 threads, ratios to F.gelu fwd+bwd in the
same run; see benchmarks/RESULTS.md for the current table):
* whole-tensor eager ops: ~18x GELU (each op streams 12.6 MB and allocates);
* chunked in-place kernels below: Clenshaw forward in 2 ops/degree, backward 4 ops/degree
  (recurrence 2, f' accumulate 1, dot 1) on cache-resident 128K-element blocks;
* torch.compile traces the plain functional path and inductor fuses it into one loop.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..functional.hermite import hermite, hermite_backward
from ._library import FamilyOp, Param
from ._chunks import as_bcr, axpy, coefficient_getter, scalar_tensor, slices

__all__ = ["hermite_op", "op"]


# --------------------------------------------------------------------------------------------
# CPU eager kernels
# --------------------------------------------------------------------------------------------


def _clenshaw_chunk(xs: Tensor, c, d: int, shift: int, out: Tensor, b1: Tensor,
                    b2: Tensor) -> None:
    """out = sum_{k=0}^{d-shift} c(k+shift) h_k(xs), 2 in-place ops per term."""
    n = d - shift  # highest basis index
    if n == 0:
        out.copy_(scalar_tensor(c(shift), xs).expand_as(xs))
        return
    if n == 1:
        torch.mul(xs, scalar_tensor(c(1 + shift), xs), out=out)
        out.add_(c(shift))
        return
    b1.copy_(scalar_tensor(c(n + shift), xs).expand_as(xs))
    b2.zero_()
    # b_k = c_k - b_{k+2}/(k+2) + x b_{k+1}/(k+1), written into the b_{k+2} buffer
    for k in range(n - 1, 0, -1):
        torch.add(scalar_tensor(c(k + shift), xs), b2, alpha=-1.0 / (k + 2), out=b2)
        b2.addcmul_(xs, b1, value=1.0 / (k + 1))
        b1, b2 = b2, b1
    # f = c_0 + x b_1 - b_2 / 2
    torch.add(scalar_tensor(c(shift), xs), b2, alpha=-0.5, out=out)
    out.addcmul_(xs, b1)


def _bounds(lo: Tensor | None, hi: Tensor | None, dtype: torch.dtype):
    if lo is None or hi is None:
        return None
    return (lo.detach().to(dtype).reshape(1, -1, 1), hi.detach().to(dtype).reshape(1, -1, 1))


def _forward_cpu(x: Tensor, coeffs: Tensor, lo: Tensor | None, hi: Tensor | None,
                 channel_dim: int) -> Tensor:
    dtype = x.dtype
    per_channel = coeffs.ndim == 2
    x3 = as_bcr(x, channel_dim, per_channel)
    out = torch.empty_like(x3)
    d = coeffs.shape[-1] - 1
    c = coefficient_getter(coeffs, dtype)
    bounds = _bounds(lo, hi, dtype)
    for bs, rs in slices(x3):
        xs, o = x3[bs, :, rs], out[bs, :, rs]
        b1, b2 = torch.empty_like(xs), torch.empty_like(xs)
        if bounds is None:
            _clenshaw_chunk(xs, c, d, 0, o, b1, b2)
            continue
        xc = torch.clamp(xs, bounds[0], bounds[1])
        _clenshaw_chunk(xc, c, d, 0, o, b1, b2)
        slope = torch.empty_like(xs)
        _clenshaw_chunk(xc, c, d, 1, slope, b1, b2)
        o.addcmul_(slope, xs - xc)
    return out.reshape(x.shape)


def _backward_cpu(x: Tensor, coeffs: Tensor, lo: Tensor | None, hi: Tensor | None,
                  grad: Tensor, channel_dim: int) -> tuple[Tensor, Tensor]:
    dtype = x.dtype
    per_channel = coeffs.ndim == 2
    x3 = as_bcr(x, channel_dim, per_channel)
    g3 = as_bcr(grad, channel_dim, per_channel)
    gx = torch.empty_like(x3)
    d = coeffs.shape[-1] - 1
    c = coefficient_getter(coeffs, dtype)
    bounds = _bounds(lo, hi, dtype)
    partial: list[Tensor] = []
    for bs, rs in slices(x3):
        xs, gs, o = x3[bs, :, rs], g3[bs, :, rs], gx[bs, :, rs]
        gd = None
        if bounds is not None:
            xc = torch.clamp(xs, bounds[0], bounds[1])
            gd = (xs - xc).mul_(gs)  # grad * (x - clamp(x)): weight of h_{k-1} in df/dc_k
            xs = xc

        if per_channel:
            tmp = torch.empty_like(xs)

            def reduce(a: Tensor, h: Tensor) -> Tensor:
                return torch.mul(a, h, out=tmp).sum(dim=(0, 2))
        else:
            def reduce(a: Tensor, h: Tensor) -> Tensor:
                return torch.dot(a.reshape(-1), h.reshape(-1))

        def full_sum(a: Tensor) -> Tensor:
            return a.sum(dim=(0, 2)) if per_channel else a.sum()

        sums = [full_sum(gs), reduce(gs, xs)]
        if gd is not None:
            sums[1] = sums[1] + full_sum(gd)
        # f' = c_1 h_0 + c_2 h_1 + ... ; o accumulates it, then is multiplied by the grad
        o.copy_(scalar_tensor(c(1), xs).expand_as(xs))
        if d >= 2:
            axpy(o, xs, c(2))
        h_prev = torch.ones_like(xs)  # h_0
        h = xs.clone()  # h_1, in a buffer of our own: the recurrence writes over old terms
        for k in range(1, d):
            # h_{k+1} = (x h_k - h_{k-1}) / (k+1), written over h_{k-1}'s buffer
            h_prev.mul_(-1.0 / (k + 1)).addcmul_(xs, h, value=1.0 / (k + 1))
            h_prev, h = h, h_prev
            term = reduce(gs, h)
            if gd is not None:
                term = term + reduce(gd, h_prev)
            sums.append(term)
            if k + 2 <= d:
                axpy(o, h, c(k + 2))
        o.mul_(gs)
        partial.append(torch.stack(sums, -1))
    gc = torch.stack(partial).sum(0)
    return gx.reshape(x.shape), gc


# --------------------------------------------------------------------------------------------
# the op: learnact::hermite / hermite_backward (ops/_library.py)
# --------------------------------------------------------------------------------------------

op = FamilyOp(
    "hermite",
    [Param("coeffs"), Param("lo", differentiable=False, optional=True),
     Param("hi", differentiable=False, optional=True)],
    lambda x, c, lo, hi, cd: hermite(x, c, cd, lo, hi),
    lambda x, c, lo, hi, grad, cd: hermite_backward(x, c, grad, cd, lo, hi),
    cpu_forward=_forward_cpu, cpu_backward=_backward_cpu, triton="learnact.ops.triton.hermite",
)


def hermite_op(x: Tensor, coeffs: Tensor, channel_dim: int = 1, lo: Tensor | None = None,
               hi: Tensor | None = None) -> Tensor:
    """Fused Hermite activation. coeffs: (d+1,) shared or (C, d+1) per channel along channel_dim.

    With ``lo``/``hi`` (shape () or (C,)), f continues C1-linearly outside [lo, hi].
    """
    return op(x, coeffs, lo, hi, channel_dim=channel_dim)
