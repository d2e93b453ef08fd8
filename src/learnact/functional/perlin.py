r"""1-D Perlin-style noise activations: pure math.

On [-r, r] the input is mapped to lattice coordinates u = (x + r) / (2r) * R (R = resolution
cells), i = floor(u), t = u - i, and for each octave o (resolution R 2^o, amplitude 2^-o):

* ``value`` noise: n(u) = v_i + (v_{i+1} - v_i) S(t), S(t) = 3t^2 - 2t^3 (smoothstep);
* ``gradient`` noise (Perlin): n(u) = (1 - F(t)) g_i t + F(t) g_{i+1} (t - 1),
  F(t) = 6t^5 - 15t^4 + 10t^3 (quintic fade).

Both are C1 at the lattice points (S'(0) = S'(1) = 0, F' too). Outside [-r, r] the function
continues linearly with the one-sided value and slope at +-r, so f is C1 everywhere.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["perlin", "make_lattices"]


def make_lattices(resolution: int, octaves: int, seed: int, kind: str) -> list[Tensor]:
    """The random lattices (float64, CPU, from a seeded torch.Generator: same on any device)."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for o in range(octaves):
        n = resolution * 2**o + 1
        if kind == "value":
            out.append(torch.rand(n, generator=g, dtype=torch.float64) * 2 - 1)
        else:
            out.append(torch.rand(n, generator=g, dtype=torch.float64) * 2 - 1)
    return out


def _noise(u: Tensor, lattice: Tensor, kind: str) -> Tensor:
    n = lattice.shape[0] - 1
    # NaN inputs read cell 0 and stay NaN through t (an index cast of NaN is undefined)
    i = torch.nan_to_num(torch.floor(u), nan=0.0).clamp(0, n - 1)
    t = u - i
    idx = i.long()
    a = lattice[idx]
    b = lattice[idx + 1]
    if kind == "value":
        s = t * t * (3.0 - 2.0 * t)
        return a + (b - a) * s
    fade = t * t * t * (t * (t * 6.0 - 15.0) + 10.0)
    return (1.0 - fade) * a * t + fade * b * (t - 1.0)


def _inside(x: Tensor, lattices: list[Tensor], radius: float, kind: str) -> Tensor:
    out = torch.zeros_like(x)
    for o, lat in enumerate(lattices):
        cells = lat.shape[0] - 1
        u = (x + radius) * (cells / (2.0 * radius))
        out = out + (0.5**o) * _noise(u, lat.to(x.dtype), kind)
    return out


def _end_slopes(lattices: list[Tensor], radius: float, kind: str, like: Tensor
                ) -> tuple[Tensor, Tensor]:
    """df/dx at -r and +r, analytically: value noise has S'(0) = S'(1) = 0 (slope 0); gradient
    noise has n'(0) = g_0 and n'(1) = g_last, times du/dx = cells / (2 r) per octave."""
    lo = torch.zeros((), dtype=like.dtype, device=like.device)
    hi = torch.zeros((), dtype=like.dtype, device=like.device)
    if kind == "gradient":
        for o, lat in enumerate(lattices):
            k = (0.5**o) * (lat.shape[0] - 1) / (2.0 * radius)
            lo = lo + k * lat[0].to(like.dtype)
            hi = hi + k * lat[-1].to(like.dtype)
    return lo, hi


def perlin(x: Tensor, lattices: list[Tensor], radius: float, kind: str = "value") -> Tensor:
    """Sum of octaves of 1-D noise on [-radius, radius], continued C1-linearly outside."""
    xc = x.clamp(-radius, radius)
    inside = _inside(xc, lattices, radius, kind)
    lo_slope, hi_slope = _end_slopes(lattices, radius, kind, x)
    return inside + (x - xc) * torch.where(x < 0, lo_slope, hi_slope)
