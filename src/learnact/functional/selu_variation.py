r"""Learnable SELU variation: pure math.

.. math::

    g(x) = \lambda \begin{cases} x & x > 0 \\
        \alpha (e^{\beta x} - 1) + \gamma \sin(\omega x) & x \le 0 \end{cases},
    \qquad f = s\,g + t

The negative branch is evaluated at :math:`\min(x, 0)`, so ``exp`` never overflows in the
branch that ``where`` discards (with :math:`\beta < 0` and large positive x). Derivatives for
x <= 0 (with E = e^{beta x}): dg/dx = lambda (alpha beta E + gamma omega cos(omega x)),
dg/dlambda = g/lambda, dg/dalpha = lambda (E - 1), dg/dbeta = lambda alpha x E,
dg/dgamma = lambda sin(omega x), dg/domega = lambda gamma x cos(omega x); for x > 0:
dg/dx = lambda, dg/dlambda = x, the rest 0.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..core import selu_variation as _core
from .._tensor import channel_view, clipped_phase, reduce_to_channels

__all__ = ["selu_variation", "selu_variation_backward", "PAPER"]

#: published init (lambda, alpha, beta, gamma, omega), and the parameter order
PAPER, NAMES = _core.PAPER, _core.NAMES


def _views(params: tuple[Tensor, ...], nd: int, cd: int) -> list[Tensor]:
    return [channel_view(p, nd, cd) for p in params]


def selu_variation(x: Tensor, lam: Tensor, alpha: Tensor, beta: Tensor, gamma: Tensor,
                   omega: Tensor, scale: Tensor, offset: Tensor, channel_dim: int = 1) -> Tensor:
    """f(x) = scale * g(x) + offset (see the module docstring)."""
    la, al, be, ga, om, s, t = _views((lam, alpha, beta, gamma, omega, scale, offset), x.ndim,
                                      channel_dim)
    xn = torch.clamp(x, max=0.0)
    w = clipped_phase(xn, om)
    neg = al * torch.expm1(be * xn) + ga * torch.sin(w)
    g = la * torch.where(x > 0, x, neg)
    return s * g + t


def selu_variation_backward(x: Tensor, lam: Tensor, alpha: Tensor, beta: Tensor, gamma: Tensor,
                            omega: Tensor, scale: Tensor, offset: Tensor, grad: Tensor,
                            channel_dim: int = 1) -> tuple[Tensor, ...]:
    """Gradients w.r.t. (x, lam, alpha, beta, gamma, omega, scale, offset)."""
    per_channel = lam.ndim == 1
    la, al, be, ga, om, s, _ = _views((lam, alpha, beta, gamma, omega, scale, offset), x.ndim,
                                      channel_dim)
    pos = x > 0
    xn = torch.clamp(x, max=0.0)
    e = torch.exp(be * xn)
    w = clipped_phase(xn, om)
    sn, cs = torch.sin(w), torch.cos(w)
    inner = torch.where(pos, x, al * (e - 1.0) + ga * sn)
    zero = torch.zeros_like(x)
    gs = grad * s
    dx = torch.where(pos, la + zero,
                     la * (al * be * e + ga * om * cs))
    parts = {
        "lam": inner,
        "alpha": torch.where(pos, zero, la * (e - 1.0)),
        "beta": torch.where(pos, zero, la * al * xn * e),
        "gamma": torch.where(pos, zero, la * sn),
        "omega": torch.where(pos, zero, la * ga * xn * cs),
    }
    out = [gs * dx]
    for name in ("lam", "alpha", "beta", "gamma", "omega"):
        out.append(reduce_to_channels(gs * parts[name], per_channel, channel_dim))
    out.append(reduce_to_channels(grad * la * inner, per_channel, channel_dim))
    out.append(reduce_to_channels(grad, per_channel, channel_dim))
    return tuple(out)
