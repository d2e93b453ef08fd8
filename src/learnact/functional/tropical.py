r"""Tropical polynomial and tropical rational activations: pure math, no module state.

A tropical (max-plus) polynomial is the upper envelope of lines,

.. math::

    P(x) = \max_{k=0..d} (s_k x + c_k),

convex and piecewise linear. The activations are

.. math::

    f_{\mathrm{trop}}(x) = \alpha\,P(x) + \beta,\qquad
    f_{\mathrm{rat}}(x) = \alpha\,\bigl(P(x) - Q(x)\bigr) + \beta

(the "tropical rational function" P ⊘ Q is a difference in ordinary arithmetic).
For :class:`~learnact.Tropical` the slopes are the fixed integers s_k = k; the rational form
learns its slopes too. Ties pick the lowest index (a sub-gradient).

Tables ``slopes``/``coeffs`` are ``(d+1,)`` (shared) or ``(C, d+1)`` (per channel); ``scale``
and ``offset`` are ``()`` or ``(C,)``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..core import tropical as _core
from .._tensor import channel_view, column, reduce_to_channels

__all__ = [
    "envelope",
    "tropical",
    "tropical_rational",
    "envelope_backward",
    "tropical_backward",
    "tropical_rational_backward",
    "quantile_intercepts",
    "envelope_kinks",
]


def envelope(x: Tensor, slopes: Tensor, coeffs: Tensor, channel_dim: int = 1
             ) -> tuple[Tensor, Tensor]:
    """(max_k (s_k x + c_k), argmax k) with the first maximum on ties.

    The argmax is returned as a float tensor of x's dtype holding exact small integers: inductor
    vectorises float selects but falls back to scalar loops on int64 ones (measured 25-40x GELU
    compiled with an int64 index, against a few x with a float one).
    """
    nd = x.ndim
    best = x * column(slopes, 0, nd, channel_dim) + column(coeffs, 0, nd, channel_dim)
    idx = torch.zeros_like(best)
    for k in range(1, coeffs.shape[-1]):
        v = x * column(slopes, k, nd, channel_dim) + column(coeffs, k, nd, channel_dim)
        better = v > best
        best = torch.where(better, v, best)
        idx = torch.where(better, float(k), idx)
    return best, idx


def tropical(x: Tensor, slopes: Tensor, coeffs: Tensor, scale: Tensor, offset: Tensor,
             channel_dim: int = 1) -> Tensor:
    """f(x) = scale * max_k (slopes_k x + coeffs_k) + offset."""
    nd = x.ndim
    p, _ = envelope(x, slopes, coeffs, channel_dim)
    return channel_view(scale, nd, channel_dim) * p + channel_view(offset, nd, channel_dim)


def tropical_rational(x: Tensor, num_slopes: Tensor, num_coeffs: Tensor, den_slopes: Tensor,
                      den_coeffs: Tensor, scale: Tensor, offset: Tensor,
                      channel_dim: int = 1) -> Tensor:
    """f(x) = scale * (P(x) - Q(x)) + offset, P and Q tropical polynomials."""
    nd = x.ndim
    p, _ = envelope(x, num_slopes, num_coeffs, channel_dim)
    q, _ = envelope(x, den_slopes, den_coeffs, channel_dim)
    return channel_view(scale, nd, channel_dim) * (p - q) + channel_view(offset, nd, channel_dim)


def envelope_backward(x: Tensor, idx: Tensor, gs: Tensor, slopes: Tensor, per_channel: bool,
                      channel_dim: int, need_slopes: bool) -> tuple[Tensor, Tensor, Tensor | None]:
    """For upstream gs = grad * scale: (dL/dx, dL/dcoeffs, dL/dslopes or None).

    d envelope/dx = s_idx, d/dc_k = [idx == k], d/ds_k = x [idx == k].
    """
    nd = x.ndim
    gx = torch.zeros_like(x)
    gc, gsl = [], []
    for k in range(slopes.shape[-1]):
        hit = torch.where(idx == k, gs, 0.0)
        gx = gx + hit * column(slopes, k, nd, channel_dim)
        gc.append(reduce_to_channels(hit, per_channel, channel_dim))
        if need_slopes:
            gsl.append(reduce_to_channels(hit * x, per_channel, channel_dim))
    return gx, torch.stack(gc, -1), (torch.stack(gsl, -1) if need_slopes else None)


def tropical_backward(x: Tensor, slopes: Tensor, coeffs: Tensor, scale: Tensor, offset: Tensor,
                      grad: Tensor, channel_dim: int = 1
                      ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Gradients w.r.t. (x, coeffs, scale, offset); the integer slopes are fixed."""
    nd = x.ndim
    per_channel = coeffs.ndim == 2
    p, idx = envelope(x, slopes, coeffs, channel_dim)
    gx, gc, _ = envelope_backward(x, idx, grad * channel_view(scale, nd, channel_dim), slopes,
                                  per_channel, channel_dim, need_slopes=False)
    g_scale = reduce_to_channels(grad * p, per_channel, channel_dim)
    g_offset = reduce_to_channels(grad, per_channel, channel_dim)
    return gx, gc, g_scale, g_offset


def tropical_rational_backward(x: Tensor, num_slopes: Tensor, num_coeffs: Tensor,
                               den_slopes: Tensor, den_coeffs: Tensor, scale: Tensor,
                               offset: Tensor, grad: Tensor, channel_dim: int = 1
                               ) -> tuple[Tensor, ...]:
    """Gradients w.r.t. (x, num_slopes, num_coeffs, den_slopes, den_coeffs, scale, offset)."""
    nd = x.ndim
    per_channel = num_coeffs.ndim == 2
    p, ip = envelope(x, num_slopes, num_coeffs, channel_dim)
    q, iq = envelope(x, den_slopes, den_coeffs, channel_dim)
    gs = grad * channel_view(scale, nd, channel_dim)
    gxp, gcp, gsp = envelope_backward(x, ip, gs, num_slopes, per_channel, channel_dim, True)
    gxq, gcq, gsq = envelope_backward(x, iq, gs, den_slopes, per_channel, channel_dim, True)
    assert gsp is not None and gsq is not None
    g_scale = reduce_to_channels(grad * (p - q), per_channel, channel_dim)
    g_offset = reduce_to_channels(grad, per_channel, channel_dim)
    return gxp - gxq, gsp, gcp, -gsq, -gcq, g_scale, g_offset


def quantile_intercepts(slopes: Tensor) -> Tensor:
    """Intercepts that put the envelope's d breakpoints at the N(0,1) quantiles j/(d+1):
    c_0 = 0, c_k = c_{k-1} - b_k (s_k - s_{k-1}) (learnact.core.tropical). Every line is then
    active on 1/(d+1) of the Gaussian mass (the published init, all c_k = 1, leaves only the
    first and last line ever active)."""
    return torch.from_numpy(_core.quantile_intercepts(slopes.detach().double().cpu().numpy()))


def envelope_kinks(slopes: Tensor, coeffs: Tensor) -> Tensor:
    """Every candidate breakpoint (pairwise line intersection) of a (d+1,) envelope, sorted.

    A superset of the true breakpoints: fine for piecewise quadrature, which only needs every
    kink to be a panel edge.
    """
    s = slopes.detach().to(torch.float64).reshape(-1)
    c = coeffs.detach().to(torch.float64).reshape(-1)
    ds = s[:, None] - s[None, :]
    dc = c[None, :] - c[:, None]
    mask = ds.abs() > 1e-12
    pts = (dc[mask] / ds[mask])
    pts = pts[torch.isfinite(pts)]
    return torch.unique(pts)
