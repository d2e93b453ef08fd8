r"""1-D Perlin-style noise activation (value or gradient noise), framework-neutral.

On [-r, r], u = (x + r)/(2r) R with R = resolution 2^o cells per octave o (amplitude 2^-o),
i = floor(u), t = u - i:

* value noise: n = v_i + (v_{i+1} - v_i) S(t), S(t) = 3t^2 - 2t^3;
* gradient noise: n = (1 - F(t)) g_i t + F(t) g_{i+1} (t - 1), F(t) = 6t^5 - 15t^4 + 10t^3.

Outside [-r, r] f continues linearly with the one-sided value and slope at +-r (C1), and
f(x) = base(x) + amplitude sum_o 2^-o n_o(u_o). The formula is written against an array
namespace ``xp`` that also offers ``cast(t, dtype)`` and ``take(table, index)`` (the frontends'
namespaces; numpy through :data:`NUMPY`).

Source: K. Perlin, "An image synthesizer", SIGGRAPH 1985; "Improving noise", SIGGRAPH 2002.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["perlin", "lattices", "KINDS", "BASES", "NUMPY"]

KINDS = ("value", "gradient")
BASES = ("none", "identity", "relu", "gelu")


class _Numpy:
    """numpy with the two extras the formula needs (``cast``, ``erf``)."""

    def __getattr__(self, name: str) -> Any:
        return getattr(np, name)

    @staticmethod
    def cast(t: Any, dtype: str) -> Any:
        return np.asarray(t).astype(dtype)

    @staticmethod
    def erf(t: Any) -> Any:
        return np.vectorize(math.erf, otypes=[np.float64])(t)


NUMPY = _Numpy()


def lattices(resolution: int, octaves: int, seed: int) -> list[np.ndarray]:
    """Lattice values U(-1, 1) per octave (resolution 2^o + 1 points), float64, from
    ``numpy.random.default_rng(seed)``: the JAX and Keras frontends' draw. (The PyTorch
    module draws from torch's generator: the same seed is a different function there.)"""
    rng = np.random.default_rng(seed)
    return [rng.uniform(-1.0, 1.0, resolution * 2**o + 1) for o in range(octaves)]


def _noise(xp: Any, u: Any, lattice: Any, kind: str) -> Any:
    n = lattice.shape[0] - 1
    zero = xp.zeros_like(u)
    i = xp.floor(xp.where(u != u, zero, u))  # NaN reads cell 0 (t stays NaN)
    i = xp.minimum(xp.maximum(i, zero), zero + float(n - 1))
    t = u - i
    idx = xp.cast(i, "int32")
    a = xp.take(lattice, idx)
    b = xp.take(lattice, idx + 1)
    if kind == "value":
        return a + (b - a) * (t * t * (3.0 - 2.0 * t))
    fade = t * t * t * (t * (t * 6.0 - 15.0) + 10.0)
    return (1.0 - fade) * a * t + fade * b * (t - 1.0)


def perlin(xp: Any, x: Any, lattice_list: list[Any], radius: float, kind: str = "value",
           amplitude: float = 1.0, base: str = "none") -> Any:
    """f(x) = base(x) + amplitude sum_o 2^-o n_o, continued C1-linearly outside [-r, r]."""
    zero = xp.zeros_like(x)
    xc = xp.minimum(xp.maximum(x, zero - radius), zero + radius)
    inside = zero
    lo_slope, hi_slope = 0.0, 0.0
    for o, lat in enumerate(lattice_list):
        cells = lat.shape[0] - 1
        u = (xc + radius) * (cells / (2.0 * radius))
        inside = inside + (0.5**o) * _noise(xp, u, lat, kind)
        if kind == "gradient":  # n'(0) = g_0, n'(1) = g_last, times du/dx
            k = (0.5**o) * cells / (2.0 * radius)
            lo_slope = lo_slope + k * lat[0]
            hi_slope = hi_slope + k * lat[-1]
    tail = (x - xc) * xp.where(x < 0, zero + lo_slope, zero + hi_slope)
    y = amplitude * (inside + tail)
    if base == "identity":
        y = y + x
    elif base == "relu":
        y = y + xp.maximum(x, zero)
    elif base == "gelu":
        y = y + 0.5 * x * (1.0 + xp.erf(x * 0.7071067811865476))
    return y
