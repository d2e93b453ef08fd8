r"""1-D CPAB transformations (continuous piecewise-affine velocity fields and their flows).

Notation (DiTAC / difw; notes in shared/ditac.md): [0, 1] is cut into N equal cells; on cell c
the velocity is v(x) = a_c x + b_c with A = [a_0, b_0, a_1, b_1, ...] = B theta, where B is an
orthonormal basis of the null space of the constraint matrix L (continuity at the N - 1 inner
knots, plus v(0) = v(1) = 0 with a zero boundary): d = N - 1 (zero boundary) or N + 1.
B comes from a pivoted QR of L^T (``scipy.linalg.qr(..., pivoting=True)``), as the released
code does, so theta means the same thing here and there.

The flow phi(x, t) solves dphi/dt = v(phi); T_theta(x) = phi(x, 1). Inside one cell,

.. math::  \psi(x, t) = x + t\,E(t a)\,(a x + b),\qquad E(z) = \mathrm{expm1}(z)/z,\ E(0) = 1

(= x e^{ta} + (b/a)(e^{ta} - 1), joined smoothly at a = 0). A point leaves its cell through the
edge x_e it moves towards after t_hit = log1p(a (x_e - x)/v)/a (-> (x_e - x)/v as a -> 0),
unless v changes sign before the edge (then it never leaves). Negative t integrates -v (the
inverse map).

Two implementations of the same flow:

* ``learnact.ops.cpab.integrate`` (fast; the op layer, so that this file stays pure math with
  no dependency on the ops): a point that leaves its first cell enters a
  knot, and from a knot on the trajectory depends on theta only. So the knot-to-knot crossing
  times tau_j are tabulated once per call (:func:`flow_tables`, O(N)), left-moving points are
  mirrored (x -> 1 - x) so that every point moves right, and the cell a point ends in is found by
  one binary search in the cumulative crossing times: no loop over cells per element. Its op
  (ops/cpab/flow.py) has an analytic backward that saves the input only: dT/dx = v(T)/v(x)
  (e^{t a} when the point stays in its cell), and dT/d(a, b, tau) reduced over elements; autograd
  carries tau's gradient to (a, b) and theta through the small tables.
* :func:`integrate_stepwise` (reference): the cell-by-cell loop (at most N crossings,
  vectorised over points); autograd through it differentiates the same closed form. Tests use
  it as an independent composition.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from ..core import cpab as _core
from ..core.cpab import constraint_matrix

__all__ = ["constraint_matrix", "cpa_basis", "cell_coefficients", "velocity", "flow_tables", "FlowTables", "integrate_stepwise", "prior_covariance", "init_covariance"]


def cpa_basis(cells: int, zero_boundary: bool = True) -> Tensor:
    """Orthonormal null-space basis B (2N x d), float64, as DiTAC's ``basis='qr'``
    (learnact.core.cpab.basis: one source for PyTorch, JAX and Keras)."""
    if cells < 1:
        raise ValueError(f"cells must be an integer >= 1, got {cells}")
    return torch.from_numpy(np.array(_core.basis(int(cells), bool(zero_boundary))))


def cell_coefficients(theta: Tensor, basis: Tensor) -> tuple[Tensor, Tensor]:
    """The field's per-cell (a, b), v(x) = a_c x + b_c on cell c (A = B theta): shapes (N,) for
    theta (d,), (C, N) for theta (C, d); differentiable in theta."""
    A = theta @ basis.to(theta).t()
    return A[..., 0::2], A[..., 1::2]


_ab = cell_coefficients


def _take(a: Tensor, c: Tensor) -> Tensor:
    return a[c] if a.ndim == 1 else torch.gather(a, 1, c)


def velocity(x: Tensor, theta: Tensor, basis: Tensor) -> Tensor:
    """v(x) on [0, 1] (outside: the first/last cell's affine map). Per channel: x (C, M)."""
    a, b = _ab(theta, basis)
    n = a.shape[-1]
    c = torch.clamp(torch.floor(x * n), 0, n - 1).long()
    return _take(a, c) * x + _take(b, c)


def _expm1_over(z: Tensor) -> Tensor:
    small = z.abs() < 1e-6
    zs = torch.where(small, torch.ones_like(z), z)
    return torch.where(small, 1.0 + 0.5 * z, torch.expm1(zs) / zs)


def _log1p_over(z: Tensor) -> Tensor:
    """log1p(z)/z, smooth at 0."""
    small = z.abs() < 1e-6
    zs = torch.where(small, torch.ones_like(z), z)
    return torch.where(small, 1.0 - 0.5 * z, torch.log1p(zs) / zs)


class FlowTables(NamedTuple):
    """The flow's per-cell tables (each (..., 2N)): the field's slopes ``a`` and intercepts
    ``b`` (cells 0..N-1, then the mirrored field), and the knot-to-knot crossing times
    ``tau``; unpacks as ``a2, b2, tau2``."""

    a: Tensor
    b: Tensor
    tau: Tensor


def flow_tables(theta: Tensor, basis: Tensor, t: float = 1.0) -> FlowTables:
    """Per-cell tables of the flow at time |t|, differentiable w.r.t. theta (float64 advised).

    Returns :class:`FlowTables` (a2, b2, tau2), each (..., 2N): cells 0..N-1 of the field (of -v when t < 0), then
    the mirrored field v'(y) = -v(1 - y) (a'_{N-1-j} = a_j, b'_{N-1-j} = -(a_j + b_j)), in which
    left-moving points move right. tau2[j] is the time to cross cell j from its left knot to its
    right knot (inf when v <= 0 at either knot, in the last cell, or when it exceeds |t|: such
    a cell is never crossed within the time budget).
    """
    a, b = _ab(theta, basis)
    if t < 0:
        a, b, t = -a, -b, -t
    n = a.shape[-1]
    a2 = torch.cat([a, a.flip(-1)], -1)
    b2 = torch.cat([b, -(a + b).flip(-1)], -1)
    j = torch.arange(n, dtype=a.dtype, device=a.device).repeat(2)
    v0 = a2 * (j / n) + b2
    v1 = a2 * ((j + 1) / n) + b2
    ok = (v0 > 0) & (v1 > 0) & (j < n - 1)
    safe_v0 = torch.where(ok, v0, torch.ones_like(v0))
    z = torch.where(ok, a2 / (n * safe_v0), torch.zeros_like(v0))
    tau = torch.where(ok, _log1p_over(z) / (n * safe_v0), torch.full_like(v0, float("inf")))
    tau = torch.where(tau <= t, tau, torch.full_like(tau, float("inf")))
    return FlowTables(a2, b2, tau)


def integrate_stepwise(x: Tensor, theta: Tensor, basis: Tensor, t: float = 1.0) -> Tensor:
    """Reference: the same T(x) by the cell-by-cell loop (at most N crossings), autograd.

    theta (d,) with x of any shape, or theta (C, d) with x (C, M) (one field per channel).
    """
    a, b = _ab(theta, basis)
    if t < 0:
        a, b, t = -a, -b, -t
    n = a.shape[-1]
    x = x.to(a.dtype)
    c = torch.clamp(torch.floor(x * n), 0, n - 1).long()
    trem = torch.full_like(x, float(t))
    done = torch.zeros_like(x, dtype=torch.bool)
    out = x.clone()
    inf = torch.tensor(float("inf"), dtype=x.dtype, device=x.device)
    for _ in range(n + 1):
        ac, bc = _take(a, c), _take(b, c)
        v = ac * x + bc
        right = v > 0
        edge = torch.where(right, (c + 1).to(x.dtype) / n, c.to(x.dtype) / n)
        nxt = torch.where(right, c + 1, c - 1)
        ve = ac * edge + bc
        leaves = (v != 0) & (nxt >= 0) & (nxt < n) & (ve * v > 0)
        safe_v = torch.where(v == 0, torch.ones_like(v), v)
        z = torch.where(leaves, ac * (edge - x) / safe_v, torch.zeros_like(x))  # NaN-free grads
        thit = torch.where(leaves, (edge - x) / safe_v * _log1p_over(z), inf)
        finish = ~done & (thit >= trem)
        # evaluated only where it is used: elsewhere e^{ta} may overflow, and where() would
        # turn 0 * inf into a NaN gradient
        za = torch.where(finish, trem * ac, torch.zeros_like(x))
        psi = x + trem * _expm1_over(za) * torch.where(finish, v, torch.zeros_like(v))
        out = torch.where(finish, psi, out)
        done = done | finish
        move = ~done
        x = torch.where(move, edge, x)
        trem = torch.where(move, trem - torch.where(move, thit, torch.zeros_like(thit)), trem)
        c = torch.where(move, nxt, c)
        if not torch.compiler.is_compiling() and not bool(move.any()):  # early exit (eager)
            break
    return torch.where(done, out, x)


def prior_covariance(cells: int, lambda_smooth: float = 5.0, lambda_var: float = 2.0,
                     zero_boundary: bool = True, kernel: str = "released") -> Tensor:
    """Sigma_CPA = B^T K B of the released code's regulariser, float64
    (:func:`learnact.core.cpab.prior_covariance`, which documents the kernels)."""
    return torch.from_numpy(_core.prior_covariance(cells, lambda_smooth, lambda_var,
                                                   zero_boundary, kernel))


def init_covariance(cells: int, length_scale: float = 5.0, output_variance: float = 2.0,
                    zero_boundary: bool = True) -> Tensor:
    """difw's covariance on the N cell centres (DiTAC's init), B^T K B, float64
    (:func:`learnact.core.cpab.init_covariance`)."""
    return torch.from_numpy(_core.init_covariance(cells, length_scale, output_variance,
                                                  zero_boundary))

