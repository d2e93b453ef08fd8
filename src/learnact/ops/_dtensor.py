"""The family ops on DTensors (tensor parallelism): sharding rules registered with DTensor.

DTensor runs a custom op only where it knows how its inputs' placements map to its outputs';
:func:`prepare` registers, on the first call with a DTensor, for every family op
(``torch.distributed.tensor.experimental.register_sharding``, one mesh dimension at a time,
expanded by DTensor to the whole mesh):

- forward ``y = f(x; p)`` is elementwise in x: y takes x's placement. Shared parameters are
  replicated; per-channel parameters (their first dimension is the channel) are ``Shard(0)``
  where x is sharded on its channel dimension (each rank holds its channels' parameters, as a
  tensor-parallel MLP shards its hidden units) and replicated otherwise.
- backward: dL/dx takes x's placement; a parameter's gradient is ``Shard(0)`` beside a
  channel-sharded x (each rank's channels are its own) and ``Partial()`` (a sum over ranks,
  reduced by DTensor when needed) where x is sharded along any other dimension.

The kernels then run on each rank's local shard: the native CPU kernels, Triton on CUDA.
Arguments that mix DTensors and plain tensors, or DTensors on different meshes, are refused
with an error naming both, before DTensor's own dispatch.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from torch import Tensor

if TYPE_CHECKING:
    from ._library import FamilyOp

__all__ = ["involved", "prepare", "rows_ndim"]

_lock = threading.Lock()
_registered: set[str] = set()


def _is_dtensor(t: Any) -> bool:
    return type(t).__name__ == "DTensor" and type(t).__module__.startswith(
        "torch.distributed.tensor")


def involved(x: Tensor, params: Sequence[Tensor | None]) -> bool:
    """Whether any argument is a DTensor (cheap: no torch.distributed import)."""
    return _is_dtensor(x) or any(_is_dtensor(p) for p in params if p is not None)


def prepare(op: FamilyOp, x: Tensor, params: Sequence[Tensor | None], channel_dim: int) -> None:
    """Check a DTensor call's arguments and register the op's sharding rules once."""
    names = [p.name for p in op.params]
    given = [(n, p) for n, p in zip(names, params) if p is not None]
    plain = [n for n, p in [("x", x), *given] if not _is_dtensor(p)]
    if plain:
        dt = [n for n, p in [("x", x), *given] if _is_dtensor(p)]
        raise TypeError(
            f"learnact.{op.name}: {', '.join(dt)} {'is a DTensor' if len(dt) == 1 else 'are DTensors'} "
            f"but {', '.join(plain)} {'is a plain Tensor' if len(plain) == 1 else 'are plain Tensors'}: "
            "distribute the activation's parameters with the input (torch.distributed.tensor."
            "distribute_module, or parallelize_module's plans) or call it on local tensors")
    for n, p in given:
        if p.device_mesh != x.device_mesh:
            raise ValueError(f"learnact.{op.name}: x lives on {x.device_mesh} but parameter {n} "
                             f"on {p.device_mesh}: distribute them on one mesh")
    if op.name not in _registered:
        with _lock:
            if op.name not in _registered:
                _register(op)
                _registered.add(op.name)


def rows_ndim(family: str | None, name: str) -> int | None:
    """The number of dimensions of family ``family``'s tensor ``name`` when it holds one row
    per channel, by the definition's table (a scalar parameter is (C,) per channel, the others
    (C, P)); None for a tensor outside the table (tropical's fixed slopes) or no family."""
    from ..core.families import FAMILIES

    definition = FAMILIES.get(family or "")
    table = dict(definition.table) if definition is not None else {}
    return None if name not in table else (1 if table[name] else 2)


def _channel_rows(op: FamilyOp, specs: Sequence[Any]) -> list[bool | None]:
    """Per parameter (DTensor specs, in the op's order; None where absent): whether it holds
    one row per channel (:func:`rows_ndim`)."""
    return [None if spec is None else len(spec.shape) == rows_ndim(op.name, param.name)
            for spec, param in zip(specs, op.params)]


def _register(op: FamilyOp) -> None:
    from torch.distributed.tensor import Partial, Replicate, Shard
    from torch.distributed.tensor.experimental import register_sharding

    R = Replicate()
    differentiable = [p.differentiable for p in op.params]

    def placements(rows: Sequence[bool | None], sharded: bool) -> list:
        """Input placements of the parameters: Shard(0) for per-channel rows beside a
        channel-sharded x, else replicated; None where a parameter is absent."""
        return [None if r is None else Shard(0) if (r and sharded) else R for r in rows]

    def forward_rule(x, *args):
        *ps, channel_dim = args
        ndim = len(x.shape)
        cd = channel_dim % ndim if ndim else 0
        rows = _channel_rows(op, ps)
        rules = [([R], [R, *placements(rows, False), None])]
        for d in range(ndim):
            rules.append(([Shard(d)], [Shard(d), *placements(rows, d == cd), None]))
        return rules

    def backward_rule(grad, x, *args):
        *ps, channel_dim = args
        ndim = len(x.shape)
        cd = channel_dim % ndim if ndim else 0
        rows = _channel_rows(op, ps)
        grads = [r for r, d in zip(rows, differentiable) if d]
        rules = [([R] * (1 + len(grads)), [R, R, *placements(rows, False), None])]
        for d in range(ndim):
            # a parameter's gradient: its rank's own channels (Shard(0)) or a partial sum
            out = [Shard(0) if (r and d == cd) else Partial() for r in grads]
            rules.append(([Shard(d), *out], [Shard(d), Shard(d), *placements(rows, d == cd),
                                             None]))
        return rules

    register_sharding(op.forward_op.default)(forward_rule)
    register_sharding(op.backward_op.default)(backward_rule)
