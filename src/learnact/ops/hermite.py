r"""Fused Hermite op: saves only the input and the coefficients, recomputes in backward.

Math: :mod:`learnact.functional.hermite` (the reference, any device); CPU kernel:
native/hermite.h (ops/_families.py); CUDA: ops/triton/hermite.py.
Derivatives: with h_k = He_k/k!, df/dx = sum_{k>=1} c_k h_{k-1} and df/dc_k = h_k.
"""

from __future__ import annotations

from torch import Tensor

from ..functional.hermite import hermite, hermite_backward
from ._families import family_op
from ._library import Param

__all__ = ["hermite_op", "op"]

# learnact::hermite / hermite_backward (ops/_library.py)
op = family_op(
    "hermite",
    [Param("coeffs"), Param("lo", differentiable=False, optional=True),
     Param("hi", differentiable=False, optional=True)],
    lambda x, c, lo, hi, cd: hermite(x, c, cd, lo, hi),
    lambda x, c, lo, hi, grad, cd: hermite_backward(x, c, grad, cd, lo, hi),
    triton="learnact.ops.triton.hermite",
    # CPU under torch.compile: the native kernel, fwd+bwd 1.41x GELU for d8 (inductor's fusion
    # of the traced reference 1.66x), 2.1x for d16 (3.2x), d4 alike (1.2x); CUDA traces
    compile_cpu="op",
)


def hermite_op(x: Tensor, coeffs: Tensor, channel_dim: int = 1, lo: Tensor | None = None,
               hi: Tensor | None = None) -> Tensor:
    """Fused Hermite activation. coeffs: (d+1,) shared or (C, d+1) per channel along channel_dim.

    With ``lo``/``hi`` (shape () or (C,)), f continues C1-linearly outside [lo, hi].
    """
    return op(x, coeffs, lo, hi, channel_dim=channel_dim)
