"""XLA helpers shared by the JAX frontend and Keras on the JAX backend (imports jax only):
``materialize``, the ``jax.numpy`` namespace the core's formulas run against (``JNP``) and
the CPAB flow with its analytic VJP."""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp

from .core import cpab as _cpab

Array = Any


def materialize(arrays: tuple) -> tuple:
    """The arrays computed once, before their consumers.

    XLA's CPU pipeline fuses an expensive producer into each consumer; fused into a gather's
    table or a scatter's operand it is recomputed per element (DiTAC's lookup table: 160 ms
    instead of 5 ms on 3M elements; its exact backward: seconds). ``optimization_barrier`` is
    expanded before fusion there; a conditional (identity branch, a runtime predicate) is not.
    """
    flat = jnp.ravel(arrays[0])
    if flat.shape[0] == 0:
        return tuple(arrays)
    # always true ((bits | 1) != 0), but neither JAX nor XLA folds it (from a middle entry: a
    # table's ends may be constants); the other branch differs so that JAX keeps the
    # conditional, and is never taken
    bits = jax.lax.bitcast_convert_type(flat[flat.shape[0] // 2].astype(jnp.float32), jnp.int32)
    return jax.lax.cond((bits | 1) != 0, lambda t: t,
                        lambda t: tuple(jnp.zeros_like(v) for v in t), tuple(arrays))


class Jnp:
    """jax.numpy plus the extras the core's formulas use (``cast``, ``erf``, ``segment_sum``,
    ``materialize``, ``cpab_flow``...)."""

    def __getattr__(self, name: str) -> Any:
        return getattr(jnp, name)

    @staticmethod
    def cast(t: Any, dtype: Any) -> Any:
        return t.astype(dtype)

    @staticmethod
    def erf(t: Any) -> Any:
        return jax.scipy.special.erf(t)

    @staticmethod
    def stop_gradient(t: Any) -> Any:
        return jax.lax.stop_gradient(t)

    @staticmethod
    def segment_sum(data: Any, ids: Any, num_segments: int) -> Any:
        return jax.ops.segment_sum(data, ids, num_segments=num_segments)

    @staticmethod
    def materialize(arrays: tuple) -> tuple:
        """The arrays computed once, before their consumers (learnact._xla.materialize)."""
        return materialize(arrays)

    @staticmethod
    def cpab_flow(u: Any, a: Any, b: Any, cells: int, cd: int) -> Any:
        """The CPAB flow with its analytic derivative (learnact.core.cpab.flow_vjp): autodiff
        through the closed form's selects costs ~70x its forward on XLA's CPU backend."""
        return cpab_flow(u, a, b, cells, cd)

    @staticmethod
    def cpab_lut_tables(ta: Any, tb: Any, *, a: float, b: float, cells: int, n: int
                        ) -> tuple[Any, Any]:
        """learnact.core.cpab.lut_tables, compiled as one program (see :func:`cpab_flow`)."""
        return _lut_tables(ta, tb, a, b, cells, n)


JNP = Jnp()

# The flow's formulas are hundreds of small operations: called eagerly, JAX compiles each for
# its shapes on first use (a DiTAC lookup table's first gradient: 287 compilations, 14 s);
# compiled as one program each, ~1 s. Inside an outer jax.jit these are inlined.


@functools.partial(jax.jit, static_argnums=(3, 4))
def _flow(u: Array, a: Array, b: Array, cells: int, cd: int) -> Array:
    return _cpab.flow(JNP, u, a, b, cells, len(u.shape), cd)


@functools.partial(jax.jit, static_argnums=(0, 1))
def _flow_vjp(cells: int, cd: int, g: Array, u: Array, a: Array, b: Array) -> tuple:
    return _cpab.flow_vjp(JNP, g, u, a, b, cells, cd)


@functools.partial(jax.jit, static_argnums=(2, 3, 4, 5))
def _lut_tables(ta: Array, tb: Array, a: float, b: float, cells: int, n: int) -> tuple:
    return _cpab.lut_tables(JNP, ta, tb, a=a, b=b, cells=cells, n=n)


@functools.partial(jax.custom_vjp, nondiff_argnums=(3, 4))
def cpab_flow(u: Array, a: Array, b: Array, cells: int, cd: int) -> Array:
    return _flow(u, a, b, cells, cd)


def _cpab_flow_fwd(u, a, b, cells, cd):
    return cpab_flow(u, a, b, cells, cd), (u, a, b)


def _cpab_flow_bwd(cells, cd, res, g):
    return _flow_vjp(cells, cd, g, *res)


cpab_flow.defvjp(_cpab_flow_fwd, _cpab_flow_bwd)
