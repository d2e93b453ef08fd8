"""DiTAC's fused CPU kernels for JAX: the exact flow and the lookup table, one custom call
each way.

The kernels are PyTorch's (native/cpab.c: window, flow or table lookup and gate in one pass;
the backward writes dL/dx and the tables' sums in the same pass), bound to XLA's FFI by
``cpab.cc`` and built on first use like the family kernels (:mod:`learnact.xla_native`).
:func:`learnact.core.cpab.ditac` calls :func:`apply` through the ``jax.numpy`` namespace's
``ditac_fused`` (:data:`JNP` here, which learnact.jax uses, and Keras's ops on the JAX
backend) for ``warp="input"``; where the
kernels do not apply (another platform or dtype, ``warp="output"``, an empty input, no
compiler, kernels off) it returns None and the formulas run.

The per-cell tables come from theta in ``jax.numpy`` (:func:`learnact.core.cpab.flow_tables`,
:func:`~learnact.core.cpab.lut_tables`); the kernels' table gradients go back to theta by
autodiff of those. Second derivatives (grad of grad) differentiate the formula's VJP, as the
family kernels do; forward mode (``jax.jvp``) is refused by ``jax.custom_vjp`` (turn the kernels
off with :func:`learnact.xla_native.use_kernels` first). Under a device mesh each device runs
the calls on its shard (xla_native/_sharding.py: the packed table's rows are the channels).
"""

from __future__ import annotations

import functools
from typing import Any

from .._xla import Jnp
from ..core.cpab import GATE_IDS
from . import _Library, _targets

__all__ = ["JNP", "FusedJnp", "apply", "available"]

_CPAB = _Library("cpab.cc", lambda: _targets(["ditac_flow", "ditac_lut"]),
                 "JAX DiTAC kernels", deps=("cpab.c",))


def available() -> bool:
    """Whether DiTAC's JAX kernels are built and registered (building them on first call);
    False without a C++ compiler, after a failed build, or with ``LEARNACT_NATIVE=0``."""
    return _CPAB.available()


@functools.cache
def _op(mode: str, n: int, a: float, b: float, cells: int, gate: str, alpha: float,
        channels: int | None, channel_dim: int):
    """The fused f(x, tables) of one configuration, with its custom VJP. Exact: tables (ta,
    tb), the cells' (N,) or (C, N) field; lookup: (D, S) rows (rows, n + 2)."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from .._xla import JNP
    from ..core import cpab
    from . import _layout
    from ._sharding import partitioned

    if mode == "flow":
        width, p0, p1 = cells, a, b
    else:  # the binning of lut_read: bin = floor(x k + off), clamped
        width = n + 2
        k = (n - 1) / (b - a)
        p0, p1 = k, 1.5 - a * k

    def attrs(x: Any) -> dict:
        outer, c, inner = _layout(x.shape, channels, channel_dim)
        return dict(outer=outer, channels=c, inner=inner, n=width, p0=np.float64(p0),
                    p1=np.float64(p1), gate=GATE_IDS[gate], alpha=np.float64(alpha))

    def name(step: str, x: Any) -> str:
        return f"learnact_ditac_{mode}_{step}_{'f32' if x.dtype == jnp.float32 else 'f64'}"

    def fwd_call(x, table):
        return jax.ffi.ffi_call(name("fwd", x), jax.ShapeDtypeStruct(x.shape, x.dtype),
                                vmap_method="sequential")(x, table, **attrs(x))

    def bwd_call(x, g, table):
        out = (jax.ShapeDtypeStruct(x.shape, x.dtype),
               jax.ShapeDtypeStruct(table.shape, table.dtype))
        return tuple(jax.ffi.ffi_call(name("bwd", x), out, vmap_method="sequential")(
            x, g, table, **attrs(x)))

    fwd_sharded = partitioned(fwd_call, backward=False, channels=channels,
                              channel_dim=channel_dim)
    bwd_sharded = partitioned(bwd_call, backward=True, channels=channels,
                              channel_dim=channel_dim)
    per_channel = channels is not None

    def formula(x, t0, t1):  # the same f in jax.numpy (second derivatives)
        s = cpab.gate(JNP, x, gate, alpha)
        if mode == "lut":
            return s * cpab.lut_read(JNP, x, t0, t1, a=a, b=b, n=n, channel_dim=channel_dim,
                                     per_channel=per_channel)
        inside = jnp.logical_and(x >= a, x <= b)
        u = jnp.where(inside, (x - a) * (1.0 / (b - a)), jnp.zeros_like(x))
        # through the flow's analytic VJP (learnact.core.cpab.flow_vjp), itself differentiable:
        # jitted second derivatives of the closed form's selects compiled slower and, with the
        # whole-table cell frames, hit an XLA CPU fusion-emitter failure ("Unknown MLIR failure")
        T = JNP.cpab_flow(u, t0, t1, cells, channel_dim)
        return s * jnp.where(inside, a + (b - a) * T, x)

    # the tables' formulas compiled as one program each (called eagerly, JAX would compile
    # each of their small operations on first use; learnact._xla); inlined under jax.jit
    @jax.jit
    def pack(t0, t1):
        if mode == "lut":
            return jnp.concatenate([t0, t1], axis=-1)
        return cpab.flow_tables(JNP, t0, t1, cells)["packed"]

    @jax.jit
    def table_grads(t0, t1, gt):  # the kernels' table sums -> cotangents of (t0, t1)
        if mode == "lut":  # [dL/dD | 0]; the slopes are not differentiated
            return gt[:, :width].reshape(t0.shape), jnp.zeros_like(t1)
        _, vjp = jax.vjp(lambda u, v: tuple(cpab.flow_tables(JNP, u, v, cells)[k]
                                            for k in ("a2", "b2", "tau2")), t0, t1)
        return vjp((gt[:, :2 * cells], gt[:, 2 * cells:4 * cells], gt[:, 4 * cells:6 * cells]))

    @jax.custom_vjp
    def backward(x, t0, t1, g):
        gx, gt = bwd_sharded(x, g, jax.lax.stop_gradient(pack(t0, t1)).astype(x.dtype))
        return (gx, *table_grads(t0, t1, gt.astype(t0.dtype)))

    def backward_fwd(x, t0, t1, g):
        return backward(x, t0, t1, g), (x, t0, t1, g)

    def backward_bwd(res, cot):  # the backward's derivative: autodiff of the formula's VJP
        x, t0, t1, g = res
        _, vjp2 = jax.vjp(lambda x, u, v, g: jax.vjp(formula, x, u, v)[1](g), x, t0, t1, g)
        return vjp2(cot)

    backward.defvjp(backward_fwd, backward_bwd)

    @jax.custom_vjp
    def op(x, t0, t1):
        return fwd_sharded(x, jax.lax.stop_gradient(pack(t0, t1)).astype(x.dtype))

    def op_fwd(x, t0, t1):
        return op(x, t0, t1), (x, t0, t1)

    def op_bwd(res, g):
        return backward(*res, g)

    op.defvjp(op_fwd, op_bwd)
    return op


def apply(mode: str, x: Any, tables: tuple[Any, Any], *, lut: int | None, a: float, b: float,
          cells: int, gate: str, alpha: float, channel_dim: int, per_channel: bool
          ) -> Any | None:
    """DiTAC's x~ s(x) by the fused kernels (``mode``: "flow" with tables (ta, tb), or "lut"
    with the rows of :func:`learnact.core.cpab.lut_tables`), or None where they do not apply
    (the caller runs the formula)."""
    from . import use_kernels

    if not use_kernels():
        return None
    import jax
    import jax.numpy as jnp

    if x.dtype not in (jnp.float32, jnp.float64) or x.size == 0 or x.ndim == 0:
        return None
    if jax.default_backend() != "cpu" or not available():
        return None
    channels = tables[0].shape[0] if per_channel else None
    if per_channel and (not -x.ndim <= channel_dim < x.ndim or x.shape[channel_dim] != channels):
        return None  # the formula's own error
    op = _op(mode, lut or 0, float(a), float(b), cells, gate, float(alpha), channels,
             channel_dim % x.ndim if per_channel else -1)
    return op(x, *tables)


class FusedJnp(Jnp):
    """The ``jax.numpy`` namespace of :mod:`learnact._xla` with DiTAC's fused kernels
    (:func:`learnact.core.cpab.ditac` asks ``ditac_fused`` first)."""

    @staticmethod
    def ditac_fused(mode: str, x: Any, tables: tuple, **kw: Any) -> Any:
        return apply(mode, x, tables, **kw)


#: the namespace learnact.jax runs the core's formulas against
JNP = FusedJnp()
