"""Hermite activation module."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..functional import hermite as F
from ..core import hermite as core
from ..moments import GaussianMoments
from ..ops.hermite import hermite_op
from .base import LearnableActivation

__all__ = ["Hermite"]

MAX_DEGREE = 64


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
            deep stack also keeps unit variance; ``"gelu"``: unit moments with GELU's shape
            (the L2(N(0,1)) projection of GELU onto the basis, then the general route
            f = s g + t), a drop-in that starts GELU-like (V'(1) ~ 1.1 instead of ~2).
        tails: ``"polynomial"`` (default, the pure series) or ``"linear"``: f = P on
            [lo, hi] and f(x) = P(xb) + P'(xb)(x - xb), xb = clamp(x, lo, hi), outside - C1,
            linear growth. Use it where pre-activations are not normalised (a degree-8
            polynomial of a heavy-tailed input overflows and diverges; see the autoencoder
            benchmark) and for model surgery (bounds set by calibration).
        bound: with ``tails="linear"``, the initial [lo, hi] = [-bound, bound] (default 3).
            The unit/stable inits then account for the tails exactly (quadrature).

    Parameters: ``coeffs``; buffers ``lo``, ``hi`` (only with ``tails="linear"``).

    Source: I. Khalfaoui-Hassani and S. Kesselheim, "Learnable polynomial, trigonometric, and
    tropical activations", arXiv:2502.01247 (2025).
    """

    family = "hermite"

    def __init__(self, degree: int = 8, channels: int | None = None, channel_dim: int = 1,
                 init: str = "unit", tails: str = "polynomial", bound: float = 3.0) -> None:
        super().__init__(channels, channel_dim)
        self._configure(degree=degree, init=init, tails=tails, bound=bound)
        self.coeffs = nn.Parameter(torch.empty(self._param_shape(self.degree + 1)))
        if self.tails == "linear":
            self.register_buffer("lo", torch.full(self._param_shape(), -self.bound))
            self.register_buffer("hi", torch.full(self._param_shape(), self.bound))
        else:
            self.lo: Tensor | None = None
            self.hi: Tensor | None = None
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        self._copy_init({k: torch.from_numpy(v) for k, v in core.init_parameters(
            self.degree, self.init, self.tails, self.bound).items()})

    @torch.no_grad()
    def set_bounds(self, lo: Tensor | float, hi: Tensor | float) -> None:
        """Set the polynomial range [lo, hi] of ``tails="linear"`` (shared or per channel)."""
        if self.tails != "linear":
            raise ValueError("set_bounds needs tails='linear' (this module has pure polynomial tails)")
        lo_t = torch.as_tensor(lo, dtype=self.lo.dtype, device=self.lo.device).expand_as(self.lo)
        hi_t = torch.as_tensor(hi, dtype=self.hi.dtype, device=self.hi.device).expand_as(self.hi)
        if not bool((lo_t < hi_t).all()):
            raise ValueError(f"bounds must satisfy lo < hi, got lo={lo_t.tolist()}, hi={hi_t.tolist()}")
        self.lo.copy_(lo_t)
        self.hi.copy_(hi_t)

    def forward(self, x: Tensor) -> Tensor:
        self._check_input(x)
        return hermite_op(x, self.coeffs, self.channel_dim, self.lo, self.hi)

    def _bounds64(self) -> tuple[Tensor | None, Tensor | None]:
        if self.lo is None or self.hi is None:
            return None, None
        return self.lo.detach().double().cpu(), self.hi.detach().double().cpu()

    def function_and_derivative(self, z: Tensor) -> tuple[Tensor, Tensor]:
        c = self.coeffs.detach().to(torch.float64).cpu()
        lo, hi = self._bounds64()
        return (self._eval64(lambda x, cd: F.hermite(x, c, cd, lo, hi), z),
                self._eval64(lambda x, cd: F.hermite_derivative(x, c, cd, lo, hi), z))

    def kinks(self, channel: int | None = None) -> Tensor | None:
        lo, hi = self._bounds64()
        if lo is None or hi is None:
            return None
        if channel is not None and lo.ndim:
            return torch.stack([lo[channel], hi[channel]])
        return torch.unique(torch.cat([lo.reshape(-1), hi.reshape(-1)]))

    def closed_form_moments(self) -> GaussianMoments | None:
        """Closed form for pure polynomials (orthogonality); None (quadrature) with tails."""
        if self.tails != "polynomial":
            return None
        m = F.hermite_moments(self.coeffs.detach().cpu())
        if self.channels is None:
            return GaussianMoments(*(float(m[k]) for k in ("mean", "second", "deriv_second",
                                                            "vprime")))
        return GaussianMoments(m["mean"], m["second"], m["deriv_second"], m["vprime"])

    def closed_form_fit(self, x: Tensor, y: Tensor, dy: Tensor, w: Tensor,
                        derivative_weight: float, channel: int | None) -> str:
        """Linear in the coefficients (tails included, bounds held): weighted least squares on
        value and derivative, solved by QR in float64."""
        from ..fit import weighted_lstsq

        lo, hi = self._bounds64()
        if lo is not None and hi is not None:
            lo, hi = (float(b if b.ndim == 0 else b[channel or 0]) for b in (lo, hi))
        xb = x if lo is None or hi is None else x.clamp(lo, hi)
        basis = F.hermite_basis(xb, self.degree)
        dcols = [torch.zeros_like(x)] + basis[:-1]
        fcols = basis if xb is x else [basis[0]] + [
            basis[k] + basis[k - 1] * (x - xb) for k in range(1, self.degree + 1)]
        c = weighted_lstsq(torch.stack(fcols, 1), torch.stack(dcols, 1), y, dy, w,
                           derivative_weight)
        self._set_fitted({"coeffs": c}, channel)
        return "closed-form weighted least squares (QR)"

    def flops_per_element(self) -> tuple[int, int]:
        # Clenshaw: 2 mul + 2 add per step, 3 at the end
        return 4 * max(self.degree - 1, 0) + 3, 0

    def inference_form(self, *, ditac: str = "table", points: int = 4096) -> nn.Module:
        from ..freeze import FrozenHermite

        return FrozenHermite(self)

    def extra_repr(self) -> str:
        tails = f", tails='linear', bound={self.bound:g}" if self.tails == "linear" else ""
        return f"degree={self.degree}, {self._channel_repr()}, init={self.init!r}{tails}"
