r"""DiTAC's CPAB math, framework-neutral: the basis and covariances in numpy/scipy float64 (one
source for PyTorch, JAX and Keras), and the flow written against an array namespace.

Notation as in :mod:`learnact.functional.cpab`: [0, 1] is cut into N cells, the velocity on
cell c is v(x) = a_c x + b_c with (a_0, b_0, a_1, b_1, ...) = B theta, B an orthonormal basis
of the null space of the constraint matrix (continuity at the inner knots, v(0) = v(1) = 0),
from a pivoted QR as the released code computes it (so theta means the same everywhere).

The flow here (:func:`flow`) is the closed form of the PyTorch ops (ops/cpab): inside a cell
psi(x, t) = x + t E(t a) v(x), E(z) = expm1(z)/z; a point reaches the edge it moves towards
after t_hit = (x_e - x)/v * log1p(z)/z, z = a (x_e - x)/v, if v keeps its sign up to the edge;
the knot-to-knot crossing times are tabulated per cell and cumulated, so where a point ends is
a count over the N knots (no per-step loop, no search), and T follows from the last cell.
Every operation is elementwise or a select (a table lookup is a chain of N selects: XLA's CPU
backend runs gathers from small tables as scalar code), which numpy, jax.numpy and keras.ops
all have; every branch is guarded so that autodiff through ``where`` never meets an infinity.
:func:`flow_vjp` is its analytic vector-Jacobian product (per-cell sums by ``segment_sum``),
which the JAX and Keras frontends attach as the flow's derivative (autodiff through the
selects costs ~70x the forward there).
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np

from ._xp import channel_view

__all__ = ["GATES", "KERNELS", "DE_SERIES", "DL_SERIES", "constraint_matrix", "basis", "prior_covariance",
           "init_covariance", "precision", "flow", "flow_vjp", "ditac", "flow_tables", "GATE_IDS",
           "lut_tables", "lut_read"]

GATES = ("gelu", "silu", "leaky_relu", "identity")
#: each gate's number in the native kernels (native/cpab.c's enum; every binding passes it)
GATE_IDS = {"gelu": 0, "leaky_relu": 1, "silu": 2, "identity": 3}
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


def _series(z: Any, coeffs: tuple[float, ...]) -> Any:
    acc = coeffs[-1] + 0.0 * z
    for c in reversed(coeffs[:-1]):
        acc = acc * z + c
    return acc


# Taylor coefficients of E'(z) = sum_k k z^(k-1)/(k+1)! and L'(z) = sum_k (-1)^k k z^(k-1)/(k+1),
# to z^11: below 1e-16 relative at |z| = 0.05, where the closed forms lose ~1e-13 (float64).
# PyTorch's ops (ops/cpab/common.py) use these; native/cpab.c's float64 kernel has the same
# numbers (to z^5, as they were, both were 2.5e-8 relative off at |z| = 0.05)
DE_SERIES = tuple(k / math.factorial(k + 1) for k in range(1, 13))
DL_SERIES = tuple((-1) ** k * k / (k + 1) for k in range(1, 13))


def _dE(xp: Any, z: Any) -> Any:
    """E'(z) = (e^z (z - 1) + 1)/z^2, E(z) = expm1(z)/z (a series for |z| < 0.05)."""
    small = xp.abs(z) < 0.05
    zs = xp.where(small, xp.ones_like(z), z)
    return xp.where(small, _series(z, DE_SERIES),
                    (xp.exp(zs) * (zs - 1.0) + 1.0) / (zs * zs))


def _dL(xp: Any, z: Any) -> Any:
    """L'(z) = (z/(1 + z) - log1p(z))/z^2, L(z) = log1p(z)/z (a series for |z| < 0.05)."""
    small = xp.abs(z) < 0.05
    zs = xp.where(small, xp.ones_like(z), z)
    return xp.where(small, _series(z, DL_SERIES),
                    (zs / (1.0 + zs) - xp.log1p(zs)) / (zs * zs))


def _pick(xp: Any, idx: Any, cols: list) -> Any:
    """cols[idx] per element for an integer-valued float idx: a chain of selects, which
    vectorises (a gather from a small table is scalar code on XLA's CPU backend)."""
    out = cols[0]
    for j in range(1, len(cols)):
        out = xp.where(idx > j - 0.5, cols[j], out)
    return out


def _columns(xp: Any, p: Any, nd: int, cd: int) -> list:
    """Entries of the last axis of a (N,) or (C, N) table, each broadcast against the input."""
    if len(p.shape) == 1:
        return [p[j] for j in range(p.shape[0])]
    return [channel_view(xp, p[:, j], nd, cd) for j in range(p.shape[-1])]


def _suffix_min(xp: Any, s: Any, n: int) -> Any:
    """min over j >= k of s[..., j] for each k of the last axis (length n, every entry <= n -
    1), in log2(n) steps of a shifted minimum (keras.ops has no cummin)."""
    step = 1
    while step < n:
        pad = xp.zeros_like(s[..., :step]) + float(n - 1)
        s = xp.minimum(s, xp.concatenate([s[..., step:], pad], axis=-1))
        step *= 2
    return s


def _frames(xp: Any, ta: Any, tb: Any, n: int, t: float) -> dict:
    """The flow's per-cell tables from the cells' a, b ((N,) or (C, N)), every entry with the
    cells on the last axis: per frame (0: the field, 1: its mirror v'(y) = -v(1 - y), in which
    left-moving points move right) the cells' ``a``, ``b`` and crossing times ``tau`` (0
    where a cell cannot be crossed within t), each (..., 2N); ``P`` (..., 2(N + 1)), the
    cumulative crossing times P_0..P_N of each frame; ``stop`` (..., 2N), the first cell >= k
    a point cannot cross (v <= 0 at a knot, the last cell, or a time over t), as floats; and
    ``dta``, ``dtb``, each crossing time's derivatives in its cell's a, b (the backward's).
    Whole-table operations (a few dozen, whatever N): autodiff of these is the fused kernels'
    table gradient."""
    aL = xp.flip(ta, axis=-1)
    a2 = xp.concatenate([ta, aL], axis=-1)
    b2 = xp.concatenate([tb, -(aL + xp.flip(tb, axis=-1))], axis=-1)
    j = xp.cumsum(xp.ones_like(ta), axis=-1) - 1.0  # 0..N-1 in the tables' dtype
    j2 = xp.concatenate([j, j], axis=-1)
    v0, v1 = a2 * (j2 * (1.0 / n)) + b2, a2 * ((j2 + 1.0) * (1.0 / n)) + b2
    ok = xp.logical_and(v0 > 0, v1 > 0)
    s0, s1 = xp.where(ok, v0, xp.ones_like(v0)), xp.where(ok, v1, xp.ones_like(v1))
    z = xp.where(ok, a2 / (n * s0), xp.zeros_like(v0))
    tau = _ratio(xp, xp.log1p, z, -1.0) / (n * s0)
    ok = xp.logical_and(xp.logical_and(ok, tau <= t), j2 < n - 1.5)  # never the last cell
    tau = xp.where(ok, tau, xp.zeros_like(tau))
    # d tau/db = -(1/N)/(v0 v1), d tau/da = (1/(N v0))^2 L'(z) + (j/N) d tau/db
    dtb = xp.where(ok, -(1.0 / n) / (s0 * s1), xp.zeros_like(tau))
    dta = xp.where(ok, _dL(xp, z) / (n * s0) ** 2, xp.zeros_like(tau)) + (j2 * (1.0 / n)) * dtb
    zero = xp.zeros_like(ta[..., :1])
    P = xp.concatenate([zero, xp.cumsum(tau[..., :n], axis=-1),
                        zero, xp.cumsum(tau[..., n:], axis=-1)], axis=-1)
    last = xp.where(ok, xp.zeros_like(j2) + float(n - 1), j2)
    stop = xp.concatenate([_suffix_min(xp, last[..., :n], n), _suffix_min(xp, last[..., n:], n)],
                          axis=-1)
    return dict(a=a2, b=b2, tau=tau, P=P, stop=stop, dta=dta, dtb=dtb)


def _frame_columns(xp: Any, fr: dict, nd: int, cd: int) -> dict:
    """:func:`_frames`' a, b, P and stop as lists of per-cell entries broadcast against an
    nd-dimensional input (the per-element search picks among them by selects)."""
    return {k: _columns(xp, fr[k], nd, cd) for k in ("a", "b", "P", "stop")}


def _first_cell(xp: Any, u: Any, a0: Any, b0: Any, left: Any, cl: Any, n: int) -> dict:
    """The first cell in the frame where the point moves right (u -> 1 - u where v(u) < 0):
    x, v(x) (``sv``: 1 where the point cannot reach the edge), the distance ``dl`` to the
    right edge, v there (``ve``), z = a dl/v(x) and whether the edge is reachable (``can``)."""
    x = xp.where(left, 1.0 - u, u)
    bf = xp.where(left, -(a0 + b0), b0)  # a is a0 in either frame
    vf = a0 * x + bf
    e = (cl + 1.0) * (1.0 / n)
    dl = e - x
    ve = a0 * e + bf
    can = xp.logical_and(xp.logical_and(vf > 1e-30, cl < n - 1.0), ve > 0)
    sv = xp.where(can, vf, xp.ones_like(vf))
    return dict(x=x, dl=dl, ve=ve, can=can, sv=sv, z=xp.where(can, a0 * dl / sv,
                                                               xp.zeros_like(vf)))


def _trajectory(xp: Any, u: Any, fr: dict, n: int, t: float) -> dict:
    """Where each point ends (PyTorch's ops/cpab/common.py ``_trajectory``, in selects):
    first cell c0 and its frame (mirror where v(u) < 0), the time t0 to its right edge; if
    t0 < t, the point enters knot k1 = c0 + 1 with t1 = t - t0 left and crosses every cell whose
    cumulative time from k1 is <= t1 (a count over the N knots, no search), up to stop[k1]; it
    ends in cell m (a_m, b_m) with t_m left. :func:`_position` finishes from these."""
    c0 = xp.clip(xp.floor(u * n), 0.0, n - 1.0)
    a0, b0 = _pick(xp, c0, fr["a"][:n]), _pick(xp, c0, fr["b"][:n])
    left = a0 * u + b0 < 0
    cl = xp.where(left, n - 1.0 - c0, c0)
    f = _first_cell(xp, u, a0, b0, left, cl, n)
    t0 = xp.where(f["can"], f["dl"] / f["sv"] * _ratio(xp, xp.log1p, f["z"], -1.0),
                  xp.full_like(u, 4.0 * t))
    cross = t0 < t
    k1 = xp.where(cross, cl + 1.0, cl)
    t1 = xp.where(cross, t - t0, xp.full_like(t0, t))
    zero = xp.zeros_like(u)
    fo = xp.where(left, zero + (n + 1.0), zero)  # frame offset in P (N + 1 knots per frame)
    fs = xp.where(left, zero + float(n), zero)  # in the cell tables
    Pk1 = _pick(xp, k1 + fo, fr["P"])
    target = Pk1 + t1
    count = zero
    for k in range(1, n + 1):
        Pk = xp.where(left, fr["P"][n + 1 + k], fr["P"][k])
        count = count + xp.where(Pk <= target, zero + 1.0, zero)
    m = xp.where(cross, xp.minimum(count, _pick(xp, k1 + fs, fr["stop"])), cl)
    Pm = _pick(xp, m + fo, fr["P"])
    tm = xp.where(cross, xp.maximum(t1 - (Pm - Pk1), zero), t1)
    return dict(left=left, cross=cross, cl=cl, m=m, fs=fs, tm=tm, a0=a0, b0=b0,
                am=_pick(xp, m + fs, fr["a"]), bm=_pick(xp, m + fs, fr["b"]))


def _position(xp: Any, u: Any, p: dict, n: int) -> dict:
    """From :func:`_trajectory`'s end cell and time: T = x_m + t_m E(t_m a_m) v(x_m) (x_m =
    m/N for a point that crossed a knot, else its start), dT/du and the backward's pieces."""
    f = _first_cell(xp, u, p["a0"], p["b0"], p["left"], p["cl"], n)
    cross, tm, am = p["cross"], p["tm"], p["am"]
    xm = xp.where(cross, p["m"] * (1.0 / n), f["x"])
    vm = am * xm + p["bm"]
    # e^{t a} beyond the dtype's range only multiplies v ~ 0 (the point could not stay in
    # the cell otherwise): clamp instead of overflowing to inf * 0
    za = xp.minimum(tm * am, xp.zeros_like(u) + 80.0)
    Em = _ratio(xp, xp.expm1, za, 1.0)
    w = tm * Em * vm
    psi = xm + w
    psit = vm + am * w  # v(T) in the frame
    return dict(f, T=xp.where(p["left"], 1.0 - psi, psi), xm=xm, vm=vm, za=za, Em=Em,
                psit=psit, dT=xp.where(cross, psit / f["sv"], 1.0 + za * Em))


def flow(xp: Any, u: Any, a: Any, b: Any, cells: int, nd: int | None = None,
         cd: int = -1, slope: bool = False, t: float = 1.0) -> Any:
    """T(u) = phi(u, t) for u in [0, 1] in closed form (module docstring).

    a, b: the cells' tables, (N,) or (C, N) (then channel c's field along dimension ``cd``
    of the ``nd``-dimensional u). With ``slope``: (T, dT/du), dT/du = v(T)/v(u) for a point
    that crosses a knot, e^{t a} for one that stays in its cell (the lookup-table mode's
    straight-through derivative). Differentiable by autodiff (every branch guarded);
    :func:`flow_vjp` is its analytic vector-Jacobian product, which the frontends use."""
    nd = len(u.shape) if nd is None else nd
    fr = _frame_columns(xp, _frames(xp, a, b, cells, t), nd, cd)
    p = _position(xp, u, _trajectory(xp, u, fr, cells, t), cells)
    return (p["T"], p["dT"]) if slope else p["T"]


def flow_vjp(xp: Any, g: Any, u: Any, a: Any, b: Any, cells: int, cd: int = -1,
             t: float = 1.0) -> tuple[Any, Any, Any]:
    """(g dT/du, sum g dT/da, sum g dT/db) of :func:`flow`, a and b shaped as given, from the
    closed form's derivatives (PyTorch's ``_table_terms``): the last cell's
    dT/db_m = t_m E, dT/da_m = t_m^2 E'(t_m a_m) v_m + x_m t_m E; every crossed time (t0 and
    the full cells' tau_j) enters with -v(T); t0's own derivatives in the first cell's a, b.
    Per-cell sums by ``segment_sum`` (six 1-D sums over two index arrays; the crossed tau_j
    as a difference array: each element adds to a run of cells). Written in differentiable operations of (u, a, b), so
    this product can itself be differentiated (second derivatives)."""
    n, nd = cells, len(u.shape)
    per_channel = len(a.shape) == 2
    tables = _frames(xp, a, b, n, t)
    fr = _frame_columns(xp, tables, nd, cd)
    # a frontend may materialise the end cells first (XLA would otherwise recompute the
    # search inside every consumer below)
    materialize = getattr(xp, "materialize", lambda t: t)
    p = _trajectory(xp, u, fr, n, t)
    keys = sorted(p)
    p = dict(zip(keys, materialize(tuple(p[k] for k in keys))))
    p = dict(p, **_position(xp, u, p, n))
    zero = xp.zeros_like(g)
    gf = xp.where(p["left"], -g, g)
    tm, Em = p["tm"], p["Em"]
    gb_m = gf * tm * Em
    ga_m = gf * (tm * tm * _dE(xp, p["za"]) * p["vm"] + p["xm"] * tm * Em)
    h = xp.where(p["cross"], -gf * p["psit"], zero)
    # v at the edge is 0 where a point cannot cross (a zero-boundary field's last knot): the
    # guard keeps this product's own derivative finite there (0 * inf would be NaN)
    ve = xp.where(p["cross"], p["ve"], xp.ones_like(g))
    dtb = xp.where(p["cross"], -p["dl"] / (p["sv"] * ve), zero)
    dta = xp.where(p["cross"], (p["dl"] / p["sv"]) ** 2 * _dL(xp, p["z"]), zero) + p["x"] * dtb
    # bins: (channel, frame, cell)
    rows = 2 * n * (a.shape[0] if per_channel else 1)
    base = p["fs"]
    if per_channel:
        ch = channel_view(xp, xp.arange(a.shape[0]), nd, cd)
        base = base + xp.cast(ch, u.dtype) * (2.0 * n) + xp.zeros_like(u)
    ids_m = xp.reshape(xp.cast(base + p["m"], "int32"), (-1,))
    ids_0 = xp.reshape(xp.cast(base + p["cl"], "int32"), (-1,))
    terms = (ga_m, gb_m, -h, h * dta, h * dtb, h)
    # and the per-element terms (fused into the sums' operands, XLA's CPU code recomputed the
    # trajectory per term: 19 s instead of 0.1)
    terms = materialize((ids_m, ids_0) + terms)
    ids_m, ids_0, terms = terms[0], terms[1], terms[2:]
    sums = [xp.segment_sum(xp.reshape(w, (-1,)), ids_m if k < 3 else ids_0, num_segments=rows)
            for k, w in enumerate(terms)]
    sums = [xp.reshape(t, (-1, 2 * n)) for t in sums]  # (C or 1, 2N) each
    G = (sums[0] + sums[3], sums[1] + sums[4])  # a, b of each frame cell
    # tau_j of each frame: +h from the first cell's next knot on, -h from the last cell on
    first, last = sums[5], sums[2]
    Gt = []
    for f in range(2):
        e1, e2 = first[:, f * n:(f + 1) * n], last[:, f * n:(f + 1) * n]
        Gt.append(xp.cumsum(e1, axis=-1) - e1 + xp.cumsum(e2, axis=-1))
    Gt = xp.concatenate(Gt, axis=-1)
    dta_t = xp.reshape(tables["dta"], (-1, 2 * n))
    dtb_t = xp.reshape(tables["dtb"], (-1, 2 * n))
    Ga = G[0] + Gt * dta_t  # (C or 1, 2N)
    Gb = G[1] + Gt * dtb_t
    # frames to the field: aL_j = a_{N-1-j}, bL_j = -(a_{N-1-j} + b_{N-1-j})
    GaL, GbL = xp.flip(Ga[:, n:], axis=-1), xp.flip(Gb[:, n:], axis=-1)
    ga = Ga[:, :n] + GaL - GbL
    gb = Gb[:, :n] - GbL
    if not per_channel:
        ga, gb = ga[0], gb[0]
    return g * p["dT"], ga, gb


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
    beyond half a bin outside [a, b]), and the straight-through derivative dx~/dx = T'(u_r).

    A frontend with fused kernels (``xp.ditac_fused``, learnact.xla_native.ditac) runs the
    per-element work of warp="input" there, from the tables of :func:`flow_tables` (exact) or
    :func:`lut_tables`; it returns None where its kernels do not apply."""
    A = xp.matmul(theta, xp.transpose(B)) if per_channel else xp.matmul(B, theta)
    A = xp.reshape(A, (-1, cells, 2) if per_channel else (cells, 2))  # rows (a_j, b_j)
    ta, tb = A[..., 0], A[..., 1]  # (N,) or (C, N)
    nd = len(x.shape)
    fused = getattr(xp, "ditac_fused", None) if warp == "input" else None
    opts = dict(a=a, b=b, cells=cells, gate=gate_name, alpha=alpha, channel_dim=channel_dim,
                per_channel=per_channel)
    if lut is not None:
        # a frontend's compiled tables (learnact._xla: one program instead of hundreds of
        # eager operations) when it has them
        tables = getattr(xp, "cpab_lut_tables", None)
        table, slopes = (tables or functools.partial(lut_tables, xp))(ta, tb, a=a, b=b,
                                                                       cells=cells, n=lut)
        y = fused("lut", x, (table, slopes), lut=lut, **opts) if fused else None
        if y is not None:
            return y
    elif fused:
        y = fused("flow", x, (ta, tb), lut=None, **opts)
        if y is not None:
            return y
    s = gate(xp, x, gate_name, alpha)
    src = x if warp == "input" else x * s
    if lut is None:
        inside = xp.logical_and(src >= a, src <= b)
        u = xp.where(inside, (src - a) * (1.0 / (b - a)), xp.zeros_like(src))
        # a frontend's own flow (its custom derivative, :func:`flow_vjp`) when it has one
        fl = getattr(xp, "cpab_flow", None)
        T = fl(u, ta, tb, cells, channel_dim) if fl else flow(xp, u, ta, tb, cells, nd,
                                                               channel_dim)
        warped = xp.where(inside, a + (b - a) * T, src)
    else:
        warped = lut_read(xp, src, table, slopes, a=a, b=b, n=lut, channel_dim=channel_dim,
                          per_channel=per_channel)
    return warped * s if warp == "input" else warped


def flow_tables(xp: Any, ta: Any, tb: Any, cells: int, t: float = 1.0) -> dict:
    """The per-cell tables of the flow, rows per channel (one row for shared (N,) tables):
    ``a2``, ``b2`` (the field and its mirror), ``tau2`` (each cell's crossing time, 0 where
    it cannot be crossed), each (rows, 2N), and ``packed`` (rows, 8N + 2) = [a2 | b2 | P |
    stop], the fused kernels' row (P: cumulative crossing times per frame, N + 1 each; stop:
    the first cell >= k a point cannot cross, as floats). Differentiable in ta, tb."""
    fr = _frames(xp, ta, tb, cells, t)

    def rows(k: str) -> Any:
        return xp.reshape(fr[k], (-1, fr[k].shape[-1]))

    return dict(a2=rows("a"), b2=rows("b"), tau2=rows("tau"),
                packed=xp.concatenate([rows(k) for k in ("a", "b", "P", "stop")], axis=-1))


def lut_tables(xp: Any, ta: Any, tb: Any, *, a: float, b: float, cells: int, n: int
               ) -> tuple[Any, Any]:
    """The lookup-table mode's rows (rows, n + 2), one per channel (one for shared tables):
    x~ - x per bin (the n grid points, and 0 in the two outside bins; differentiable in ta,
    tb) and dx~/dx per bin (T'(u_r), 1 outside; not differentiated)."""
    ones = xp.ones_like(ta[..., :1])  # (1,) or (C, 1), the tables' dtype
    grid = (xp.cumsum(xp.repeat(ones, n, axis=-1), axis=-1) - 1.0) * (1.0 / (n - 1))
    T, dT = flow(xp, grid, ta, tb, cells, len(grid.shape), 0, slope=True)
    fl = getattr(xp, "cpab_flow", None)
    if fl:  # T again through the frontend's own derivative (dT is not differentiated)
        T = fl(grid, ta, tb, cells, 0)
    D = (b - a) * (T - grid)
    zero = xp.zeros_like(D[..., :1])
    table = xp.reshape(xp.concatenate([zero, D, zero], axis=-1), (-1, n + 2))
    slopes = xp.reshape(xp.concatenate([zero + 1.0, xp.stop_gradient(dT), zero + 1.0],
                                       axis=-1), (-1, n + 2))
    return table, slopes


def lut_read(xp: Any, src: Any, table: Any, slopes: Any, *, a: float, b: float, n: int,
             channel_dim: int, per_channel: bool) -> Any:
    """x~ by the n-point table (see :func:`ditac`), with the straight-through derivative;
    ``table`` and ``slopes`` from :func:`lut_tables`."""
    nd = len(src.shape)
    k = (n - 1) / (b - a)
    r = xp.clip(xp.floor(xp.clip(src * k + (1.5 - a * k), 0.0, n + 1.5)), 0.0, n + 1.0)
    idx = xp.cast(r, "int32")
    if per_channel:
        idx = idx + channel_view(xp, xp.arange(table.shape[0], dtype="int32") * (n + 2), nd,
                                 channel_dim)
    # the small tables materialised first where the frontend can: XLA fused their whole
    # computation (the grid's flow) into the gathers, once per element (224 ms vs 13 ms)
    table, slopes = getattr(xp, "materialize", lambda t: t)((xp.reshape(table, (-1,)),
                                                               xp.reshape(slopes, (-1,))))
    slope = xp.take(slopes, idx)
    # value: src + D[bin]; derivative in src: T'(u_bin) (src - stop_gradient(src) is 0)
    return src + xp.take(table, idx) + (slope - 1.0) * (src - xp.stop_gradient(src))
