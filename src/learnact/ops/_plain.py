"""autograd.Function factory for families whose op is one plain forward and one explicit
backward (no CPU chunked kernel): saves only the input and the parameters, recomputes.

Double backward differentiates the plain backward (it is ordinary torch code), so
``gradgradcheck`` holds; ``torch.compile`` traces both.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from .._tensor import compute_dtype
from ._chunks import cast_grads

__all__ = ["plain_function"]


def plain_function(name: str, forward: Callable[..., Tensor],
                   backward: Callable[..., tuple[Tensor, ...]]) -> type[torch.autograd.Function]:
    """Build ``name``(Function) with apply(channel_dim, x, *params)."""

    def fwd(ctx, channel_dim: int, x: Tensor, *params: Tensor) -> Tensor:
        ctx.save_for_backward(x, *params)
        ctx.channel_dim = channel_dim
        dtype = compute_dtype(x, *params)
        y = forward(x.to(dtype), *(p.to(dtype) for p in params), channel_dim=channel_dim)
        return y.to(x.dtype)

    def bwd(ctx, grad: Tensor):
        x, *params = ctx.saved_tensors
        dtype = compute_dtype(x, *params)
        grads = backward(x.to(dtype), *(p.to(dtype) for p in params), grad=grad.to(dtype),
                         channel_dim=ctx.channel_dim)
        return (None, *cast_grads(ctx.needs_input_grad, grads, (x, *params), first=1))

    return type(name, (torch.autograd.Function,), {
        "forward": staticmethod(fwd), "backward": staticmethod(bwd),
        "__doc__": f"{name}: {forward.__doc__ or ''} Saves (x, params) only.",
    })
