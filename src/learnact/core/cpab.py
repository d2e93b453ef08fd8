r"""DiTAC's CPAB math, framework-neutral: the basis and covariances in numpy/scipy float64 (one
source for PyTorch, JAX and Keras), and the flow written against an array namespace.

Notation as in :mod:`learnact.functional.cpab`: [0, 1] is cut into N cells, the velocity on
cell c is v(x) = a_c x + b_c with (a_0, b_0, a_1, b_1, ...) = B theta, B an orthonormal basis
of the null space of the constraint matrix (continuity at the inner knots, v(0) = v(1) = 0),
from a pivoted QR as the released code computes it (so theta means the same everywhere).

The flow here (:func:`flow`) is the cell-by-cell closed form: inside a cell
psi(x, t) = x + t E(t a) v(x), E(z) = expm1(z)/z; a point reaches the edge it moves towards
after t_hit = (x_e - x)/v * log1p(z)/z, z = a (x_e - x)/v, if v keeps its sign up to the edge,
and continues in the next cell with the time left. At most N cells are visited, so N
vectorised steps give T exactly; every operation is elementwise, ``take`` or ``where``, which
numpy, jax.numpy and keras.ops all have, and every branch is guarded so that autodiff through
``where`` never meets an infinity. The PyTorch ops use a faster form of the same closed form
(crossing times tabulated, one binary search: ops/cpab).
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np

from ._xp import channel_view

__all__ = ["GATES", "KERNELS", "constraint_matrix", "basis", "prior_covariance",
           "init_covariance", "precision", "flow", "ditac"]

GATES = ("gelu", "silu", "leaky_relu", "identity")
KERNELS = ("released", "exponential", "squared_exponential")


def constraint_matrix(cells: int, zero_boundary: bool = True, lo: float = 0.0,
                      hi: float = 1.0) -> np.ndarray:
    """Rows orthogonal to A: continuity at inner knots (+ zero velocity at both ends)."""
    h = (hi - lo) / cells
    rows = []
    for k in range(1, cells):
        xk = lo + k * h
        r = np.zeros(2 * cells)
        r[2 * (k - 1): 2 * k + 2] = [xk, 1.0, -xk, -1.0]
        rows.append(r)
    if zero_boundary:
        r = np.zeros(2 * cells)
        r[0:2] = [-lo, -1.0]
        rows.append(r)
        r = np.zeros(2 * cells)
        r[-2:] = [-hi, -1.0]
        rows.append(r)
    return np.array(rows).reshape(-1, 2 * cells)


@functools.lru_cache(maxsize=32)
def _basis(cells: int, zero_boundary: bool) -> np.ndarray:
    try:
        from scipy.linalg import qr
    except ImportError:  # pragma: no cover - scipy comes with the [torch] extra and with jax
        raise ImportError("DiTAC's CPAB basis needs scipy (pivoted QR, as the released code): "
                          "pip install scipy (the [torch], [jax] and [keras] extras include "
                          "it)") from None
    L = constraint_matrix(cells, zero_boundary)
    if L.shape[0] == 0:
        return np.eye(2 * cells)
    q, r, _ = qr(L.T, mode="full", pivoting=True)
    tol = np.abs(L).max() * np.finfo(np.float64).eps
    rank = int((np.abs(np.diag(r)) > tol).sum())
    out = q[:, rank:]
    out.setflags(write=False)  # cached: shared by every caller
    return out


def basis(cells: int, zero_boundary: bool = True) -> np.ndarray:
    """Orthonormal null-space basis B (2N x d) in float64 (read-only, cached)."""
    if int(cells) != cells or cells < 1:
        raise ValueError(f"cells must be an integer >= 1, got {cells}")
    return _basis(int(cells), bool(zero_boundary))


def _exp_kernel(pos: np.ndarray, length: float, variance: float, doubled: bool) -> np.ndarray:
    d = np.abs(pos[:, None] - pos[None, :])
    return variance * np.exp(-(2.0 if doubled else 1.0) * d / length)


def prior_covariance(cells: int, lambda_smooth: float = 5.0, lambda_var: float = 2.0,
                     zero_boundary: bool = True, kernel: str = "released") -> np.ndarray:
    """Sigma_CPA = B^T K B of the released code's regulariser (shared/ditac.md section 4).

    ``kernel="released"``: K_ij = (lambda_var D)^2 exp(-2 |p_i - p_j| / lambda_smooth) on
    p = linspace(-1, 1, D), D = 2N (the released code's doubled exponent); ``"exponential"``:
    the same without the doubling; ``"squared_exponential"``: exp(-|p_i - p_j|^2 / (2 l^2)).
    """
    D = 2 * cells
    p = np.linspace(-1.0, 1.0, D)
    var = (lambda_var * D) ** 2
    if kernel == "released":
        K = _exp_kernel(p, lambda_smooth, var, doubled=True)
    elif kernel == "exponential":
        K = _exp_kernel(p, lambda_smooth, var, doubled=False)
    elif kernel == "squared_exponential":
        K = var * np.exp(-((p[:, None] - p[None, :]) ** 2) / (2 * lambda_smooth**2))
    else:
        raise ValueError(f"kernel must be one of {KERNELS}, got {kernel!r}")
    B = basis(cells, zero_boundary)
    return B.T @ K @ B


def init_covariance(cells: int, length_scale: float = 5.0, output_variance: float = 2.0,
                    zero_boundary: bool = True) -> np.ndarray:
    """difw's covariance on the N cell centres (DiTAC's init), B^T K B, float64.

    a-a and b-b blocks: s^2 exp(-|c_i - c_j| / (2 l^2)); a-b blocks:
    s^2 exp(-100 max|c_i - c_j| / (2 l^2)) (shared/ditac.md section 4).
    """
    centres = (np.arange(cells) + 0.5) / cells
    d = np.abs(centres[:, None] - centres[None, :])
    s2 = output_variance**2
    same = s2 * np.exp(-d / (2 * length_scale**2))
    cross = s2 * np.exp(-100 * d.max(initial=0.0) / (2 * length_scale**2)) * np.ones_like(d)
    K = np.zeros((2 * cells, 2 * cells))
    K[0::2, 0::2] = same
    K[1::2, 1::2] = same
    K[0::2, 1::2] = cross
    K[1::2, 0::2] = cross
    B = basis(cells, zero_boundary)
    return B.T @ K @ B


def precision(cells: int, lambda_smooth: float = 5.0, lambda_var: float = 2.0,
              kernel: str = "released") -> np.ndarray:
    """The prior's precision P = (Sigma_CPA + eps I)^-1, eps = float32's machine epsilon
    (float64; the modules keep it in float32 as the released code does)."""
    cov = prior_covariance(cells, lambda_smooth, lambda_var, True, kernel)
    eps = float(np.finfo(np.float32).eps)
    return np.linalg.inv(cov + eps * np.eye(cov.shape[0]))


def init_theta(cells: int, normal: Any, shape: tuple[int, ...]) -> np.ndarray:
    """One draw of theta ~ N(0, init_covariance) of the given shape (..., d): z L^T with
    L = chol(Sigma + 1e-12 I) and z = normal(shape) standard normal."""
    cov = init_covariance(cells)
    chol = np.linalg.cholesky(cov + 1e-12 * np.eye(cov.shape[0]))
    return np.asarray(normal(shape), dtype=np.float64) @ chol.T


# -- the flow, against an array namespace ---------------------------------------------------
def _ratio(xp: Any, fn: Any, z: Any, series_sign: float) -> Any:
    """fn(z)/z, smooth at 0 (1 + series_sign z/2 there); both branches finite."""
    small = xp.abs(z) < 1e-6
    zs = xp.where(small, xp.ones_like(z), z)
    return xp.where(small, 1.0 + series_sign * 0.5 * z, fn(zs) / zs)


def _hit_time(xp: Any, where: Any, v: Any, a: Any, dist: Any, big: float) -> Any:
    """(x_e - x)/v * log1p(z)/z, z = a (x_e - x)/v where ``where``, else ``big``."""
    sv = xp.where(where, v, xp.ones_like(v))
    z = xp.where(where, a * dist / sv, xp.zeros_like(v))
    return xp.where(where, dist / sv * _ratio(xp, xp.log1p, z, -1.0), xp.full_like(v, big))


def flow(xp: Any, u: Any, a: Any, b: Any, cells: int, offset: Any = 0,
         slope: bool = False) -> Any:
    """T(u) = phi(u, 1) for u in [0, 1]: the cell-by-cell closed form (module docstring).

    a, b: flat per-cell tables, (N,) or (C N,) (channel c's cells at c N + j); ``offset``: the
    flat index of each element's first cell (0, or c N broadcast against u). With ``slope``:
    (T, dT/du), dT/du = v(T)/v(u) for a point that crosses a knot, e^{a} for one that stays
    in its cell (the lookup-table mode's straight-through derivative)."""
    n = cells
    c = xp.clip(xp.floor(u * n), 0.0, n - 1.0)
    trem = xp.ones_like(u)
    done = xp.zeros_like(u) > 1.0
    crossed = done
    out = u
    big = 4.0  # any time > 1: "never reaches the edge"
    tiny = 1e-30
    for step in range(n):  # a point visits at most N cells
        idx = xp.cast(c, "int32") + offset
        ac, bc = xp.take(a, idx), xp.take(b, idx)
        v = ac * u + bc
        right = v > 0
        edge = xp.where(right, (c + 1.0) / n, c / n)
        nxt = xp.where(right, c + 1.0, c - 1.0)
        ve = ac * edge + bc
        moving = xp.logical_or(v > tiny, v < -tiny)
        leaves = xp.logical_and(xp.logical_and(moving, ve * v > 0),
                                xp.logical_and(nxt >= 0, nxt <= n - 1.0))
        dist = edge - u
        # which points reach the edge in the time left: a comparison (no gradient flows)
        cross = xp.logical_and(leaves, _hit_time(xp, leaves, v, ac, dist, big) < trem)
        # the time again, finite only where it is used: with v ~ 0 elsewhere, d(dist/v)/dv
        # would overflow and autodiff's zero cotangent times it give NaN
        thit = _hit_time(xp, cross, v, ac, dist, big)
        finish = xp.logical_and(xp.logical_not(done), xp.logical_not(cross))
        # e^{t a} past the dtype's range only multiplies v ~ 0 (the point could not stay in
        # the cell otherwise): clamp instead of overflowing to inf * 0
        za = trem * ac
        za = xp.where(za > 80.0, xp.full_like(za, 80.0), za)
        psi = u + trem * _ratio(xp, xp.expm1, za, 1.0) * v
        out = xp.where(finish, psi, out)
        if slope:
            if step == 0:
                v0, stay = v, 1.0 + za * _ratio(xp, xp.expm1, za, 1.0)  # e^{a}
                vfin = v
            crossed = xp.logical_or(crossed, xp.logical_and(cross, xp.logical_not(done)))
            vfin = xp.where(finish, ac * psi + bc, vfin)
        done = xp.logical_or(done, finish)
        move = xp.logical_not(done)
        u = xp.where(move, edge, u)
        trem = xp.where(move, trem - xp.where(move, thit, xp.zeros_like(thit)), trem)
        c = xp.where(move, nxt, c)
    if not slope:
        return out
    return out, xp.where(crossed, vfin / xp.where(crossed, v0, xp.ones_like(v0)), stay)


def gate(xp: Any, x: Any, name: str, alpha: float) -> Any:
    """DiTAC's gate s(x): Phi (gelu), sigmoid (silu), 1 or alpha (leaky_relu), 1 (identity)."""
    if name == "gelu":
        return 0.5 + 0.5 * xp.erf(x * (1.0 / math.sqrt(2.0)))
    if name == "silu":
        return 1.0 / (1.0 + xp.exp(-x))
    if name == "leaky_relu":
        return xp.where(x > 0, xp.ones_like(x), xp.full_like(x, alpha))
    return xp.ones_like(x)


def ditac(xp: Any, x: Any, theta: Any, B: Any, *, a: float, b: float, cells: int, gate_name: str,
          alpha: float, warp: str, channel_dim: int, per_channel: bool,
          lut: int | None = None) -> Any:
    """f(x) = x~ s(x) (warp="input") or the warp of x s(x) (warp="output"), x~ = a + (b - a)
    T((x - a)/(b - a)) on [a, b] and x elsewhere; theta (d,) or (C, d), B (2N, d).

    ``lut=n``: the lookup-table mode (as PyTorch's ``ditac:lut=n``): T and dT/du on the grid
    u_r = r/(n - 1) (computed here, differentiable in theta through T), x~ = x + (b - a)(T(u_r)
    - u_r) for the grid point nearest to x (bin floor((x - a)(n - 1)/(b - a) + 1/2); x~ = x
    beyond half a bin outside [a, b]), and the straight-through derivative dx~/dx = T'(u_r)."""
    A = xp.matmul(theta, xp.transpose(B)) if per_channel else xp.matmul(B, theta)
    A = xp.reshape(A, (-1, 2))  # rows (a_j, b_j), channel-major
    ta, tb = xp.reshape(A[:, 0], (-1,)), xp.reshape(A[:, 1], (-1,))
    nd = len(x.shape)
    s = gate(xp, x, gate_name, alpha)
    src = x if warp == "input" else x * s
    if lut is None:
        offset = 0
        if per_channel:
            offset = channel_view(xp, xp.arange(theta.shape[0], dtype="int32") * cells, nd,
                                  channel_dim)
        inside = xp.logical_and(src >= a, src <= b)
        u = xp.where(inside, (src - a) * (1.0 / (b - a)), xp.zeros_like(src))
        warped = xp.where(inside, a + (b - a) * flow(xp, u, ta, tb, cells, offset), src)
    else:
        warped = _lut_read(xp, src, theta, ta, tb, a=a, b=b, cells=cells, n=lut, nd=nd,
                           channel_dim=channel_dim, per_channel=per_channel)
    return warped * s if warp == "input" else warped


def _lut_read(xp: Any, src: Any, theta: Any, ta: Any, tb: Any, *, a: float, b: float,
              cells: int, n: int, nd: int, channel_dim: int, per_channel: bool) -> Any:
    """x~ by the n-point table (see :func:`ditac`), with the straight-through derivative."""
    ones = xp.ones_like(theta[..., :1])  # (1,) or (C, 1), theta's dtype
    grid = (xp.cumsum(xp.repeat(ones, n, axis=-1), axis=-1) - 1.0) * (1.0 / (n - 1))
    goff = 0
    if per_channel:
        goff = xp.reshape(xp.arange(theta.shape[0], dtype="int32") * cells, (-1, 1))
    T, dT = flow(xp, grid, ta, tb, cells, goff, slope=True)
    D = (b - a) * (T - grid)
    zero = xp.zeros_like(D[..., :1])
    table = xp.reshape(xp.concatenate([zero, D, zero], axis=-1), (-1,))  # outside bins: 0
    slopes = xp.reshape(xp.concatenate([zero + 1.0, xp.stop_gradient(dT), zero + 1.0],
                                       axis=-1), (-1,))
    k = (n - 1) / (b - a)
    r = xp.clip(xp.floor(xp.clip(src * k + (1.5 - a * k), 0.0, n + 1.5)), 0.0, n + 1.0)
    idx = xp.cast(r, "int32")
    if per_channel:
        idx = idx + channel_view(xp, xp.arange(theta.shape[0], dtype="int32") * (n + 2), nd,
                                 channel_dim)
    slope = xp.take(slopes, idx)
    # value: src + D[bin]; derivative in src: T'(u_bin) (src - stop_gradient(src) is 0)
    return src + xp.take(table, idx) + (slope - 1.0) * (src - xp.stop_gradient(src))
