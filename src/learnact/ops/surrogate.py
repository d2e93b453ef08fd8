"""Surrogate-derivative op: forward one function, backward ``grad * declared derivative``.

Saves only the input. The declared derivative may depend on the upstream gradient (left/right
rule) and on a noise source (noisy derivative); it is plain torch code, so double backward
differentiates it as written.
"""

from __future__ import annotations

from collections.abc import Callable

import functools
import warnings

import torch
from torch import Tensor

from ._library import _forward_mode_active

__all__ = ["surrogate_op", "SurrogateFunction"]

Derivative = Callable[[Tensor, Tensor], Tensor]  # (x, grad) -> dL/dx


class SurrogateFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, forward: Callable[[Tensor], Tensor],  # type: ignore[override]
                backward: Derivative) -> Tensor:
        ctx.save_for_backward(x)
        ctx.backward_fn = backward
        return forward(x)

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        (x,) = ctx.saved_tensors
        return ctx.backward_fn(x, grad), None, None


def surrogate_op(x: Tensor, forward: Callable[[Tensor], Tensor], backward: Derivative) -> Tensor:
    """forward(x) with dL/dx = backward(x, grad) (not the true gradient unless it says so).

    Under ``torch.export`` / ``torch.onnx.export`` / ``torch.jit.trace`` the forward function
    alone is recorded (an exported graph is an inference graph) and a warning says so once per
    process."""
    if torch.compiler.is_exporting() or torch.jit.is_tracing():
        _warn_forward_only()
        return forward(x)
    if _forward_mode_active():
        raise NotImplementedError(
            "torch.func transforms (grad, vmap, jacrev, jvp) and forward-mode AD do not run "
            "through the surrogate-derivative activations (staircase, cantor, cantor2, "
            "left_right, noisy, Surrogate): their derivative is a training rule over Python "
            "callables; use loss.backward() or torch.autograd.grad")
    return SurrogateFunction.apply(x, forward, backward)


@functools.cache
def _warn_forward_only() -> None:
    warnings.warn("exporting a surrogate-derivative activation (staircase, cantor, cantor2, "
                  "left_right, noisy, Surrogate): the exported graph holds its FORWARD "
                  "function only; the surrogate derivative is a training-time rule and is not "
                  "part of an inference graph", UserWarning, stacklevel=3)
