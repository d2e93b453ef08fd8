"""Learnable SELU-variation module."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..functional import selu_variation as F
from ..core import selu_variation as core
from ..ops.selu_variation import selu_variation_op
from .base import LearnableActivation

__all__ = ["SELUVariation"]


class SELUVariation(LearnableActivation):
    r"""Learnable SELU variation: SELU with a sinusoidal term on the negative side.

    .. math::

        f(x) = s\,\lambda \begin{cases} x & x > 0\\
        \alpha (e^{\beta x} - 1) + \gamma \sin(\omega x) & x \le 0 \end{cases} + t

    Parameters (all learnable, shape () or (C,)): ``lam``, ``alpha``, ``beta``, ``gamma``,
    ``omega``, and the output ``scale`` s and ``offset`` t.

    Args:
        channels: None (one shared set of parameters) or C (one set per channel).
        channel_dim: the input's channel dimension (1: (N, C, ...); -1: channels last).
        init: ``"paper"`` (default; alias ``"published"``): lambda = 1.0507, alpha = 1.67326,
            beta = 1, gamma = 0.1, omega = 2, s = 1, t = 0; ``"unit"``: the same shape with
            s, t from the general route so that E[f^2] = E[f'^2] = 1 under N(0, 1).

    The negative branch is computed at min(x, 0), so exp never overflows where ``where``
    discards it (beta < 0, x >> 0). For beta < 0 the function itself grows like e^{|beta x|}
    as x -> -inf: that is the formula, not an overflow of the implementation.

    Source: the SELU Variation / LearnableSELUVariation activations (ToyMath, GitHub, 2024;
    TensorFlow, PyTorch and JAX versions), built on SELU (Klambauer et al., NeurIPS 2017,
    arXiv:1706.02515).
    """

    family = "selu_variation"

    def __init__(self, channels: int | None = None, channel_dim: int = 1,
                 init: str = "paper") -> None:
        super().__init__(channels, channel_dim)
        self._configure(init=init)
        for name in F.NAMES:
            setattr(self, name, nn.Parameter(torch.empty(self._param_shape())))
        self.reset_parameters()

    @staticmethod
    def init_parameters(init: str = "paper") -> dict[str, float]:
        """The initial values for ``init`` (learnact.core.selu_variation)."""
        return core.init_parameters(init)

    @torch.no_grad()
    def reset_parameters(self) -> None:
        for name, v in self.init_parameters(self.init).items():
            getattr(self, name).fill_(v)

    def _params(self) -> tuple[Tensor, ...]:
        return tuple(getattr(self, n) for n in F.NAMES)

    def forward(self, x: Tensor) -> Tensor:
        self._check_input(x)
        return selu_variation_op(x, *self._params(), channel_dim=self.channel_dim)

    def function_and_derivative(self, z: Tensor) -> tuple[Tensor, Tensor]:
        p = tuple(t.detach().double().cpu() for t in self._params())

        def val(x: Tensor, cd: int) -> Tensor:
            return F.selu_variation(x, *p, channel_dim=cd)

        def der(x: Tensor, cd: int) -> Tensor:
            return F.selu_variation_backward(x, *p, grad=torch.ones_like(x), channel_dim=cd)[0]

        return self._eval64(val, z), self._eval64(der, z)

    def kinks(self, channel: int | None = None) -> Tensor:
        return torch.tensor([0.0], dtype=torch.float64)

    def flops_per_element(self) -> tuple[int, int]:
        # where, mul/add chains on both branches; exp and sin
        return 12, 2

    def inference_form(self, *, ditac: str = "table", points: int = 4096) -> nn.Module:
        from ..freeze import FrozenSELUVariation

        return FrozenSELUVariation(self)

    def extra_repr(self) -> str:
        return f"{self._channel_repr()}, init={self.init!r}"
