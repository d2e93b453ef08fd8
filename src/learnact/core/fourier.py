r"""Fourier family: f(x) = a_0 + sum_k c_k cos(w_k x - phi_k).

Source: I. Khalfaoui-Hassani and S. Kesselheim, arXiv:2502.01247 (2025).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ._xp import PHASE_BOUND, channel_view, clipped_phase, column
from .quadrature import expectations, unit_scale_offset

__all__ = ["PHASE_BOUND", "fourier", "fourier_derivative", "paper_parameters", "init_parameters", "INITS",
           "PAPER_GAIN", "NAMES"]

INITS = ("unit", "paper", "published")
NAMES = ("bias", "amplitude", "frequency", "phase")
#: the published gain constant, ~ 1/sqrt(I_0(2)) (I_0: modified Bessel function)
PAPER_GAIN = 0.66232645879


def fourier(xp: Any, x: Any, bias: Any, amplitude: Any, frequency: Any, phase: Any,
            channel_dim: int = -1) -> Any:
    """f(x) = bias + sum_k amplitude_k cos(frequency_k x - phase_k) (frequency_k x clipped to
    +-PHASE_BOUND, so that f stays finite at any finite x)."""
    nd = len(x.shape)
    out = channel_view(xp, bias, nd, channel_dim) + xp.zeros_like(x)
    for k in range(amplitude.shape[-1]):
        theta = (clipped_phase(xp, x, column(xp, frequency, k, nd, channel_dim))
                 - column(xp, phase, k, nd, channel_dim))
        out = out + column(xp, amplitude, k, nd, channel_dim) * xp.cos(theta)
    return out


def fourier_derivative(xp: Any, x: Any, bias: Any, amplitude: Any, frequency: Any,
                       phase: Any, channel_dim: int = -1) -> Any:
    """f'(x) = -sum_k amplitude_k frequency_k sin(frequency_k x - phase_k)."""
    nd = len(x.shape)
    out = xp.zeros_like(x)
    for k in range(amplitude.shape[-1]):
        w = column(xp, frequency, k, nd, channel_dim)
        theta = clipped_phase(xp, x, w) - column(xp, phase, k, nd, channel_dim)
        out = out - column(xp, amplitude, k, nd, channel_dim) * w * xp.sin(theta)
    return out


def paper_parameters(degree: int) -> dict[str, np.ndarray]:
    """The published init (torchortho defaults) in this parameterisation: c_k = g/k!,
    phi_k = pi/4, w_k = k, a_0 = g sqrt(1 - 1/(d!)^2), g = 0.6623."""
    k = np.arange(1, degree + 1, dtype=np.float64)
    fact = np.array([math.factorial(int(j)) for j in k], dtype=np.float64)
    return {"bias": np.array(PAPER_GAIN * math.sqrt(1.0 - 1.0 / math.factorial(degree) ** 2)),
            "amplitude": PAPER_GAIN / fact,
            "frequency": k.copy(),
            "phase": np.full(degree, math.pi / 4)}


def init_parameters(degree: int = 8, init: str = "unit") -> dict[str, np.ndarray]:
    """Initial parameters (shared shapes, float64); "unit" rescales amplitudes and offset by the
    general route so E[f^2] = E[f'^2] = 1."""
    p = paper_parameters(degree)
    if init in ("paper", "published"):
        return p
    args = tuple(p[n] for n in NAMES)
    s, t = unit_scale_offset(expectations(
        lambda z: (fourier(np, z, *args), fourier_derivative(np, z, *args))))
    return {"bias": np.array(s * p["bias"] + t), "amplitude": s * p["amplitude"],
            "frequency": p["frequency"], "phase": p["phase"]}
