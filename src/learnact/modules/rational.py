"""Rational (Padé activation unit) module."""

from __future__ import annotations

import functools

import torch
from torch import Tensor, nn

from ..core import rational as core
from ..functional import rational as F
from ..ops.rational import rational_op
from .base import LearnableActivation

__all__ = ["Rational"]

_TARGETS = core.TARGETS
#: the shipped default-degree fits (learnact.core.rational)
_SHIPPED = core.SHIPPED


@functools.lru_cache(maxsize=64)
def _fitted(num_degree: int, den_degree: int, target: str) -> tuple[tuple[float, ...], ...]:
    """(num, den, (s, t)) for ``target``: shipped for the default degrees, else fitted."""
    shipped = core.SHIPPED.get((num_degree, den_degree, target))
    return shipped if shipped is not None else _fit_coefficients(num_degree, den_degree, target)


def _fit_coefficients(num_degree: int, den_degree: int,
                      target: str) -> tuple[tuple[float, ...], ...]:
    """(num, den, (s, t)) fitted to ``target`` on [-3, 3].

    Linearised least squares, then value+derivative L-BFGS (learnact.fit), then L^p (p = 8,
    16, 32) refinements of the value error towards the minimax fit.
    """
    from ..fit import fit, resolve_target

    x = torch.linspace(-3, 3, 601, dtype=torch.float64)
    with torch.no_grad():
        y = resolve_target(target)(x).double()
    # linearised: P(x) - y (1 + A(x)) = y, linear in (a, b) once |.| is dropped
    cols = [x**i for i in range(num_degree + 1)] + [-y * x**j for j in range(1, den_degree + 1)]
    sol = torch.linalg.lstsq(torch.stack(cols, 1), y.unsqueeze(1)).solution[:, 0]
    act = Rational(num_degree, den_degree, init="_raw").double()
    with torch.no_grad():
        act.num.copy_(sol[: num_degree + 1])
        act.den.copy_(sol[num_degree + 1:])
    fit(act, target, domain=(-3.0, 3.0), derivative_weight=0.1, steps=60)
    # then towards minimax: L^p norms of the error with growing p (p -> inf is the max error);
    # leaky ReLU's kink makes the least-squares fit's max error ~0.027, this brings it to ~0.014
    params = list(act.parameters())
    for pw in (8, 16, 32):
        opt = torch.optim.LBFGS(params, lr=1.0, max_iter=100, line_search_fn="strong_wolfe")

        def closure(pw: int = pw) -> Tensor:
            opt.zero_grad()
            loss = (act(x) - y).abs().pow(pw).mean().pow(1.0 / pw)
            loss.backward()
            return loss

        opt.step(closure)
    return (tuple(act.num.tolist()), tuple(act.den.tolist()),
            (act.scale.item(), act.offset.item()))


class Rational(LearnableActivation):
    r"""Rational (Padé) activation with the safe denominator (no poles).

    .. math::

        f(x) = s\,\frac{a_0 + a_1 x + \dots + a_n x^n}{1 + |b_1 x + \dots + b_m x^m|} + t

    Args:
        num_degree: n in [1, 16] (default 5).
        den_degree: m in [1, 16] (default 4).
        channels: None (shared) or C: per-channel coefficients (``num`` (n+1), ``den`` (m)).
        channel_dim: the input's channel dimension (1: (N, C, ...); -1: channels last).
        init: ``"paper"`` (default; aliases ``"published"``, ``"leaky_relu"``): fitted to
            leaky ReLU (slope 0.01) on [-3, 3], as the PAU paper initialises; ``"gelu"``:
            fitted to GELU; ``"unit"``: the leaky-ReLU fit with output scale s and offset t from
            the general route (E[f^2] = E[f'^2] = 1). Fits: linearised least squares, then a
            deterministic L-BFGS (cached per degree pair).

    Source: A. Molina, P. Schramowski, K. Kersting, "Padé Activation Units: End-to-end Learning
    of Flexible Activation Functions in Deep Networks", ICLR 2020 (arXiv:1907.06732).
    """

    family = "rational"
    aliases = ("pau",)

    def __init__(self, num_degree: int = 5, den_degree: int = 4, channels: int | None = None,
                 channel_dim: int = 1, init: str = "paper") -> None:
        super().__init__(channels, channel_dim)
        if init == "_raw":  # internal: values set by the caller (no init, no check)
            self._configure(num_degree=num_degree, den_degree=den_degree)
            self.init = init
        else:
            self._configure(num_degree=num_degree, den_degree=den_degree, init=init)
        self.num = nn.Parameter(torch.zeros(self._param_shape(self.num_degree + 1)))
        self.den = nn.Parameter(torch.zeros(self._param_shape(self.den_degree)))
        self.scale = nn.Parameter(torch.ones(self._param_shape()))
        self.offset = nn.Parameter(torch.zeros(self._param_shape()))
        if self.init != "_raw":
            self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        self._copy_init({k: torch.from_numpy(v) for k, v in core.init_parameters(
            self.num_degree, self.den_degree, self.init, fit=_fitted).items()})

    def forward(self, x: Tensor) -> Tensor:
        self._check_input(x)
        return rational_op(x, self.num, self.den, self.scale, self.offset, self.channel_dim)

    def _p64(self) -> tuple[Tensor, ...]:
        return tuple(p.detach().double().cpu() for p in (self.num, self.den, self.scale, self.offset))

    def function_and_derivative(self, z: Tensor) -> tuple[Tensor, Tensor]:
        p = self._p64()
        return (self._eval64(lambda x, cd: F.rational(x, *p, channel_dim=cd), z),
                self._eval64(lambda x, cd: F.rational_backward(
                    x, *p, grad=torch.ones_like(x), channel_dim=cd)[0], z))

    def flops_per_element(self) -> tuple[int, int]:
        # two Horner chains (mul + add per step), abs, add, div, scale and offset
        return 2 * self.num_degree + 2 * self.den_degree + 5, 0

    def inference_form(self, *, ditac: str = "table", points: int = 4096) -> nn.Module:
        from ..freeze import FrozenRational

        return FrozenRational(self)

    def extra_repr(self) -> str:
        return (f"num_degree={self.num_degree}, den_degree={self.den_degree}, "
                f"{self._channel_repr()}, init={self.init!r}")
