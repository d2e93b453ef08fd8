r"""Hermite activation: pure math, no module state.

.. math::

    f(x) = \sum_{k=0}^{d} c_k \, h_k(x), \qquad h_k = \mathrm{He}_k / k!

with :math:`\mathrm{He}_k` the probabilists' Hermite polynomials. The normalised basis obeys

.. math::

    h_0 = 1,\quad h_1 = x,\quad h_{k+1} = \frac{x\,h_k - h_{k-1}}{k+1},\qquad
    h_k' = h_{k-1},\qquad \mathbb{E}_{z\sim N(0,1)}[h_j h_k] = \delta_{jk}/k!

so :math:`f' = \sum_{k\ge 1} c_k h_{k-1}`: the derivative is the same series with the
coefficients shifted by one.

Optional linear tails (``lo``/``hi`` given): with :math:`\bar x = \mathrm{clamp}(x, lo, hi)`,

.. math::

    f(x) = P(\bar x) + P'(\bar x)\,(x - \bar x),\qquad f'(x) = P'(\bar x),\qquad
    \partial f/\partial c_k = h_k(\bar x) + h_{k-1}(\bar x)\,(x - \bar x)

so f is the polynomial P on [lo, hi] and continues C1-linearly outside (a degree-d polynomial
fed the -17..25 pre-activations of a trained network otherwise overflows). Values are computed by Clenshaw's recurrence in the orthogonal
basis; never via monomials (fp32 loses 3+ digits at degree 8 that way).

Coefficient tables are ``(d+1,)`` (shared) or ``(C, d+1)`` (per channel, broadcast along
``channel_dim``). Every function here is plain differentiable torch code: it is the reference
the fused op is compared with, the path ``torch.compile`` traces, and the path double backward
differentiates.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ..core import hermite as _core
from .._tensor import channel_view, column, reduce_to_channels

__all__ = [
    "projection_coefficients",
    "hermite",
    "hermite_derivative",
    "hermite_basis",
    "hermite_backward",
    "hermite_moments",
    "paper_coefficients",
    "unit_coefficients",
]


def _clenshaw(x: Tensor, coeffs: Tensor, channel_dim: int, shift: int = 0) -> Tensor:
    """sum_k coeffs[k + shift] h_k(x) by Clenshaw: b_k = c_k + x b_{k+1}/(k+1) - b_{k+2}/(k+2)."""
    n = coeffs.shape[-1] - shift  # number of terms
    nd = x.ndim

    def c(k: int) -> Tensor:
        return column(coeffs, k + shift, nd, channel_dim)

    if n == 1:
        return c(0) + torch.zeros_like(x)
    if n == 2:
        return c(0) + x * c(1)
    b2 = torch.zeros_like(x)
    b1 = c(n - 1) + b2
    for k in range(n - 2, 0, -1):
        # multiply by reciprocals: division is 4-8x slower than multiplication on CPU and
        # inductor keeps x / c as a division (not bit-identical to x * (1/c))
        b1, b2 = c(k) + x * b1 * (1.0 / (k + 1)) - b2 * (1.0 / (k + 2)), b1
    # f = c_0 h_0 + b_1 h_1 + beta_1 b_2 h_0 with beta_1 = -1/2
    return c(0) + x * b1 - 0.5 * b2


def _clamp(x: Tensor, lo: Tensor | None, hi: Tensor | None, channel_dim: int) -> Tensor:
    if lo is None or hi is None:
        return x
    return torch.clamp(x, channel_view(lo, x.ndim, channel_dim), channel_view(hi, x.ndim, channel_dim))


def hermite(x: Tensor, coeffs: Tensor, channel_dim: int = 1, lo: Tensor | None = None,
            hi: Tensor | None = None) -> Tensor:
    """f(x) = sum_k coeffs[..., k] He_k(x)/k!, optionally continued linearly outside [lo, hi]."""
    if lo is None or hi is None:
        return _clenshaw(x, coeffs, channel_dim)
    xc = _clamp(x, lo, hi, channel_dim)
    return _clenshaw(xc, coeffs, channel_dim) + _clenshaw(xc, coeffs, channel_dim, 1) * (x - xc)


def hermite_derivative(x: Tensor, coeffs: Tensor, channel_dim: int = 1,
                       lo: Tensor | None = None, hi: Tensor | None = None) -> Tensor:
    """f'(x) = sum_{k>=1} coeffs[..., k] h_{k-1}(x) (at clamp(x, lo, hi) with linear tails)."""
    return _clenshaw(_clamp(x, lo, hi, channel_dim), coeffs, channel_dim, shift=1)


def hermite_basis(x: Tensor, degree: int) -> list[Tensor]:
    """[h_0, ..., h_degree] with h_k = He_k(x)/k!, by the three-term recurrence."""
    basis = [torch.ones_like(x), x]
    for k in range(1, degree):
        basis.append((x * basis[k] - basis[k - 1]) * (1.0 / (k + 1)))
    return basis[: degree + 1]


def hermite_backward(
    x: Tensor, coeffs: Tensor, grad: Tensor, channel_dim: int = 1, lo: Tensor | None = None,
    hi: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """(dL/dx, dL/dcoeffs) for upstream grad; coefficient grads reduced over non-channel dims."""
    per_channel = coeffs.ndim == 2
    xc = _clamp(x, lo, hi, channel_dim)
    gx = grad * _clenshaw(xc, coeffs, channel_dim, shift=1)
    basis = hermite_basis(xc, coeffs.shape[-1] - 1)
    if lo is not None and hi is not None:
        gd = grad * (x - xc)
        basis_g = [grad * basis[0]] + [grad * basis[k] + gd * basis[k - 1]
                                       for k in range(1, len(basis))]
    else:
        basis_g = [grad * h for h in basis]
    gc = torch.stack([reduce_to_channels(t, per_channel, channel_dim) for t in basis_g], -1)
    return gx, gc


# ---------------------------------------------------------------------------------------------
# Exact Gaussian moments and initialisations (float64, closed form)
# ---------------------------------------------------------------------------------------------


def hermite_moments(coeffs: Tensor) -> dict[str, Tensor]:
    """Exact moments under z ~ N(0, 1) from the orthogonality E[h_j h_k] = delta_jk / k!.

    E[f] = c_0; E[f^2] = sum c_k^2/k!; E[f'^2] = sum_{k>=1} c_k^2/(k-1)!;
    V'(1) = E[z f f'] = E[f'^2] + E[f f''] = E[f'^2] + sum_k c_k c_{k+2}/k!
    (V(q) = E[f(sqrt(q) z)^2]; dV/dq = E[(f^2)'']/2 by the heat equation).
    """
    c = coeffs.detach().to(torch.float64)
    d = c.shape[-1] - 1
    inv_fact = torch.tensor([1.0 / math.factorial(k) for k in range(d + 1)], dtype=torch.float64)
    second = (c**2 * inv_fact).sum(-1)
    deriv = (c[..., 1:] ** 2 * inv_fact[:-1]).sum(-1) if d >= 1 else torch.zeros_like(second)
    cross = (c[..., :-2] * c[..., 2:] * inv_fact[: d - 1]).sum(-1) if d >= 2 else 0.0 * second
    return {"mean": c[..., 0], "second": second, "deriv_second": deriv, "vprime": deriv + cross}


def paper_coefficients(degree: int) -> Tensor:
    """The published init (arXiv 2502.01247): a_0 = sqrt(1 - 1/d!)/sqrt(e), a_k = 1/sqrt(e)
    (float64; learnact.core.hermite)."""
    return torch.from_numpy(_core.paper_coefficients(degree))


def unit_coefficients(degree: int, stable: bool = False) -> Tensor:
    """The published shape rescaled to E[f^2] = E[f'^2] = 1 exactly; ``stable`` flips the signs
    of c_k for k = 2, 3 (mod 4) so that V'(1) < 1 (learnact.core.hermite)."""
    return torch.from_numpy(_core.unit_coefficients(degree, stable))


def projection_coefficients(fn, degree: int, nodes: int = 160) -> Tensor:
    """L2(N(0,1)) projection of the torch function fn onto h_0..h_d: c_k = E[fn(z) He_k(z)]
    (Gauss-Hermite quadrature with ``nodes`` nodes; learnact.core.hermite)."""

    def fn64(z):
        with torch.no_grad():
            return fn(torch.from_numpy(z)).to(torch.float64).numpy()

    return torch.from_numpy(_core.projection_coefficients(fn64, degree, nodes))
