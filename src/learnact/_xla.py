"""XLA helpers shared by the JAX frontend and Keras on the JAX backend (imports jax only)."""

from __future__ import annotations

import jax
import jax.numpy as jnp


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
