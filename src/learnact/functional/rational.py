r"""Rational (Padé) activation with the safe denominator: pure math.

.. math::

    f(x) = s\,\frac{P(x)}{Q(x)} + t,\qquad P(x) = \sum_{i=0}^{n} a_i x^i,\qquad
    Q(x) = 1 + \Bigl|\sum_{j=1}^{m} b_j x^j\Bigr| \;\ge 1

so f has no poles. With A = sum_j b_j x^j and sigma = sign(A) (0 at A = 0):
df/da_i = x^i / Q, df/db_j = -sigma x^j P / Q^2, df/dx = P'/Q - sigma A' P / Q^2.

Evaluated scaled, so that nothing overflows before f does (x^5 overflows float32 from
|x| ~ 4e7, while f ~ (a_5/|b_4|) x): with S = max(1, |x|), r = 1/S and u = x r (|u|, r <= 1),
the homogeneous Horner sums N = S^-n P(x) = sum a_i u^i r^(n-i) and
B = S^-m A(x) = sum b_j u^j r^(m-j) give

    f = s S^(n-m) N / D + t,  D = r^m + |B|  (= S^-m Q),
    df/dx = s S^(n-m-1) (N' D - sign(B) B' N) / D^2   (N', B': d/du),
    df/da_i = u^i S^(i-m) / D,   df/db_j = -sign(B) N u^j S^(n+j-2m) / D^2,

equal to the plain formulas for |x| <= 1 (S = r = 1, u = x: the same operations).
"""

from __future__ import annotations

import torch
from torch import Tensor

from .._tensor import channel_view, column, reduce_to_channels

__all__ = ["rational", "rational_backward"]


def _scaled(x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """(S, r, u): S = max(1, |x|), r = 1/S, u = x r = x clipped to [-1, 1] (computed so: r is
    subnormal from |x| = 2^126, flushed to 0 where subnormals are, e.g. XLA's CPU threads)."""
    big = x.abs().clamp_min(1.0)
    r = 1.0 / big
    return big, r, x.clamp(-1.0, 1.0)


def _horner(u: Tensor, r: Tensor, coeffs: Tensor, cd: int, start: int = 0
            ) -> tuple[Tensor, Tensor]:
    """(sum_i c_i u^(i+start) r^(K-1-i), its derivative in u) by Horner's rule, K the
    number of coefficients; coeffs[..., i] <-> x^(i+start). With r = 1: the plain sum in u."""
    nd = u.ndim
    n = coeffs.shape[-1]
    val = column(coeffs, n - 1, nd, cd) + torch.zeros_like(u)
    der = torch.zeros_like(u)
    rk = torch.ones_like(r)
    for k in range(n - 2, -1, -1):
        rk = rk * r
        der = der * u + val
        val = val * u + column(coeffs, k, nd, cd) * rk
    if start:  # multiply by u^start (start = 1 for the denominator)
        der = der * u + val
        val = val * u
    return val, der


def _power(big: Tensor, r: Tensor, e: int) -> Tensor:
    """S^e for an integer e of either sign."""
    return big ** e if e >= 0 else r ** (-e)


def rational(x: Tensor, num: Tensor, den: Tensor, scale: Tensor, offset: Tensor,
             channel_dim: int = 1) -> Tensor:
    """f(x) = scale P(x) / (1 + |A(x)|) + offset; num: coefficients of x^0..x^n, den of x^1..x^m."""
    big, r, u = _scaled(x)
    n, m = num.shape[-1] - 1, den.shape[-1]
    p, _ = _horner(u, r, num, channel_dim)
    a, _ = _horner(u, r, den, channel_dim, start=1)
    nd = x.ndim
    return channel_view(scale, nd, channel_dim) * (
        _power(big, r, n - m) * p / (r ** m + a.abs())) + channel_view(offset, nd, channel_dim)


def rational_backward(x: Tensor, num: Tensor, den: Tensor, scale: Tensor, offset: Tensor,
                      grad: Tensor, channel_dim: int = 1) -> tuple[Tensor, ...]:
    """Gradients w.r.t. (x, num, den, scale, offset), reduced over non-channel dims."""
    per_channel = num.ndim == 2
    g_offset = reduce_to_channels(grad, per_channel, channel_dim)
    s = channel_view(scale, x.ndim, channel_dim)
    grad_raw = grad
    grad = grad * s
    big, r, u = _scaled(x)
    n, m = num.shape[-1] - 1, den.shape[-1]
    p, dp = _horner(u, r, num, channel_dim)
    a, da = _horner(u, r, den, channel_dim, start=1)
    inv_d = 1.0 / (r ** m + a.abs())
    sig = torch.sign(a)
    gd = grad * inv_d
    gx = gd * _power(big, r, n - m - 1) * (dp - sig * da * p * inv_d)
    gnum, gden = [], []
    gb = -gd * sig * p * inv_d
    for i in range(n + 1):
        gnum.append(reduce_to_channels(gd * u ** i * _power(big, r, i - m), per_channel,
                                       channel_dim))
    for j in range(1, m + 1):
        gden.append(reduce_to_channels(gb * u ** j * _power(big, r, n + j - 2 * m),
                                       per_channel, channel_dim))
    g_scale = reduce_to_channels(grad_raw * _power(big, r, n - m) * p * inv_d, per_channel,
                                 channel_dim)
    return gx, torch.stack(gnum, -1), torch.stack(gden, -1), g_scale, g_offset
