"""How a derived family's formula is evaluated in PyTorch (the module and its frozen form
share this, so they agree bit for bit in eager mode).

- Under ``torch.compile``, ``torch.export``, ``torch.jit.trace`` (and so ONNX export), and
  under a torch.func transform or forward-mode AD: the definition's formula itself, as
  standard differentiable operators (inductor fuses it; an exported graph holds it).
- Otherwise, when the definition names an eager kernel (``torch_kernel``, e.g. ops/pwlu.py):
  the kernel (an autograd Function saving x and the parameters when a graph is built).
- Otherwise: the formula, through an autograd Function that saves x and the parameters only
  and evaluates the formula again in backward (with ``create_graph``, so double backward is
  exact), or directly when no graph is built.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from ..core.definition import Family
from ._library import _forward_mode_active

__all__ = ["evaluate"]


def evaluate(definition: Family, x: Tensor, p: dict[str, Tensor], kw: dict[str, Any]) -> Tensor:
    """f(x) of a derived family in x's dtype (the caller casts to the compute dtype)."""
    traced = (torch.compiler.is_compiling() or torch.compiler.is_exporting()
              or torch.jit.is_tracing() or _forward_mode_active())
    if traced:
        return definition.forward(torch, x, p, kw)
    if definition.torch_kernel:
        return _kernel(definition.torch_kernel)(x, p, kw)
    if torch.is_grad_enabled() and (x.requires_grad or any(t.requires_grad for t in p.values())):
        return _Recompute.apply(definition, kw, tuple(p), x, *p.values())
    return definition.forward(torch, x, p, kw)


@functools.cache
def _kernel(path: str) -> Callable[[Tensor, dict[str, Tensor], dict[str, Any]], Tensor]:
    """``"module:function"`` -> the function (a family's eager PyTorch kernel)."""
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


class _Recompute(torch.autograd.Function):
    """The formula with autograd memory of the input and the parameters only: backward
    evaluates the formula again under autograd and differentiates it (with
    ``create_graph``, so double backward is exact, not zero)."""

    @staticmethod
    def forward(ctx: Any, definition: Family, kw: dict[str, Any], names: tuple[str, ...],
                x: Tensor, *params: Tensor) -> Tensor:
        ctx.definition, ctx.kw, ctx.names = definition, kw, names
        ctx.save_for_backward(x, *params)
        return definition.forward(torch, x, dict(zip(names, params)), kw)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        x, *params = ctx.saved_tensors
        need = ctx.needs_input_grad[3:]
        inputs = [t if t.requires_grad else t.detach().requires_grad_(True)
                  for t in (x, *params)]
        with torch.enable_grad():
            y = ctx.definition.forward(torch, inputs[0], dict(zip(ctx.names, inputs[1:])),
                                       ctx.kw)
        wanted = [t for t, n in zip(inputs, need) if n]
        grads = iter(torch.autograd.grad(y, wanted, grad, create_graph=torch.is_grad_enabled(),
                                         allow_unused=True))
        out = [next(grads) if n else None for n in need]
        out = [torch.zeros_like(t) if n and g is None else g
               for t, g, n in zip(inputs, out, need)]
        return (None, None, None, *out)
