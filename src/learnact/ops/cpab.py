r"""CPAB flow op (DiTAC): closed-form T(x) without a per-element loop, analytic backward.

Math and notation: functional/cpab.py. Inputs are the small per-cell tables of
:func:`learnact.functional.cpab.flow_tables` (a2, b2, tau2: the field and its mirror, and the
knot-to-knot crossing times), so autograd carries their gradients to theta; this op does the
per-element work in the input's precision (float32 for half inputs) and saves only the input
and the tables.

Per element (in the frame where it moves right, u -> 1 - u for v(u) < 0):

* first cell c0: time to its right edge t0 = (e - x)/v(x) * log1p(z)/z, z = a (e - x)/v(x);
* if t0 >= t it stays: T = x + t E(t a) v(x), E(z) = expm1(z)/z;
* else it enters knot k1 = c0 + 1 with time t1 = t - t0 left, crosses every cell whose
  cumulative time P[j] - P[k1] <= t1 (one binary search in P = cumsum(tau)), and ends in cell
  m at the knot m/N with t_m = t1 - (P[m] - P[k1]): T = m/N + t_m E(t_m a_m) v(m/N).

Backward (saved: x and the tables; everything else recomputed):

* dT/dx = e^{t a} (stays) or v(T)/v(x) (crosses);
* last cell: dT/db_m = t_m E, dT/da_m = t_m^2 E'(t_m a_m) v_m + x_m t_m E;
* every crossed time s (t0 and each full tau_j) enters as dT/ds = -v(T);
  dt0/db = -(e - x)/(v(x) v(e)), dt0/da = ((e - x)/v(x))^2 L'(z) + x dt0/db, L(z) = log1p(z)/z;
* per-cell sums over elements by index_add (the tau_j by a difference array: each element adds
  to a contiguous run of cells).

First derivatives only (double backward raises; functional.cpab.integrate_stepwise is twice
differentiable by autograd).

The op fuses DiTAC's input window and gate: for x in [lo, hi], x~ = lo + (hi - lo) T((x - lo)/
(hi - lo)), elsewhere x~ = x; output x~ s(x) with s in gelu/silu/leaky_relu/identity.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from .._tensor import canonical_dim, compute_dtype, use_fast_cpu_path
from ._chunks import as_bcr, slices

__all__ = ["cpab_op", "cpab_lut_op", "flow_derivative", "GATES"]

GATES = ("gelu", "leaky_relu", "silu", "identity")
_INV_SQRT2 = 1.0 / math.sqrt(2.0)
_INV_SQRT2PI = 1.0 / math.sqrt(2.0 * math.pi)


# -- select: torch.where runs branchy scalar code on the CPU when the mask is irregular
# (measured 253 us vs 53 us for this bit blend, 128K fp32 elements, 2 threads); exact for any
# values (inf, NaN) because it moves bits. Compiled and GPU code keep torch.where (a blend).
_INT_VIEW = {torch.float32: torch.int32, torch.float64: torch.int64, torch.int64: torch.int64,
             torch.int32: torch.int32}


def _sel(c: Tensor, a, b) -> Tensor:
    """torch.where(c, a, b) for tensors/Python scalars (at least one tensor)."""
    ref = a if isinstance(a, Tensor) else b
    if (torch.compiler.is_compiling() or ref.device.type != "cpu"
            or ref.dtype not in _INT_VIEW or torch.is_grad_enabled()):
        return torch.where(c, a, b)
    shape = torch.broadcast_shapes(c.shape, *(t.shape for t in (a, b) if isinstance(t, Tensor)))
    a = a.expand(shape) if isinstance(a, Tensor) else torch.full(shape, a, dtype=ref.dtype)
    b = b.expand(shape) if isinstance(b, Tensor) else torch.full(shape, b, dtype=ref.dtype)
    if a.dtype != b.dtype:
        return torch.where(c, a, b)
    it = _INT_VIEW[a.dtype]
    ai, bi = a.contiguous().view(it), b.contiguous().view(it)
    m = c.expand(shape).to(it).neg_()
    return ((ai ^ bi) & m).bitwise_xor_(bi).view(a.dtype)


# -- scalar helpers (series near 0: the closed forms cancel there) ---------------------------
def _series(z: Tensor, coeffs: tuple[float, ...]) -> Tensor:
    acc = torch.full_like(z, coeffs[-1])
    for c in reversed(coeffs[:-1]):
        acc = acc * z + c
    return acc


def _E(z: Tensor) -> Tensor:
    """expm1(z)/z."""
    small = z.abs() < 1e-4
    zs = _sel(small, torch.ones_like(z), z)
    return _sel(small, 1.0 + z * (0.5 + z / 6.0), torch.expm1(zs) / zs)


def _dE(z: Tensor) -> Tensor:
    """E'(z) = (e^z (z - 1) + 1)/z^2."""
    small = z.abs() < 0.05
    zs = _sel(small, torch.ones_like(z), z)
    full = (torch.exp(zs) * (zs - 1.0) + 1.0) / (zs * zs)
    return _sel(small, _series(z, (1 / 2, 1 / 3, 1 / 8, 1 / 30, 1 / 144, 1 / 840)), full)


def _L(z: Tensor) -> Tensor:
    """log1p(z)/z (z > -1)."""
    small = z.abs() < 1e-4
    zs = _sel(small, torch.ones_like(z), z)
    return _sel(small, 1.0 + z * (-0.5 + z / 3.0), torch.log1p(zs) / zs)


def _dL(z: Tensor) -> Tensor:
    """L'(z) = (z/(1 + z) - log1p(z))/z^2."""
    small = z.abs() < 0.05
    zs = _sel(small, torch.ones_like(z), z)
    full = (zs / (1.0 + zs) - torch.log1p(zs)) / (zs * zs)
    return _sel(small, _series(z, (-1 / 2, 2 / 3, -3 / 4, 4 / 5, -5 / 6, 6 / 7)), full)


def _gate(x: Tensor, gate: str, alpha: float, slope: bool = True) -> tuple[Tensor, Tensor | None]:
    """s(x) and s'(x) (None when s' = 0 or not asked for)."""
    if gate == "gelu":
        s = 0.5 + 0.5 * torch.erf(x * _INV_SQRT2)
        return s, (torch.exp(-0.5 * x * x) * _INV_SQRT2PI if slope else None)
    if gate == "silu":
        s = torch.sigmoid(x)
        return s, (s * (1.0 - s) if slope else None)
    if gate == "leaky_relu":
        return _sel(x > 0, torch.ones_like(x), torch.full_like(x, alpha)), None
    return torch.ones_like(x), None


# -- the tables, flattened over (channel, frame) rows ----------------------------------------
class _Tables:
    def __init__(self, a2: Tensor, b2: Tensor, tau2: Tensor, t: float, dtype: torch.dtype):
        self.n = a2.shape[-1] // 2
        self.channels = 1 if a2.ndim == 1 else a2.shape[0]
        n, rows = self.n, 2 * self.channels
        self.a = a2.detach().to(dtype).reshape(-1)
        self.b = b2.detach().to(dtype).reshape(-1)
        tau = tau2.detach().to(torch.float64).reshape(rows, n)
        fin = torch.isfinite(tau)
        P = torch.cat([torch.zeros(rows, 1, dtype=tau.dtype, device=tau.device),
                       torch.cumsum(_sel(fin, tau, torch.zeros_like(tau)), -1)], -1)
        # one sorted 1-D sequence over all rows: row r's block shifted past every earlier one
        # (a target P[k1] + t1 never leaves its block: t1 <= t < span)
        span = P[:, -1] + (t + 1.0)
        shift = torch.cumsum(span, 0) - span
        self.P_search = (P + shift[:, None]).reshape(-1)  # float64: the shifts grow with rows
        self.P = P.to(dtype).reshape(-1)
        j = torch.arange(n, device=tau.device).expand(rows, n)
        blocked = _sel(fin, torch.full_like(j, n), j)
        # stop[k]: first cell >= k the point cannot cross (the last cell always qualifies)
        self.stop = blocked.flip(-1).cummin(-1).values.flip(-1).reshape(-1)


def _channel_ids(x: Tensor, channel_dim: int | None, channels: int) -> Tensor | None:
    if channel_dim is None:
        return None
    d = canonical_dim(x.ndim, channel_dim)
    if x.shape[d] != channels:
        raise ValueError(f"input has {x.shape[d]} channels at dim {channel_dim}, the tables "
                         f"{channels}")
    return torch.arange(channels, device=x.device).reshape((channels,) + (1,) * (x.ndim - 1 - d))


def _trajectory(u: Tensor, ch: Tensor | None, tb: _Tables, t: float, want_grad: bool):
    """T(u) (and the pieces the backward needs). u in compute dtype, any shape."""
    n = tb.n
    c0 = torch.clamp(torch.floor(u * n), 0, n - 1).long()
    base = 0 if ch is None else ch * (2 * n)
    row0 = 0 if ch is None else ch * 2
    v = torch.take(tb.a, base + c0) * u + torch.take(tb.b, base + c0)
    left = v < 0
    x = _sel(left, 1.0 - u, u)
    cl = _sel(left, n - 1 - c0, c0)
    fr = left.long()
    cell = base + cl + n * fr
    af, bf = torch.take(tb.a, cell), torch.take(tb.b, cell)
    vf = af * x + bf
    e = (cl + 1).to(u.dtype) * (1.0 / n)
    dl = e - x
    ve = af * e + bf
    tiny = torch.finfo(u.dtype).tiny
    can = (vf > tiny) & (cl < n - 1) & (ve > 0)
    sv = _sel(can, vf, torch.ones_like(vf))
    z = _sel(can, af * dl / sv, torch.zeros_like(vf))
    t0 = _sel(can, dl / sv * _L(z), torch.full_like(vf, math.inf))
    cross = t0 < t
    # from knot k1 on: one binary search in the cumulative crossing times
    row = row0 + fr
    k1 = _sel(cross, cl + 1, cl)
    gk = row * (n + 1) + k1
    t1 = _sel(cross, t - t0, torch.full_like(t0, t))
    if torch.compiler.is_compiling():
        # searchsorted is not lowered by inductor (a fallback splits the fused kernel):
        # unrolled binary search in the row's own cumulative times instead
        target = torch.take(tb.P, gk) + t1
        lo_k = torch.zeros_like(k1)
        hi_k = torch.full_like(k1, n)
        for _ in range(max(1, math.ceil(math.log2(n + 1)))):
            mid = (lo_k + hi_k + 1) // 2
            ok = torch.take(tb.P, row * (n + 1) + mid) <= target
            lo_k = _sel(ok, mid, lo_k)
            hi_k = _sel(ok, hi_k, mid - 1)
        cand = lo_k
    else:
        target = torch.take(tb.P_search, gk) + t1.to(torch.float64)
        cand = torch.searchsorted(tb.P_search, target, right=True) - 1 - row * (n + 1)
    m = _sel(cross, torch.minimum(cand, torch.take(tb.stop, row * n + k1)), cl)
    gm = row * (n + 1) + m
    tm = _sel(cross, torch.clamp_min(t1 - (torch.take(tb.P, gm) - torch.take(tb.P, gk)),
                                            0.0), t1)
    xm = _sel(cross, m.to(u.dtype) * (1.0 / n), x)
    cellm = base + m + n * fr
    am, bm = torch.take(tb.a, cellm), torch.take(tb.b, cellm)
    vm = am * xm + bm
    # e^{t a} beyond the dtype's range only multiplies v ~ 0 (the point could not stay in
    # the cell otherwise): clamp instead of overflowing to inf * 0
    za = torch.clamp(tm * am, max=math.log(torch.finfo(u.dtype).max) - 8.0)
    Em = _E(za)
    w = tm * Em * vm
    psi = xm + w
    T = _sel(left, 1.0 - psi, psi)
    if not want_grad:
        return T, None
    psit = vm + am * w  # v(T) = e^{t a} v_m in the frame
    dTdu = _sel(cross, psit / sv, 1.0 + za * Em)
    parts = dict(left=left, cross=cross, cell=cell, cellm=cellm, gk=gk, gm=gm, tm=tm, xm=xm,
                 vm=vm, za=za, Em=Em, psit=psit, x=x, sv=sv, ve=ve, dl=dl, z=z, dTdu=dTdu)
    return T, parts


def _binsum(idx: Tensor, w: Tensor, bins: int) -> Tensor:
    """sum of w per bin idx. Rows of private bins, summed at the end: a 1-D index_add makes
    every thread add into the same few bins (measured 100 ms vs 1.5 ms for 3M elements)."""
    idx, w = idx.reshape(-1), w.expand(idx.shape).reshape(-1)
    m = idx.numel()
    rows = max(1, min(64, m // 4096))
    pad = (-m) % rows
    if pad:
        idx = torch.cat([idx, idx.new_zeros(pad)])
        w = torch.cat([w, w.new_zeros(pad)])
    acc = torch.zeros(rows, bins, dtype=w.dtype, device=w.device)
    return acc.scatter_add(1, idx.reshape(rows, -1), w.reshape(rows, -1)).sum(0)


def _table_grads(g: Tensor, p: dict, tb: _Tables) -> tuple[Tensor, Tensor, Tensor]:
    """Sum over elements of g dT/d(a2, b2, tau2) (shapes (C*2N,), (C*2N,), (C*2N,))."""
    n, C = tb.n, tb.channels
    gf = _sel(p["left"], -g, g)
    tm, Em = p["tm"], p["Em"]
    gb_m = gf * tm * Em
    ga_m = gf * (tm * tm * _dE(p["za"]) * p["vm"] + p["xm"] * tm * Em)
    h = _sel(p["cross"], -gf * p["psit"], torch.zeros_like(gf))  # dL/d(time spent)
    dtb = -p["dl"] / (p["sv"] * p["ve"])
    dta = (p["dl"] / p["sv"]) ** 2 * _dL(p["z"]) + p["x"] * dtb
    ga_0 = _sel(p["cross"], h * dta, torch.zeros_like(h))
    gb_0 = _sel(p["cross"], h * dtb, torch.zeros_like(h))
    size = C * 2 * n
    Ga = _binsum(p["cellm"], ga_m, size) + _binsum(p["cell"], ga_0, size)
    Gb = _binsum(p["cellm"], gb_m, size) + _binsum(p["cell"], gb_0, size)
    # the tau_j crossed are cells k1 .. m-1 of the element's row: +h at k1, -h at m, cumsum
    D = _binsum(p["gk"], h, C * 2 * (n + 1)) - _binsum(p["gm"], h, C * 2 * (n + 1))
    Gt = torch.cumsum(D.reshape(C * 2, n + 1), -1)[:, :n].reshape(-1)
    return Ga, Gb, Gt


def _window(x: Tensor, lo: float | None, hi: float | None):
    if lo is None:
        return None, x
    inside = (x >= lo) & (x <= hi)
    u = _sel(inside, (x - lo) * (1.0 / (hi - lo)), torch.zeros_like(x))
    return inside, u


def _run(x: Tensor, tb: _Tables, ch, t: float, lo, hi, gate: str, alpha: float,
         want_grad: bool):
    inside, u = _window(x, lo, hi)
    T, parts = _trajectory(u, ch, tb, t, want_grad)
    xt = T if inside is None else _sel(inside, lo + (hi - lo) * T, x)
    s, ds = _gate(x, gate, alpha, want_grad)
    return xt, s, ds, inside, parts


def _pieces(x: Tensor, channel_dim: int | None, channels: int):
    """(index, piece, channel ids) covering x: L2-sized chunks of a (B, C, R) view on the CPU
    eager path (ops/_chunks.py: whole-tensor temporaries cost page faults and bandwidth),
    else x itself. index is None for the single whole-tensor piece."""
    ch = _channel_ids(x, channel_dim, channels)  # checks the channel count against x
    if use_fast_cpu_path(x):
        x3 = _bcr(x, channel_dim)
        ch3 = None if ch is None else ch.reshape(1, -1, 1)  # (B, C, R): channels on dim 1
        return x3, [((bs, slice(None), rs), x3[bs, :, rs], ch3) for bs, rs in slices(x3)]
    return None, [(None, x, ch)]


def _bcr(x: Tensor, channel_dim: int | None) -> Tensor:
    return as_bcr(x, channel_dim if channel_dim is not None else 0, channel_dim is not None)


def _backward_pieces(x: Tensor, xx: Tensor, g: Tensor, channel_dim: int | None, channels: int,
                     fn) -> tuple[Tensor, tuple[Tensor, ...] | None]:
    """Run fn(piece, grad piece, channel ids) -> (dL/dx piece, per-table sums or None) over x's
    pieces; returns dL/dx (x's shape and dtype) and the per-table sums added over pieces."""
    x3, pieces = _pieces(xx, channel_dim, channels)
    g3 = None if x3 is None else _bcr(g, channel_dim)
    gx3 = None if x3 is None else torch.empty_like(x3)
    sums = None
    for index, xp, ch in pieces:
        gx, part = fn(xp, g if index is None else g3[index], ch)
        if index is None:
            gx3 = gx
        else:
            gx3[index] = gx
        if part is not None:
            sums = part if sums is None else tuple(a + b for a, b in zip(sums, part))
    return gx3.reshape(x.shape).to(x.dtype), sums


def _forward_pieces(x: Tensor, xx: Tensor, channel_dim: int | None, channels: int, fn) -> Tensor:
    """x~ s over x's pieces (see _pieces); fn(piece, channel ids) -> (x~, s)."""
    x3, pieces = _pieces(xx, channel_dim, channels)
    out = None if x3 is None else torch.empty_like(x3)
    for index, xp, ch in pieces:
        xt, s = fn(xp, ch)
        if index is None:
            return (xt * s).to(x.dtype)
        torch.mul(xt, s, out=out[index])
    return out.reshape(x.shape).to(x.dtype)


class _CPABFlow(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, a2, b2, tau2, t, lo, hi, gate, alpha, channel_dim):
        ctx.save_for_backward(x, a2, b2, tau2)
        ctx.cfg = (t, lo, hi, gate, alpha, channel_dim)
        dtype = compute_dtype(x)
        xx = x.to(dtype)
        tb = _Tables(a2, b2, tau2, t, dtype)
        return _forward_pieces(x, xx, channel_dim, tb.channels, lambda xp, ch: _run(
            xp, tb, ch, t, lo, hi, gate, alpha, want_grad=False)[:2])

    @staticmethod
    @once_differentiable
    def backward(ctx, gy):
        x, a2, b2, tau2 = ctx.saved_tensors
        t, lo, hi, gate, alpha, channel_dim = ctx.cfg
        dtype = compute_dtype(x)
        xx, g = x.to(dtype), gy.to(dtype)
        tb = _Tables(a2, b2, tau2, t, dtype)
        want_tables = any(ctx.needs_input_grad[1:4])

        def piece(xp: Tensor, gp: Tensor, ch: Tensor | None):
            xt, s, ds, inside, p = _run(xp, tb, ch, t, lo, hi, gate, alpha, want_grad=True)
            gxt = gp * s
            dxt = p["dTdu"] if inside is None else _sel(inside, p["dTdu"], 1.0)
            gx = gxt * dxt if ds is None else gxt * dxt + gp * xt * ds
            if not want_tables:
                return gx, None
            gT = gxt if inside is None else _sel(inside, gxt * (hi - lo), 0.0)
            return gx, _table_grads(gT, p, tb)

        gx, sums = _backward_pieces(x, xx, g, channel_dim, tb.channels, piece)
        grads = [None, None, None]
        if want_tables:
            grads = [G.reshape(a2.shape).to(a2.dtype) for G in sums]
        return (gx if ctx.needs_input_grad[0] else None, *grads, None, None, None, None, None,
                None)


def cpab_op(x: Tensor, a2: Tensor, b2: Tensor, tau2: Tensor, *, t: float = 1.0,
            lo: float | None = None, hi: float | None = None, gate: str = "identity",
            alpha: float = 0.01, channel_dim: int | None = None) -> Tensor:
    """x~(x) s(x) with x~ the CPAB flow at time t (on [lo, hi] if given, identity outside).

    a2, b2, tau2: :func:`~learnact.functional.cpab.flow_tables` ((2N,) shared, or (C, 2N) with
    ``channel_dim`` naming x's channel dimension). Saves x and the tables only.
    """
    if gate not in GATES:
        raise ValueError(f"gate must be one of {GATES}, got {gate!r}")
    if (lo is None) != (hi is None) or (lo is not None and not lo < hi):
        raise ValueError(f"need lo < hi (both or neither), got lo={lo}, hi={hi}")
    if (a2.ndim == 2) != (channel_dim is not None):
        raise ValueError("per-channel tables (C, 2N) need channel_dim; shared tables (2N,) "
                         "must not get one")
    return _CPABFlow.apply(x, a2, b2, tau2, float(t), lo, hi, gate, float(alpha), channel_dim)


@torch.no_grad()
def flow_derivative(u: Tensor, a2: Tensor, b2: Tensor, tau2: Tensor, *, t: float = 1.0,
                    channel_dim: int | None = None) -> tuple[Tensor, Tensor]:
    """(T(u), dT/du) without autograd (dT/du = e^{t a} if u stays in its cell, else v(T)/v(u))."""
    dtype = compute_dtype(u)
    uu = u.to(dtype)
    tb = _Tables(a2, b2, tau2, float(t), dtype)
    ch = _channel_ids(uu, channel_dim, tb.channels)
    T, p = _trajectory(uu, ch, tb, float(t), want_grad=True)
    return T.to(u.dtype), p["dTdu"].to(u.dtype)


# -- lookup-table mode ------------------------------------------------------------------------
class _CPABLut(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, table, dtable, lo, hi, gate, alpha, channel_dim):
        ctx.save_for_backward(x, table, dtable)
        ctx.cfg = (lo, hi, gate, alpha, channel_dim)
        dtype = compute_dtype(x)
        xx = x.to(dtype)
        tab = table.detach().to(dtype)
        channels = 1 if table.ndim == 1 else table.shape[0]
        return _forward_pieces(x, xx, channel_dim, channels, lambda xp, ch: _lut_run(
            xp, tab, None, ch, lo, hi, gate, alpha)[:2])

    @staticmethod
    @once_differentiable
    def backward(ctx, gy):
        x, table, dtable = ctx.saved_tensors
        lo, hi, gate, alpha, channel_dim = ctx.cfg
        dtype = compute_dtype(x)
        xx, g = x.to(dtype), gy.to(dtype)
        tab, dtab = table.detach().to(dtype), dtable.detach().to(dtype)
        want_table = ctx.needs_input_grad[1]

        def piece(xp: Tensor, gp: Tensor, ch: Tensor | None):
            xt, s, ds, inside, (q, der) = _lut_run(xp, tab, dtab, ch, lo, hi, gate, alpha)
            gxt = gp * s
            gx = gxt * (1.0 + inside * (der - 1.0))
            if ds is not None:
                gx = gx + gp * xt * ds
            if not want_table:
                return gx, None
            return gx, (_binsum(q, gxt * (inside * (hi - lo)), table.numel()),)

        channels = 1 if table.ndim == 1 else table.shape[0]
        gx, sums = _backward_pieces(x, xx, g, channel_dim, channels, piece)
        gtab = None if sums is None else sums[0].reshape(table.shape).to(table.dtype)
        return gx, gtab, None, None, None, None, None, None


def _lut_run(xx, tab, dtab, ch, lo, hi, gate, alpha):
    # arithmetic blends with a 0/1 mask instead of torch.where: CPU where() with a random
    # mask runs branchy scalar code (measured 27x slower than an add for 128K elements)
    n = tab.shape[-1]
    dtype = xx.dtype
    inside = ((xx >= lo) & (xx <= hi)).to(dtype)
    u = torch.clamp((xx - lo) * (1.0 / (hi - lo)), 0.0, 1.0)
    q = torch.round(u * (n - 1)).long().clamp_(0, n - 1)  # NaN -> some index; x~ stays NaN
    if ch is not None:
        q = q + ch * n
    T = torch.take(tab, q)
    xt = (lo + (hi - lo) * T) * inside + xx * (1.0 - inside)  # exact for finite T
    s, ds = _gate(xx, gate, alpha, dtab is not None)
    extra = (q, torch.take(dtab, q)) if dtab is not None else None
    return xt, s, ds, inside, extra


def cpab_lut_op(x: Tensor, table: Tensor, dtable: Tensor, *, lo: float, hi: float,
                gate: str = "identity", alpha: float = 0.01,
                channel_dim: int | None = None) -> Tensor:
    """DiTAC's lookup-table mode: x~ = lo + (hi - lo) table[round((x - lo)/(hi - lo) (n - 1))]
    on [lo, hi] (x outside), output x~ s(x). Backward straight-through: dx~/dx = dtable at the
    grid point; table's gradient is the sum of the upstream gradients that looked it up.
    table, dtable: (n,) or (C, n) with ``channel_dim``."""
    if gate not in GATES:
        raise ValueError(f"gate must be one of {GATES}, got {gate!r}")
    if not lo < hi:
        raise ValueError(f"need lo < hi, got lo={lo}, hi={hi}")
    return _CPABLut.apply(x, table, dtable, float(lo), float(hi), gate, float(alpha),
                          channel_dim)
