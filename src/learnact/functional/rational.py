r"""Rational (Padé) activation with the safe denominator: pure math.

.. math::

    f(x) = s\,\frac{P(x)}{Q(x)} + t,\qquad P(x) = \sum_{i=0}^{n} a_i x^i,\qquad
    Q(x) = 1 + \Bigl|\sum_{j=1}^{m} b_j x^j\Bigr| \;\ge 1

so f has no poles. With A = sum_j b_j x^j and sigma = sign(A) (0 at A = 0):
df/da_i = x^i / Q, df/db_j = -sigma x^j P / Q^2, df/dx = P'/Q - sigma A' P / Q^2.
Polynomials are evaluated by Horner's rule (the default degrees (5, 4) are low enough for the
monomial basis; the Padé form itself is defined in it).
"""

from __future__ import annotations

import torch
from torch import Tensor

from .._tensor import channel_view, column, reduce_to_channels

__all__ = ["rational", "rational_backward"]


def _horner(x: Tensor, coeffs: Tensor, cd: int, start: int = 0) -> tuple[Tensor, Tensor]:
    """(sum_{i>=start} c_i x^i, its derivative) by Horner's rule; coeffs[..., k] <-> x^(k+start)."""
    nd = x.ndim
    n = coeffs.shape[-1]
    val = column(coeffs, n - 1, nd, cd) + torch.zeros_like(x)
    der = torch.zeros_like(x)
    for k in range(n - 2, -1, -1):
        der = der * x + val
        val = val * x + column(coeffs, k, nd, cd)
    if start:  # multiply by x^start (start = 1 for the denominator)
        der = der * x + val
        val = val * x
    return val, der


def rational(x: Tensor, num: Tensor, den: Tensor, scale: Tensor, offset: Tensor,
             channel_dim: int = 1) -> Tensor:
    """f(x) = scale P(x) / (1 + |A(x)|) + offset; num: coefficients of x^0..x^n, den of x^1..x^m."""
    p, _ = _horner(x, num, channel_dim)
    a, _ = _horner(x, den, channel_dim, start=1)
    nd = x.ndim
    return channel_view(scale, nd, channel_dim) * (p / (1.0 + a.abs())) + channel_view(
        offset, nd, channel_dim)


def rational_backward(x: Tensor, num: Tensor, den: Tensor, scale: Tensor, offset: Tensor,
                      grad: Tensor, channel_dim: int = 1) -> tuple[Tensor, ...]:
    """Gradients w.r.t. (x, num, den, scale, offset), reduced over non-channel dims."""
    per_channel = num.ndim == 2
    g_offset = reduce_to_channels(grad, per_channel, channel_dim)
    s = channel_view(scale, x.ndim, channel_dim)
    grad_raw = grad
    grad = grad * s
    p, dp = _horner(x, num, channel_dim)
    a, da = _horner(x, den, channel_dim, start=1)
    q = 1.0 + a.abs()
    sig = torch.sign(a)
    inv_q = 1.0 / q
    gq = grad * inv_q
    gx = gq * (dp - sig * da * p * inv_q)
    gnum, gden = [], []
    xp = torch.ones_like(x)
    gb = -gq * sig * p * inv_q
    for i in range(num.shape[-1]):
        gnum.append(reduce_to_channels(gq * xp, per_channel, channel_dim))
        xp = xp * x
    xp = x
    for j in range(den.shape[-1]):
        gden.append(reduce_to_channels(gb * xp, per_channel, channel_dim))
        xp = xp * x
    g_scale = reduce_to_channels(grad_raw * p * inv_q, per_channel, channel_dim)
    return gx, torch.stack(gnum, -1), torch.stack(gden, -1), g_scale, g_offset
