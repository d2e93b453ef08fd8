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

On the CPU (float32/float64, windowed, t > 0: DiTAC's case) the whole per-element
computation above, window and gate included, is one fused C kernel each way
(ops/native/cpab.c ``la_flow_*``; custom ops ``learnact::flow_apply``/``flow_apply_backward``,
called by eager and compiled code alike): 95x -> ~8-10x GELU fwd+bwd. Without it (no C
compiler, ``LEARNACT_NATIVE=0``), large CPU eager inputs take an *anchored* closed form
instead of the per-element trajectory, forward and backward: see the section "anchored
forward" below (~3x faster than the trajectory; the elements it does not cover take the
trajectory above). CUDA takes the PyTorch trajectory, which inductor compiles to Triton.

Lookup-table mode (``cpab_grid`` + ``cpab_lut_op``): the grid op computes T, dT/du and the
Jacobian dT/d(tables) on the n grid points in one eager pass (an opaque custom op, so that
torch.compile materialises the table; its backward is one contraction with that Jacobian);
the per-element op is then one bin index, one or two table reads and the gate. The table is
read as a displacement x + (hi - lo)(T(u_r) - u_r), padded with an outside bin at each end
(displacement 0, slope 1), so no in-window mask is computed; its gradient is a histogram of
the upstream gradient per bin (``binsum``: private rows per thread). The grid op memoises its
result by the tables' values (rebuilt exactly when theta changes).

On the CPU (float32/float64) the per-element LUT work is one fused C kernel each way
(ops/native/cpab.c, built on first use by ops/_native.py; opaque custom ops
``learnact::lut_apply``/``lut_apply_backward``, so torch.compile calls them too): eager
PyTorch needed ~10 passes per element, and inductor's CPU code reads the table with a scalar
loop (its fused forward alone measured 5.9x GELU's). CUDA and other dtypes, or
``LEARNACT_NATIVE=0``, take the PyTorch path, which inductor turns into Triton on a GPU.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from .._tensor import canonical_dim, compute_dtype, use_fast_cpu_path
from . import _native
from ._chunks import as_bcr, map_chunks

__all__ = ["cpab_op", "cpab_lut_op", "cpab_grid", "grid_jacobian_fits", "native_grid", "binsum",
           "GATES"]

GATES = ("gelu", "leaky_relu", "silu", "identity")
_INV_SQRT2 = 1.0 / math.sqrt(2.0)
_INV_SQRT2PI = 1.0 / math.sqrt(2.0 * math.pi)


# -- select: torch.where runs branchy scalar code on the CPU when the mask is irregular
# (measured 253 us vs 53 us for this bit blend, 128K fp32 elements, 2 threads); exact for any
# values (inf, NaN) because it moves bits. Compiled and GPU code keep torch.where (a blend).
_INT_VIEW = {torch.float32: torch.int32, torch.float64: torch.int64, torch.int64: torch.int64,
             torch.int32: torch.int32}


_BLEND_MIN = 1 << 14  # below this the blend's 7 ops cost more than where()'s branches


def _sel(c: Tensor, a, b) -> Tensor:
    """torch.where(c, a, b) for tensors/Python scalars (at least one tensor)."""
    ref = a if isinstance(a, Tensor) else b
    if (torch.compiler.is_compiling() or ref.device.type != "cpu" or ref.numel() < _BLEND_MIN
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
    """Horner, in place on one buffer (a fresh L2-sized tensor per step costs an allocation and
    cache traffic: measured ~2x the in-place arithmetic on the CPU). Never autograd-tracked:
    these helpers run inside the ops' forward/backward only."""
    acc = torch.full_like(z, coeffs[-1])
    for c in reversed(coeffs[:-1]):
        acc.mul_(z).add_(c)
    return acc


def _near0(z: Tensor, thr: float, coeffs: tuple[float, ...], full, finite: bool) -> Tensor:
    """full(z) away from 0, the series within |z| < thr, full evaluated at z -> 1 where small.

    ``finite=False``: exact selects (any values, inf and NaN included). ``finite=True``, for
    arguments that are all finite with full(z) finite (the anchored backward's sanitised
    ones): the series on z clamped to [-thr, thr] and an arithmetic 0/1 blend, ~3x cheaper on
    the CPU than two exact selects."""
    small = z.abs() < thr
    if not finite:
        zs = _sel(small, torch.ones_like(z), z)
        return _sel(small, _series(z, coeffs), full(zs))
    m = small.to(z.dtype)
    f = full(torch.addcmul(z, m, 1.0 - z))
    return f.addcmul_(m, _series(z.clamp(-thr, thr), coeffs).sub_(f))


def _E(z: Tensor, finite: bool = False) -> Tensor:
    """expm1(z)/z."""
    return _near0(z, 1e-4, (1.0, 1 / 2, 1 / 6), lambda w: torch.expm1(w).div_(w), finite)


def _dE(z: Tensor, finite: bool = False) -> Tensor:
    """E'(z) = (e^z (z - 1) + 1)/z^2."""
    return _near0(z, 0.05, (1 / 2, 1 / 3, 1 / 8, 1 / 30, 1 / 144, 1 / 840),
                  lambda w: torch.exp(w).mul_(w - 1.0).add_(1.0).div_(w * w), finite)


def _L(z: Tensor) -> Tensor:
    """log1p(z)/z (z > -1)."""
    return _near0(z, 1e-4, (1.0, -1 / 2, 1 / 3), lambda w: torch.log1p(w).div_(w), False)


def _dL(z: Tensor, finite: bool = False) -> Tensor:
    """L'(z) = (z/(1 + z) - log1p(z))/z^2."""
    return _near0(z, 0.05, (-1 / 2, 2 / 3, -3 / 4, 4 / 5, -5 / 6, 6 / 7),
                  lambda w: (w / (1.0 + w)).sub_(torch.log1p(w)).div_(w * w), finite)


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
        self.stop = blocked.flip(-1).cummin(-1).values.flip(-1).reshape(-1).to(torch.int32)


def _take(table: Tensor, idx: Tensor) -> Tensor:
    """table[idx] for an int32 index of any shape: index_select takes int32 (torch.take needs
    int64, whose index arithmetic costs twice the vector width and a 4x slower conversion)."""
    return torch.index_select(table, 0, idx.reshape(-1)).reshape(idx.shape)


def _channel_ids(x: Tensor, channel_dim: int | None, channels: int) -> Tensor | None:
    if channel_dim is None:
        return None
    d = canonical_dim(x.ndim, channel_dim)
    if x.shape[d] != channels:
        raise ValueError(f"input has {x.shape[d]} channels at dim {channel_dim}, the tables "
                         f"{channels}")
    return torch.arange(channels, device=x.device, dtype=torch.int32).reshape(
        (channels,) + (1,) * (x.ndim - 1 - d))


def _trajectory(u: Tensor, ch: Tensor | None, tb: _Tables, t: float, want_grad: bool):
    """T(u) (and the pieces the backward needs). u in compute dtype, any shape."""
    n = tb.n
    c0 = torch.clamp(torch.floor(u * n), 0, n - 1).to(torch.int32)
    base = 0 if ch is None else ch * (2 * n)
    row0 = 0 if ch is None else ch * 2
    v = _take(tb.a, base + c0) * u + _take(tb.b, base + c0)
    left = v < 0
    x = _sel(left, 1.0 - u, u)
    cl = _sel(left, n - 1 - c0, c0)
    fr = left.to(torch.int32)
    cell = base + cl + n * fr
    af, bf = _take(tb.a, cell), _take(tb.b, cell)
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
        target = _take(tb.P, gk) + t1
        lo_k = torch.zeros_like(k1)
        hi_k = torch.full_like(k1, n)
        for _ in range(max(1, math.ceil(math.log2(n + 1)))):
            mid = (lo_k + hi_k + 1) // 2
            ok = _take(tb.P, row * (n + 1) + mid) <= target
            lo_k = _sel(ok, mid, lo_k)
            hi_k = _sel(ok, hi_k, mid - 1)
        cand = lo_k
    else:
        target = _take(tb.P_search, gk) + t1.to(torch.float64)
        cand = (torch.searchsorted(tb.P_search, target, right=True, out_int32=True) - 1
                - row * (n + 1))
    m = _sel(cross, torch.minimum(cand, _take(tb.stop, row * n + k1)), cl)
    gm = row * (n + 1) + m
    tm = _sel(cross, torch.clamp_min(t1 - (_take(tb.P, gm) - _take(tb.P, gk)),
                                            0.0), t1)
    xm = _sel(cross, m.to(u.dtype) * (1.0 / n), x)
    cellm = base + m + n * fr
    am, bm = _take(tb.a, cellm), _take(tb.b, cellm)
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


# -- anchored forward (CPU eager, large inputs) ----------------------------------------------
# T(x) for x in a fine bin [g_j, g_j+1] of its cell c is the flow of an anchor A (the end of
# the bin with the larger |v|) continued for the signed time s from A to x: T(x) = phi(T(A), s).
# When T(bin) lies in one cell m of the image this is one closed form, a power law:
#   1 + z = v(x)/v(A) = 1 + a_c (x - A)/v(A),  s = log1p(z)/a_c,
#   T = T(A) + v_m(T(A))/a_m expm1(a_m s) = T(A) + v_m(T(A))/a_m ((1 + z)^(a_m/a_c) - 1).
# Per element: one bin index, five table reads (A, a_c/v(A), a_m/a_c, T(A), v_m(T(A))/a_m),
# one log1p, one expm1 (against the full trajectory's ~60 ops and a binary search). Every
# case this does not cover gives NaN and takes the full trajectory afterwards: bins whose
# image crosses a knot, whose anchor has v = 0 or whose cells have a_c = 0 or a_m = 0 (A is
# NaN there), elements across a zero of v from their anchor (z < -1). The backward
# (_anchored_backward) differentiates the same closed form.
_ANCHOR_BINS = 1024  # bins over [0, 1], rounded up to a multiple of the cell count
_ANCHOR_MIN = 1 << 16  # elements per call below which the table costs more than it saves


class _Anchors:
    """Per-bin tables of the anchored closed form: ``tables`` (A, P, Q, T(A), W) for the
    forward, ``btables`` (A, 1/v(A), a_c, a_m, v_m(T(A)), T(A)) for the backward. With
    ``differentiable`` the physical per-bin parameters ``params`` (T(A), a_m, b_m, a_c, b_c)
    keep their autograd graph to float64 leaf copies of the tables (``leaves``; T(A) through
    ``cpab_grid``), for the anchored backward."""

    def __init__(self, a2: Tensor, b2: Tensor, tau2: Tensor, t: float, dtype: torch.dtype,
                 differentiable: bool = False):
        f64, dev = torch.float64, a2.device
        n = a2.shape[-1] // 2
        C = 1 if a2.ndim == 1 else a2.shape[0]
        m_per = -(-_ANCHOR_BINS // n)
        K = self.K = n * m_per
        g = torch.arange(K + 1, dtype=f64, device=dev) / K
        self.leaves = [v.detach().to(f64).requires_grad_(differentiable) for v in (a2, b2, tau2)]
        with torch.set_grad_enabled(differentiable):
            if differentiable:
                T = cpab_grid(*self.leaves, K + 1, t, grid_jacobian_fits(a2, K + 1))[0]
            else:
                tb = _Tables(a2, b2, tau2, t, f64)
                ch = None if a2.ndim == 1 else torch.arange(C, device=dev,
                                                            dtype=torch.int32)[:, None]
                T = _trajectory(g if ch is None else g.expand(C, K + 1), ch, tb, t, False)[0]
            T = T.reshape(C, K + 1)
            a = self.leaves[0].reshape(C, 2 * n)[:, :n]  # the unmirrored frame
            b = self.leaves[1].reshape(C, 2 * n)[:, :n]
            c = torch.arange(K, device=dev) // m_per  # the cell of every bin
            ac, bc = a[:, c], b[:, c]
            vl, vr = ac * g[:-1] + bc, ac * g[1:] + bc
            left = vl.abs() >= vr.abs()  # a zero boundary's v(0) is ~1e-16, not 0
            A = torch.where(left, g[:-1], g[1:])
            vA = torch.where(left, vl, vr)
            TA = torch.where(left, T[:, :-1], T[:, 1:])
            Td = T.detach()
            m = torch.clamp(torch.floor(Td[:, :-1] * n), 0, n - 1).long()
            am = torch.gather(a, 1, m)
            ok = ((vA != 0) & (ac != 0) & (am != 0) & (Td[:, 1:] <= (m + 1).to(f64) / n)
                  & (Td[:, :-1] >= m.to(f64) / n))
            bm = torch.gather(b, 1, m)
            self.params = (TA, am, bm, ac, bc)
        # bad bins: A is NaN (their elements take the full trajectory); safe denominators
        # keep the other entries finite
        TA, am, bm, ac, vA = (v.detach() for v in (TA, am, bm, ac, vA))
        wA = am * TA + bm
        A = torch.where(ok, A, math.nan)
        vA, ac_s, am_s = (torch.where(ok, v, 1.0) for v in (vA, ac, am))
        self.tables = [v.to(dtype).reshape(-1) for v in (A, ac / vA, am / ac_s, TA, wA / am_s)]
        self.btables = [v.to(dtype).reshape(-1) for v in (A, 1.0 / vA, ac_s, am_s, wA, TA)]


def _anchored(u: Tensor, ch: Tensor | None, an: _Anchors) -> Tensor:
    """T(u) by the anchored closed form; NaN where it does not apply (see _Anchors)."""
    A, P, Q, TA, W = (_take(tab, _anchor_bins(u, ch, an)) for tab in an.tables)
    z = (u - A).mul_(P)
    return torch.log1p(z).mul_(Q).expm1_().mul_(W).add_(TA)


@torch.library.custom_op("learnact::binsum", mutates_args=())
def binsum(idx: Tensor, w: Tensor, bins: int) -> Tensor:
    """Sum of w per bin idx (w broadcast to idx's shape), a (bins,) tensor.

    Rows of private bins, summed at the end: a 1-D index_add makes every thread add into the
    same few bins (measured 100 ms vs 1.5 ms for 3M elements). An opaque op so that
    torch.compile calls this kernel too (inductor's own scatter lowering uses atomic adds or
    a slower scatter_reduce fallback). A narrower index (int32 saves half the bytes of a
    saved index) is widened in L2-sized pieces: scatter_add_ with an int32 index, or one
    whole int64 copy, measured 3x and 2x slower (3M elements)."""
    idx, w = idx.reshape(-1), w.expand(idx.shape).reshape(-1)
    m = idx.numel()
    rows = _private_rows(bins, m)
    acc = torch.zeros(rows, bins, dtype=w.dtype, device=w.device)
    narrow = idx.dtype != torch.int64
    step = rows * 2048 if narrow and idx.device.type == "cpu" else max(m, 1)
    buf = torch.empty(min(step, m), dtype=torch.int64, device=idx.device) if narrow else None
    for start in range(0, m, step):
        i, v = idx[start:start + step], w[start:start + step]
        if buf is not None:
            i = buf[:i.numel()].copy_(i)
        r = rows if i.numel() % rows == 0 else 1
        acc[:r].scatter_add_(1, i.reshape(r, -1), v.reshape(r, -1))
    return acc.sum(0)


@binsum.register_fake
def _(idx, w, bins):
    return w.new_empty(bins)


def _private_rows(bins: int, m: int | None = None) -> int:
    """Private accumulator rows: up to 64, fewer for few elements (m) or many bins (the rows
    stay within 4M entries: per-channel tables have C x n bins)."""
    rows = max(1, min(64, (1 << 22) // max(bins, 1)))
    return rows if m is None else max(1, min(rows, m // 4096))


class _BinAcc:
    """binsum over many pieces: one set of private rows, added into piece by piece."""

    def __init__(self, bins: int, dtype: torch.dtype, device: torch.device):
        self.bins, self.rows = bins, _private_rows(bins)
        self.acc = torch.zeros(self.rows, bins, dtype=dtype, device=device)

    def add(self, idx: Tensor, w: Tensor) -> None:
        # per L2-sized piece an int32 index scatters in 69 us vs 40 + 54 us to widen it first
        idx, w = idx.reshape(-1), w.expand(idx.shape).reshape(-1)
        if idx.numel() % self.rows == 0 and not torch.compiler.is_compiling():
            self.acc.scatter_add_(1, idx.reshape(self.rows, -1), w.reshape(self.rows, -1))
        else:
            self.acc[0] += binsum(idx, w, self.bins)

    def total(self) -> Tensor:
        return self.acc.sum(0)


def _table_terms(g: Tensor, p: dict) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Per-element weights of g dT/d(tables): (a, b of the last cell m), (a, b of the first
    cell when it is left), and h = dL/d(time spent), entering every crossed tau_j."""
    gf = _sel(p["left"], -g, g)
    tm, Em = p["tm"], p["Em"]
    gb_m = gf * tm * Em
    ga_m = gf * (tm * tm * _dE(p["za"]) * p["vm"] + p["xm"] * tm * Em)
    h = _sel(p["cross"], -gf * p["psit"], torch.zeros_like(gf))
    dtb = -p["dl"] / (p["sv"] * p["ve"])
    dta = (p["dl"] / p["sv"]) ** 2 * _dL(p["z"]) + p["x"] * dtb
    ga_0 = _sel(p["cross"], h * dta, torch.zeros_like(h))
    gb_0 = _sel(p["cross"], h * dtb, torch.zeros_like(h))
    return ga_m, gb_m, ga_0, gb_0, h


def _table_grads(g: Tensor, p: dict, tb: _Tables) -> tuple[Tensor, Tensor, Tensor]:
    """Sum over elements of g dT/d(a2, b2, tau2) (shapes (C*2N,), (C*2N,), (C*2N,))."""
    n, C = tb.n, tb.channels
    ga_m, gb_m, ga_0, gb_0, h = _table_terms(g, p)
    size = C * 2 * n
    Ga = binsum(p["cellm"], ga_m, size) + binsum(p["cell"], ga_0, size)
    Gb = binsum(p["cellm"], gb_m, size) + binsum(p["cell"], gb_0, size)
    # the tau_j crossed are cells k1 .. m-1 of the element's row: +h at k1, -h at m, cumsum
    D = binsum(p["gk"], h, C * 2 * (n + 1)) - binsum(p["gm"], h, C * 2 * (n + 1))
    Gt = torch.cumsum(D.reshape(C * 2, n + 1), -1)[:, :n].reshape(-1)
    return Ga, Gb, Gt


def _table_jacobian(p: dict, tb: _Tables) -> Tensor:
    """dT/d(a2, b2, tau2) of every element against its own channel's tables: (..., 6N) with
    columns [a2 | b2 | tau2] (for small inputs such as the lookup grid; the rows are dense)."""
    n = tb.n
    ga_m, gb_m, ga_0, gb_0, h = _table_terms(torch.ones_like(p["x"]), p)
    ab = torch.zeros(*ga_m.shape, 2, 2 * n, dtype=ga_m.dtype, device=ga_m.device)
    for idx, wa, wb in ((p["cellm"] % (2 * n), ga_m, gb_m), (p["cell"] % (2 * n), ga_0, gb_0)):
        ab.scatter_add_(-1, idx[..., None, None].expand(*idx.shape, 2, 1),
                        torch.stack([wa, wb], -1)[..., None])
    D = torch.zeros(*h.shape, 2 * (n + 1), dtype=h.dtype, device=h.device)
    D.scatter_add_(-1, (p["gk"] % (2 * (n + 1)))[..., None], h[..., None])
    D.scatter_add_(-1, (p["gm"] % (2 * (n + 1)))[..., None], -h[..., None])
    Jt = torch.cumsum(D.reshape(*h.shape, 2, n + 1), -1)[..., :n].reshape(*h.shape, 2 * n)
    return torch.cat([ab.reshape(*h.shape, 4 * n), Jt], -1)


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


def _anchor_u(x: Tensor, an: _Anchors, lo, hi) -> tuple[Tensor | None, Tensor]:
    """(inside mask or None, u) for the anchored form. Outside the window u is any point
    inside a bin (x~ = x there anyway); without a window u = x, NaN outside [0, 1] (the full
    trajectory's extrapolation decides there)."""
    if lo is None:
        return None, _sel((x >= 0) & (x <= 1), x, math.nan)
    inside = (x >= lo) & (x <= hi)
    return inside, _sel(inside, (x - lo) * (1.0 / (hi - lo)), 0.5 + 0.5 / an.K)


def _anchor_bins(u: Tensor, ch: Tensor | None, an: _Anchors) -> Tensor:
    j = torch.clamp(torch.floor(u * an.K), 0, an.K - 1).to(torch.int32)
    return j if ch is None else j + ch * an.K


def _run_anchored(x: Tensor, an: _Anchors, ch, lo, hi, gate: str,
                  alpha: float) -> tuple[Tensor, Tensor]:
    """(x~, s) like _run's forward with T by the anchored closed form (NaN where it does not
    apply: the caller redoes those elements with the full trajectory)."""
    inside, u = _anchor_u(x, an, lo, hi)
    T = _anchored(u, ch, an)
    xt = T if inside is None else _sel(inside, lo + (hi - lo) * T, x)
    return xt, _gate(x, gate, alpha, False)[0]


def _chunk_view(x: Tensor, channel_dim: int | None, channels: int):
    """(the (B, C, R) view to chunk, or None for one whole-tensor piece; channel ids for a
    piece of that view, or for x itself). Chunks are L2-sized pieces on the CPU eager path
    (ops/_chunks.py: whole-tensor temporaries cost page faults and bandwidth)."""
    ch = _channel_ids(x, channel_dim, channels)  # checks the channel count against x
    if not use_fast_cpu_path(x):
        return None, ch
    return _bcr(x, channel_dim), None if ch is None else ch.reshape(1, -1, 1)


def _bcr(x: Tensor, channel_dim: int | None) -> Tensor:
    return as_bcr(x, channel_dim if channel_dim is not None else 0, channel_dim is not None)


def _backward_pieces(x: Tensor, xx: Tensor, g: Tensor, channel_dim: int | None, channels: int,
                     fn) -> tuple[Tensor, list[Tensor] | None]:
    """Run fn(piece, grad piece, channel ids) -> (dL/dx piece, per-table sums or None) over x's
    pieces; returns dL/dx (x's shape and dtype) and the per-table sums added over pieces."""
    x3, ch = _chunk_view(xx, channel_dim, channels)
    if x3 is None:
        gx, sums = fn(xx, g, ch)
        return gx.reshape(x.shape).to(x.dtype), sums

    def piece(o: Tensor, xp: Tensor, gp: Tensor):
        gxp, part = fn(xp, gp, ch)
        o.copy_(gxp)
        return part

    gx, sums = map_chunks(x3, piece, _bcr(g, channel_dim))
    return gx.reshape(x.shape).to(x.dtype), sums


def _forward_pieces(x: Tensor, xx: Tensor, channel_dim: int | None, channels: int, fn) -> Tensor:
    """x~ s over x's pieces (see _chunk_view); fn(piece, channel ids) -> (x~, s)."""
    x3, ch = _chunk_view(xx, channel_dim, channels)
    if x3 is None:
        xt, s = fn(xx, ch)
        return (xt * s).to(x.dtype)

    def piece(o: Tensor, xp: Tensor) -> None:
        xt, s = fn(xp, ch)
        torch.mul(xt, s, out=o)

    return map_chunks(x3, piece)[0].reshape(x.shape).to(x.dtype)


def _anchored_path(xx: Tensor) -> bool:
    return use_fast_cpu_path(xx) and xx.numel() >= _ANCHOR_MIN


def _not_covered(values: Tensor, xx: Tensor, channel_dim: int | None, channels: int):
    """(flat indices, their inputs, their channel ids) of the non-finite ``values`` — what the
    anchored form does not cover (NaN; non-finite results of non-finite inputs are redone
    alike) — or (None, None, None)."""
    idx = torch.isfinite(values).logical_not_().reshape(-1).nonzero().squeeze(1)
    if not idx.numel():
        return None, None, None
    ch = _channel_ids(xx, channel_dim, channels)
    chs = None if ch is None else ch.expand(xx.shape).reshape(-1)[idx]
    return idx, xx.reshape(-1)[idx], chs


def _trajectory_grads(xp: Tensor, gp: Tensor, ch: Tensor | None, tb: _Tables, cfg: tuple,
                      want_tables: bool) -> tuple[Tensor, tuple[Tensor, ...] | None]:
    """dL/dx and the per-table sums (or None) by the full trajectory, for any set of elements."""
    t, lo, hi, gate, alpha, _ = cfg
    xt, s, ds, inside, p = _run(xp, tb, ch, t, lo, hi, gate, alpha, want_grad=True)
    gxt = gp * s
    dxt = p["dTdu"] if inside is None else _sel(inside, p["dTdu"], 1.0)
    gx = gxt * dxt if ds is None else gxt * dxt + gp * xt * ds
    if not want_tables:
        return gx, None
    gT = gxt if inside is None else _sel(inside, gxt * (hi - lo), 0.0)
    return gx, _table_grads(gT, p, tb)


# Exact mode on the CPU: one fused C kernel each way (ops/native/cpab.c, the closed form of
# _trajectory and _table_terms per element, window and gate included), for windowed inputs
# moving forward in time (DiTAC's case); the PyTorch paths stay for the rest and as fallback.
def _native_flow(xx: Tensor, lo, t: float) -> bool:
    return lo is not None and t > 0 and _native_ok(xx)


def _native_layout(xx: Tensor, channel_dim: int | None, channels: int) -> tuple[int, int]:
    """(C, R) of the kernels' (B, C, R) view of x: element i's channel is (i / R) % C."""
    if channel_dim is None:
        return 1, max(1, xx.numel())
    d = canonical_dim(xx.ndim, channel_dim)
    return channels, math.prod(xx.shape[d + 1:])


def _run_flow(x: Tensor, g: Tensor | None, A: Tensor, B: Tensor, P: Tensor, stop: Tensor,
              channels: int, inner: int, t: float, lo: float, hi: float, gate: int,
              alpha: float, want_tables: bool) -> tuple[Tensor, Tensor]:
    out = torch.empty_like(x)
    n = A.numel() // (2 * channels)
    lib = _native.library()
    parts, _ = _native.split(x.numel())
    size = channels * 2 * n * 2 + channels * 2 * (n + 1)
    # per part (rows lib.la_flow_stride apart): lib.flow_copies interleaved copies of
    # [(dL/da, dL/db) pairs | D]
    hist = torch.zeros((parts, lib.la_flow_stride(channels, n)) if want_tables else (1, 0),
                       dtype=torch.float64)
    _native.launch(lib, "la_flow", x.dtype,
                   (x.data_ptr(), None if g is None else g.data_ptr(), out.data_ptr()),
                   x.numel(), (A.data_ptr(), B.data_ptr(), P.data_ptr(), stop.data_ptr(),
                               channels, inner, n, t, lo, hi, gate, alpha),
                   hist=hist if want_tables else None, hist_arg=True)
    if not want_tables:
        return out, hist.new_empty(0)
    return out, hist[:, :lib.flow_copies * size].reshape(-1, size).sum(0)


@torch.library.custom_op("learnact::flow_apply", mutates_args=())
def flow_apply(x: Tensor, A: Tensor, B: Tensor, P: Tensor, stop: Tensor, channels: int,
               inner: int, t: float, lo: float, hi: float, gate: int, alpha: float) -> Tensor:
    """x~ s(x) (exact CPAB flow on [lo, hi]) by the native kernel; x contiguous CPU
    float32/float64, A, B, P in x's dtype and stop int32 from _Tables."""
    return _run_flow(x, None, A, B, P, stop, channels, inner, t, lo, hi, gate, alpha,
                     False)[0]


@flow_apply.register_fake
def _(x, A, B, P, stop, channels, inner, t, lo, hi, gate, alpha):
    return torch.empty_like(x)


@torch.library.custom_op("learnact::flow_apply_backward", mutates_args=())
def flow_apply_backward(x: Tensor, g: Tensor, A: Tensor, B: Tensor, P: Tensor, stop: Tensor,
                        channels: int, inner: int, t: float, lo: float, hi: float, gate: int,
                        alpha: float, want_tables: bool) -> tuple[Tensor, Tensor]:
    """(dL/dx, [dL/dA | dL/dB | per-knot time differences] in float64, empty unless
    ``want_tables``) by the native kernel."""
    return _run_flow(x, g, A, B, P, stop, channels, inner, t, lo, hi, gate, alpha,
                     want_tables)


@flow_apply_backward.register_fake
def _(x, g, A, B, P, stop, channels, inner, t, lo, hi, gate, alpha, want_tables):
    n2 = A.numel()
    size = 2 * n2 + n2 + 2 * channels if want_tables else 0
    return torch.empty_like(x), x.new_empty((size,), dtype=torch.float64)


def _flow_table_grads(hist: Tensor, tb: _Tables) -> tuple[Tensor, Tensor, Tensor]:
    """dL/d(a2, b2, tau2), flat, from the kernel's [(dL/da, dL/db) pairs | D] sums (the
    crossing times' gradient is the cumulative sum of the per-knot differences D)."""
    C, n = tb.channels, tb.n
    AB, D = hist.split([C * 2 * n * 2, C * 2 * (n + 1)])
    Ga, Gb = AB.reshape(C * 2 * n, 2).unbind(1)
    return Ga, Gb, torch.cumsum(D.reshape(C * 2, n + 1), -1)[:, :n].reshape(-1)


def _flow_native_args(x: Tensor, xx: Tensor, tb: _Tables, channel_dim, cfg) -> tuple:
    t, lo, hi, gate, alpha, _ = cfg
    _channel_ids(x, channel_dim, tb.channels)  # checks the channel count
    return (tb.a, tb.b, tb.P, tb.stop, *_native_layout(xx, channel_dim, tb.channels), t, lo, hi,
            _GATE_ID[gate], alpha)


class _CPABFlow(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, a2, b2, tau2, t, lo, hi, gate, alpha, channel_dim):
        ctx.save_for_backward(x, a2, b2, tau2)
        ctx.cfg = (t, lo, hi, gate, alpha, channel_dim)
        dtype = compute_dtype(x)
        xx = x.to(dtype)
        tb = _Tables(a2, b2, tau2, t, dtype)
        if _native_flow(xx, lo, t):
            ctx.tables = tb  # a few floats per cell: the backward's kernel call reuses them
            out = flow_apply(xx.contiguous(), *_flow_native_args(x, xx, tb, channel_dim,
                                                                 ctx.cfg))
            return out.reshape(x.shape).to(x.dtype)
        if _anchored_path(xx):
            an = _Anchors(a2, b2, tau2, t, dtype)
            out = _forward_pieces(x, xx, channel_dim, tb.channels, lambda xp, ch: _run_anchored(
                xp, an, ch, lo, hi, gate, alpha))
            idx, xs, chs = _not_covered(out, xx, channel_dim, tb.channels)
            if idx is not None:
                xt, sg = _run(xs, tb, chs, t, lo, hi, gate, alpha, want_grad=False)[:2]
                out.view(-1)[idx] = (xt * sg).to(out.dtype)
            return out
        return _forward_pieces(x, xx, channel_dim, tb.channels, lambda xp, ch: _run(
            xp, tb, ch, t, lo, hi, gate, alpha, want_grad=False)[:2])

    @staticmethod
    @once_differentiable
    def backward(ctx, gy):
        x, a2, b2, tau2 = ctx.saved_tensors
        t, lo, hi, gate, alpha, channel_dim = ctx.cfg
        dtype = compute_dtype(x)
        xx, g = x.to(dtype), gy.to(dtype)
        want_tables = any(ctx.needs_input_grad[1:4])
        if _native_flow(xx, lo, t):
            tb = ctx.tables  # the forward took this path too (same dtype and device)
            gx, hist = flow_apply_backward(xx.contiguous(), g.contiguous(), *_flow_native_args(
                x, xx, tb, channel_dim, ctx.cfg), want_tables)
            grads = [None, None, None]
            if want_tables:
                grads = [G.reshape(v.shape).to(v.dtype) for G, v in zip(
                    _flow_table_grads(hist, tb), (a2, b2, tau2))]
            return (gx.reshape(x.shape).to(x.dtype) if ctx.needs_input_grad[0] else None,
                    *grads, None, None, None, None, None, None)
        if _anchored_path(xx):
            gx, grads = _anchored_backward(x, xx, g, a2, b2, tau2, ctx.cfg, want_tables)
            return (gx if ctx.needs_input_grad[0] else None, *grads, None, None, None, None,
                    None, None)
        tb = _Tables(a2, b2, tau2, t, dtype)
        gx, sums = _backward_pieces(x, xx, g, channel_dim, tb.channels, lambda xp, gp, ch:
                                    _trajectory_grads(xp, gp, ch, tb, ctx.cfg, want_tables))
        grads = [None, None, None]
        if want_tables:
            grads = [G.reshape(a2.shape).to(a2.dtype) for G in sums]
        return (gx if ctx.needs_input_grad[0] else None, *grads, None, None, None, None, None,
                None)


def _anchored_backward(x: Tensor, xx: Tensor, g: Tensor, a2: Tensor, b2: Tensor, tau2: Tensor,
                       cfg: tuple, want_tables: bool) -> tuple[Tensor, list]:
    """dL/dx and dL/d(tables) with the anchored closed form (see _Anchors). With s the time
    from A to x (s = log1p(z)/a_c, z = a_c q, q = (x - A)/v(A)) and e = e^{a_m s}:

        dT/dx = v_m(T(A)) e / v(x),  dT/dT(A) = e,  dT/db_m = s E(a_m s),
        dT/da_m = T(A) s E(a_m s) + v_m(T(A)) s^2 E'(a_m s),
        dT/db_c = v_m(T(A)) e ds/db_c,  ds/db_c = -q/v(x),
        dT/da_c = v_m(T(A)) e ds/da_c,  ds/da_c = q^2 L'(z) + A ds/db_c,

    the same stable pieces as the trajectory's own backward (E(z) = expm1(z)/z, L(z) =
    log1p(z)/z, series near 0). The upstream gradient is summed per bin against these five
    and autograd carries the sums through the per-bin graph (T(A) via cpab_grid) to the
    tables. Elements the closed form does not cover take the full trajectory's backward."""
    t, lo, hi, gate, alpha, channel_dim = cfg
    dtype = xx.dtype
    C = 1 if a2.ndim == 1 else a2.shape[0]
    an = _Anchors(a2, b2, tau2, t, dtype, differentiable=want_tables)
    acc = _BinAcc(5 * C * an.K, dtype, x.device) if want_tables else None

    def piece(xp: Tensor, gp: Tensor, ch: Tensor | None):
        inside, u = _anchor_u(xp, an, lo, hi)
        j = _anchor_bins(u, ch, an)
        A, rvA, ac, am, wA, TA = (_take(tab, j) for tab in an.btables)
        q = (u - A) * rvA
        z = ac * q
        rvx = rvA / (1.0 + z)  # 1/v(x)
        s = torch.log1p(z) / ac
        e = torch.exp(am * s)
        dxt = wA * e * rvx
        fin = torch.isfinite(dxt)  # before the window's select
        sg, dsg = _gate(xp, gate, alpha, True)
        gxt = gp * sg
        xt = TA + wA / am * torch.expm1(am * s)
        if inside is not None:
            dxt = _sel(inside, dxt, 1.0)
            xt = _sel(inside, lo + (hi - lo) * xt, xp)
        gx = gxt * dxt if dsg is None else gxt * dxt + gp * xt * dsg
        if acc is not None:
            # what is redone adds nothing here: gT = 0 and q = 0 there (every other table
            # entry is finite: bad bins have safe denominators and NaN only in A)
            gT = gxt if inside is None else _sel(inside, gxt * (hi - lo), 0.0)
            gT, q = _sel(fin, gT, 0.0), _sel(fin, q, 0.0)
            z = ac * q
            rvx = rvA / (1.0 + z)
            s = torch.log1p(z) / ac
            e = torch.exp(am * s)
            sa = am * s
            sE = s * _E(sa, finite=True)
            sb = -q * rvx
            we = gT * wA * e
            j5 = j * 5
            acc.add(j5, gT * e)
            acc.add(j5 + 1, gT * (TA * sE + wA * s * s * _dE(sa, finite=True)))
            acc.add(j5 + 2, gT * sE)
            acc.add(j5 + 3, we * (q * q * _dL(z, finite=True) + _sel(fin, A, 0.0) * sb))
            acc.add(j5 + 4, we * sb)
        return gx, None

    gx, _ = _backward_pieces(x, xx, g, channel_dim, C, piece)
    grads = [None, None, None]
    if acc is not None:
        G = acc.total().to(torch.float64).reshape(C, an.K, 5).unbind(-1)
        with torch.enable_grad():
            got = torch.autograd.grad(an.params, an.leaves, G, allow_unused=True)
        grads = [torch.zeros_like(leaf) if gr is None else gr for gr, leaf in zip(got, an.leaves)]
    # the elements the closed form does not cover: the full trajectory's backward
    idx, xs, chs = _not_covered(gx, xx, channel_dim, C)
    if idx is not None:
        tb = _Tables(a2, b2, tau2, t, dtype)
        gxs, sums = _trajectory_grads(xs, g.reshape(-1)[idx], chs, tb, cfg, want_tables)
        gx.view(-1)[idx] = gxs.to(gx.dtype)
        if sums is not None:
            grads = [G + S.reshape(G.shape) for G, S in zip(grads, sums)]
    return gx, [None if gr is None else gr.reshape(v.shape).to(v.dtype)
                for gr, v in zip(grads, (a2, b2, tau2))]


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


# -- lookup-table mode ------------------------------------------------------------------------
# The table T(grid) and dT/du(grid) come from one opaque custom op: traced as one node, so
# inductor materialises the n-point table instead of inlining the whole flow into every
# element's lookup (it did: the compiled LUT then recomputed the flow per element, 12x GELU).
def _grid(a2: Tensor, n: int) -> tuple[Tensor, Tensor | None]:
    u = torch.linspace(0.0, 1.0, n, dtype=torch.float64, device=a2.device)
    if a2.ndim == 1:
        return u, None
    return u.expand(a2.shape[0], n), torch.arange(a2.shape[0], device=a2.device,
                                                  dtype=torch.int32)[:, None]


# The grid is a pure function of (tables, n, t): a memo keyed by the tables' *values* makes
# "rebuilt when theta changes" literal — nothing that writes theta (an optimiser step,
# load_state_dict, p.data.copy_) can leave it stale, and repeated calls with unchanged theta
# (inference, several calls per step, benchmarks) skip the ~1 ms eager flow. Least recently
# used entries go beyond _GRID_MEMO_BYTES (a shared-theta entry with its Jacobian is ~1 MB).
_GRID_MEMO: OrderedDict[tuple, tuple[Tensor, Tensor, Tensor]] = OrderedDict()
_GRID_MEMO_BYTES = 256 << 20
_GRID_LOCK = threading.Lock()


def _grid_key(a2: Tensor, b2: Tensor, tau2: Tensor, n: int, t: float, jacobian: bool) -> tuple:
    vals = torch.cat([a2.reshape(-1), b2.reshape(-1), tau2.reshape(-1)]).detach()
    return (n, t, jacobian, str(a2.device), a2.dtype, tuple(a2.shape),
            vals.to("cpu", torch.float64).numpy().tobytes())


def _grid_remember(key: tuple, out: tuple[Tensor, ...]) -> None:
    size = sum(o.numel() * o.element_size() for o in out)
    if size > _GRID_MEMO_BYTES // 4:
        return  # per-channel tables with many channels: not worth holding
    with _GRID_LOCK:
        _GRID_MEMO[key] = tuple(o.detach() for o in out)
        total = sum(o.numel() * o.element_size() for v in _GRID_MEMO.values() for o in v)
        while total > _GRID_MEMO_BYTES and len(_GRID_MEMO) > 1:
            _, old = _GRID_MEMO.popitem(last=False)
            total -= sum(o.numel() * o.element_size() for o in old)


def native_grid(a2: Tensor, t: float = 1.0) -> bool:
    """Whether cpab_grid runs on the native exact kernel (CPU tables, t > 0): the grid's T and
    dT/du are then one kernel call each, and its backward one more (the kernel's own table
    gradients), with no Jacobian to build or keep: ask for ``jacobian=False`` then."""
    return a2.device.type == "cpu" and t > 0 and _native_library_loaded()


def _grid_native(a2: Tensor, b2: Tensor, tau2: Tensor, n: int,
                 t: float) -> tuple[Tensor, tuple, _Tables]:
    """(the grid points u, contiguous; flow_apply's arguments after u; the tables) for the
    native grid: window [0, 1] and the identity gate, so the kernel's x~ is T(u) itself."""
    u, _ = _grid(a2, n)
    tb = _Tables(a2, b2, tau2, t, torch.float64)
    return (u.contiguous(), (tb.a, tb.b, tb.P, tb.stop, tb.channels, n, t, 0.0, 1.0,
                             _GATE_ID["identity"], 0.0), tb)


def grid_jacobian_fits(a2: Tensor, n: int) -> bool:
    """Whether cpab_grid's Jacobian (C x n x 6N floats) is small enough to keep (<= 4M
    entries); above it the grid op's backward recomputes the trajectory instead."""
    return a2.numel() * 3 * n <= 1 << 22


@torch.library.custom_op("learnact::cpab_grid", mutates_args=())
def cpab_grid(a2: Tensor, b2: Tensor, tau2: Tensor, n: int, t: float,
              jacobian: bool) -> tuple[Tensor, Tensor, Tensor]:
    """(T(u), dT/du, J) in float64 on the uniform grid u_i = i/(n-1), i < n ((n,) for shared
    tables, (C, n) per channel). Differentiable w.r.t. the tables through T only (dT/du is the
    lookup mode's straight-through derivative, a constant to autograd). J = dT/d(a2, b2, tau2)
    per grid point ((..., n, 6N)) if ``jacobian``, else empty: computed here with the forward's
    pieces, the backward is then one contraction; without it the backward recomputes the
    trajectory (use that when C n 6N is large: per channel, J would be C x n x 6N floats)."""
    key = _grid_key(a2, b2, tau2, n, t, jacobian)
    with _GRID_LOCK:
        hit = _GRID_MEMO.get(key)
        if hit is not None:
            _GRID_MEMO.move_to_end(key)
    if hit is None:
        if not jacobian and native_grid(a2, t):  # the exact kernel on the grid points
            uc, args, _ = _grid_native(a2, b2, tau2, n, t)
            T = flow_apply(uc, *args)
            dT = flow_apply_backward(uc, torch.ones_like(uc), *args, False)[0]
            hit = (T, dT, a2.new_empty(0, dtype=torch.float64))
        else:
            u, ch = _grid(a2, n)
            tb = _Tables(a2, b2, tau2, t, torch.float64)
            T, p = _trajectory(u, ch, tb, t, want_grad=True)
            J = _table_jacobian(p, tb) if jacobian else a2.new_empty(0, dtype=torch.float64)
            hit = (T, p["dTdu"], J)
        _grid_remember(key, hit)
    return tuple(h.clone() for h in hit)  # custom-op outputs are fresh tensors


@cpab_grid.register_fake
def _(a2, b2, tau2, n, t, jacobian):
    shape = (n,) if a2.ndim == 1 else (a2.shape[0], n)
    J = (shape + (3 * a2.shape[-1],)) if jacobian else (0,)
    f64 = torch.float64
    return a2.new_empty(shape, dtype=f64), a2.new_empty(shape, dtype=f64), a2.new_empty(J, dtype=f64)


def _cpab_grid_setup(ctx, inputs, output) -> None:
    a2, b2, tau2, n, t, jacobian = inputs
    ctx.save_for_backward(output[2], a2, b2, tau2)
    ctx.n, ctx.t = n, t


def _cpab_grid_backward(ctx, gT, gD, gJ):
    J, a2, b2, tau2 = ctx.saved_tensors
    if J.numel():
        Ga, Gb, Gt = torch.einsum("...n,...nk->...k", gT.to(J.dtype), J).chunk(3, -1)
    elif native_grid(a2, ctx.t):
        uc, args, tb = _grid_native(a2, b2, tau2, ctx.n, ctx.t)
        hist = flow_apply_backward(uc, gT.to(torch.float64).contiguous(), *args, True)[1]
        Ga, Gb, Gt = (G.reshape(a2.shape) for G in _flow_table_grads(hist, tb))
    else:
        u, ch = _grid(a2, ctx.n)
        tb = _Tables(a2, b2, tau2, ctx.t, torch.float64)
        _, p = _trajectory(u, ch, tb, ctx.t, want_grad=True)
        Ga, Gb, Gt = (G.reshape(a2.shape) for G in _table_grads(gT.to(torch.float64), p, tb))
    return (Ga.to(a2.dtype), Gb.to(b2.dtype), Gt.to(tau2.dtype), None, None, None)


cpab_grid.register_autograd(_cpab_grid_backward, setup_context=_cpab_grid_setup)


def _lut_tables(table: Tensor, dtable: Tensor, lo: float, hi: float, dtype: torch.dtype):
    """Flattened lookup tables with one outside bin at each end, (C, n + 2) -> (C (n + 2),):
    D = (hi - lo)(table - grid) (0 outside) and the slope dtable (1 outside)."""
    n = table.shape[-1]
    grid = torch.linspace(0.0, 1.0, n, dtype=table.dtype, device=table.device)
    D = (table.detach() - grid) * (hi - lo)
    pad = D.new_zeros(D.shape[:-1] + (1,))
    D = torch.cat([pad, D, pad], -1).to(dtype).reshape(-1)
    S = torch.cat([pad + 1.0, dtable.detach().to(pad.dtype), pad + 1.0], -1)
    return D, S.to(dtype).reshape(-1)


def _lut_index(xx: Tensor, ch: Tensor | None, n: int, lo: float, hi: float) -> Tensor:
    """int32 bin of every element: floor((x - lo)(n - 1)/(hi - lo) + 1/2) + 1 in 1..n inside
    the table, 0 / n + 1 outside it. The float clamp keeps the int conversion in range; NaN
    (the one value it passes) lands in a bin by the int clamp, and x~ = x + D stays NaN.
    (int32: converting to int64 costs 4x more on the CPU, and index_select takes either.)"""
    k = (n - 1) / (hi - lo)
    r = torch.add(torch.tensor(1.5 - lo * k, dtype=xx.dtype, device=xx.device), xx, alpha=k)
    idx = r.clamp_(0.0, n + 1.5).to(torch.int32).clamp_(0, n + 1)
    return idx if ch is None else idx + ch * (n + 2)


# Fused native kernels (ops/native/cpab.c) for CPU float32/float64: one pass each way
# instead of ~10 eager passes, and a private-per-thread histogram for the table's gradient.
# Opaque custom ops, so torch.compile calls them as they are (inductor's CPU code reads the
# table with a scalar loop); CUDA and other dtypes take the PyTorch path below.
_GATE_ID = {g: i for i, g in enumerate(GATES)}  # the C enum's order


@torch.compiler.assume_constant_result
def _native_library_loaded() -> bool:
    return _native.library() is not None


def _native_ok(xx: Tensor) -> bool:
    return (xx.device.type == "cpu" and xx.dtype in (torch.float32, torch.float64)
            and _native_library_loaded())


def _lut_layout(xx: Tensor, channel_dim: int | None, channels: int, n: int, lo: float,
                hi: float) -> tuple[int, int, float, float]:
    """(C, R, k, off): the kernels' layout and bin rule v = off + k x (as in _lut_index)."""
    k = (n - 1) / (hi - lo)
    return (*_native_layout(xx, channel_dim, channels), k, 1.5 - lo * k)


@torch.library.custom_op("learnact::lut_apply", mutates_args=())
def lut_apply(x: Tensor, D: Tensor, channels: int, inner: int, k: float, off: float, gate: int,
              alpha: float) -> Tensor:
    """(x + D[bin(x)]) s(x) by the native kernel; x contiguous CPU float32/float64, D the
    padded displacement table in x's dtype ((C (n + 2),))."""
    out = torch.empty_like(x)
    _native.launch(_native.library(), "la_lut_fwd", x.dtype, (x.data_ptr(), out.data_ptr()),
                   x.numel(), (D.data_ptr(), D.numel() // channels, channels, inner, k, off,
                               gate, alpha))
    return out


@lut_apply.register_fake
def _(x, D, channels, inner, k, off, gate, alpha):
    return torch.empty_like(x)


@torch.library.custom_op("learnact::lut_apply_backward", mutates_args=())
def lut_apply_backward(x: Tensor, g: Tensor, D: Tensor, S: Tensor, channels: int, inner: int,
                       k: float, off: float, gate: int, alpha: float,
                       want_table: bool) -> tuple[Tensor, Tensor]:
    """(dL/dx, per-bin sums of g s(x) in float64 (empty unless ``want_table``)) by the native
    kernel; each thread adds into its own row of bins."""
    lib = _native.library()
    gx = torch.empty_like(x)
    parts, _ = _native.split(x.numel())
    # each part's row (lib.la_lut_stride apart): C (n + 2) bins and the kernel's spare slots
    # for the outside bins
    hist = torch.zeros((parts, lib.la_lut_stride(D.numel())) if want_table else (1, 0),
                       dtype=torch.float64)
    _native.launch(lib, "la_lut_bwd", x.dtype,
                   (x.data_ptr(), g.data_ptr(), gx.data_ptr()), x.numel(),
                   (D.data_ptr(), S.data_ptr(), D.numel() // channels, channels, inner, k, off,
                    gate, alpha), hist=hist if want_table else None, hist_arg=True)
    return gx, hist[:, :D.numel()].sum(0)


@lut_apply_backward.register_fake
def _(x, g, D, S, channels, inner, k, off, gate, alpha, want_table):
    return torch.empty_like(x), x.new_empty((D.numel() if want_table else 0,),
                                            dtype=torch.float64)


class _CPABLut(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, table, dtable, lo, hi, gate, alpha, channel_dim):
        dtype = compute_dtype(x)
        xx = x.to(dtype)
        D, S = _lut_tables(table, dtable, lo, hi, dtype)
        ctx.save_for_backward(x, D, S)  # table-sized, built once per call
        ctx.cfg = (lo, hi, gate, alpha, channel_dim, table.shape, table.dtype)
        n = table.shape[-1]
        channels = 1 if table.ndim == 1 else table.shape[0]
        if _native_ok(xx):
            _channel_ids(x, channel_dim, channels)  # checks the channel count
            out = lut_apply(xx.contiguous(), D, *_lut_layout(xx, channel_dim, channels, n, lo,
                                                              hi), _GATE_ID[gate], alpha)
            return out.reshape(x.shape).to(x.dtype)

        def piece(xp: Tensor, ch: Tensor | None):
            xt = _take(D, _lut_index(xp, ch, n, lo, hi)).add_(xp)
            return xt, _gate(xp, gate, alpha, False)[0]

        return _forward_pieces(x, xx, channel_dim, channels, piece)

    @staticmethod
    @once_differentiable
    def backward(ctx, gy):
        x, D, S = ctx.saved_tensors
        lo, hi, gate, alpha, channel_dim, table_shape, table_dtype = ctx.cfg
        dtype = compute_dtype(x)
        xx, g = x.to(dtype), gy.to(dtype)
        n = table_shape[-1]
        channels = 1 if len(table_shape) == 1 else table_shape[0]
        want_table = ctx.needs_input_grad[1]
        if _native_ok(xx):
            gx, hist = lut_apply_backward(
                xx.contiguous(), g.contiguous(), D, S,
                *_lut_layout(xx, channel_dim, channels, n, lo, hi), _GATE_ID[gate], alpha,
                want_table)
            gx = gx.reshape(x.shape).to(x.dtype)
            gtab = None
            if want_table:
                G = hist.reshape(channels, n + 2)[:, 1:-1] * (hi - lo)
                gtab = G.reshape(table_shape).to(table_dtype)
            return gx, gtab, None, None, None, None, None, None
        acc = _BinAcc(D.numel(), dtype, x.device) if want_table else None

        def piece(xp: Tensor, gp: Tensor, ch: Tensor | None):
            idx = _lut_index(xp, ch, n, lo, hi)
            s, ds = _gate(xp, gate, alpha, True)
            gxt = gp * s
            gx = gxt * _take(S, idx)
            if ds is not None:  # + g x~ s'(x)
                gx.addcmul_(gp * ds, _take(D, idx).add_(xp))
            if acc is not None:
                acc.add(idx, gxt)
            return gx, None

        gx, _ = _backward_pieces(x, xx, g, channel_dim, channels, piece)
        gtab = None
        if acc is not None:  # d x~/d table = (hi - lo); drop the two outside bins
            G = acc.total().reshape(channels, n + 2)[:, 1:-1] * (hi - lo)
            gtab = G.reshape(table_shape).to(table_dtype)
        return gx, gtab, None, None, None, None, None, None


def cpab_lut_op(x: Tensor, table: Tensor, dtable: Tensor, *, lo: float, hi: float,
                gate: str = "identity", alpha: float = 0.01,
                channel_dim: int | None = None) -> Tensor:
    """DiTAC's lookup-table mode, output x~ s(x), with the table read as a displacement:

        r = floor((x - lo)(n - 1)/(hi - lo) + 1/2),  x~ = x + (hi - lo)(table[r] - r/(n - 1))

    for 0 <= r < n (the grid point nearest to x), x~ = x otherwise. For a table T(u_r) of a
    map fixing 0 and 1 (DiTAC's T) x~ equals x outside [lo, hi] and its error against the
    exact lo + (hi - lo) T((x - lo)/(hi - lo)) is at most half a grid step times max |T' - 1|
    (a nearest-value lookup's is half a step times max T'), with no in-window mask to compute.
    Backward straight-through: dx~/dx = dtable[r] (1 outside); table's gradient is (hi - lo)
    times the sum of the upstream gradients that looked it up. table, dtable: (n,), or (C, n)
    with ``channel_dim``. CPU float32/float64 run the fused native kernels (float32 GELU/SiLU
    gates by polynomials within ~1e-7, like PyTorch's own vectorised erf); otherwise PyTorch
    ops."""
    if gate not in GATES:
        raise ValueError(f"gate must be one of {GATES}, got {gate!r}")
    if not lo < hi:
        raise ValueError(f"need lo < hi, got lo={lo}, hi={hi}")
    if table.shape[-1] < 2 or dtable.shape != table.shape:
        raise ValueError(f"table and dtable need the same shape (..., n >= 2), got "
                         f"{tuple(table.shape)} and {tuple(dtable.shape)}")
    return _CPABLut.apply(x, table, dtable, float(lo), float(hi), gate, float(alpha),
                          channel_dim)
