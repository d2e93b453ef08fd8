"""How the family custom calls partition over a device mesh (internal).

Without a rule XLA's SPMD partitioner replicates a custom call's operands: under ``jax.jit``
with ``x`` sharded over a mesh, every device would all-gather the whole activation input and
run the kernel on all of it. :func:`partitioned` wraps a forward or backward call in
``jax.experimental.custom_partitioning`` so that each device runs it on its own shard:

* ``x`` (and the backward's ``g``) keep whatever sharding they have; the output ``y`` / ``dL/dx``
  has the same.
* The table (C, P) (one row of parameters per channel): replicated for shared parameters; with
  per-channel parameters, its rows are sharded like ``x``'s channel dimension (the mesh axes of
  ``x``'s ``channel_dim``), its columns never.
* The backward's parameter sums: each device sums over its shard, then ``psum`` over the mesh
  axes that shard ``x``'s other dimensions, so the table's gradient is complete (and sharded
  like the table).

Inside ``shard_map`` (every mesh axis manual) and on one device the calls run as they are.
Keras on the JAX backend and ``learnact.jax`` share this path (both call :func:`learnact.xla_native.apply`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["partitioned"]


def _axes(entry: Any) -> tuple[str, ...]:
    """The mesh axes of one PartitionSpec entry (None, a name, or a tuple of names)."""
    if entry is None:
        return ()
    return tuple(entry) if isinstance(entry, (tuple, list)) else (entry,)


def _spec(sharding: Any, ndim: int) -> list[tuple[str, ...]]:
    spec = list(getattr(sharding, "spec", ())) + [None] * ndim
    return [_axes(e) for e in spec[:ndim]]


def _plan(mesh: Any, x_sharding: Any, ndim: int, channel_dim: int | None):
    """(x's sharding, the table's, the axes the parameter sums are psum'd over)."""
    from jax.sharding import NamedSharding
    from jax.sharding import PartitionSpec as P

    spec = _spec(x_sharding, ndim)
    cd = None if channel_dim is None else channel_dim % ndim
    rows = spec[cd] if cd is not None else ()
    x_spec = P(*[(a if len(a) > 1 else a[0]) if a else None for a in spec])
    table = NamedSharding(mesh, P((rows if len(rows) > 1 else rows[0]) if rows else None, None))
    reduce = tuple(a for d, axes in enumerate(spec) if d != cd for a in axes)
    return NamedSharding(mesh, x_spec), table, reduce


def _rule(n_x: int, n_out_x: int, with_table_out: bool, channel_dim: int | None):
    """The Shardy sharding rule, by the input's rank: ``x``-like operands and results share
    one factor per dimension; the table's rows share the channel dimension's factor (per
    channel) or a factor of their own (shared); the table's columns are never sharded."""

    def rule(mesh: Any, value_types: Any, result_types: Any):
        ndim = value_types[0].rank
        dims = [f"d{i}" for i in range(ndim)]
        cd = None if channel_dim is None else channel_dim % ndim
        row = dims[cd] if cd is not None else "t"
        x = " ".join(dims)
        ins = ", ".join([x] * n_x + [f"{row} p"])
        outs = ", ".join([x] * n_out_x + ([f"{row} p"] if with_table_out else []))
        need = ("p",) if cd is not None else ("t", "p")
        return f"{ins} -> {outs}", {"need_replication_factors": need}

    return rule


def partitioned(local: Callable[..., Any], *, backward: bool, channels: int | None,
                channel_dim: int) -> Callable[..., Any]:
    """``local`` (the custom call on whatever shapes it gets: ``(x, table) -> y`` or
    ``(x, g, table) -> (dL/dx, dL/dtable)``) partitioned over the mesh as described above."""
    from jax.experimental.custom_partitioning import custom_partitioning

    cd = channel_dim if channels is not None else None
    fn = custom_partitioning(local)
    n_x = 2 if backward else 1

    def infer(mesh: Any, arg_shapes: Any, result_shape: Any):
        xs, table, _ = _plan(mesh, arg_shapes[0].sharding, len(arg_shapes[0].shape), cd)
        return (xs, table) if backward else xs

    def partition(mesh: Any, arg_shapes: Any, result_shape: Any):
        xs, table, reduce = _plan(mesh, arg_shapes[0].sharding, len(arg_shapes[0].shape), cd)
        if not backward:
            return mesh, local, xs, (xs, table)

        def lower(x: Any, g: Any, t: Any):
            import jax

            gx, gt = local(x, g, t)
            return gx, (jax.lax.psum(gt, reduce) if reduce else gt)

        return mesh, lower, (xs, table), (xs, xs, table)

    fn.def_partition(partition=partition, infer_sharding_from_operands=infer,
                     sharding_rule=_rule(n_x, 1, backward, cd))
    return _batchable(fn, local)


def _batchable(fn: Callable[..., Any], local: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` under ``jax.vmap`` too (custom_partitioning has no batching rule): a vmapped call
    runs ``local`` (its custom call batches sequentially) instead."""
    import jax
    from jax.custom_batching import custom_vmap

    wrapped = custom_vmap(fn)

    @wrapped.def_vmap
    def rule(axis_size: int, in_batched: Any, *args: Any):
        out = jax.vmap(local, in_axes=tuple(0 if b else None for b in in_batched))(*args)
        return out, jax.tree.map(lambda _: True, out)

    return wrapped
