"""Tensor parallelism for learnact activations: :class:`ChannelParallel`, the
``parallelize_module`` plan entry for an activation between a ``ColwiseParallel`` and a
``RowwiseParallel`` linear layer (the hidden units, and so the activation's channels, split
over the ranks, as in Megatron-style MLPs and torchtitan).

    from torch.distributed.tensor.parallel import (ColwiseParallel, RowwiseParallel,
                                                   parallelize_module)
    mlp = nn.Sequential(nn.Linear(512, 2048), learnact.create("hermite:degree=8,channels=2048,
                        channel_dim=-1"), nn.Linear(2048, 512))
    parallelize_module(mlp, mesh, {"0": ColwiseParallel(), "1": ChannelParallel(),
                                   "2": RowwiseParallel()})

The activation's per-channel parameters become DTensors sharded on their channel rows
(``Shard(0)``: each rank keeps and trains its own channels'), shared parameters replicated;
the family ops run on DTensors through the sharding rules of ``learnact.ops._dtensor`` (also
usable without this class: any ``Shard(d)`` or ``Replicate()`` of x with parameters
distributed accordingly).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.distributed.tensor import DeviceMesh, DTensor, Replicate, Shard, distribute_module
from torch.distributed.tensor.parallel import ParallelStyle

__all__ = ["ChannelParallel", "channel_rows"]


def channel_rows(module: nn.Module, name: str, tensor: torch.Tensor) -> bool:
    """Whether ``module``'s tensor ``name`` holds one row per channel (a learnact family's
    per-channel parameter or buffer, by its definition's table)."""
    from .ops._dtensor import rows_ndim

    channels = getattr(module, "channels", None)
    if channels is None or tensor.ndim == 0 or tensor.shape[0] != channels:
        return False
    own = getattr(module, "channel_tensors", {})  # activations outside the definitions (DiTAC)
    if name in own:
        return tensor.ndim == own[name]
    return tensor.ndim == rows_ndim(getattr(module, "family", None), name)


class ChannelParallel(ParallelStyle):
    """Shard a learnact activation over its channels (see the module docstring).

    Args:
        use_local_output: return the local shard (a plain tensor, what ``RowwiseParallel``
            expects after ``ColwiseParallel``'s local output; default) or the DTensor.
    """

    def __init__(self, *, use_local_output: bool = True) -> None:
        super().__init__()
        self.use_local_output = use_local_output

    def _partition(self, name: str, module: nn.Module, mesh: DeviceMesh) -> None:
        for pname, param in list(module.named_parameters(recurse=False)):
            place = [Shard(0)] if channel_rows(module, pname, param) else [Replicate()]
            dist = nn.Parameter(torch.distributed.tensor.distribute_tensor(param.data, mesh,
                                                                           place),
                                requires_grad=param.requires_grad)
            module.register_parameter(pname, dist)
        for bname, buf in list(module.named_buffers(recurse=False)):
            place = [Shard(0)] if channel_rows(module, bname, buf) else [Replicate()]
            module.register_buffer(bname, torch.distributed.tensor.distribute_tensor(
                buf, mesh, place))

    @staticmethod
    def _prepare_input(module: nn.Module, inputs: tuple[Any, ...], mesh: DeviceMesh
                       ) -> tuple[Any, ...]:
        x = inputs[0]
        if isinstance(x, DTensor):
            return inputs
        if getattr(module, "channels", None) is None:  # shared parameters: any split works
            place = [Shard(x.ndim - 1)]
        else:
            place = [Shard(module.channel_dim % x.ndim)]
        return (DTensor.from_local(x, mesh, place, run_check=False), *inputs[1:])

    def _prepare_output(self, module: nn.Module, output: Any, mesh: DeviceMesh) -> Any:
        return output.to_local() if self.use_local_output and isinstance(output, DTensor) \
            else output

    def _apply(self, module: nn.Module, device_mesh: DeviceMesh) -> nn.Module:
        if not hasattr(module, "family"):
            raise TypeError(f"ChannelParallel shards a learnact activation; got "
                            f"{type(module).__name__}")
        return distribute_module(module, device_mesh, self._partition, self._prepare_input,
                                 self._prepare_output)
