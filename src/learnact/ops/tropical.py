r"""Fused tropical polynomial / tropical rational ops: save only the input and the parameters.

Math: :mod:`learnact.functional.tropical`; CPU kernels: native/tropical.h (ops/_families.py);
CUDA: ops/triton/tropical.py. d max_k(s_k x + c_k)/dx = s_idx, d/dc_k = [idx == k],
d/ds_k = x [idx == k], with idx the (first) argmax.
"""

from __future__ import annotations

from torch import Tensor

from ..functional.tropical import (
    tropical,
    tropical_backward,
    tropical_rational,
    tropical_rational_backward,
)
from ._families import family_op
from ._library import Param

__all__ = ["tropical_op", "tropical_rational_op", "op", "rational_op"]

# learnact::tropical(_backward), learnact::tropical_rational(_backward) (ops/_library.py).
# torch.compile keeps the opaque ops: inductor's code for the traced backward (argmax masks and
# their reductions) ran at 29x (tropical d4) and 58x (tropical rational) GELU's fwd+bwd, the
# native kernels at 1.6x and 2.4x (benchmarks/bench_ops.py, RESULTS.md)
op = family_op(
    "tropical",
    [Param("slopes", differentiable=False), Param("coeffs"), Param("scale"), Param("offset")],
    tropical, tropical_backward, triton="learnact.ops.triton.tropical", compile="op",
)

rational_op = family_op(
    "tropical_rational",
    [Param(n) for n in ("num_slopes", "num_coeffs", "den_slopes", "den_coeffs", "scale",
                        "offset")],
    tropical_rational, tropical_rational_backward,
    triton="learnact.ops.triton.tropical:rational", compile="op",
)


def tropical_op(x: Tensor, slopes: Tensor, coeffs: Tensor, scale: Tensor, offset: Tensor,
                channel_dim: int = 1) -> Tensor:
    """Fused tropical polynomial activation (slopes are not differentiated)."""
    return op(x, slopes, coeffs, scale, offset, channel_dim=channel_dim)


def tropical_rational_op(x: Tensor, num_slopes: Tensor, num_coeffs: Tensor, den_slopes: Tensor,
                         den_coeffs: Tensor, scale: Tensor, offset: Tensor,
                         channel_dim: int = 1) -> Tensor:
    """Fused tropical rational activation (all parameters differentiable)."""
    return rational_op(x, num_slopes, num_coeffs, den_slopes, den_coeffs, scale, offset,
                       channel_dim=channel_dim)
