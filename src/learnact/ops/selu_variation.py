"""Fused SELU-variation op (saves the input and the parameters only); math in functional/."""

from __future__ import annotations

from torch import Tensor

from ..functional.selu_variation import selu_variation, selu_variation_backward
from ._plain import plain_op

__all__ = ["selu_variation_op", "op"]

# learnact::selu_variation / selu_variation_backward (ops/_plain.py)
op = plain_op("selu_variation", ("lam", "alpha", "beta", "gamma", "omega", "scale", "offset"),
              selu_variation, selu_variation_backward,
              triton="learnact.ops.triton.selu_variation")


def selu_variation_op(x: Tensor, lam: Tensor, alpha: Tensor, beta: Tensor, gamma: Tensor,
                      omega: Tensor, scale: Tensor, offset: Tensor, channel_dim: int = 1) -> Tensor:
    """scale * SELU-variation(x) + offset; parameters () shared or (C,) per channel."""
    return op(x, lam, alpha, beta, gamma, omega, scale, offset, channel_dim=channel_dim)
