r"""Hermite family: f(x) = sum_k c_k He_k(x)/k! (probabilists' Hermite polynomials).

The normalised basis h_k = He_k/k! obeys h_0 = 1, h_1 = x, h_{k+1} = (x h_k - h_{k-1})/(k+1),
h_k' = h_{k-1} and E[h_j h_k] = delta_jk/k! under N(0, 1). Values by Clenshaw's recurrence in
the orthogonal basis (never through monomials). Optional linear tails: with
xb = clamp(x, lo, hi), f(x) = P(xb) + P'(xb)(x - xb).

Source: I. Khalfaoui-Hassani and S. Kesselheim, arXiv:2502.01247 (2025).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ._xp import channel_view, column
from .quadrature import Moments, expectations, unit_scale_offset

__all__ = ["hermite", "hermite_derivative", "moments", "paper_coefficients",
           "unit_coefficients", "projection_coefficients", "init_parameters", "INITS", "TAILS"]

INITS = ("unit", "paper", "published", "stable", "gelu")
TAILS = ("polynomial", "linear")


def _clenshaw(xp: Any, x: Any, c: Any, cd: int, shift: int = 0) -> Any:
    """sum_k c[k + shift] h_k(x): b_k = c_k + x b_{k+1}/(k+1) - b_{k+2}/(k+2)."""
    n = c.shape[-1] - shift
    nd = len(x.shape)

    def col(k: int) -> Any:
        return column(xp, c, k + shift, nd, cd)

    if n == 1:
        return col(0) + xp.zeros_like(x)
    if n == 2:
        return col(0) + x * col(1)
    b2 = xp.zeros_like(x)
    b1 = col(n - 1) + b2
    for k in range(n - 2, 0, -1):
        b1, b2 = col(k) + x * b1 * (1.0 / (k + 1)) - b2 * (1.0 / (k + 2)), b1
    return col(0) + x * b1 - 0.5 * b2


def _clamp(xp: Any, x: Any, lo: Any, hi: Any, cd: int) -> Any:
    if lo is None or hi is None:
        return x
    nd = len(x.shape)
    return xp.minimum(xp.maximum(x, channel_view(xp, lo, nd, cd)), channel_view(xp, hi, nd, cd))


def hermite(xp: Any, x: Any, coeffs: Any, channel_dim: int = -1, lo: Any = None,
            hi: Any = None) -> Any:
    """f(x) for coefficient table (d+1,) or (C, d+1); linear outside [lo, hi] when given."""
    if lo is None or hi is None:
        return _clenshaw(xp, x, coeffs, channel_dim)
    # f(clamp(x)) + f'(hi) (max(x, hi) - hi) + f'(lo) (min(x, lo) - lo): the same values as
    # f(xc) + f'(xc) (x - xc), written so that autodiff never multiplies an infinite distance
    # by a zero mask (dL/dx at x = +-inf is f'(bound), not NaN)
    nd = len(x.shape)
    lo_b, hi_b = _bound(xp, lo, nd, channel_dim), _bound(xp, hi, nd, channel_dim)
    xc = xp.minimum(xp.maximum(x, lo_b), hi_b)
    return (_clenshaw(xp, xc, coeffs, channel_dim)
            + _clenshaw(xp, hi_b, coeffs, channel_dim, 1) * (xp.maximum(x, hi_b) - hi_b)
            + _clenshaw(xp, lo_b, coeffs, channel_dim, 1) * (xp.minimum(x, lo_b) - lo_b))


def _bound(xp: Any, b: Any, nd: int, cd: int) -> Any:
    """A tail bound as an nd-dimensional array broadcasting along the channel dimension."""
    v = channel_view(xp, b, nd, cd)
    return xp.reshape(v, (1,) * nd) if nd and len(getattr(v, "shape", ())) == 0 else v


def hermite_derivative(xp: Any, x: Any, coeffs: Any, channel_dim: int = -1, lo: Any = None,
                       hi: Any = None) -> Any:
    """f'(x) = sum_{k>=1} c_k h_{k-1}(x), at clamp(x, lo, hi) with linear tails."""
    return _clenshaw(xp, _clamp(xp, x, lo, hi, channel_dim), coeffs, channel_dim, shift=1)


def moments(coeffs: np.ndarray) -> Moments:
    """Closed-form moments of the pure polynomial (orthogonality): E[f] = c_0,
    E[f^2] = sum c_k^2/k!, E[f'^2] = sum_{k>=1} c_k^2/(k-1)!,
    V'(1) = E[f'^2] + sum_k c_k c_{k+2}/k!. (C, d+1) tables give (C,) arrays."""
    c = np.asarray(coeffs, dtype=np.float64)
    d = c.shape[-1] - 1
    inv_fact = np.array([1.0 / math.factorial(k) for k in range(d + 1)])
    second = (c**2 * inv_fact).sum(-1)
    deriv = (c[..., 1:] ** 2 * inv_fact[:-1]).sum(-1)
    cross = (c[..., :-2] * c[..., 2:] * inv_fact[: d - 1]).sum(-1) if d >= 2 else 0.0 * second
    out = (c[..., 0], second, deriv, deriv + cross)
    if c.ndim == 1:
        return Moments(*(float(v) for v in out))
    return Moments(*out)


def paper_coefficients(degree: int) -> np.ndarray:
    """The published init: a_0 = sqrt(1 - 1/d!)/sqrt(e), a_k = 1/sqrt(e)."""
    c = np.full(degree + 1, 1.0 / math.sqrt(math.e))
    c[0] = math.sqrt(1.0 - 1.0 / math.factorial(degree)) / math.sqrt(math.e)
    return c


def unit_coefficients(degree: int, stable: bool = False) -> np.ndarray:
    """The published shape rescaled to E[f^2] = E[f'^2] = 1: s = 1/sqrt(E[g'^2]) on c_1..c_d,
    then c_0 = sqrt(1 - sum_{k>=1} c_k^2/k!). ``stable`` flips the signs of c_k for
    k = 2, 3 (mod 4): same moments, every c_k c_{k+2} < 0, so V'(1) < 1."""
    g = paper_coefficients(degree)
    deriv = float((g[1:] ** 2 / np.array([math.factorial(k - 1)
                                          for k in range(1, degree + 1)], dtype=np.float64)).sum())
    c = g / math.sqrt(deriv)
    tail = float(sum(float(c[k]) ** 2 / math.factorial(k) for k in range(1, degree + 1)))
    c[0] = math.sqrt(max(0.0, 1.0 - tail))
    if stable:
        for k in range(degree + 1):
            if k % 4 in (2, 3):
                c[k] = -c[k]
    return c


def gelu(x: np.ndarray) -> np.ndarray:
    """Exact GELU x Phi(x) in float64."""
    erf = np.vectorize(math.erf, otypes=[np.float64])
    return 0.5 * x * (1.0 + erf(np.asarray(x, dtype=np.float64) / math.sqrt(2.0)))


def projection_coefficients(fn: Any, degree: int, nodes: int = 160) -> np.ndarray:
    """L2(N(0,1)) projection of fn onto h_0..h_d: c_k = E[fn(z) He_k(z)], by Gauss-Hermite
    quadrature with ``nodes`` nodes (fn: a numpy float64 function)."""
    z, w = np.polynomial.hermite_e.hermegauss(nodes)
    w = w / w.sum()
    g = np.asarray(fn(z), dtype=np.float64)
    basis = [np.ones_like(z), z]
    for k in range(1, degree):
        basis.append((z * basis[k] - basis[k - 1]) * (1.0 / (k + 1)))
    return np.array([(w * g * h).sum() * math.factorial(k)
                     for k, h in enumerate(basis[: degree + 1])])


def unit_route(c: np.ndarray, bound: float | None = None) -> np.ndarray:
    """Rescale c so that E[f^2] = E[f'^2] = 1 exactly (linear tails at +-bound included)."""
    if bound is not None:
        lo, hi = np.float64(-bound), np.float64(bound)

        def f_df(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            return (hermite(np, z, c, -1, lo, hi), hermite_derivative(np, z, c, -1, lo, hi))

        m = expectations(f_df, np.array([lo, hi]))
    else:
        m = moments(c)
    s, t = unit_scale_offset(m)
    c = c * s
    c[0] += t  # h_0 = 1 (and the tails carry the constant too)
    return c


def init_parameters(degree: int = 8, init: str = "unit", tails: str = "polynomial",
                    bound: float = 3.0) -> dict[str, np.ndarray]:
    """Initial ``coeffs`` (d+1,) float64 for ``init`` (see learnact.Hermite)."""
    linear = bound if tails == "linear" else None
    if init in ("paper", "published"):
        c = paper_coefficients(degree)
    elif init == "gelu":
        c = unit_route(projection_coefficients(gelu, degree), linear)
    else:
        c = unit_coefficients(degree, stable=init == "stable")
        if linear is not None:
            c = unit_route(c, linear)  # the tails change the moments slightly
    return {"coeffs": c}
