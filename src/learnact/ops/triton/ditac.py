r"""Triton kernels of DiTAC: the lookup-table mode (the op: ops/cpab/lut.py ``cpab_lut_op``)
and the exact flow (ops/cpab/flow.py ``cpab_op``; the closed form of common.py
``_trajectory`` per element, the tables read from global memory (a few dozen floats per
channel, cached), the knot search unrolled, the table gradients by atomic adds).

Lookup table:
Per element, as the CPU kernels: bin r = clamp(floor(off + k x), 0, n + 1) of the padded
displacement table D (C (n + 2) entries), x~ = x + D[r], y = x~ s(x). Backward: dL/dx =
g s(x) S[r] + g x~ s'(x) with S the padded slope table, and the table's gradient: g s(x) added
into bin r (atomic adds into a (C, n + 2) fp32 buffer; the outside bins are dropped by the
caller). Gates by constexpr id in GATES order: gelu, leaky_relu, silu, identity.
"""

from __future__ import annotations

import math

import torch
import triton
import triton.language as tl
from torch import Tensor

from ._common import Layout, tile_offsets, tile_xg

__all__ = ["lut_forward", "lut_backward", "flow_forward", "flow_backward"]

_INV_SQRT2 = 1.0 / math.sqrt(2.0)
_INV_SQRT2PI = 1.0 / math.sqrt(2.0 * math.pi)


@triton.jit
def _gate(x, alpha, GATE: tl.constexpr):
    """(s(x), s'(x))."""
    if GATE == 0:  # gelu
        s = 0.5 + 0.5 * tl.math.erf(x * 0.7071067811865476)
        ds = tl.exp(-0.5 * x * x) * 0.3989422804014327
    elif GATE == 1:  # leaky_relu
        s = tl.where(x > 0, 1.0, alpha)
        ds = tl.zeros_like(x)
    elif GATE == 2:  # silu
        s = 1.0 / (1.0 + tl.exp(-x))
        ds = s * (1.0 - s)
    else:
        s = tl.full(x.shape, 1.0, tl.float32)
        ds = tl.zeros_like(x)
    return s, ds


@triton.jit
def _bins(x, c, k, off, NB: tl.constexpr):
    r = tl.minimum(tl.maximum(off + k * x, 0.0), NB - 1 + 0.5)
    r = tl.minimum(tl.maximum(r.to(tl.int32), 0), NB - 1)
    return c[:, None] * NB + r


@triton.jit
def _fwd(x_ptr, y_ptr, d_ptr, C, R, N, k, off, alpha, NB: tl.constexpr, GATE: tl.constexpr,
         BC: tl.constexpr, BR: tl.constexpr):
    c, cm, offs, m = tile_offsets(C, R, N, BC, BR)
    x = tl.load(x_ptr + offs, mask=m, other=0.0).to(tl.float32)
    xt = x + tl.load(d_ptr + _bins(x, c, k, off, NB), mask=m, other=0.0).to(tl.float32)
    s, _ = _gate(x, alpha, GATE)
    tl.store(y_ptr + offs, (xt * s).to(y_ptr.dtype.element_ty), mask=m)


@triton.jit
def _bwd(x_ptr, g_ptr, gx_ptr, hist_ptr, d_ptr, s_ptr, C, R, N, k, off, alpha,
         NB: tl.constexpr, GATE: tl.constexpr, WANT: tl.constexpr, BC: tl.constexpr,
         BR: tl.constexpr):
    c, cm, offs, m, x, g = tile_xg(x_ptr, g_ptr, C, R, N, BC, BR)
    b = _bins(x, c, k, off, NB)
    xt = x + tl.load(d_ptr + b, mask=m, other=0.0).to(tl.float32)
    s, ds = _gate(x, alpha, GATE)
    gxt = g * s
    gx = gxt * tl.load(s_ptr + b, mask=m, other=1.0).to(tl.float32) + g * xt * ds
    tl.store(gx_ptr + offs, gx.to(gx_ptr.dtype.element_ty), mask=m)
    if WANT:
        tl.atomic_add(hist_ptr + b, gxt, mask=m)


def _layout(x: Tensor, channels: int, channel_dim: int | None) -> Layout:
    return Layout(x, channels, 0 if channel_dim is None else channel_dim)


def lut_forward(x: Tensor, D: Tensor, channels: int, channel_dim: int | None, k: float,
                off: float, gate: int, alpha: float) -> Tensor:
    """y = (x + D[bin(x)]) s(x) in x's dtype; D the padded displacement table (C (n + 2),)."""
    lay = _layout(x, channels, channel_dim)
    y = lay.x.new_empty(lay.x.shape)
    if x.numel():
        _fwd[lay.grid](lay.x, y, D.float().contiguous(), lay.C, lay.R, lay.N, k, off, alpha,
                       NB=D.numel() // channels, GATE=gate, BC=lay.BC, BR=lay.BR)
    return y.reshape(x.shape)


def lut_backward(x: Tensor, grad: Tensor, D: Tensor, S: Tensor, channels: int,
                 channel_dim: int | None, k: float, off: float, gate: int, alpha: float,
                 want_table: bool) -> tuple[Tensor, Tensor]:
    """(dL/dx in x's dtype, per-bin sums of g s(x) in fp32 ((C (n + 2),), empty unless
    ``want_table``))."""
    lay = _layout(x, channels, channel_dim)
    gx = lay.x.new_empty(lay.x.shape)
    hist = torch.zeros(D.numel() if want_table else 1, dtype=torch.float32, device=x.device)
    if x.numel():
        _bwd[lay.grid](lay.x, grad.contiguous(), gx, hist, D.float().contiguous(),
                       S.float().contiguous(), lay.C, lay.R, lay.N, k, off, alpha,
                       NB=D.numel() // channels, GATE=gate, WANT=want_table, BC=lay.BC,
                       BR=lay.BR)
    return gx.reshape(x.shape), hist[:D.numel()] if want_table else hist[:0]


# -- the exact flow ---------------------------------------------------------------------------
# Series near 0 where the closed forms cancel in fp32 (thresholds chosen for fp32: the
# truncation error stays below 1e-8 relative at the threshold, the closed form's rounding
# below ~1e-6 beyond it).


@triton.jit
def _E(z):
    """expm1(z)/z."""
    s = 1.0 + z * (0.5 + z * (1.0 / 6 + z * (1.0 / 24 + z * (1.0 / 120 + z * (1.0 / 720)))))
    small = tl.abs(z) < 0.05
    zz = tl.where(small, 1.0, z)
    return tl.where(small, s, (tl.exp(zz) - 1.0) / zz)


@triton.jit
def _dE(z):
    """E'(z) = (e^z (z - 1) + 1)/z^2."""
    s = 0.5 + z * (1.0 / 3 + z * (1.0 / 8 + z * (1.0 / 30 + z * (1.0 / 144 + z * (
        1.0 / 840 + z * (1.0 / 5760 + z * (1.0 / 45360 + z * (1.0 / 403200))))))))
    small = tl.abs(z) < 0.5
    zz = tl.where(small, 1.0, z)
    return tl.where(small, s, (tl.exp(zz) * (zz - 1.0) + 1.0) / (zz * zz))


@triton.jit
def _L(z):
    """log1p(z)/z (z > -1)."""
    s = 1.0 + z * (-0.5 + z * (1.0 / 3 + z * (-0.25 + z * (0.2 + z * (-1.0 / 6 + z * (
        1.0 / 7 + z * (-0.125)))))))
    small = tl.abs(z) < 0.1
    zz = tl.where(small, 1.0, z)
    return tl.where(small, s, tl.log(1.0 + zz) / zz)


@triton.jit
def _dL(z):
    """L'(z) = (z/(1 + z) - log1p(z))/z^2."""
    s = -0.5 + z * (2.0 / 3 + z * (-0.75 + z * (0.8 + z * (-5.0 / 6 + z * (6.0 / 7 + z * (
        -0.875 + z * (8.0 / 9 + z * (-0.9 + z * (10.0 / 11 + z * (-11.0 / 12))))))))))
    small = tl.abs(z) < 0.3
    zz = tl.where(small, 1.0, z)
    return tl.where(small, s, (zz / (1.0 + zz) - tl.log(1.0 + zz)) / (zz * zz))


@triton.jit
def _flow(u, c, a_ptr, b_ptr, p_ptr, stop_ptr, t, n, nf, SEARCH: tl.constexpr):
    """T(u) and the pieces the backward needs (common.py _trajectory, per element)."""
    base = c[:, None] * (2 * n)
    row0 = c[:, None] * 2
    c0 = tl.minimum(tl.maximum(tl.floor(u * nf), 0.0), nf - 1.0).to(tl.int32)
    v = tl.load(a_ptr + base + c0) * u + tl.load(b_ptr + base + c0)
    left = v < 0
    xf = tl.where(left, 1.0 - u, u)
    cl = tl.where(left, n - 1 - c0, c0)
    fr = left.to(tl.int32)
    cell = base + cl + n * fr
    af = tl.load(a_ptr + cell)
    bf = tl.load(b_ptr + cell)
    vf = af * xf + bf
    e = (cl + 1).to(tl.float32) / nf
    dl = e - xf
    ve = af * e + bf
    can = (vf > 1.1754943508222875e-38) & (cl < n - 1) & (ve > 0)
    sv = tl.where(can, vf, 1.0)
    z = tl.where(can, af * dl / sv, 0.0)
    t0 = tl.where(can, dl / sv * _L(z), float("inf"))
    cross = t0 < t
    row = row0 + fr
    k1 = tl.where(cross, cl + 1, cl)
    gk = row * (n + 1) + k1
    t1 = tl.where(cross, t - t0, t)
    target = tl.load(p_ptr + gk) + t1
    lo_k = tl.zeros_like(k1)
    hi_k = tl.zeros_like(k1) + n
    for _ in tl.static_range(SEARCH):  # largest knot with P <= target, in the row
        mid = (lo_k + hi_k + 1) // 2
        ok = tl.load(p_ptr + row * (n + 1) + mid) <= target
        lo_k = tl.where(ok, mid, lo_k)
        hi_k = tl.where(ok, hi_k, mid - 1)
    m = tl.where(cross, tl.minimum(lo_k, tl.load(stop_ptr + row * n + k1)), cl)
    gm = row * (n + 1) + m
    tm = tl.where(cross, tl.maximum(t1 - (tl.load(p_ptr + gm) - tl.load(p_ptr + gk)), 0.0), t1)
    xm = tl.where(cross, m.to(tl.float32) / nf, xf)
    cellm = base + m + n * fr
    am = tl.load(a_ptr + cellm)
    vm = am * xm + tl.load(b_ptr + cellm)
    za = tl.minimum(tm * am, 80.0)  # e^{t a} beyond float32: v ~ 0 there (common.py)
    em = _E(za)
    w = tm * em * vm
    psi = xm + w
    T = tl.where(left, 1.0 - psi, psi)
    return T, left, cross, cell, cellm, gk, gm, tm, xm, vm, za, em, w, xf, sv, ve, dl, z, am


@triton.jit
def _window(x, lo, hi):
    inside = (x >= lo) & (x <= hi)
    u = tl.where(inside, (x - lo) / (hi - lo), 0.0)
    return inside, u


@triton.jit
def _flow_fwd(x_ptr, y_ptr, a_ptr, b_ptr, p_ptr, stop_ptr, C, R, N, n, nf, t, lo, hi, alpha,
              GATE: tl.constexpr, SEARCH: tl.constexpr, BC: tl.constexpr, BR: tl.constexpr):
    c, cm, offs, m = tile_offsets(C, R, N, BC, BR)
    x = tl.load(x_ptr + offs, mask=m, other=0.0).to(tl.float32)
    inside, u = _window(x, lo, hi)
    T = _flow(u, tl.where(cm, c, 0), a_ptr, b_ptr, p_ptr, stop_ptr, t, n, nf, SEARCH)[0]
    xt = tl.where(inside, lo + (hi - lo) * T, x)
    s, _ = _gate(x, alpha, GATE)
    tl.store(y_ptr + offs, (xt * s).to(y_ptr.dtype.element_ty), mask=m)


@triton.jit
def _flow_bwd(x_ptr, g_ptr, gx_ptr, ga_ptr, gb_ptr, gd_ptr, a_ptr, b_ptr, p_ptr, stop_ptr,
              C, R, N, n, nf, t, lo, hi, alpha, GATE: tl.constexpr, SEARCH: tl.constexpr,
              WANT: tl.constexpr, BC: tl.constexpr, BR: tl.constexpr):
    c, cm, offs, m, x, g = tile_xg(x_ptr, g_ptr, C, R, N, BC, BR)
    inside, u = _window(x, lo, hi)
    (T, left, cross, cell, cellm, gk, gm, tm, xm, vm, za, em, w, xf, sv, ve, dl, z,
     am) = _flow(u, tl.where(cm, c, 0), a_ptr, b_ptr, p_ptr, stop_ptr, t, n, nf, SEARCH)
    xt = tl.where(inside, lo + (hi - lo) * T, x)
    s, ds = _gate(x, alpha, GATE)
    gxt = g * s
    psit = vm + am * w  # v(T) in the frame
    dtdu = tl.where(cross, psit / sv, 1.0 + za * em)
    dxt = tl.where(inside, dtdu, 1.0)
    tl.store(gx_ptr + offs, (gxt * dxt + g * xt * ds).to(gx_ptr.dtype.element_ty), mask=m)
    if WANT:  # dL/d(a, b) of the last and the first cell, and the crossed times (common.py)
        gT = tl.where(inside & m, gxt * (hi - lo), 0.0)
        gf = tl.where(left, -gT, gT)
        gb_m = gf * tm * em
        ga_m = gf * (tm * tm * _dE(za) * vm + xm * tm * em)
        h = tl.where(cross, -gf * psit, 0.0)
        dtb = -dl / (sv * ve)
        dta = (dl / sv) * (dl / sv) * _dL(z) + xf * dtb
        tl.atomic_add(ga_ptr + cellm, ga_m, mask=m)
        tl.atomic_add(gb_ptr + cellm, gb_m, mask=m)
        tl.atomic_add(ga_ptr + cell, tl.where(cross, h * dta, 0.0), mask=m & cross)
        tl.atomic_add(gb_ptr + cell, tl.where(cross, h * dtb, 0.0), mask=m & cross)
        tl.atomic_add(gd_ptr + gk, h, mask=m & cross)
        tl.atomic_add(gd_ptr + gm, -h, mask=m & cross)


def _flow_args(x: Tensor, a: Tensor, b: Tensor, P: Tensor, stop: Tensor, channels: int,
               channel_dim: int | None):
    lay = _layout(x, channels, channel_dim)
    n = a.numel() // (2 * channels)
    search = max(1, math.ceil(math.log2(n + 1)))
    return lay, n, search, (a.float().contiguous(), b.float().contiguous(),
                            P.float().contiguous(), stop.to(torch.int32).contiguous())


def flow_forward(x: Tensor, a: Tensor, b: Tensor, P: Tensor, stop: Tensor, channels: int,
                 channel_dim: int | None, t: float, lo: float, hi: float, gate: int,
                 alpha: float) -> Tensor:
    """x~(x) s(x) in x's dtype: the exact CPAB flow on [lo, hi] (identity outside); the tables
    as common.py ``_Tables`` (a, b, P, stop: flattened over (channel, frame) rows)."""
    lay, n, search, tabs = _flow_args(x, a, b, P, stop, channels, channel_dim)
    y = lay.x.new_empty(lay.x.shape)
    if x.numel():
        _flow_fwd[lay.grid](lay.x, y, *tabs, lay.C, lay.R, lay.N, n, float(n), t, lo, hi, alpha,
                            GATE=gate, SEARCH=search, BC=lay.BC, BR=lay.BR,
                            num_warps=8)  # 4 elements a thread: <= 128 registers (gpu_aot.md)
    return y.reshape(x.shape)


def flow_backward(x: Tensor, grad: Tensor, a: Tensor, b: Tensor, P: Tensor, stop: Tensor,
                  channels: int, channel_dim: int | None, t: float, lo: float, hi: float,
                  gate: int, alpha: float, want_tables: bool
                  ) -> tuple[Tensor, tuple[Tensor, Tensor, Tensor] | None]:
    """(dL/dx in x's dtype, (dL/da, dL/db, dL/dtau) flat in fp32, or None)."""
    lay, n, search, tabs = _flow_args(x, a, b, P, stop, channels, channel_dim)
    gx = lay.x.new_empty(lay.x.shape)
    rows = 2 * channels
    ga = torch.zeros(rows * n if want_tables else 1, dtype=torch.float32, device=x.device)
    gb = torch.zeros_like(ga)
    gd = torch.zeros(rows * (n + 1) if want_tables else 1, dtype=torch.float32,
                     device=x.device)
    if x.numel():
        _flow_bwd[lay.grid](lay.x, grad.contiguous(), gx, ga, gb, gd, *tabs, lay.C, lay.R,
                            lay.N, n, float(n), t, lo, hi, alpha, GATE=gate, SEARCH=search,
                            WANT=want_tables, BC=lay.BC, BR=lay.BR, num_warps=8)
    if not want_tables:
        return gx.reshape(x.shape), None
    gt = torch.cumsum(gd.reshape(rows, n + 1), -1)[:, :n].reshape(-1)
    return gx.reshape(x.shape), (ga, gb, gt)
