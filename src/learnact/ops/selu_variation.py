"""Fused SELU-variation op (saves the input and the parameters only).

Math: :mod:`learnact.functional.selu_variation`; CPU kernel: native/selu_variation.h
(ops/_families.py).
"""

from __future__ import annotations

from torch import Tensor

from ..functional.selu_variation import selu_variation, selu_variation_backward
from ._families import family_op
from ._library import Param

__all__ = ["selu_variation_op", "op"]

# learnact::selu_variation / selu_variation_backward (ops/_library.py)
op = family_op("selu_variation",
               [Param(n) for n in ("lam", "alpha", "beta", "gamma", "omega", "scale", "offset")],
               selu_variation, selu_variation_backward,
               triton="learnact.ops.triton.selu_variation",
               compile="op")  # the traced reference compiled to 2.8x GELU, the op 2.0x


def selu_variation_op(x: Tensor, lam: Tensor, alpha: Tensor, beta: Tensor, gamma: Tensor,
                      omega: Tensor, scale: Tensor, offset: Tensor, channel_dim: int = 1) -> Tensor:
    """scale * SELU-variation(x) + offset; parameters () shared or (C,) per channel."""
    return op(x, lam, alpha, beta, gamma, omega, scale, offset, channel_dim=channel_dim)
