"""Fused rational (Padé, safe denominator) op: saves the input and the coefficients only.

Math: :mod:`learnact.functional.rational`; CPU kernel: native/rational.h (ops/_families.py).
"""

from __future__ import annotations

from torch import Tensor

from ..functional.rational import rational, rational_backward
from ._families import family_op
from ._library import Param

__all__ = ["rational_op", "op"]

# learnact::rational / rational_backward (ops/_library.py)
op = family_op("rational", [Param(n) for n in ("num", "den", "scale", "offset")], rational,
               rational_backward, triton="learnact.ops.triton.rational",
               compile="op")  # the scaled reference traced: 2.3x GELU; the op: 2.2x


def rational_op(x: Tensor, num: Tensor, den: Tensor, scale: Tensor, offset: Tensor,
                channel_dim: int = 1) -> Tensor:
    """scale P(x) / (1 + |A(x)|) + offset; num (n+1,) or (C, n+1), den (m,) or (C, m)."""
    return op(x, num, den, scale, offset, channel_dim=channel_dim)
