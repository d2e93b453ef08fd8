"""CPU kernels for families whose op is one plain forward and one explicit backward
(rational, selu_variation): the reference functions themselves, run piece by piece over
L2-sized chunks of a (B, C, R) view with the parameter gradients added over pieces (no
whole-tensor temporaries; measured 2-3x faster than whole-tensor ops for rational and
selu_variation on the benchmark shape). The op around them: ops/_library.py.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from torch import Tensor

from ._chunks import as_bcr, map_chunks
from ._library import FamilyOp, Param

__all__ = ["plain_op"]


def plain_op(name: str, params: Sequence[str], forward: Callable[..., Tensor],
             backward: Callable[..., tuple[Tensor, ...]], triton: str | None = None) -> FamilyOp:
    """The family op of ``forward(x, *params, channel_dim)`` and
    ``backward(x, *params, grad, channel_dim) -> (gx, *gparams)``, every parameter
    differentiable, with chunked CPU kernels of the same two functions."""

    def cpu_forward(x: Tensor, *args) -> Tensor:
        *ps, channel_dim = args

        def piece(o: Tensor, xp: Tensor) -> None:
            o.copy_(forward(xp, *ps, 1))

        out, _ = map_chunks(_bcr(x, channel_dim, ps), piece)
        return out.reshape(x.shape)

    def cpu_backward(x: Tensor, *args) -> tuple[Tensor, ...]:
        *ps, grad, channel_dim = args
        x3 = _bcr(x, channel_dim, ps)

        def piece(o: Tensor, xp: Tensor, gp: Tensor) -> list[Tensor]:
            gxp, *gparams = backward(xp, *ps, gp, 1)
            o.copy_(gxp)
            return gparams

        # grad.reshape: the same layout as x3 (both views of x's logical shape)
        gx, sums = map_chunks(x3, piece, grad.reshape(x3.shape))
        return (gx.reshape(x.shape), *sums)

    return FamilyOp(name, [Param(p) for p in params], forward, backward,
                    cpu_forward=cpu_forward, cpu_backward=cpu_backward, triton=triton)


def _bcr(x: Tensor, channel_dim: int, params: Sequence[Tensor]) -> Tensor:
    """(B, C, R) view of x for per-channel parameters (any parameter with a dim), else
    (1, 1, N): the chunks are then plain contiguous runs."""
    per_channel = x.ndim >= 2 and any(p.ndim >= 1 and p.shape[0] > 1 for p in params)
    return as_bcr(x.contiguous(), channel_dim, per_channel)
