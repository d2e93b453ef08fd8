"""Fused CPU kernels for JAX: one forward and one backward custom call per family.

Used by :mod:`learnact.jax` (modules and functions) and by :mod:`learnact.keras` on the JAX
backend, for Hermite, Fourier, tropical, tropical rational, rational and SELU-variation
activations in float32 and float64 on the CPU. DiTAC's kernels (exact flow and lookup table) have their
own binding beside this one: :mod:`learnact.xla_native.ditac`. The C++ source (``families.cc``, XLA's FFI headers from jaxlib) is built
on first use with the system C++ compiler (~10 s once per machine, cached and checksummed by
:mod:`learnact._build`), registered with ``jax.ffi``, and wrapped in a ``jax.custom_vjp``: the
forward is one pass; the backward is one pass that returns dL/dx and every parameter's sum, on
XLA's intra-op threads. (XLA runs a backward's parameter reductions as one pass each, and
its sin/cos/expm1 as scalar calls: Hermite degree 8 took ~4x GELU's fwd+bwd, Fourier degree 8
~26x; the documentation's Benchmarks page has the kernels' figures.) ``families.cc`` brings its own
vectorisable sin/cos and expm1 (Cody-Waite reduction, Taylor series; float64 to ~1e-16).

What stays the same: values and gradients agree with the ``jax.numpy`` formulas of
:mod:`learnact.core` (tests: float64 to 1e-12, float32 to 1e-5 relative); ``jax.jit``,
``jax.grad``, ``jax.vmap`` and grad of grad work (the backward's own derivative is the
formula's autodiff). What differs: **forward-mode differentiation** (``jax.jvp``, ``jacfwd``,
``jax.hessian``) of a custom VJP is refused by JAX; call :func:`use_kernels` (False) first, or
set ``LEARNACT_NATIVE=0``, to differentiate the formulas in any mode. Ties follow JAX's own
derivative conventions (d|A|/dA = 1 at 0, d min(x, 0)/dx = 1/2 at 0, the first line of a
tropical envelope).

The ``jax.numpy`` formulas run instead (no error) when the kernels do not apply: another
platform (JAX's default backend is not the CPU: XLA fuses these on GPUs), another dtype
(bfloat16/float16 inputs compute in float32 and do apply), an empty input, no C++ compiler, a
failed build (logged once), or kernels turned off.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import math
import threading
from pathlib import Path
from typing import Any

from .. import _build

log = logging.getLogger(__name__)

__all__ = ["FAMILIES", "apply", "available", "use_kernels"]

_HERE = Path(__file__).resolve().parent


def _tables() -> dict[str, tuple[tuple[str, bool], ...]]:
    from ..core.families import FAMILIES as DEFINED

    return {name: f.table for name, f in DEFINED.items() if f.table}


#: the families with kernels, and how each packs its tensors into one row per channel:
#: (name, scalar per channel) in row order (each family definition's ``table``)
FAMILIES: dict[str, tuple[tuple[str, bool], ...]] = _tables()
_state: dict[str, Any] = {"on": True}


def use_kernels(enabled: bool | None = None) -> bool:
    """Whether the fused kernels are used (default True); pass a bool to change it. Off, every
    family runs its ``jax.numpy`` formula (needed for forward-mode differentiation). Takes
    effect when a function is traced: ``jax.jit`` caches what it traced before the change."""
    if enabled is not None:
        if not isinstance(enabled, bool):
            raise TypeError(f"enabled must be True, False or None, got {enabled!r}")
        _state["on"] = enabled
    return bool(_state["on"])


class _Library:
    """One FFI source of this folder, built on first use (cached by :mod:`learnact._build`,
    its cache key holding jaxlib's FFI headers: the ABI the handlers are built for), its ABI
    checked and its handlers ``la_<target>`` registered as ``learnact_<target>``, once per
    process (under GCC with :data:`learnact._build.GCC_FLAGS`, as every native kernel);
    ``deps``: native sources it includes beyond the headers (DiTAC's cpab.c)."""

    def __init__(self, source: str, targets: Any, what: str,
                 deps: tuple[str, ...] = ()) -> None:
        self.source, self.targets, self.what = _HERE / source, targets, what
        self.deps = [_build.NATIVE / d for d in deps]
        self.lock = threading.Lock()
        self.loaded = self.ok = False

    def _load(self) -> None:
        import jax

        cxx = _build.find_compiler("CXX", ("c++", "g++", "clang++"))
        if cxx is None:
            raise RuntimeError("no C++ compiler found (set CXX, or install g++)")
        include = Path(jax.ffi.include_dir())
        flags = _build.CXX_FLAGS + _build.gcc_flags(cxx)
        path = _build.compile_cached(
            self.source, cxx, flags + ("-I" + str(include), "-I" + str(_build.NATIVE)),
            (_build.MARCH, ()),
            deps=[*_build.headers(), *self.deps, *sorted(_HERE.glob("*.h")),
                  *sorted((include / "xla" / "ffi" / "api").glob("*.h"))],
            libs=())
        lib = ctypes.CDLL(str(path))
        if lib.la_abi() != _build.abi():
            raise RuntimeError(f"xla_native/{self.source.name}: ABI {lib.la_abi()}, expected "
                               f"{_build.abi()}")
        for target in self.targets():
            jax.ffi.register_ffi_target(f"learnact_{target}",
                                        jax.ffi.pycapsule(getattr(lib, f"la_{target}")),
                                        platform="cpu")

    def available(self) -> bool:
        """Built and registered (building on the first call); False without a C++ compiler,
        after a failed build (logged once), or with ``LEARNACT_NATIVE=0``."""
        if not _build.enabled():
            return False
        with self.lock:
            if not self.loaded:
                self.loaded = True
                try:
                    self._load()
                    self.ok = True
                except (OSError, RuntimeError, AttributeError) as exc:
                    log.warning("learnact's %s are unavailable, using the jax.numpy formulas: "
                                "%s", self.what, exc)
            return self.ok


def _targets(names: Any) -> list[str]:
    """``<name>_<fwd|bwd>_<f32|f64>`` for every name (the handlers of families.cc, cpab.cc)."""
    return [f"{n}_{step}_{suf}" for n in names for step in ("fwd", "bwd")
            for suf in ("f32", "f64")]


_FAMILIES = _Library("families.cc", lambda: _targets(FAMILIES), "JAX CPU kernels")


def available() -> bool:
    """Whether the kernels are built and registered (building them on first call); False
    without a C++ compiler, after a failed build, or with ``LEARNACT_NATIVE=0``."""
    return _FAMILIES.available()


def _layout(shape: tuple[int, ...], channels: int | None, cd: int) -> tuple[int, int, int]:
    if channels is None:
        return 1, 1, math.prod(shape)
    cd %= len(shape)
    return math.prod(shape[:cd]), shape[cd], math.prod(shape[cd + 1:])


def _pack(name: str, p: dict[str, Any], channels: int | None) -> tuple[Any, tuple] | None:
    """(table (C, P), the columns' (name, width, scalar)) from the module's tensors; None for
    shapes that are not one family's (the formula then raises its own error)."""
    import jax.numpy as jnp

    from ..core.families import family

    rows, cols, parts = channels or 1, [], []
    p = family(name).table_tensors(p)
    for n, scalar in FAMILIES[name]:
        if p.get(n) is None:
            continue
        v = p[n]
        if scalar:
            if v.ndim > 1 or v.size not in (1, rows):
                return None
            v = jnp.reshape(v, (-1, 1))
        elif v.ndim == 1:  # a shared row (shared parameters, or tropical's fixed slopes)
            v = v[None, :]
        elif v.ndim != 2 or v.shape[0] != rows:
            return None
        cols.append((n, v.shape[1], scalar))
        parts.append(jnp.broadcast_to(v, (rows, v.shape[1])))
    return jnp.concatenate(parts, axis=1), tuple(cols)


def _unpack(table: Any, cols: tuple, channels: int | None) -> dict[str, Any]:
    out, at = {}, 0
    for n, width, scalar in cols:
        v = table[:, at:at + width]
        at += width
        if scalar:
            v = v[:, 0]
        out[n] = v[0] if channels is None else v
    return out


def _config(name: str, cols: tuple) -> tuple[int, int]:
    from ..core.families import family

    return family(name).table_config({n: width for n, width, _ in cols})


@functools.cache
def _op(name: str, cols: tuple, channels: int | None, channel_dim: int):
    """The fused f(x, table) for one family and packing, with its custom VJP."""
    import jax
    import jax.numpy as jnp

    from .._xla import JNP
    from ..core.families import family
    from ._sharding import partitioned

    a, b = _config(name, cols)
    kw = {"channel_dim": channel_dim, "channels": channels}

    def attrs(x):
        outer, c, inner = _layout(x.shape, channels, channel_dim)
        return dict(outer=outer, channels=c, inner=inner, a=a, b=b)

    def suffix(x):
        return "f32" if x.dtype == jnp.float32 else "f64"

    def formula(x, table):
        return family(name).forward(JNP, x, _unpack(table, cols, channels), kw)

    def bwd_call(x, g, table):  # on whatever shard it gets (attrs from the local shape)
        out = (jax.ShapeDtypeStruct(x.shape, x.dtype),
               jax.ShapeDtypeStruct(table.shape, table.dtype))
        return tuple(jax.ffi.ffi_call(f"learnact_{name}_bwd_{suffix(x)}", out,
                                      vmap_method="sequential")(
            x, g, table, **attrs(x)))

    def fwd_call(x, table):
        return jax.ffi.ffi_call(f"learnact_{name}_fwd_{suffix(x)}",
                                jax.ShapeDtypeStruct(x.shape, x.dtype),
                                vmap_method="sequential")(x, table, **attrs(x))

    # each device runs the calls on its shard of a mesh (_sharding.py)
    bwd_sharded = partitioned(bwd_call, backward=True, channels=channels,
                              channel_dim=channel_dim)
    fwd_sharded = partitioned(fwd_call, backward=False, channels=channels,
                              channel_dim=channel_dim)

    @jax.custom_vjp
    def backward(x, table, g):
        return tuple(bwd_sharded(x, g, table))

    def backward_fwd(x, table, g):
        return backward(x, table, g), (x, table, g)

    def backward_bwd(res, cot):  # the backward's derivative: autodiff of the formula's VJP
        x, table, g = res
        _, vjp2 = jax.vjp(lambda x, t, g: jax.vjp(formula, x, t)[1](g), x, table, g)
        return vjp2(cot)

    backward.defvjp(backward_fwd, backward_bwd)

    @jax.custom_vjp
    def op(x, table):
        return fwd_sharded(x, table)

    def op_fwd(x, table):
        return op(x, table), (x, table)

    def op_bwd(res, g):
        return backward(*res, g)

    op.defvjp(op_fwd, op_bwd)
    return op


def apply(name: str, x: Any, p: dict[str, Any], kw: dict[str, Any]) -> Any | None:
    """f(x) by the family's kernels, or None where they do not apply (then the caller runs
    the formula). ``x``: float32/float64 (the compute dtype), ``p``: the module's tensors in
    that dtype, ``kw``: its checked arguments (``channels``, ``channel_dim``)."""
    if name not in FAMILIES or not _state["on"]:
        return None
    import jax
    import jax.numpy as jnp

    if x.dtype not in (jnp.float32, jnp.float64) or x.size == 0 or x.ndim == 0:
        return None
    if jax.default_backend() != "cpu" or not available():
        return None
    channels, cd = kw.get("channels"), kw.get("channel_dim", -1)
    if channels is not None and (not -x.ndim <= cd < x.ndim or x.shape[cd] != channels):
        return None  # the formula's own error
    packed = _pack(name, p, channels)
    if packed is None:
        return None
    table, cols = packed
    return _op(name, cols, channels, cd)(x, table.astype(x.dtype))
