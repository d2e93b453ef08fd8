r"""Learnable SELU variation: SELU with a sinusoidal term on the negative side.

f(x) = s lam (x if x > 0 else alpha (e^{beta x} - 1) + gamma sin(omega x)) + t; the negative
branch is evaluated at min(x, 0), so exp never overflows where it is discarded.

Source: the SELU Variation / LearnableSELUVariation activations (ToyMath, GitHub, 2024), built
on SELU (Klambauer et al., NeurIPS 2017, arXiv:1706.02515).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._xp import channel_view, clipped_phase
from .quadrature import expectations, unit_scale_offset

__all__ = ["selu_variation", "selu_variation_derivative", "init_parameters", "PAPER", "NAMES",
           "INITS"]

INITS = ("paper", "published", "unit")
#: the published constants (lambda, alpha, beta, gamma, omega)
PAPER = {"lam": 1.0507, "alpha": 1.67326, "beta": 1.0, "gamma": 0.1, "omega": 2.0}
NAMES = ("lam", "alpha", "beta", "gamma", "omega", "scale", "offset")


def selu_variation(xp: Any, x: Any, lam: Any, alpha: Any, beta: Any, gamma: Any, omega: Any,
                   scale: Any, offset: Any, channel_dim: int = -1) -> Any:
    """f(x) = scale * g(x) + offset."""
    nd = len(x.shape)
    la, al, be, ga, om, s, t = (channel_view(xp, p, nd, channel_dim)
                                for p in (lam, alpha, beta, gamma, omega, scale, offset))
    xn = xp.minimum(x, xp.zeros_like(x))  # (a Python 0.0 promotes to float32 in some keras backends)
    neg = al * xp.expm1(be * xn) + ga * xp.sin(clipped_phase(xp, xn, om))
    return s * (la * xp.where(x > 0, x, neg)) + t


def selu_variation_derivative(x: np.ndarray, lam: float, alpha: float, beta: float,
                              gamma: float, omega: float, scale: float, offset: float
                              ) -> np.ndarray:
    """f'(x) (numpy, shared parameters): s lam (1 if x > 0 else alpha beta e^{beta x}
    + gamma omega cos(omega x))."""
    xn = np.minimum(x, 0.0)
    neg = alpha * beta * np.exp(beta * xn) + gamma * omega * np.cos(omega * xn)
    return scale * lam * np.where(x > 0, 1.0, neg)


def init_parameters(init: str = "paper") -> dict[str, float]:
    """The published constants with s = 1, t = 0; "unit": s, t from the general route."""
    vals = dict(PAPER, scale=1.0, offset=0.0)
    if init == "unit":
        p = tuple(vals[n] for n in NAMES)
        s, t = unit_scale_offset(expectations(
            lambda z: (selu_variation(np, z, *p), selu_variation_derivative(z, *p)),
            np.array([0.0])))
        vals.update(scale=s, offset=t)
    return vals
