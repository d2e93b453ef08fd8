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

__all__ = ["involved", "local_apply", "prepare", "rows_ndim"]

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
        rows = p.ndim > 0 and p.ndim == rows_ndim(op.name, n)
        _check_layout(op.name, x, n, p, rows, channel_dim)
    if op.name not in _registered:
        with _lock:
            if op.name not in _registered:
                _register(op)
                _registered.add(op.name)


def _expected(x: Any, rows: bool, channel_dim: int | None) -> tuple[list, list]:
    """A parameter's placements beside x (per mesh dimension) and its gradient's: Shard(0)
    for channel rows beside x's channel shards; else Replicate, with a Partial gradient beside
    any other shard of x."""
    from torch.distributed.tensor import Partial, Replicate, Shard

    cd = None if channel_dim is None or x.ndim == 0 else channel_dim % x.ndim
    want, grad = [], []
    for xp in x.placements:
        sharded = xp.is_shard()
        on_channels = sharded and rows and xp.dim % max(x.ndim, 1) == cd
        want.append(Shard(0) if on_channels else Replicate())
        grad.append(Shard(0) if on_channels else Partial() if sharded else Replicate())
    return want, grad


def _check_layout(what: str, x: Any, name: str, p: Any, rows: bool,
                  channel_dim: int | None) -> list:
    """The gradient placements of parameter ``name``, after checking that it is laid out as
    :func:`_expected` says (a ValueError naming both layouts otherwise)."""
    for xp in x.placements:
        if xp.is_partial():
            raise ValueError(f"learnact.{what}: x is a Partial (pending-sum) DTensor "
                             f"({tuple(x.placements)}); an activation needs the summed values: "
                             f"redistribute it to Shard or Replicate first")
    want, grad = _expected(x, rows, channel_dim)
    if tuple(p.placements) != tuple(want):
        raise ValueError(
            f"learnact.{what}: x is placed {tuple(x.placements)} on {x.device_mesh}, so "
            f"parameter {name} must be {tuple(want)} (its channel rows beside x's channel "
            f"shards, replicated otherwise), but it is {tuple(p.placements)}; shard the "
            f"activation with learnact.distributed.ChannelParallel or distribute it to match")
    return grad


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


def local_apply(what: str, fn: Any, x: Any, params: Sequence[tuple[str, Any, bool]],
                channel_dim: int | None) -> Any:
    """``fn(x_local, *params_local)`` on every rank's shards, by DTensor's ``local_map``, for
    activations whose work is not one family op (DiTAC: a table chain on theta, then the flow).

    ``params`` are (name, tensor, per-channel rows?). The placements follow the family ops'
    rules: per-channel rows are ``Shard(0)`` where x is sharded on its channel dimension
    (``channel_dim``), everything else replicated; the output takes x's placements; a
    parameter's gradient is ``Shard(0)`` beside channel shards, ``Partial()`` (a sum over the
    ranks) beside other shards, replicated beside a replicated x. A plain tensor beside a
    DTensor, another mesh, or parameters placed otherwise are errors naming both sides.
    """
    from torch.distributed.tensor.experimental import local_map

    tensors = [("x", x), *[(n, p) for n, p, _ in params]]
    plain = [n for n, t in tensors if not _is_dtensor(t)]
    if plain:
        dt = [n for n, t in tensors if _is_dtensor(t)]
        raise TypeError(
            f"learnact.{what}: {', '.join(dt)} {'is a DTensor' if len(dt) == 1 else 'are DTensors'} "
            f"but {', '.join(plain)} {'is a plain Tensor' if len(plain) == 1 else 'are plain Tensors'}: "
            "distribute the activation's parameters with the input (learnact.distributed."
            "ChannelParallel, torch.distributed.tensor.distribute_module) or call it on local "
            "tensors")
    mesh = x.device_mesh
    in_pl: list[Any] = [tuple(x.placements)]
    grad_pl: list[Any] = [tuple(x.placements)]
    for name, p, rows in params:
        if p.device_mesh != mesh:
            raise ValueError(f"learnact.{what}: x lives on {mesh} but parameter {name} on "
                             f"{p.device_mesh}: distribute them on one mesh")
        grad = _check_layout(what, x, name, p, rows, channel_dim)
        in_pl.append(tuple(p.placements))
        grad_pl.append(tuple(grad))
    mapped = local_map(fn, out_placements=list(x.placements), in_placements=tuple(in_pl),
                       in_grad_placements=tuple(grad_pl), device_mesh=mesh)
    return mapped(x, *[p for _, p, _ in params])
