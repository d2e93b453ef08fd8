"""autograd.Function factory for families whose op is one plain forward and one explicit
backward: saves only the input and the parameters, recomputes.

On the CPU eager path (ops/_chunks.py) both run piece by piece over L2-sized chunks of a
(B, C, R) view, the parameter gradients added over pieces: the same functions, without
whole-tensor temporaries (measured 2-3x faster for rational and selu_variation on the
benchmark shape). Double backward differentiates the plain backward (it is ordinary torch
code, and the chunked path is never taken with grad mode on), so ``gradgradcheck`` holds;
``torch.compile`` traces both.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from .._tensor import compute_dtype, use_fast_cpu_path
from ._chunks import as_bcr, cast_grads, map_chunks

__all__ = ["plain_function"]


def plain_function(name: str, forward: Callable[..., Tensor],
                   backward: Callable[..., tuple[Tensor, ...]]) -> type[torch.autograd.Function]:
    """Build ``name``(Function) with apply(channel_dim, x, *params)."""

    def fwd(ctx, channel_dim: int, x: Tensor, *params: Tensor) -> Tensor:
        ctx.save_for_backward(x, *params)
        ctx.channel_dim = channel_dim
        dtype = compute_dtype(x, *params)
        xx, ps = x.to(dtype), [p.to(dtype) for p in params]
        if not use_fast_cpu_path(xx):
            return forward(xx, *ps, channel_dim=channel_dim).to(x.dtype)

        def piece(o: Tensor, xp: Tensor) -> None:
            o.copy_(forward(xp, *ps, channel_dim=1))

        out, _ = map_chunks(_bcr(xx, channel_dim, ps), piece)
        return out.reshape(x.shape).to(x.dtype)

    def bwd(ctx, grad: Tensor):
        x, *params = ctx.saved_tensors
        dtype = compute_dtype(x, *params)
        xx, ps, g = x.to(dtype), [p.to(dtype) for p in params], grad.to(dtype)
        if use_fast_cpu_path(xx):
            x3 = _bcr(xx, ctx.channel_dim, ps)

            def piece(o: Tensor, xp: Tensor, gp: Tensor) -> list[Tensor]:
                gxp, *gparams = backward(xp, *ps, grad=gp, channel_dim=1)
                o.copy_(gxp)
                return gparams

            # g.reshape: the same layout as x3 (both views of x's logical shape)
            gx, sums = map_chunks(x3, piece, g.reshape(x3.shape))
            grads = (gx.reshape(x.shape), *sums)
        else:
            grads = backward(xx, *ps, grad=g, channel_dim=ctx.channel_dim)
        return (None, *cast_grads(ctx.needs_input_grad, grads, (x, *params), first=1))

    return type(name, (torch.autograd.Function,), {
        "forward": staticmethod(fwd), "backward": staticmethod(bwd),
        "__doc__": f"{name}: {forward.__doc__ or ''} Saves (x, params) only.",
    })


def _bcr(x: Tensor, channel_dim: int, params: list[Tensor]) -> Tensor:
    """(B, C, R) view of x for per-channel parameters (any parameter with a dim), else
    (1, 1, N): the chunks are then plain contiguous runs."""
    per_channel = x.ndim >= 2 and any(p.ndim >= 1 and p.shape[0] > 1 for p in params)
    return as_bcr(x.contiguous(), channel_dim, per_channel)
