r"""Exact Gaussian expectations in float64 (numpy), and the general unit route.

For z ~ N(0, 1): ``E[f]``, ``E[f^2]``, ``E[f'^2]`` and ``V'(1) = E[z f f']`` (Stein's lemma;
``V(q) = E[f(sqrt(q) z)^2]`` is the variance map of a plain layer). Composite Gauss-Legendre
quadrature of the Gaussian density on [-12, 12] (mass outside: 2e-33), panels of width <= 0.5,
a panel edge at every kink of f', 24 nodes per panel: float64-exact for piecewise-smooth f,
unlike Gauss-Hermite, whose error for a kinked integrand decays only like 1/n.

Unit route: for a shape g with output scale s and offset t, f = s g + t has
E[f^2] = E[f'^2] = 1 when s = 1/sqrt(E[g'^2]) and t = -s E[g] + sqrt(1 - s^2 Var[g]) (the
Gaussian Poincare inequality Var[g] <= E[g'^2] makes the root real).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Moments", "panel_nodes", "expectations", "unit_scale_offset", "fit_domain",
           "HALF_WIDTH"]

HALF_WIDTH = 12.0
_PANEL = 0.5
_NODES = 24


@dataclass(frozen=True)
class Moments:
    """E[f], E[f^2], E[f'^2] and V'(1) under z ~ N(0, 1): floats, or (C,) arrays per channel."""

    mean: Any
    second: Any
    deriv_second: Any
    vprime: Any

    @property
    def variance(self) -> Any:
        return self.second - self.mean**2


def panel_nodes(kinks: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights (Gaussian density folded in) of the composite rule, with a panel edge
    at every kink inside [-12, 12]."""
    n_panels = int(2 * HALF_WIDTH / _PANEL)
    edges = np.linspace(-HALF_WIDTH, HALF_WIDTH, n_panels + 1)
    if kinks is not None:
        k = np.asarray(kinks, dtype=np.float64).reshape(-1)
        k = k[(k > -HALF_WIDTH) & (k < HALF_WIDTH)]
        if k.size:
            edges = np.unique(np.concatenate([edges, k]))
    gx, gw = np.polynomial.legendre.leggauss(_NODES)
    a, b = edges[:-1, None], edges[1:, None]
    half = (b - a) / 2
    nodes = (a + b) / 2 + half * gx[None, :]
    weights = half * gw[None, :] * np.exp(-0.5 * nodes**2) / math.sqrt(2 * math.pi)
    keep = half[:, 0] > 0
    return nodes[keep].reshape(-1), weights[keep].reshape(-1)


def expectations(f_and_df: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
                 kinks: np.ndarray | None = None) -> Moments:
    """Moments of f from a float64 evaluator z -> (f(z), f'(z)) of shapes (n,) or (C, n)."""
    z, w = panel_nodes(kinks)
    f, df = (np.asarray(t, dtype=np.float64) for t in f_and_df(z))
    if not (np.isfinite(f).all() and np.isfinite(df).all()):
        raise ValueError("the activation is not finite on [-12, 12]; its Gaussian moments are "
                         "undefined (check its parameters)")
    out = [(t * w).sum(-1) for t in (f, f * f, df * df, z * f * df)]
    if f.ndim == 1:
        return Moments(*(float(t) for t in out))
    return Moments(*out)


def unit_scale_offset(m: Any) -> tuple[float, float]:
    """(s, t) such that s g + t has E[f^2] = E[f'^2] = 1, from the moments of g (any object
    with ``mean``, ``second`` and ``deriv_second``)."""
    dg = float(m.deriv_second)
    if not dg > 0:
        raise ValueError("the shape g is constant (E[g'^2] = 0): no output scale gives unit "
                         "backward variance")
    s = 1.0 / math.sqrt(dg)
    var = float(m.second) - float(m.mean) ** 2
    t = -s * float(m.mean) + math.sqrt(max(0.0, 1.0 - s * s * var))
    return s, t


def fit_domain(domain: Any, sigma: float = 1.0, points: int | None = None,
               samples: str = "an array of samples") -> tuple[np.ndarray, np.ndarray, str]:
    """(points, weights summing to 1, description) of a fitting domain given as ``"normal"``
    (Gauss-Hermite nodes of N(0, sigma^2), 120 by default) or an interval ``(lo, hi)``
    (Gauss-Legendre, uniform weight, 400), float64; the fits of every frontend use it (observed
    samples, their third kind of domain, each frontend reads itself: ``samples`` names them in
    the error)."""
    if isinstance(domain, str):
        if domain != "normal":
            raise ValueError(f"domain must be 'normal', an interval (lo, hi) or {samples}, "
                             f"got {domain!r}")
        z, w = np.polynomial.hermite_e.hermegauss(points or 120)
        return z * sigma, w / w.sum(), f"N(0, {sigma:g}^2)"
    if isinstance(domain, (tuple, list)) and len(domain) == 2:
        lo, hi = float(domain[0]), float(domain[1])
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise ValueError(f"domain interval must satisfy lo < hi (finite), got {domain!r}")
        gx, gw = np.polynomial.legendre.leggauss(points or 400)
        return (gx + 1) * (hi - lo) / 2 + lo, gw / gw.sum(), f"U[{lo:g}, {hi:g}]"
    raise ValueError(f"domain must be 'normal', an interval (lo, hi) or {samples}, got "
                     f"{type(domain).__name__}")
