"""Perlin-noise activation module."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..functional import perlin as F
from .base import LearnableActivation

__all__ = ["Perlin"]


class Perlin(LearnableActivation):
    r"""A fixed (or learnable) random 1-D noise function as an activation.

    .. math::  f(x) = b(x) + a \sum_{o<O} 2^{-o}\, n_o(x)

    with n_o value noise (lattice values, smoothstep interpolation) or gradient noise
    (Perlin's lattice gradients, quintic fade) at ``resolution`` * 2^o cells on [-r, r],
    continued C1-linearly outside; b is an optional base activation.

    Args:
        kind: ``"value"`` (default) or ``"gradient"``.
        resolution: lattice cells of the first octave, >= 1 (default 8).
        octaves: number of octaves, >= 1 (default 3).
        radius: r > 0, the noise lives on [-r, r] (default 3).
        seed: the lattice seed (same seed, same function, on any device).
        amplitude: a (default 1).
        base: ``"none"`` (default), ``"identity"``, ``"relu"`` or ``"gelu"``.
        learnable: lattices as parameters (True) or buffers (False, default).
        channels: accepted for a uniform interface; the noise is shared.
        channel_dim: accepted for a uniform interface.

    No init="unit": the function is a random draw; ``learnact.second_moments`` reports its
    exact moments.

    Source: K. Perlin, "An image synthesizer", SIGGRAPH 1985; "Improving noise", SIGGRAPH 2002
    (quintic fade).
    """

    family = "perlin"
    inits = ("random",)
    learnable_by_default = False

    def __init__(self, kind: str = "value", resolution: int = 8, octaves: int = 3,
                 radius: float = 3.0, seed: int = 0, amplitude: float = 1.0, base: str = "none",
                 learnable: bool = False, channels: int | None = None, channel_dim: int = 1) -> None:
        super().__init__(None, channel_dim)
        del channels  # the noise function is shared (uniform interface only)
        self._configure(kind=kind, resolution=resolution, octaves=octaves, radius=radius,
                        seed=seed, amplitude=amplitude, base=base, learnable=learnable)
        lats = F.make_lattices(self.resolution, self.octaves, self.seed, self.kind)
        for o, lat in enumerate(lats):
            if self.learnable:
                self.register_parameter(f"lattice{o}", nn.Parameter(lat.float()))
            else:
                self.register_buffer(f"lattice{o}", lat.float())

    def lattices(self) -> list[Tensor]:
        return [getattr(self, f"lattice{o}") for o in range(self.octaves)]

    def _base(self, x: Tensor) -> Tensor:
        if self.base == "identity":
            return x
        if self.base == "relu":
            return torch.relu(x)
        if self.base == "gelu":
            return torch.nn.functional.gelu(x)
        return torch.zeros_like(x)

    def forward(self, x: Tensor) -> Tensor:
        self._check_input(x)
        dtype = torch.float32 if x.dtype in (torch.float16, torch.bfloat16) else x.dtype
        xx = x.to(dtype)
        y = self._base(xx) + self.amplitude * F.perlin(xx, [t.to(dtype) for t in self.lattices()],
                                                        self.radius, self.kind)
        return y.to(x.dtype)

    def function_and_derivative(self, z: Tensor) -> tuple[Tensor, Tensor]:
        with torch.enable_grad():
            zz = z.to(torch.float64).clone().requires_grad_(True)
            lats = [t.detach().double().cpu() for t in self.lattices()]
            y = self._base(zz) + self.amplitude * F.perlin(zz, lats, self.radius, self.kind)
            (dy,) = torch.autograd.grad(y.sum(), zz)
        return y.detach(), dy

    def kinks(self, channel: int | None = None) -> Tensor:
        cells = self.resolution * 2 ** (self.octaves - 1)
        return torch.linspace(-self.radius, self.radius, cells + 1, dtype=torch.float64)

    def inference_form(self, *, ditac: str = "table", points: int = 4096) -> nn.Module:
        from ..freeze import FrozenPerlin

        return FrozenPerlin(self)

    def extra_repr(self) -> str:
        return (f"kind={self.kind!r}, resolution={self.resolution}, octaves={self.octaves}, "
                f"radius={self.radius:g}, seed={self.seed}, base={self.base!r}, "
                f"learnable={self.learnable}")
