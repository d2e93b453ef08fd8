"""Fused SELU-variation op (saves the input and the parameters only); math in functional/."""

from __future__ import annotations

from torch import Tensor

from ..functional.selu_variation import selu_variation, selu_variation_backward
from ._plain import plain_function

__all__ = ["selu_variation_op", "SeluVariationFunction"]

SeluVariationFunction = plain_function("SeluVariationFunction", selu_variation,
                                       selu_variation_backward)


def selu_variation_op(x: Tensor, lam: Tensor, alpha: Tensor, beta: Tensor, gamma: Tensor,
                      omega: Tensor, scale: Tensor, offset: Tensor, channel_dim: int = 1) -> Tensor:
    """scale * SELU-variation(x) + offset; parameters () shared or (C,) per channel."""
    return SeluVariationFunction.apply(channel_dim, x, lam, alpha, beta, gamma, omega, scale,
                                       offset)
