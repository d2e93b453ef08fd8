"""Fourier activation module."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..functional import fourier as F
from ..core import fourier as core
from ..ops.fourier import fourier_op
from .base import LearnableActivation

__all__ = ["Fourier"]

MAX_DEGREE = 64


class Fourier(LearnableActivation):
    r"""Learnable truncated Fourier series activation.

    .. math::  f(x) = a_0 + \sum_{k=1}^{d} c_k \cos(w_k x - \varphi_k)

    with learnable offset a_0 (``bias``), amplitudes c (``amplitude``), frequencies w
    (``frequency``, initialised to w_k = k) and phases phi (``phase``). The product w_k x is
    clipped to +-2^127 in every path, so f stays finite at every finite float32 x (past
    |w x| ~ 2^24 a float32 phase carries no information anyway).

    Args:
        degree: number of harmonics d in [1, 64] (default 8).
        channels: None (shared parameters) or C (one set per channel).
        channel_dim: channel dimension of the input.
        init: ``"unit"`` (default): the published shape with amplitudes and offset rescaled by
            the general route (s = 1/sqrt(E[g'^2]), a_0 <- s a_0 + t) so E[f^2] = E[f'^2] = 1;
            ``"paper"`` (alias ``"published"``): the published constants, c_k = 0.6623/k!,
            phi_k = pi/4, w_k = k, a_0 = 0.6623 sqrt(1 - 1/(d!)^2). Those do not preserve
            variance (E[f^2] = 1.31 and E[f'^2] = 0.96 at degree 5).

    Source: I. Khalfaoui-Hassani and S. Kesselheim, "Learnable polynomial, trigonometric, and
    tropical activations", arXiv:2502.01247 (2025).
    """

    family = "fourier"
    closed_form_held = ("frequency",)

    def __init__(self, degree: int = 8, channels: int | None = None, channel_dim: int = 1,
                 init: str = "unit") -> None:
        super().__init__(channels, channel_dim)
        self._configure(degree=degree, init=init)
        self.bias = nn.Parameter(torch.empty(self._param_shape()))
        self.amplitude = nn.Parameter(torch.empty(self._param_shape(self.degree)))
        self.frequency = nn.Parameter(torch.empty(self._param_shape(self.degree)))
        self.phase = nn.Parameter(torch.empty(self._param_shape(self.degree)))
        self.reset_parameters()

    @staticmethod
    def init_parameters(degree: int, init: str = "unit") -> dict[str, Tensor]:
        """The float64 initial parameters (shared shapes) for ``init`` (learnact.core.fourier)."""
        return {k: torch.from_numpy(v) for k, v in core.init_parameters(degree, init).items()}

    @torch.no_grad()
    def reset_parameters(self) -> None:
        self._copy_init(self.init_parameters(self.degree, self.init))

    def forward(self, x: Tensor) -> Tensor:
        self._check_input(x)
        return fourier_op(x, self.bias, self.amplitude, self.frequency, self.phase,
                          self.channel_dim)

    def _params64(self) -> tuple[Tensor, ...]:
        return tuple(p.detach().to(torch.float64).cpu()
                     for p in (self.bias, self.amplitude, self.frequency, self.phase))

    def function_and_derivative(self, z: Tensor) -> tuple[Tensor, Tensor]:
        p = self._params64()
        return (self._eval64(lambda x, cd: F.fourier(x, *p, channel_dim=cd), z),
                self._eval64(lambda x, cd: F.fourier_derivative(x, *p, channel_dim=cd), z))

    def closed_form_fit(self, x: Tensor, y: Tensor, dy: Tensor, w: Tensor,
                        derivative_weight: float, channel: int | None) -> str:
        """With the frequencies held, c cos(w x - phi) = a cos(w x) + b sin(w x) is linear in
        (a, b): weighted least squares on value and derivative, then c = |(a, b)|,
        phi = atan2(b, a)."""
        from ..fit import weighted_lstsq

        freq = self.frequency.detach().to(torch.float64).cpu()
        freq = freq if freq.ndim == 1 else freq[channel or 0]
        wx = x.unsqueeze(1) * freq
        cos, sin = torch.cos(wx), torch.sin(wx)
        cols = torch.cat([torch.ones_like(x).unsqueeze(1), cos, sin], 1)
        dcols = torch.cat([torch.zeros_like(x).unsqueeze(1), -freq * sin, freq * cos], 1)
        sol = weighted_lstsq(cols, dcols, y, dy, w, derivative_weight)
        a, b = sol[1:1 + self.degree], sol[1 + self.degree:]
        self._set_fitted({"bias": sol[0], "amplitude": torch.sqrt(a * a + b * b),
                          "phase": torch.atan2(b, a)}, channel)
        return "closed-form weighted least squares (QR), frequencies held"

    def flops_per_element(self) -> tuple[int, int]:
        # per term: mul, sub, mul-add (2); the bias add; one cos per term
        return 4 * self.degree + 1, self.degree

    def inference_form(self, *, ditac: str = "table", points: int = 4096) -> nn.Module:
        from ..freeze import FrozenFourier

        return FrozenFourier(self)

    def extra_repr(self) -> str:
        return f"degree={self.degree}, {self._channel_repr()}, init={self.init!r}"
