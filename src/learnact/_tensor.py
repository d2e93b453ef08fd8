"""Shape, dtype and channel helpers shared by every family (internal)."""

from __future__ import annotations

import torch
from torch import Tensor

from ._validate import canonical_dim  # noqa: F401  (re-exported: one message)

_LOW_PRECISION = (torch.float16, torch.bfloat16)


def compute_dtype(x: Tensor, *params: Tensor) -> torch.dtype:
    """fp32 for half/bf16 inputs, otherwise the promoted floating dtype of x and params."""
    dt = torch.float32 if x.dtype in _LOW_PRECISION else x.dtype
    if not dt.is_floating_point:
        raise TypeError(f"input must be a floating-point tensor, got dtype {x.dtype}")
    for p in params:
        pd = torch.float32 if p.dtype in _LOW_PRECISION else p.dtype
        dt = torch.promote_types(dt, pd)
    return dt


def channel_view(p: Tensor, ndim: int, channel_dim: int) -> Tensor:
    """View a per-channel vector p of shape (C,) so it broadcasts along channel_dim.

    A 0-d p (shared parameter) is returned unchanged.
    """
    if p.ndim == 0:
        return p
    d = canonical_dim(ndim, channel_dim)
    return p.reshape((p.shape[0],) + (1,) * (ndim - 1 - d))


def reduce_to_channels(t: Tensor, per_channel: bool, channel_dim: int) -> Tensor:
    """Sum t over every dim (shared) or every dim but the channel dim (per channel)."""
    if not per_channel:
        return t.sum()
    if t.ndim == 0:
        return t.reshape(1)
    d = canonical_dim(t.ndim, channel_dim)
    dims = [i for i in range(t.ndim) if i != d]
    return t.sum(dim=dims) if dims else t


def column(params: Tensor, k: int, ndim: int, channel_dim: int) -> Tensor:
    """k-th coefficient of a (P,) shared or (C, P) per-channel table, broadcastable to the input."""
    return channel_view(params[..., k], ndim, channel_dim)


#: below this many elements the chunked CPU kernels cost more than a few whole-tensor ops
FAST_CPU_MIN = 4096


def use_fast_cpu_path(x: Tensor) -> bool:
    """The chunked, in-place eager kernels run on CPU, outside tracing, without double backward."""
    return (
        x.device.type == "cpu"
        and not torch.compiler.is_compiling()
        and not torch.is_grad_enabled()
        and x.numel() >= FAST_CPU_MIN
    )


def clipped_phase(x: Tensor, w: Tensor) -> Tensor:
    """w x clipped to +-2^127 (learnact.core._xp.PHASE_BOUND, written out: TorchScript reads no
    module globals), NaN kept: the periodic families' phase, finite at every finite x."""
    return (x * w).clamp(-1.7014118346046923e38, 1.7014118346046923e38)
