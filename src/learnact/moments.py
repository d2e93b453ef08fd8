r"""Exact Gaussian moments of activations and variance-preserving initialisation.

For x ~ N(0, 1) we compute, never by sampling,

* ``E[f]``, ``E[f^2]`` (forward gain) and ``E[f'^2]`` (backward gain);
* ``V'(1)`` where ``V(q) = E[f(sqrt(q) z)^2]`` is the variance map of a plain (un-normalised)
  layer. By Stein's lemma ``V'(1) = E[z f(z) f'(z)]``. Unit moments make q = 1 a fixed point of
  V; it is attracting only if ``V'(1) <= 1``. Normalised stacks (LayerNorm/BatchNorm before the
  activation) reset q = 1 at every layer and need only the unit moments.

Families linear in their coefficients (Hermite) have closed forms. Everything else uses
composite Gauss-Legendre quadrature of the Gaussian density on [-12, 12] (mass outside: 2e-33),
with panels of width <= 0.5 and a panel edge at every kink of f' (the breakpoints of piecewise
linear families), 24 nodes per panel: float64-exact for piecewise-smooth f, unlike
Gauss-Hermite, whose error for a kinked integrand decays only like 1/n. The rule and the unit
route below are the framework-neutral core's (learnact.core.quadrature); this module applies
them to torch modules and tensors.

General unit init (DESIGN.md): for a shape g with an output scale s and offset t,
f = s g + t has unit moments when s = 1/sqrt(E[g'^2]) and
t = -s E[g] + sqrt(1 - s^2 Var[g]); the Gaussian Poincare inequality Var[g] <= E[g'^2] makes the
square root real.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from collections.abc import Callable

import torch
from torch import Tensor, nn

from .core.quadrature import panel_nodes, unit_scale_offset

__all__ = [
    "GaussianMoments",
    "moments",
    "second_moments",
    "variance_map_slope",
    "unit_scale_offset",
    "gaussian_expectations",
]

# kinks of the classical torch activations (extra panel edges cost nothing for smooth ones)
_CLASSICAL_KINKS = (-3.0, -1.0, 0.0, 1.0, 3.0, 6.0)


@dataclass(frozen=True)
class GaussianMoments:
    """Moments of f under z ~ N(0, 1): floats (shared) or (C,) float64 tensors (per channel)."""

    mean: float | Tensor
    second: float | Tensor
    deriv_second: float | Tensor
    vprime: float | Tensor

    @property
    def variance(self) -> float | Tensor:
        return self.second - self.mean**2


def _panel_nodes(kinks: Tensor | None) -> tuple[Tensor, Tensor]:
    """Nodes and weights (Gaussian density folded in) of the composite rule (learnact.core)."""
    k = None if kinks is None else kinks.detach().cpu().double().numpy()
    nodes, weights = panel_nodes(k)
    return torch.from_numpy(nodes), torch.from_numpy(weights)


def gaussian_expectations(f_and_df: Callable[[Tensor], tuple[Tensor, Tensor]],
                          kinks: Tensor | None = None) -> GaussianMoments:
    """Moments of any f given a float64 evaluator z -> (f(z), f'(z)) (shapes (n,) or (C, n))."""
    z, w = _panel_nodes(kinks)
    f, df = f_and_df(z)
    f, df = f.to(torch.float64), df.to(torch.float64)
    if not (torch.isfinite(f).all() and torch.isfinite(df).all()):
        raise ValueError("the activation is not finite on [-12, 12]; its Gaussian moments are "
                         "undefined (check its parameters)")

    def e(t: Tensor) -> Tensor:
        return (t * w).sum(-1)

    out = [e(f), e(f * f), e(df * df), e(z * f * df)]
    if f.ndim == 1:
        return GaussianMoments(*(float(t) for t in out))
    return GaussianMoments(*out)


def _classical_evaluator(act: nn.Module) -> Callable[[Tensor], tuple[Tensor, Tensor]]:
    mod = copy.deepcopy(act).to(torch.float64).eval()

    def fn(z: Tensor) -> tuple[Tensor, Tensor]:
        with torch.enable_grad():
            zz = z.clone().requires_grad_(True)
            y = mod(zz.clone())  # not a leaf: an in-place activation (ReLU(inplace=True)) may modify it
            (dy,) = torch.autograd.grad(y.sum(), zz)
        return y.detach(), dy

    return fn


def moments(act: nn.Module | Callable[[Tensor], Tensor]) -> GaussianMoments:
    """Exact :class:`GaussianMoments` of a learnact module, a torch activation or a callable."""
    if callable(getattr(act, "closed_form_moments", None)) and callable(
            getattr(act, "function_and_derivative", None)):  # a learnable family (its hooks)
        m = act.closed_form_moments()
        if m is not None:
            if not all(bool(torch.isfinite(torch.as_tensor(v)).all()) for v in
                       (m.mean, m.second, m.deriv_second, m.vprime)):
                raise ValueError(f"{type(act).__name__} has non-finite parameters: its Gaussian "
                                 "moments are not finite")
            return m
        ev = act.function_and_derivative
        per_channel = act.channels is not None
        kinks = act.kinks()
        if per_channel and kinks is not None and kinks.numel() > 64:
            # different kinks per channel: integrate channel by channel
            results = [gaussian_expectations(lambda z, c=c: tuple(t[c] for t in ev(z)),
                                             act.kinks(channel=c)) for c in range(act.channels)]
            return GaussianMoments(*(torch.tensor([getattr(r, f) for r in results],
                                                  dtype=torch.float64)
                                     for f in ("mean", "second", "deriv_second", "vprime")))
        return gaussian_expectations(ev, kinks)
    if isinstance(act, nn.Module):
        return gaussian_expectations(_classical_evaluator(act),
                                     torch.tensor(_CLASSICAL_KINKS, dtype=torch.float64))
    if callable(act):
        return gaussian_expectations(_classical_evaluator(_Lambda(act)),
                                     torch.tensor(_CLASSICAL_KINKS, dtype=torch.float64))
    raise TypeError(f"act must be an nn.Module or a callable, got {type(act).__name__}")


def second_moments(act: nn.Module | Callable[[Tensor], Tensor]):
    """(E[f(x)^2], E[f'(x)^2]) for x ~ N(0, 1), exact (closed form or quadrature, never sampled).

    Shared/fixed activations give floats; per-channel modules give (C,) float64 tensors.
    """
    m = moments(act)
    return m.second, m.deriv_second


def variance_map_slope(act: nn.Module | Callable[[Tensor], Tensor]):
    """V'(1) = E[z f f'] for V(q) = E[f(sqrt(q) z)^2]; <= 1 means q = 1 attracts."""
    return moments(act).vprime


class _Lambda(nn.Module):
    def __init__(self, fn: Callable[[Tensor], Tensor]) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x: Tensor) -> Tensor:
        return self.fn(x)
