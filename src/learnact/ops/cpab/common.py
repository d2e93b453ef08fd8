r"""DiTAC's shared per-element math for the flow and lookup-table ops (internal).

The CPAB flow in closed form per element (:func:`_trajectory`), its per-table gradient terms,
the gates, the small per-cell tables and the chunked CPU iteration; flow.py and lut.py build
their ops from these. Notation: functional/cpab.py and flow.py's docstring.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor

from ..._tensor import canonical_dim, compute_dtype, use_fast_cpu_path
from ...core.cpab import DE_SERIES, DL_SERIES
from .. import _native
from .._chunks import as_bcr, map_chunks
from .._library import _import_triton_module, assume_constant_result, current_backend


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
    these helpers run inside the ops' forward/backward, except under grad mode (flow_reference)."""
    acc = torch.full_like(z, coeffs[-1])
    tracked = torch.is_grad_enabled()  # flow_reference (double backward): out of place
    for c in reversed(coeffs[:-1]):
        acc = acc * z + c if tracked else acc.mul_(z).add_(c)
    return acc


def _near0(z: Tensor, thr: float, coeffs: tuple[float, ...], full) -> Tensor:
    """full(z) away from 0, the series within |z| < thr (full evaluated at z -> 1 there);
    exact selects, so any values pass (inf and NaN included)."""
    small = z.abs() < thr
    zs = _sel(small, torch.ones_like(z), z)
    return _sel(small, _series(z, coeffs), full(zs))


def _div(a: Tensor, b: Tensor) -> Tensor:
    """a / b, into a's buffer unless autograd is recording (flow_reference)."""
    return a / b if torch.is_grad_enabled() else a.div_(b)


def _E(z: Tensor) -> Tensor:
    """expm1(z)/z."""
    return _near0(z, 1e-4, (1.0, 1 / 2, 1 / 6), lambda w: _div(torch.expm1(w), w))


def _dE(z: Tensor) -> Tensor:
    """E'(z) = (e^z (z - 1) + 1)/z^2."""
    return _near0(z, 0.05, DE_SERIES, lambda w: torch.exp(w).mul_(w - 1.0).add_(1.0).div_(w * w))


def _L(z: Tensor) -> Tensor:
    """log1p(z)/z (z > -1)."""
    return _near0(z, 1e-4, (1.0, -1 / 2, 1 / 3), lambda w: _div(torch.log1p(w), w))


def _dL(z: Tensor) -> Tensor:
    """L'(z) = (z/(1 + z) - log1p(z))/z^2."""
    return _near0(z, 0.05, DL_SERIES,
                  lambda w: (w / (1.0 + w)).sub_(torch.log1p(w)).div_(w * w))


def gate_and_slope(x: Tensor, gate: str, alpha: float, slope: bool = True
                   ) -> tuple[Tensor, Tensor | None]:
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
    """The per-cell tables the kernels read. ``differentiable=True`` keeps autograd's graph
    from (a2, b2, tau2) to a, b and P (the double-backward path); the kernels take detached
    ones."""

    def __init__(self, a2: Tensor, b2: Tensor, tau2: Tensor, t: float, dtype: torch.dtype,
                 differentiable: bool = False):
        self.n = a2.shape[-1] // 2
        self.channels = 1 if a2.ndim == 1 else a2.shape[0]
        n, rows = self.n, 2 * self.channels
        if not differentiable:
            a2, b2, tau2 = a2.detach(), b2.detach(), tau2.detach()
        self.a = a2.to(dtype).reshape(-1)
        self.b = b2.to(dtype).reshape(-1)
        tau = tau2.to(torch.float64).reshape(rows, n)
        fin = torch.isfinite(tau)
        P = torch.cat([torch.zeros(rows, 1, dtype=tau.dtype, device=tau.device),
                       torch.cumsum(_sel(fin, tau, torch.zeros_like(tau)), -1)], -1)
        # one sorted 1-D sequence over all rows: row r's block shifted past every earlier one
        # (a target P[k1] + t1 never leaves its block: t1 <= t < span)
        span = P.detach()[:, -1] + (t + 1.0)
        shift = torch.cumsum(span, 0) - span
        self.P_search = (P.detach() + shift[:, None]).reshape(-1)  # float64: shifts grow
        self.P = P.to(dtype).reshape(-1)
        j = torch.arange(n, device=tau.device).expand(rows, n)
        blocked = _sel(fin, torch.full_like(j, n), j)
        # stop[k]: first cell >= k the point cannot cross (the last cell always qualifies)
        if torch.compiler.is_exporting():
            # ONNX has no cummin: the same suffix minimum as a masked (rows, n, n) min (n is
            # the cell count, small)
            later = j[0][None, :] >= j[0][:, None]  # [k, j]: j >= k
            stop = torch.where(later, blocked[:, None, :], torch.full_like(blocked[:, None, :],
                                                                           n)).amin(-1)
        else:
            stop = blocked.flip(-1).cummin(-1).values.flip(-1)
        self.stop = stop.reshape(-1).to(torch.int32)


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
    s, ds = gate_and_slope(x, gate, alpha, want_grad)
    return xt, s, ds, inside, parts


def flow_reference(x: Tensor, a2: Tensor, b2: Tensor, tau2: Tensor, cfg: FlowConfig) -> Tensor:
    """x~(x) s(x) by the closed form in differentiable PyTorch ops (one whole-tensor piece):
    autograd of it is the analytic backward almost everywhere, and it is twice
    differentiable: the exact op's double-backward path (``create_graph=True``)."""
    dtype = compute_dtype(x)
    xx = x.to(dtype)
    tb = _Tables(a2, b2, tau2, cfg.t, dtype, differentiable=True)
    ch = _channel_ids(xx, cfg.channel_dim, tb.channels)
    xt, s, *_ = _run(xx, tb, ch, cfg.t, cfg.lo, cfg.hi, cfg.gate, cfg.alpha, want_grad=False)
    return (xt * s).to(x.dtype)


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


class FlowConfig(NamedTuple):
    """The exact op's non-tensor arguments, as its autograd context keeps them."""

    t: float
    lo: float | None
    hi: float | None
    gate: str
    alpha: float
    channel_dim: int | None


def _trajectory_grads(xp: Tensor, gp: Tensor, ch: Tensor | None, tb: _Tables, cfg: FlowConfig,
                      want_tables: bool) -> tuple[Tensor, tuple[Tensor, ...] | None]:
    """dL/dx and the per-table sums (or None) by the full trajectory, for any set of elements."""
    t, lo, hi, gate, alpha = cfg.t, cfg.lo, cfg.hi, cfg.gate, cfg.alpha
    xt, s, ds, inside, p = _run(xp, tb, ch, t, lo, hi, gate, alpha, want_grad=True)
    gxt = gp * s
    dxt = p["dTdu"] if inside is None else _sel(inside, p["dTdu"], 1.0)
    gx = gxt * dxt if ds is None else gxt * dxt + gp * xt * ds
    if not want_tables:
        return gx, None
    gT = gxt if inside is None else _sel(inside, gxt * (hi - lo), 0.0)
    return gx, _table_grads(gT, p, tb)


def _native_layout(xx: Tensor, channel_dim: int | None, channels: int) -> tuple[int, int]:
    """(C, R) of the kernels' (B, C, R) view of x: element i's channel is (i / R) % C."""
    if channel_dim is None:
        return 1, max(1, xx.numel())
    d = canonical_dim(xx.ndim, channel_dim)
    return channels, math.prod(xx.shape[d + 1:])


# Fused native kernels (native/cpab.c) for CPU float32/float64: one pass each way
# instead of ~10 eager passes, and a private-per-thread histogram for the table's gradient.
# Opaque custom ops, so torch.compile calls them as they are (inductor's CPU code reads the
# table with a scalar loop); CUDA and other dtypes take the PyTorch path below.


@assume_constant_result
def _native_library_loaded() -> bool:
    return _native.library() is not None


def _triton_kernels(xx: Tensor):
    """ops/triton/ditac.py for CUDA tensors, or for any tensor under
    ``learnact.ops.backend("triton")``, in eager mode; None where triton is not importable or
    not wanted, and under torch.compile (the PyTorch path is traced: inductor fuses it)."""
    forced = current_backend()
    if forced in ("reference", "cpu") or (xx.device.type != "cuda" and forced != "triton"):
        return None
    if torch.compiler.is_compiling():
        return None
    return _import_triton_module("learnact.ops.triton.ditac")


def _native_ok(xx: Tensor) -> bool:
    """The native C kernels run: CPU float32/float64, built, and not learnact.ops.backend(
    "reference") (the PyTorch path)."""
    return (xx.device.type == "cpu" and xx.dtype in (torch.float32, torch.float64)
            and current_backend() != "reference" and _native_library_loaded())
