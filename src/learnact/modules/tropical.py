"""Tropical polynomial and tropical rational activation modules."""

from __future__ import annotations


import torch
from torch import Tensor, nn

from .._tensor import column
from ..functional import tropical as F
from ..core import tropical as core
from ..ops.tropical import tropical_op, tropical_rational_op
from .base import LearnableActivation

__all__ = ["Tropical", "TropicalRational"]

MAX_DEGREE = 64


class Tropical(LearnableActivation):
    r"""Learnable tropical (max-plus) polynomial activation.

    .. math::  f(x) = \alpha \max_{k=0..d} (k x + c_k) + \beta

    Convex and piecewise linear with integer slopes 0..d; learnable intercepts ``coeffs`` c,
    output ``scale`` alpha and ``offset`` beta (buffer ``slopes`` = 0..d).

    Args:
        degree: d in [1, 64] (default 8).
        channels: None (one shared set of parameters) or C (one set per channel).
        channel_dim: the input's channel dimension (1: (N, C, ...); -1: channels last).
        init: ``"unit"`` (default): intercepts that put the d breakpoints at the N(0,1)
            quantiles j/(d+1) (every line is active on 1/(d+1) of the mass, a piecewise-linear
            "Gaussian softplus"), then alpha, beta from the general route so
            E[f^2] = E[f'^2] = 1 exactly; ``"paper"`` (alias ``"published"``): c_k = 1,
            alpha = sqrt(2)/d, beta = 0 - that is sqrt(2) ReLU(x) + sqrt(2)/d, with
            E[f^2] = 1 + 1.596/d + 2/d^2 (1.40 at d = 5) and only two lines ever active.

    Source: I. Khalfaoui-Hassani and S. Kesselheim, "Learnable polynomial, trigonometric, and
    tropical activations", arXiv:2502.01247 (2025).
    """

    family = "tropical"

    def __init__(self, degree: int = 8, channels: int | None = None, channel_dim: int = 1,
                 init: str = "unit") -> None:
        super().__init__(channels, channel_dim)
        self._configure(degree=degree, init=init)
        self.register_buffer("slopes", torch.arange(self.degree + 1, dtype=torch.float32))
        self.coeffs = nn.Parameter(torch.empty(self._param_shape(self.degree + 1)))
        self.scale = nn.Parameter(torch.empty(self._param_shape()))
        self.offset = nn.Parameter(torch.empty(self._param_shape()))
        self.reset_parameters()

    @staticmethod
    def init_parameters(degree: int, init: str = "unit") -> dict[str, Tensor]:
        """The float64 initial parameters for ``init`` (learnact.core.tropical)."""
        return {k: torch.from_numpy(v) for k, v in core.tropical_init(degree, init).items()}

    @torch.no_grad()
    def reset_parameters(self) -> None:
        self._copy_init(self.init_parameters(self.degree, self.init))

    def forward(self, x: Tensor) -> Tensor:
        self._check_input(x)
        return tropical_op(x, self.slopes.to(self.coeffs.dtype), self.coeffs, self.scale,
                           self.offset, self.channel_dim)

    def _p64(self) -> tuple[Tensor, ...]:
        return tuple(p.detach().to(torch.float64).cpu()
                     for p in (self.slopes, self.coeffs, self.scale, self.offset))

    def function_and_derivative(self, z: Tensor) -> tuple[Tensor, Tensor]:
        s, c, a, b = self._p64()
        f = self._eval64(lambda x, cd: F.tropical(x, s, c, a, b, cd), z)
        df = self._eval64(lambda x, cd: _envelope_slope(x, s, c, cd)
                          * (a if a.ndim == 0 else a.reshape(1, -1)), z)
        return f, df

    def kinks(self, channel: int | None = None) -> Tensor:
        s, c, _, _ = self._p64()
        if c.ndim == 1:
            return F.envelope_kinks(s, c)
        rows = range(c.shape[0]) if channel is None else [channel]
        return torch.unique(torch.cat([F.envelope_kinks(s, c[i]) for i in rows]))

    def fit_start(self, x: Tensor, y: Tensor, dy: Tensor, w: Tensor,
                  channel: int | None) -> None:
        """Tangent-line start: line k touches the target where target' = alpha k.

        alpha = (max target') / d over the bulk of the domain (weights above 1e-4 of the peak),
        so the fixed integer slopes span the target's slopes; c_k = target(x_k)/alpha - k x_k.
        The envelope of tangents is the best convex minorant one can build from them; L-BFGS
        refines.
        """
        bulk = w > 1e-4 * w.max()
        xb, yb, db = x[bulk], y[bulk], dy[bulk]
        top = float(db.max())
        if not top > 0:
            return
        alpha = top / self.degree
        c = torch.empty(self.degree + 1, dtype=torch.float64)
        for k in range(self.degree + 1):
            j = int(torch.argmin((db - alpha * k).abs() + 1e-9 * xb.abs()))
            c[k] = yb[j] / alpha - k * xb[j]
        self._set_fitted({"coeffs": c, "scale": torch.tensor(alpha),
                          "offset": torch.tensor(0.0)}, channel)

    def flops_per_element(self) -> tuple[int, int]:
        # per line: mul, add, max; then scale and offset
        return 3 * (self.degree + 1) + 2, 0

    def inference_form(self, *, ditac: str = "table", points: int = 4096) -> nn.Module:
        from ..freeze import FrozenTropical

        return FrozenTropical(self)

    def extra_repr(self) -> str:
        return f"degree={self.degree}, {self._channel_repr()}, init={self.init!r}"


class TropicalRational(LearnableActivation):
    r"""Learnable tropical rational activation: a difference of two max-plus polynomials.

    .. math::  f(x) = \alpha\Bigl(\max_k (p_k x + a_k) - \max_k (q_k x + b_k)\Bigr) + \beta

    (tropical division P ⊘ Q is ordinary subtraction). Slopes p, q and intercepts a, b are all
    learnable (as in the published code), so f can be non-convex and non-monotone, with
    asymptotic slopes alpha (max p - max q) and alpha (min p - min q).

    Args:
        degree: d in [1, 64]: each polynomial has d+1 lines (default 4).
        channels: None (one shared set of parameters) or C (one set per channel).
        channel_dim: the input's channel dimension (1: (N, C, ...); -1: channels last).
        init: ``"unit"`` (default): p_k = k, q_k = k/2 and both sets of breakpoints at the
            N(0,1) quantiles j/(d+1), so f starts as half the tropical "unit" shape (convex,
            every line active), scaled to E[f^2] = E[f'^2] = 1; ``"paper"`` (alias
            ``"published"``): all four tables drawn i.i.d. N(0, 1) from torch's generator, as
            the published code does (no variance control).

    Source: I. Khalfaoui-Hassani and S. Kesselheim, "Learnable polynomial, trigonometric, and
    tropical activations", arXiv:2502.01247 (2025).
    """

    family = "tropical_rational"

    def __init__(self, degree: int = 4, channels: int | None = None, channel_dim: int = 1,
                 init: str = "unit") -> None:
        super().__init__(channels, channel_dim)
        self._configure(degree=degree, init=init)
        shape = self._param_shape(self.degree + 1)
        self.num_slopes = nn.Parameter(torch.empty(shape))
        self.num_coeffs = nn.Parameter(torch.empty(shape))
        self.den_slopes = nn.Parameter(torch.empty(shape))
        self.den_coeffs = nn.Parameter(torch.empty(shape))
        self.scale = nn.Parameter(torch.empty(self._param_shape()))
        self.offset = nn.Parameter(torch.empty(self._param_shape()))
        self.reset_parameters()

    @staticmethod
    def init_parameters(degree: int, init: str = "unit") -> dict[str, Tensor]:
        """The float64 initial parameters for ``init`` (learnact.core.tropical); "paper" draws
        from torch's global generator."""
        values = core.tropical_rational_init(
            degree, init, normal=lambda shape: torch.randn(shape, dtype=torch.float64).numpy())
        return {k: torch.from_numpy(v) for k, v in values.items()}

    @torch.no_grad()
    def reset_parameters(self) -> None:
        values = self.init_parameters(self.degree, self.init)
        if self.init in ("paper", "published") and self.channels is not None:
            values = {k: (torch.randn(self.channels, self.degree + 1, dtype=torch.float64)
                          if v.ndim == 1 else v) for k, v in values.items()}
        self._copy_init(values)

    def forward(self, x: Tensor) -> Tensor:
        self._check_input(x)
        return tropical_rational_op(x, self.num_slopes, self.num_coeffs, self.den_slopes,
                                    self.den_coeffs, self.scale, self.offset, self.channel_dim)

    def _p64(self) -> tuple[Tensor, ...]:
        return tuple(p.detach().to(torch.float64).cpu() for p in (
            self.num_slopes, self.num_coeffs, self.den_slopes, self.den_coeffs, self.scale,
            self.offset))

    def function_and_derivative(self, z: Tensor) -> tuple[Tensor, Tensor]:
        p, a, q, b, al, be = self._p64()
        f = self._eval64(lambda x, cd: F.tropical_rational(x, p, a, q, b, al, be, cd), z)
        df = self._eval64(lambda x, cd: (_envelope_slope(x, p, a, cd) - _envelope_slope(x, q, b, cd))
                          * (al if al.ndim == 0 else al.reshape(1, -1)), z)
        return f, df

    def kinks(self, channel: int | None = None) -> Tensor:
        p, a, q, b, _, _ = self._p64()
        if a.ndim == 1:
            return torch.unique(torch.cat([F.envelope_kinks(p, a), F.envelope_kinks(q, b)]))
        rows = range(a.shape[0]) if channel is None else [channel]
        return torch.unique(torch.cat([torch.cat([F.envelope_kinks(p[i], a[i]),
                                                  F.envelope_kinks(q[i], b[i])]) for i in rows]))

    def flops_per_element(self) -> tuple[int, int]:
        return 6 * (self.degree + 1) + 3, 0

    def inference_form(self, *, ditac: str = "table", points: int = 4096) -> nn.Module:
        from ..freeze import FrozenTropicalRational

        return FrozenTropicalRational(self)

    def extra_repr(self) -> str:
        return f"degree={self.degree}, {self._channel_repr()}, init={self.init!r}"


def _envelope_slope(x: Tensor, slopes: Tensor, coeffs: Tensor, cd: int) -> Tensor:
    """Slope of the active line at x (first argmax), broadcasting like the envelope."""
    _, idx = F.envelope(x, slopes, coeffs, cd)
    out = torch.zeros_like(x)
    for k in range(coeffs.shape[-1]):
        out = torch.where(idx == k, column(slopes, k, x.ndim, cd).expand_as(x), out)
    return out
