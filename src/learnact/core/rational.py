r"""Rational (Pade activation unit) with the safe denominator:
f(x) = s (a_0 + a_1 x + ... + a_n x^n) / (1 + |b_1 x + ... + b_m x^m|) + t.

Source: A. Molina, P. Schramowski, K. Kersting, "Pade Activation Units", ICLR 2020
(arXiv:1907.06732).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ._xp import channel_view, column
from .quadrature import expectations, unit_scale_offset

__all__ = ["rational", "rational_derivative", "init_parameters", "SHIPPED", "TARGETS",
           "INITS", "NAMES"]

INITS = ("paper", "published", "leaky_relu", "gelu", "unit")
NAMES = ("num", "den", "scale", "offset")
#: init name -> the function the coefficients are fitted to on [-3, 3]
TARGETS = {"paper": "leaky_relu", "published": "leaky_relu", "leaky_relu": "leaky_relu",
           "gelu": "gelu", "unit": "leaky_relu"}

# The default-degree fits (num, den, (s, t)), computed once by learnact.modules.rational's
# procedure (linearised least squares, value+derivative L-BFGS, L^p refinements) and shipped:
# LAPACK's lstsq and L-BFGS are not bitwise reproducible across processes, so with a runtime
# fit the same seed would not reproduce a run. tests/test_rational.py checks them against a
# fresh fit.
SHIPPED: dict[tuple[int, int, str], tuple[tuple[float, ...], ...]] = {
    (5, 4, "leaky_relu"): (
        (0.002917586936967715, 0.22524016466731311, 1.160547457984664, 1.9260717964004368,
         1.0588134592959864, 0.1925451055668304),
        (-0.007587878716702419, 8.558561135898456, -0.009195020172904772, 0.8558636804546962),
        (2.2402421339825223, 0.006940138898474474)),
    (5, 4, "gelu"): (
        (-0.000482987253013967, 0.500048574720011, 0.4029929026032192, 0.0758796729826103,
         -0.01144673120203906, -0.003469000660662877),
        (7.18858844713132e-05, 0.15171791215272798, -6.389011324038971e-06,
         -0.00693430386044344),
        (0.9999228972410426, 2.580863253654572e-05)),
}


def _horner(xp: Any, u: Any, r: Any, coeffs: Any, cd: int) -> Any:
    """sum_k c_k u^k r^(K-1-k) (K coefficients) by Horner's rule: with u = x/S, r = 1/S it is
    S^-(K-1) sum_k c_k x^k (learnact.functional.rational explains the scaling)."""
    nd = len(u.shape)
    n = coeffs.shape[-1]
    val = column(xp, coeffs, n - 1, nd, cd) + xp.zeros_like(u)
    rk = xp.ones_like(r)
    for k in range(n - 2, -1, -1):
        rk = rk * r
        val = val * u + column(xp, coeffs, k, nd, cd) * rk
    return val


def rational(xp: Any, x: Any, num: Any, den: Any, scale: Any, offset: Any,
             channel_dim: int = -1) -> Any:
    """f(x) = scale P(x)/(1 + |A(x)|) + offset; num: x^0..x^n, den: x^1..x^m. Evaluated
    scaled (S = max(1, |x|)): nothing overflows before f itself does."""
    nd = len(x.shape)
    n, m = num.shape[-1] - 1, den.shape[-1]
    big = xp.maximum(xp.abs(x), xp.zeros_like(x) + 1.0)  # a tensor: every namespace
    r = 1.0 / big
    # u = x r = x clipped to [-1, 1], written so: r is subnormal from |x| = 2^126 and XLA's
    # CPU threads flush subnormals to 0 (u = 0 there gave 0/0)
    u = xp.clip(x, -1.0, 1.0)
    p = _horner(xp, u, r, num, channel_dim)
    a = _horner(xp, u, r, den, channel_dim) * u
    e = n - m
    grow = big ** e if e >= 0 else r ** (-e)
    return (channel_view(xp, scale, nd, channel_dim) * (grow * p / (r ** m + xp.abs(a)))
            + channel_view(xp, offset, nd, channel_dim))


def rational_derivative(x: np.ndarray, num: np.ndarray, den: np.ndarray, scale: float,
                        offset: float) -> np.ndarray:
    """f'(x) (numpy, shared tables): s (P'(1 + |A|) - P sign(A) A') / (1 + |A|)^2."""
    p = np.polynomial.polynomial.polyval(x, num)
    dp = np.polynomial.polynomial.polyval(x, np.polynomial.polynomial.polyder(num))
    full = np.concatenate([[0.0], den])
    a = np.polynomial.polynomial.polyval(x, full)
    da = np.polynomial.polynomial.polyval(x, np.polynomial.polynomial.polyder(full))
    q = 1.0 + np.abs(a)
    return scale * (dp * q - p * np.sign(a) * da) / q**2


def init_parameters(num_degree: int = 5, den_degree: int = 4, init: str = "paper",
                    fit: Callable[[int, int, str], tuple[tuple[float, ...], ...]] | None = None
                    ) -> dict[str, np.ndarray]:
    """Initial ``num``, ``den``, ``scale``, ``offset`` (float64): the shipped fit for the
    default degrees, else ``fit(num_degree, den_degree, target)`` (the PyTorch frontend's L-BFGS
    fit; other frontends support the shipped degrees). "unit": the leaky-ReLU fit with s, t
    from the general route."""
    target = TARGETS[init]
    fitted = SHIPPED.get((num_degree, den_degree, target))
    if fitted is None:
        if fit is None:
            shipped = sorted({(n, m) for n, m, _ in SHIPPED})
            raise ValueError(f"rational: (num_degree, den_degree) must be one of {shipped} in "
                             f"this frontend (the init is a shipped fit), got "
                             f"({num_degree}, {den_degree}); other degrees need the PyTorch "
                             "frontend's fit")
        fitted = fit(num_degree, den_degree, target)
    num, den, (s, t) = (np.array(fitted[0]), np.array(fitted[1]), fitted[2])
    if init == "unit":
        ss, tt = unit_scale_offset(expectations(
            lambda z: (rational(np, z, num, den, np.float64(s), np.float64(t)),
                       rational_derivative(z, num, den, s, t))))
        s, t = s * ss, t * ss + tt
    return {"num": num, "den": den, "scale": np.array(s), "offset": np.array(t)}
