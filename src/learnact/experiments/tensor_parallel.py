"""Tensor parallelism in the training loop (``--tp N`` under torchrun): a (dp, tp) mesh.

The ranks form a ``(world / N, N)`` device mesh named ("dp", "tp"). A task's ``tp_plan``
(module name -> ``ParallelStyle``) is applied on "tp" with ``parallelize_module`` (the charlm
and convnext tasks: each block's MLP as ``ColwiseParallel`` -> ``ChannelParallel`` ->
``RowwiseParallel``, so every learnact activation runs on its rank's slice of the hidden
units); with more than one "dp" group, FSDP2 (``fully_shard``) shards every block (the task's
``blocks``) and the root over "dp" instead of DDP. The ranks of one "tp" group draw the same batches (by their "dp"
rank), so ``--tp N`` on N processes trains the single-process model, to float32 rounding.

Checkpoints and the saved models hold full (unsharded) tensors: a run written with ``--tp 2``
loads anywhere; ``--resume`` of it needs the same world size and ``--tp`` (the run config says
both).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any

import torch
from torch import nn

from .common import Dist

__all__ = ["with_tp", "parallelize", "full_state_dict", "full_optim_state", "load_optim_state",
           "clip_grad_norm", "is_dtensor"]


def is_dtensor(t: Any) -> bool:
    return type(t).__name__ == "DTensor"


def with_tp(d: Dist, tp: int) -> Dist:
    """``d`` with its (dp, tp) mesh; ``tp == 1`` returns ``d`` unchanged. Errors (before any
    work) when the world is not a multiple of ``tp`` or torchrun did not launch us."""
    if not isinstance(tp, int) or isinstance(tp, bool) or tp < 1:
        raise ValueError(f"--tp must be an integer >= 1, got {tp!r}")
    if tp == 1:
        return d
    if d.world % tp:
        raise ValueError(f"--tp {tp} needs a world size that is a multiple of {tp} (torchrun "
                         f"--nproc_per_node=K*{tp}); this run has {d.world} process(es)")
    from torch.distributed.device_mesh import init_device_mesh

    mesh = init_device_mesh(d.device.type, (d.world // tp, tp), mesh_dim_names=("dp", "tp"))
    return replace(d, tp=tp, mesh=mesh)


def parallelize(model: nn.Module, plan: dict[str, Any], d: Dist,
                blocks: Iterable[nn.Module] = ()) -> nn.Module:
    """Apply ``plan`` on the "tp" mesh dimension, then FSDP2 over "dp" when it has > 1 rank:
    one unit per block of ``blocks`` (the task's repeated blocks), then the root."""
    from torch.distributed.tensor.parallel import parallelize_module

    parallelize_module(model, d.mesh["tp"], plan)
    if d.world // d.tp > 1:
        from torch.distributed.fsdp import fully_shard

        for m in blocks:
            fully_shard(m, mesh=d.mesh["dp"])
        fully_shard(model, mesh=d.mesh["dp"])
    return model


def _full(t: Any) -> Any:
    return t.full_tensor() if is_dtensor(t) else t


def full_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The model's state with every DTensor gathered (a collective: every rank calls it)."""
    return {k: _full(v).detach() for k, v in model.state_dict().items()}


def full_optim_state(opt: torch.optim.Optimizer) -> dict[str, Any]:
    """``opt.state_dict()`` with every DTensor state gathered (a collective)."""
    sd = opt.state_dict()
    return {**sd, "state": {i: {k: _full(v) for k, v in s.items()}
                            for i, s in sd["state"].items()}}


def load_optim_state(opt: torch.optim.Optimizer, sd: dict[str, Any]) -> None:
    """Load a :func:`full_optim_state` into an optimiser over DTensor parameters: each state
    tensor shaped like its parameter is laid out like it."""
    from torch.distributed.tensor import distribute_tensor

    params = [p for g in opt.param_groups for p in g["params"]]
    state = {}
    for i, s in sd["state"].items():
        p = params[int(i)]
        state[i] = {k: distribute_tensor(v.to(p.device), p.device_mesh, p.placements)
                    if is_dtensor(p) and torch.is_tensor(v) and v.shape == p.shape else v
                    for k, v in s.items()}
    opt.load_state_dict({**sd, "state": state})


@torch.no_grad()
def clip_grad_norm(params: list[torch.Tensor], max_norm: float) -> float:
    """Clip the global gradient norm of parameters that may be DTensors on different meshes
    (``torch.nn.utils.clip_grad_norm_`` refuses that mix)."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return 0.0
    total = torch.stack([_full(g).double().pow(2).sum() for g in grads]).sum().sqrt()
    coef = float(max_norm / (total + 1e-6))
    if coef < 1.0:
        for g in grads:
            g.mul_(coef)
    return float(total)
