"""PWLU's PyTorch kernel (eager): the piecewise-linear unit as one table lookup per element,
instead of the definition's sum of N hinges (learnact.core.pwlu, which torch.compile and
export trace).

In t = (x - a)/w units (w = (b - a)/N) every piece of f is a line c0_i + c1_i t over the bins
i = 0 (left tail, t < 0), 1..N (the segments), N+1 (right tail, t >= N): c1 = w k_l, the
segment rises y_{j+1} - y_j, w k_r; c0 puts each line through its knot. The (N+2)-entry tables
(one row per channel) are computed from the parameters by a few small differentiable
operations, so that autograd carries their gradients to the knots and slopes. Per element:
bin = clamp(floor(t), -1, N) + 1, y = c0[bin] + c1[bin] t (two gathers).

Backward (saving only x and the parameters): dL/dx = g c1[bin]/w; dL/dc0 and dL/dc1 are
per-bin sums of g and g t (``bincount``; ``index_add`` under ``create_graph``, which is
differentiable, so double backward is exact), then back through the small tables by autograd.
Tested against the definition's formula and a float64 reference (tests/test_pwlu.py).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .._tensor import channel_view

__all__ = ["pwlu_function", "tables"]


def tables(knots: Tensor, left: Tensor, right: Tensor, a: float, b: float
           ) -> tuple[Tensor, Tensor]:
    """(c0, c1), each (N+2,) or (C, N+2): the line c0 + c1 t of every bin, t = (x - a)/w."""
    n = knots.shape[-1] - 1
    w = (b - a) / n
    rise = knots[..., 1:] - knots[..., :-1]
    c1 = torch.cat([(w * left)[..., None], rise, (w * right)[..., None]], -1)
    # each line passes through (origin, start): the left tail through (0, y_0), segment j
    # through (j, y_j), the right tail through (N, y_N)
    start = torch.cat([knots[..., :1], knots[..., :-1], knots[..., -1:]], -1)
    origin = torch.arange(-1, n + 1, dtype=knots.dtype, device=knots.device).clamp(0, n)
    return start - c1 * origin, c1


def _bins(x: Tensor, n: int, rows: int | None, a: float, b: float, channel_dim: int
          ) -> tuple[Tensor, Tensor]:
    """(t, flat bin index into the (rows * (N+2),) tables)."""
    t = (x - a) * (n / (b - a))
    i = torch.nan_to_num(torch.floor(t), nan=0.0).clamp_(-1, n).add_(1).to(torch.int64)
    if rows is not None:
        offset = torch.arange(rows, device=x.device) * (n + 2)
        i = i + channel_view(offset, x.ndim, channel_dim)
    return t, i


class _PWLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor, knots: Tensor, left: Tensor, right: Tensor, a: float,
                b: float, channel_dim: int) -> Tensor:
        ctx.save_for_backward(x, knots, left, right)
        ctx.config = (a, b, channel_dim)
        return _apply(x, knots, left, right, a, b, channel_dim)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        x, knots, left, right = ctx.saved_tensors
        a, b, cd = ctx.config
        n = knots.shape[-1] - 1
        rows = knots.shape[0] if knots.ndim == 2 else None
        params = [p if p.requires_grad else p.detach().requires_grad_(True)
                  for p in (knots, left, right)]
        with torch.enable_grad():
            c0, c1 = tables(*params, a, b)
        t, i = _bins(x, n, rows, a, b, cd)
        flat = i.reshape(-1)
        dx = grad * torch.take(c1.reshape(-1), i) * (n / (b - a)) if ctx.needs_input_grad[0] \
            else None
        out: list[Tensor | None] = [dx, None, None, None]
        if any(ctx.needs_input_grad[1:4]):
            size = c0.numel()
            g, gt = grad.reshape(-1), (grad * t).reshape(-1)
            if torch.is_grad_enabled():  # create_graph: differentiable sums
                d0 = g.new_zeros(size).index_add(0, flat, g)
                d1 = g.new_zeros(size).index_add(0, flat, gt)
            else:  # bincount: one pass, in a fixed order
                d0 = torch.bincount(flat, weights=g, minlength=size).to(g.dtype)
                d1 = torch.bincount(flat, weights=gt, minlength=size).to(g.dtype)
            want = [p for p, need in zip(params, ctx.needs_input_grad[1:4]) if need]
            grads = iter(torch.autograd.grad((c0, c1), want, (d0.reshape(c0.shape),
                                                               d1.reshape(c1.shape)),
                                             create_graph=torch.is_grad_enabled()))
            for k, need in enumerate(ctx.needs_input_grad[1:4]):
                if need:
                    out[k + 1] = next(grads)
        return (*out, None, None, None)


def _apply(x: Tensor, knots: Tensor, left: Tensor, right: Tensor, a: float, b: float,
           channel_dim: int) -> Tensor:
    """The forward: two gathers from the (N+2)-entry tables."""
    n = knots.shape[-1] - 1
    c0, c1 = tables(knots, left, right, a, b)
    t, i = _bins(x, n, knots.shape[0] if knots.ndim == 2 else None, a, b, channel_dim)
    return torch.take(c0.reshape(-1), i) + torch.take(c1.reshape(-1), i) * t


def pwlu_function(x: Tensor, p: dict[str, Tensor], kw: dict[str, Any]) -> Tensor:
    """The kernel's entry, as the derived module calls it (``definition.torch_kernel``): with
    autograd (a graph to build) the Function, else the forward alone."""
    args = (x, p["knots"], p["left_slope"], p["right_slope"], kw["a"], kw["b"],
            kw["channel_dim"])
    if torch.is_grad_enabled() and any(t.requires_grad for t in args[:4]):
        return _PWLU.apply(*args)
    return _apply(*args)
