r"""Tropical (max-plus) families.

P(x) = max_k (s_k x + c_k), the upper envelope of lines (ties pick the lowest index);
tropical: f = alpha P(x) + beta with fixed slopes s_k = k; tropical rational:
f = alpha (P(x) - Q(x)) + beta with learnable slopes on both envelopes.

Source: I. Khalfaoui-Hassani and S. Kesselheim, arXiv:2502.01247 (2025).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from statistics import NormalDist
from typing import Any

import numpy as np

from ._xp import channel_view, column
from .quadrature import expectations, unit_scale_offset

__all__ = ["envelope", "tropical", "tropical_rational", "envelope_slope", "quantile_intercepts",
           "envelope_kinks", "tropical_init", "tropical_rational_init", "INITS",
           "RATIONAL_NAMES"]

INITS = ("unit", "paper", "published")
RATIONAL_NAMES = ("num_slopes", "num_coeffs", "den_slopes", "den_coeffs", "scale", "offset")


def envelope(xp: Any, x: Any, slopes: Any, coeffs: Any, channel_dim: int = -1) -> Any:
    """max_k (s_k x + c_k), the first maximum on ties (its line gets the gradient)."""
    nd = len(x.shape)
    best = x * column(xp, slopes, 0, nd, channel_dim) + column(xp, coeffs, 0, nd, channel_dim)
    for k in range(1, coeffs.shape[-1]):
        v = x * column(xp, slopes, k, nd, channel_dim) + column(xp, coeffs, k, nd, channel_dim)
        best = xp.where(v > best, v, best)
    return best


def tropical(xp: Any, x: Any, slopes: Any, coeffs: Any, scale: Any, offset: Any,
             channel_dim: int = -1) -> Any:
    """f(x) = scale max_k (slopes_k x + coeffs_k) + offset."""
    nd = len(x.shape)
    return (channel_view(xp, scale, nd, channel_dim)
            * envelope(xp, x, slopes, coeffs, channel_dim)
            + channel_view(xp, offset, nd, channel_dim))


def tropical_rational(xp: Any, x: Any, num_slopes: Any, num_coeffs: Any, den_slopes: Any,
                      den_coeffs: Any, scale: Any, offset: Any, channel_dim: int = -1) -> Any:
    """f(x) = scale (P(x) - Q(x)) + offset with P, Q max-plus envelopes."""
    nd = len(x.shape)
    diff = (envelope(xp, x, num_slopes, num_coeffs, channel_dim)
            - envelope(xp, x, den_slopes, den_coeffs, channel_dim))
    return (channel_view(xp, scale, nd, channel_dim) * diff
            + channel_view(xp, offset, nd, channel_dim))


def envelope_slope(x: np.ndarray, slopes: np.ndarray, coeffs: np.ndarray) -> np.ndarray:
    """Slope of the active line (first argmax) at each x (numpy, shared tables)."""
    lines = x[..., None] * slopes + coeffs
    return slopes[np.argmax(lines, axis=-1)]


def quantile_intercepts(slopes: np.ndarray) -> np.ndarray:
    """Intercepts that put the envelope's d breakpoints at the N(0,1) quantiles j/(d+1):
    c_0 = 0, c_k = c_{k-1} - b_k (s_k - s_{k-1}) with b_k = Phi^{-1}(k/(d+1))."""
    s = np.asarray(slopes, dtype=np.float64)
    d = s.shape[-1] - 1
    inv = NormalDist().inv_cdf
    c = np.zeros(d + 1)
    for k in range(1, d + 1):
        c[k] = c[k - 1] - inv(k / (d + 1)) * (s[k] - s[k - 1])
    return c


def envelope_kinks(slopes: np.ndarray, coeffs: np.ndarray) -> np.ndarray:
    """Every pairwise line intersection of a (d+1,) envelope, sorted (a superset of its
    breakpoints: enough for piecewise quadrature)."""
    s = np.asarray(slopes, dtype=np.float64).reshape(-1)
    c = np.asarray(coeffs, dtype=np.float64).reshape(-1)
    ds = s[:, None] - s[None, :]
    dc = c[None, :] - c[:, None]
    mask = np.abs(ds) > 1e-12
    pts = dc[mask] / ds[mask]
    return np.unique(pts[np.isfinite(pts)])


def tropical_init(degree: int = 8, init: str = "unit") -> dict[str, np.ndarray]:
    """``coeffs``, ``scale``, ``offset`` (slopes are 0..d): "unit" puts the breakpoints at the
    Gaussian quantiles and takes alpha, beta from the general route; "paper": c_k = 1,
    alpha = sqrt(2)/d, beta = 0."""
    slopes = np.arange(degree + 1, dtype=np.float64)
    if init in ("paper", "published"):
        return {"coeffs": np.ones(degree + 1), "scale": np.array(math.sqrt(2.0) / degree),
                "offset": np.array(0.0)}
    c = quantile_intercepts(slopes)
    one, zero = np.float64(1.0), np.float64(0.0)
    s, t = unit_scale_offset(expectations(
        lambda z: (tropical(np, z, slopes, c, one, zero), envelope_slope(z, slopes, c)),
        envelope_kinks(slopes, c)))
    return {"coeffs": c, "scale": np.array(s), "offset": np.array(t)}


def tropical_rational_init(degree: int = 4, init: str = "unit",
                           normal: Callable[[tuple[int, ...]], np.ndarray] | None = None
                           ) -> dict[str, np.ndarray]:
    """"unit": p_k = k, q_k = k/2, both breakpoint sets at the Gaussian quantiles, scaled to
    unit moments; "paper": the four tables i.i.d. N(0, 1) drawn by ``normal(shape)`` (the
    frontend's seeded generator), scale 1, offset 0."""
    if init in ("paper", "published"):
        if normal is None:
            raise ValueError("init='paper' draws the tables at random: pass normal=")
        return {k: np.asarray(normal((degree + 1,)), dtype=np.float64)
                for k in RATIONAL_NAMES[:4]} | {"scale": np.array(1.0), "offset": np.array(0.0)}
    p = np.arange(degree + 1, dtype=np.float64)
    q = p / 2
    a, b = quantile_intercepts(p), quantile_intercepts(q)
    one, zero = np.float64(1.0), np.float64(0.0)
    s, t = unit_scale_offset(expectations(
        lambda z: (tropical_rational(np, z, p, a, q, b, one, zero),
                   envelope_slope(z, p, a) - envelope_slope(z, q, b)),
        np.concatenate([envelope_kinks(p, a), envelope_kinks(q, b)])))
    return {"num_slopes": p, "num_coeffs": a, "den_slopes": q, "den_coeffs": b,
            "scale": np.array(s), "offset": np.array(t)}
