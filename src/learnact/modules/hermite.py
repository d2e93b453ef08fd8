"""Hermite activation module."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .._validate import check_choice, check_int
from ..functional import hermite as F
from ..init import GaussianMoments
from ..ops.hermite import hermite_op
from ..registry import register
from .base import LearnableActivation

__all__ = ["Hermite"]

MAX_DEGREE = 64


@register("hermite")
class Hermite(LearnableActivation):
    r"""Learnable Hermite-polynomial activation.

    .. math::  f(x) = \sum_{k=0}^{d} c_k\, \mathrm{He}_k(x) / k!

    with probabilists' Hermite polynomials He_k, evaluated by Clenshaw's recurrence in the
    orthogonal basis (never through monomials). Under x ~ N(0, 1):
    E[f^2] = sum_k c_k^2/k!, E[f'^2] = sum_{k>=1} c_k^2/(k-1)!.

    Args:
        degree: polynomial degree d in [1, 64] (default 8).
        channels: None (shared coefficients, shape (d+1,)) or C (shape (C, d+1)).
        channel_dim: channel dimension of the input (1 for NCHW, -1 for (B, T, C)).
        init: ``"unit"`` (default): the published shape rescaled to E[f^2] = E[f'^2] = 1;
            ``"paper"`` (alias ``"published"``): a_0 = sqrt(1 - 1/d!)/sqrt(e), a_k = 1/sqrt(e),
            giving E[f^2] = E[f'^2] = (1/e) sum_{j<d} 1/j!; ``"stable"``: unit moments with
            V'(1) < 1 (signs of c_k flipped for k = 2, 3 mod 4) so that a plain un-normalised
            deep stack also keeps unit variance.

    Parameters: ``coeffs``.

    Source: I. Khalfaoui-Hassani and S. Kesselheim, "Learnable polynomial, trigonometric, and
    tropical activations", arXiv:2502.01247 (2025).
    """

    family = "hermite"
    inits = ("unit", "paper", "published", "stable")

    def __init__(self, degree: int = 8, channels: int | None = None, channel_dim: int = 1,
                 init: str = "unit") -> None:
        super().__init__(channels, channel_dim)
        self.degree = check_int("degree", degree, 1, MAX_DEGREE)
        self.init = check_choice("init", init, self.inits)
        self.coeffs = nn.Parameter(torch.empty(self._param_shape(self.degree + 1)))
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        if self.init in ("paper", "published"):
            c = F.paper_coefficients(self.degree)
        else:
            c = F.unit_coefficients(self.degree, stable=self.init == "stable")
        self.coeffs.copy_(c.to(self.coeffs.dtype).expand_as(self.coeffs))

    def forward(self, x: Tensor) -> Tensor:
        self._check_input(x)
        return hermite_op(x, self.coeffs, self.channel_dim)

    def function_and_derivative(self, z: Tensor) -> tuple[Tensor, Tensor]:
        c = self.coeffs.detach().to(torch.float64).cpu()
        return (self._eval64(lambda x, cd: F.hermite(x, c, cd), z),
                self._eval64(lambda x, cd: F.hermite_derivative(x, c, cd), z))

    def _closed_form_moments(self) -> GaussianMoments:
        m = F.hermite_moments(self.coeffs.cpu())
        if self.channels is None:
            return GaussianMoments(*(float(m[k]) for k in ("mean", "second", "deriv_second",
                                                            "vprime")))
        return GaussianMoments(m["mean"], m["second"], m["deriv_second"], m["vprime"])

    def extra_repr(self) -> str:
        return f"degree={self.degree}, {self._channel_repr()}, init={self.init!r}"
