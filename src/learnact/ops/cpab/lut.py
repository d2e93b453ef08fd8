r"""DiTAC's lookup-table mode (``cpab_grid`` + ``cpab_lut_op``): the grid op computes T, dT/du and the
Jacobian dT/d(tables) on the n grid points in one eager pass (an opaque custom op, so that
torch.compile materialises the table; its backward is one contraction with that Jacobian);
the per-element op is then one bin index, one or two table reads and the gate. The table is
read as a displacement x + (hi - lo)(T(u_r) - u_r), padded with an outside bin at each end
(displacement 0, slope 1), so no in-window mask is computed; its gradient is a histogram of
the upstream gradient per bin (``binsum``: private rows per thread). The grid op memoises its
result by the tables' values (rebuilt exactly when theta changes).

On the CPU (float32/float64) the per-element LUT work is one fused C kernel each way
(native/cpab.c, built on first use by ops/_native.py; opaque custom ops
``learnact::lut_apply``/``lut_apply_backward``, so torch.compile calls them too): eager
PyTorch needed ~10 passes per element, and inductor's CPU code reads the table with a scalar
loop (its fused forward alone measured 5.9x GELU's). On CUDA the per-element work is one
Triton kernel each way (ops/triton/ditac.py; the table's gradient by atomic adds), where
triton is importable. Other dtypes, ``LEARNACT_NATIVE=0`` or ``learnact.ops.backend(
"reference")`` take the PyTorch path. (The eager path is not a custom op: under torch.compile
dynamo traces this Function, and the Triton call is an opaque kernel inside it.)
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from ..._lru import ByteLRU
from ..._tensor import compute_dtype
from ...core.cpab import GATE_IDS
from .. import _native
from .._library import current_backend
from .common import (GATES, _backward_pieces, _BinAcc, _channel_ids,
                     _forward_pieces, _native_library_loaded, _native_layout, _native_ok,
                     _table_grads, _table_jacobian, _Tables, _take, _trajectory,
                     _triton_kernels, gate_and_slope)
from .flow import _flow_table_grads, flow_apply, flow_apply_backward

__all__ = ["cpab_grid", "cpab_lut_op", "lut_tables", "native_grid", "grid_jacobian_fits",
           "lut_grid", "native_lut_grid", "cpab_lut_padded_op"]



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
# In training every step's theta is new, so the memo fills with entries never read again: it
# holds at most _GRID_MEMO_ITEMS entries (shared 2048-point tables: ~8 MB of them, not the
# byte budget's 256 MB; a network's DiTAC layers in inference are far fewer), and its byte
# count is a running one (learnact._lru).
_GRID_MEMO_BYTES = 256 << 20
_GRID_MEMO_ITEMS = 256


def _nbytes(value: tuple[Tensor, ...]) -> int:
    return sum(o.numel() * o.element_size() for o in value)


_GRID_MEMO: ByteLRU[tuple[Tensor, ...]] = ByteLRU(_GRID_MEMO_BYTES, _nbytes, _GRID_MEMO_ITEMS)


def _grid_remember(key: tuple, out: tuple[Tensor, ...]) -> None:
    _GRID_MEMO.put(key, tuple(o.detach() for o in out))


def _grid_key(a2: Tensor, b2: Tensor, tau2: Tensor, n: int, t: float, jacobian: bool) -> tuple:
    vals = torch.cat([a2.reshape(-1), b2.reshape(-1), tau2.reshape(-1)]).detach()
    return (n, t, jacobian, str(a2.device), a2.dtype, tuple(a2.shape),
            vals.to("cpu", torch.float64).numpy().tobytes())


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
                             GATE_IDS["identity"], 0.0), tb)


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
    hit = _GRID_MEMO.get(key)
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


def lut_tables(a2: Tensor, b2: Tensor, tau2: Tensor, n: int) -> tuple[Tensor, Tensor]:
    """(T(u_i), dT/du(u_i)) on the n-point grid, differentiable in the tables through T, with
    the cheapest backward this call allows: the native grid needs no Jacobian (its backward is
    one kernel call); elsewhere the Jacobian is kept when a gradient is wanted and it fits
    (then the backward is one contraction)."""
    jac = (torch.is_grad_enabled() and any(t.requires_grad for t in (a2, b2, tau2))
           and grid_jacobian_fits(a2, n) and not native_grid(a2))
    table, dtable, _ = cpab_grid(a2, b2, tau2, n, 1.0, jac)
    return table, dtable


def _padded_tables(table: Tensor, dtable: Tensor, lo: float, hi: float) -> tuple[Tensor, Tensor]:
    """Flattened lookup tables with one outside bin at each end, (C, n + 2) -> (C (n + 2),), in
    the table's dtype: D = (hi - lo)(table - grid) (0 outside; differentiable in table) and the
    slope dtable (1 outside; a constant)."""
    n = table.shape[-1]
    grid = torch.linspace(0.0, 1.0, n, dtype=table.dtype, device=table.device)
    D = (table - grid) * (hi - lo)
    pad = D.new_zeros(D.shape[:-1] + (1,))
    D = torch.cat([pad, D, pad], -1).reshape(-1)
    S = torch.cat([pad + 1.0, dtable.detach().to(pad.dtype), pad + 1.0], -1)
    return D, S.reshape(-1)


def _lut_tables(table: Tensor, dtable: Tensor, lo: float, hi: float, dtype: torch.dtype):
    """:func:`_padded_tables`, detached, in ``dtype``."""
    D, S = _padded_tables(table.detach(), dtable, lo, hi)
    return D.to(dtype), S.to(dtype)


# -- the padded tables straight from the cells (CPU): one native call each way -------------
def native_lut_grid(ta: Tensor) -> bool:
    """Whether :func:`lut_grid` runs: CPU tables, the native library built, and not
    ``learnact.ops.backend("reference")``."""
    return (ta.device.type == "cpu" and current_backend() != "reference"
            and _native_library_loaded())


def _grid_shape(ta: Tensor, tb: Tensor, n: int) -> tuple[int, int]:
    if ta.shape != tb.shape or ta.ndim not in (1, 2) or ta.shape[-1] < 1:
        raise ValueError(f"ta and tb need the same shape (N,) or (C, N), N >= 1, got "
                         f"{tuple(ta.shape)} and {tuple(tb.shape)}")
    if not 2 <= n <= 1 << 20:
        raise ValueError(f"n (grid points) must be in [2, 2^20], got {n}")
    return (1 if ta.ndim == 1 else ta.shape[0]), ta.shape[-1]


def _f64(t: Tensor) -> Tensor:
    return t.detach().to(torch.float64).contiguous()


@torch.library.custom_op("learnact::lut_grid", mutates_args=())
def lut_grid(ta: Tensor, tb: Tensor, n: int, lo: float, hi: float) -> tuple[Tensor, Tensor]:
    """The lookup op's padded tables straight from the cells' field v(x) = ta_j x + tb_j on
    cell j (ta, tb: (N,) shared or (C, N) per channel): D = (hi - lo)(T(u_i) - u_i) and S =
    T'(u_i) on the grid u_i = i/(n - 1), an outside bin at each end (D 0, S 1), each flat (C (n
    + 2),) float64; differentiable in ta, tb through D (S is the straight-through slope). One
    call of native/cpab_grid.h each way where :func:`native_lut_grid` (the same numbers as
    flow_tables + :func:`lut_tables` + :func:`_padded_tables`, which took ~60 autograd
    operations: ~1.4 ms per training step)."""
    C, N = _grid_shape(ta, tb, n)
    ta64, tb64 = _f64(ta), _f64(tb)
    # memoised by the cells' values as cpab_grid is (never stale; per channel the grid has as
    # many points as a large input: inference with a fixed theta skips it)
    key = ("lut_grid", n, lo, hi, tuple(ta.shape), ta64.numpy().tobytes(),
           tb64.numpy().tobytes())
    hit = _GRID_MEMO.get(key)
    if hit is None:
        D = torch.empty(C * (n + 2), dtype=torch.float64)
        S = torch.empty_like(D)
        if not _native.library().la_lut_grid(ta64.data_ptr(), tb64.data_ptr(), C, N, n, lo, hi,
                                             D.data_ptr(), S.data_ptr()):
            raise MemoryError(f"lut_grid: out of memory for {C} x {n} grid points")
        hit = (D, S)
        _grid_remember(key, hit)
    return tuple(h.clone() for h in hit)  # custom-op outputs are fresh tensors


@lut_grid.register_fake
def _(ta, tb, n, lo, hi):
    C = 1 if ta.ndim == 1 else ta.shape[0]
    return (ta.new_empty(C * (n + 2), dtype=torch.float64),
            ta.new_empty(C * (n + 2), dtype=torch.float64))


@torch.library.custom_op("learnact::lut_grid_backward", mutates_args=())
def lut_grid_backward(ta: Tensor, tb: Tensor, gD: Tensor, n: int, lo: float,
                      hi: float) -> tuple[Tensor, Tensor]:
    """(dL/dta, dL/dtb) from dL/dD of :func:`lut_grid` (float64, shaped as ta)."""
    C, N = _grid_shape(ta, tb, n)
    if gD.numel() != C * (n + 2):
        raise ValueError(f"gD needs {C * (n + 2)} entries, got {gD.numel()}")
    ta64, tb64, g64 = _f64(ta), _f64(tb), _f64(gD)
    ga, gb = torch.empty_like(ta64), torch.empty_like(tb64)
    if not _native.library().la_lut_grid_backward(ta64.data_ptr(), tb64.data_ptr(),
                                                  g64.data_ptr(), C, N, n, lo, hi,
                                                  ga.data_ptr(), gb.data_ptr()):
        raise MemoryError(f"lut_grid_backward: out of memory for {C} x {n} grid points")
    return ga, gb


@lut_grid_backward.register_fake
def _(ta, tb, gD, n, lo, hi):
    return (torch.empty_like(ta, dtype=torch.float64), torch.empty_like(tb, dtype=torch.float64))


def _lut_grid_setup(ctx, inputs, output) -> None:
    ta, tb, n, lo, hi = inputs
    ctx.save_for_backward(ta, tb)
    ctx.args = (n, lo, hi)


def _lut_grid_backward(ctx, gD, gS):
    ta, tb = ctx.saved_tensors
    if gD is None:
        return None, None, None, None, None
    ga, gb = lut_grid_backward(ta, tb, gD, *ctx.args)
    return ga.to(ta.dtype), gb.to(tb.dtype), None, None, None


lut_grid.register_autograd(_lut_grid_backward, setup_context=_lut_grid_setup)


def _lut_index(xx: Tensor, ch: Tensor | None, n: int, lo: float, hi: float) -> Tensor:
    """int32 bin of every element: floor((x - lo)(n - 1)/(hi - lo) + 1/2) + 1 in 1..n inside
    the table, 0 / n + 1 outside it. The float clamp keeps the int conversion in range; NaN
    (the one value it passes) lands in a bin by the int clamp, and x~ = x + D stays NaN.
    (int32: converting to int64 costs 4x more on the CPU, and index_select takes either.)"""
    k, off = _bin_rule(n, lo, hi)
    r = torch.add(torch.tensor(off, dtype=xx.dtype, device=xx.device), xx, alpha=k)
    idx = r.clamp_(0.0, n + 1.5).to(torch.int32).clamp_(0, n + 1)
    return idx if ch is None else idx + ch * (n + 2)


def _bin_rule(n: int, lo: float, hi: float) -> tuple[float, float]:
    """(k, off) of the bin rule v = off + k x: bin floor(v), clamped to 0..n + 1 (every kernel
    and the PyTorch path use this one rule)."""
    k = (n - 1) / (hi - lo)
    return k, 1.5 - lo * k


def _lut_layout(xx: Tensor, channel_dim: int | None, channels: int, n: int, lo: float,
                hi: float) -> tuple[int, int, float, float]:
    """(C, R, k, off): the native kernels' layout and the bin rule."""
    return (*_native_layout(xx, channel_dim, channels), *_bin_rule(n, lo, hi))


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


class LutConfig(NamedTuple):
    """The table-read op's non-tensor arguments, as its autograd context keeps them."""

    n: int
    channels: int
    lo: float
    hi: float
    gate: str
    alpha: float
    channel_dim: int | None
    table_dtype: torch.dtype


class _CPABLut(torch.autograd.Function):
    """x~ s(x) from the padded tables D, S (C (n + 2),): dL/dD is the per-bin sum of g s(x)."""

    @staticmethod
    def forward(ctx, x, Dt, St, n, channels, lo, hi, gate, alpha, channel_dim):
        dtype = compute_dtype(x)
        xx = x.to(dtype)
        D, S = Dt.detach().to(dtype), St.detach().to(dtype)
        ctx.save_for_backward(x, D, S)  # table-sized, built once per call
        ctx.cfg = LutConfig(n, channels, lo, hi, gate, alpha, channel_dim, Dt.dtype)
        tri = _triton_kernels(xx)
        if tri is not None:
            _channel_ids(x, channel_dim, channels)  # checks the channel count
            k, off = _bin_rule(n, lo, hi)
            return tri.lut_forward(x, D, channels, channel_dim, k, off, GATE_IDS[gate], alpha)
        if _native_ok(xx):
            _channel_ids(x, channel_dim, channels)  # checks the channel count
            out = lut_apply(xx.contiguous(), D, *_lut_layout(xx, channel_dim, channels, n, lo,
                                                              hi), GATE_IDS[gate], alpha)
            return out.reshape(x.shape).to(x.dtype)

        def piece(xp: Tensor, ch: Tensor | None):
            xt = _take(D, _lut_index(xp, ch, n, lo, hi)).add_(xp)
            return xt, gate_and_slope(xp, gate, alpha, False)[0]

        return _forward_pieces(x, xx, channel_dim, channels, piece)

    @staticmethod
    def backward(ctx, gy):
        if torch.is_grad_enabled():
            # create_graph=True: the straight-through derivative table is not a function
            # autograd can differentiate again; say so rather than return zeros
            raise RuntimeError(
                "DiTAC's lookup-table mode (lut=N) has first derivatives only: double backward "
                "(create_graph=True, e.g. a gradient penalty) is not supported; use the exact "
                "mode (lut=None), whose second derivatives are exact")
        return _lut_backward(ctx, gy)


def _lut_backward(ctx, gy: Tensor) -> tuple:
    """The fused first-order backward (Triton, native C or chunked PyTorch); dL/dD whole (the
    outside bins' sums too: nothing upstream reads them)."""
    x, D, S = ctx.saved_tensors
    n, channels, lo, hi, gate, alpha, channel_dim, table_dtype = ctx.cfg
    dtype = compute_dtype(x)
    xx, g = x.to(dtype), gy.to(dtype)
    want_table = ctx.needs_input_grad[1]
    rest = (None,) * 8
    tri = _triton_kernels(xx)
    if tri is not None:
        k, off = _bin_rule(n, lo, hi)
        gx, hist = tri.lut_backward(x, gy, D, S, channels, channel_dim, k, off,
                                    GATE_IDS[gate], alpha, want_table)
        return gx.to(x.dtype), hist.to(table_dtype) if want_table else None, *rest
    if _native_ok(xx):
        gx, hist = lut_apply_backward(
            xx.contiguous(), g.contiguous(), D, S,
            *_lut_layout(xx, channel_dim, channels, n, lo, hi), GATE_IDS[gate], alpha,
            want_table)
        return (gx.reshape(x.shape).to(x.dtype), hist.to(table_dtype) if want_table else None,
                *rest)
    acc = _BinAcc(D.numel(), dtype, x.device) if want_table else None

    def piece(xp: Tensor, gp: Tensor, ch: Tensor | None):
        idx = _lut_index(xp, ch, n, lo, hi)
        s, ds = gate_and_slope(xp, gate, alpha, True)
        gxt = gp * s
        gx = gxt * _take(S, idx)
        if ds is not None:  # + g x~ s'(x)
            gx.addcmul_(gp * ds, _take(D, idx).add_(xp))
        if acc is not None:
            acc.add(idx, gxt)
        return gx, None

    gx, _ = _backward_pieces(x, xx, g, channel_dim, channels, piece)
    return gx, acc.total().to(table_dtype) if acc is not None else None, *rest


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
    D, S = _padded_tables(table, dtable, lo, hi)
    return cpab_lut_padded_op(x, D, S, n=table.shape[-1], lo=lo, hi=hi, gate=gate, alpha=alpha,
                              channel_dim=channel_dim)


def cpab_lut_padded_op(x: Tensor, D: Tensor, S: Tensor, *, n: int, lo: float, hi: float,
                       gate: str = "identity", alpha: float = 0.01,
                       channel_dim: int | None = None) -> Tensor:
    """:func:`cpab_lut_op` from the padded tables (:func:`lut_grid`'s, or
    :func:`cpab_lut_op`'s own from table and dtable): D, S flat (C (n + 2),), one row per
    channel, x~ = x + D[bin], dx~/dx = S[bin]; differentiable in D (dL/dD[r] is the sum of g
    s(x) over the elements in bin r)."""
    if gate not in GATES:
        raise ValueError(f"gate must be one of {GATES}, got {gate!r}")
    if not lo < hi:
        raise ValueError(f"need lo < hi, got lo={lo}, hi={hi}")
    if n < 2 or D.ndim != 1 or D.shape != S.shape or D.numel() % (n + 2):
        raise ValueError(f"D and S need the same shape (C (n + 2),) with n = {n} >= 2, got "
                         f"{tuple(D.shape)} and {tuple(S.shape)}")
    channels = D.numel() // (n + 2)
    return _CPABLut.apply(x, D, S, n, channels, float(lo), float(hi), gate, float(alpha),
                          channel_dim)
