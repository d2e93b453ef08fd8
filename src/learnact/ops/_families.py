r"""The families' native CPU kernels as PyTorch kernels (internal).

One C++ kernel per family (``native/<family>.h``, the same source the JAX kernels bind), called
through ctypes on data pointers (``native/families.cc``, built on first use by
:mod:`learnact.ops._native`). The family definition's ``table`` says how the op's parameter
tensors pack into one (C, P) row per channel; :func:`native_kernel` derives the kernel pair of
any family op from it, so a family op gets its CPU kernel without code of its own.

* forward: one pass; backward: one pass that writes dL/dx and every parameter's sums (in
  double, added in a fixed order: bit-identical for any thread count).
* threads: ``torch.get_num_threads()`` (on torch's own OpenMP pool where torch runs GNU OpenMP).
* layouts: x is viewed as (outer, C, inner) around ``channel_dim`` (channels last gets the
  kernels' "lanes" schedule); a non-contiguous x is copied first; empty inputs, shapes the
  formula would refuse, and a missing library (no compiler, ``LEARNACT_NATIVE=0``) run the
  reference, which raises its own errors.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch
from torch import Tensor

from ..core.families import family
from . import _native
from ._library import CPU_KERNEL_MIN, Backward, FamilyOp, Forward, Kernel, Param, _to

__all__ = ["family_op", "native_kernel", "pack", "per_channel", "plan"]

_Column = tuple[str, int, bool]  # (name, width, one number per channel)


def pack(name: str, p: dict[str, Tensor | None], dtype: torch.dtype
         ) -> tuple[Tensor, tuple[_Column, ...]] | None:
    """(table (C, P) in ``dtype``, its columns) from a family's tensors, or None for shapes that
    are not one layout (the reference then raises its own error). A row that is shared by every
    channel (a 0-d or 1-element scalar, a 1-d vector) is repeated over the C rows."""
    fam = family(name)
    p = fam.table_tensors(p)
    present = [(n, scalar, p[n]) for n, scalar in fam.table if p.get(n) is not None]
    rows = 1
    for _, scalar, v in present:
        if scalar and v.ndim > 1 or not scalar and v.ndim not in (1, 2):
            return None
        lead = _lead(v, scalar)
        if lead != 1:
            if rows not in (1, lead):
                return None
            rows = lead
    cols, parts = [], []
    for n, scalar, v in present:
        v = _to(v.detach(), dtype)
        v = v.reshape(-1, 1) if scalar else (v.reshape(1, -1) if v.ndim == 1 else v)
        cols.append((n, v.shape[1], scalar))
        parts.append(v.expand(rows, v.shape[1]))
    return torch.cat(parts, 1).contiguous(), tuple(cols)


def _lead(v: Tensor, scalar: bool) -> int:
    """How many channels a table column's tensor holds (1: shared by every channel)."""
    return v.numel() if scalar else (v.shape[0] if v.ndim == 2 else 1)


def per_channel(name: str, p: dict[str, Tensor | None]) -> bool:
    """Whether family ``name``'s tensors ``p`` hold more than one channel's parameters."""
    return any(p.get(n) is not None and _lead(p[n], scalar) > 1
               for n, scalar in family(name).table)


def _layout(x: Tensor, rows: int, channel_dim: int) -> tuple[int, int, int] | None:
    if rows == 1:
        return 1, 1, x.numel()
    if x.ndim == 0 or not -x.ndim <= channel_dim < x.ndim or x.shape[channel_dim] != rows:
        return None
    cd = channel_dim % x.ndim
    return math.prod(x.shape[:cd]), rows, math.prod(x.shape[cd + 1:])


def _suffix(dtype: torch.dtype) -> str | None:
    return {torch.float32: "f32", torch.float64: "f64"}.get(dtype)


def plan(name: str, names: Sequence[str], x: Tensor, ps: Sequence[Tensor | None],
         channel_dim: int):
    """What a native call on ``x`` needs (library, dtype suffix, tensors by name, table, its
    columns, (outer, C, inner), (a, b)), or None where the reference runs instead."""
    suf = _suffix(x.dtype)
    if suf is None or x.numel() == 0:
        return None
    lib = _native.library("families")
    if lib is None:
        return None
    given = dict(zip(names, ps))
    packed = pack(name, given, x.dtype)
    if packed is None:
        return None
    table, cols = packed
    layout = _layout(x, table.shape[0], channel_dim)
    if layout is None:
        return None
    a, b = family(name).table_config({n: w for n, w, _ in cols})
    return lib, suf, given, table, cols, layout, (a, b)


def native_kernel(name: str, params: Sequence[Param], reference: tuple[Forward, Backward]
                  ) -> Kernel:
    """The CPU kernel pair of family op ``name`` (``params`` in the op's order): the native
    kernels where they apply, else ``reference``."""
    ref_forward, ref_backward = reference
    names = [q.name for q in params]
    differentiable = [q.name for q in params if q.differentiable]

    def forward(x: Tensor, *args) -> Tensor:
        *ps, channel_dim = args
        prep = plan(name, names, x, ps, channel_dim)
        if prep is None:
            return ref_forward(x, *ps, channel_dim)
        lib, suf, _, table, _, (outer, c, inner), (a, b) = prep
        x = x.contiguous()
        y = torch.empty_like(x)
        getattr(lib, f"la_{name}_fwd_{suf}")(x.data_ptr(), table.data_ptr(), y.data_ptr(),
                                             outer, c, inner, a, b, torch.get_num_threads())
        return y

    def backward(x: Tensor, *args) -> tuple[Tensor, ...]:
        *ps, grad, channel_dim = args
        prep = plan(name, names, x, ps, channel_dim)
        if prep is None:
            return tuple(ref_backward(x, *ps, grad, channel_dim))
        lib, suf, given, table, cols, (outer, c, inner), (a, b) = prep
        x = x.contiguous()
        g = _to(grad, x.dtype).expand_as(x).contiguous()
        gx = torch.empty_like(x)
        gtable = torch.empty_like(table)
        getattr(lib, f"la_{name}_bwd_{suf}")(
            x.data_ptr(), g.data_ptr(), table.data_ptr(), gx.data_ptr(), gtable.data_ptr(),
            outer, c, inner, a, b, torch.get_num_threads())
        out, at = {}, 0
        for n, width, scalar in cols:
            part = gtable[:, at:at + width]
            at += width
            v = given[n]
            if _lead(v, scalar) == 1 and part.shape[0] > 1:  # a row shared by every channel
                part = part.sum(0, keepdim=True)
            # contiguous: a column slice of the table has its row stride, and the op's fake
            # kernel (what torch.compile checks against) promises contiguous gradients
            out[n] = part.reshape(v.shape).contiguous()
        return (gx, *(out[n] for n in differentiable))

    return Kernel(forward, backward, min_numel=CPU_KERNEL_MIN)


def family_op(name: str, params: Sequence[Param], forward: Forward, backward: Backward, *,
              triton: str | None = None, compile: Literal["trace", "op"] = "trace",
              compile_cpu: Literal["trace", "op"] = "trace") -> FamilyOp:
    """The family op ``learnact::<name>`` (ops/_library.py): ``forward``/``backward`` the
    reference, the native kernel on the CPU (where the family definition has a ``table``),
    Triton on CUDA. Under ``torch.compile``: ``compile`` for every device; ``compile_cpu="op"``
    keeps the op (with the native kernel) for CPU calls only, where it measured faster than
    inductor's fusion of the traced reference while CUDA keeps tracing (hermite). Per-channel
    CPU calls keep the op whatever these say: inductor's traced per-channel parameter sums
    ran 2-3x slower (hermite d8, rational; benchmarks/RESULTS.md)."""
    if not family(name).table:
        return FamilyOp(name, params, forward, backward, triton=triton, compile=compile,
                        compile_cpu=compile_cpu)
    names = [q.name for q in params]

    def keep_op(x: Tensor, ps: tuple) -> bool:
        return x.device.type == "cpu" and per_channel(name, dict(zip(names, ps)))

    return FamilyOp(name, params, forward, backward, triton=triton, compile=compile,
                    compile_cpu=compile_cpu, cpu=native_kernel(name, params, (forward, backward)),
                    keep_op=keep_op)
