"""Chunked iteration for the CPU eager kernels (internal).

Eager PyTorch runs one kernel per op over the whole tensor; a degree-8 recurrence is ~50 ops,
each streaming the full tensor through memory (and every fresh large temporary costs page
faults). Cutting the flattened input into chunks of ~128K elements keeps the handful of
working buffers in L2/L3 and reuses them, which measured 3-4x faster on the (16, 256, 768)
benchmark shape (2 threads) than whole-tensor ops. Compiled and GPU paths never use this.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor

from .._tensor import canonical_dim

CHUNK = 1 << 17


def as_bcr(x: Tensor, channel_dim: int, per_channel: bool) -> Tensor:
    """View (or copy into) a contiguous (B, C, R) tensor; shared parameters use (1, 1, N)."""
    if not per_channel:
        return x.reshape(1, 1, -1)
    d = canonical_dim(x.ndim, channel_dim)
    b = 1
    for s in x.shape[:d]:
        b *= s
    return x.reshape(b, x.shape[d], -1)


def slices(x3: Tensor, chunk: int = CHUNK) -> Iterator[tuple[slice, slice]]:
    """(batch slice, inner slice) pairs covering a (B, C, R) tensor in ~chunk-element blocks."""
    b, c, r = x3.shape
    if c * r <= chunk:
        rows = max(1, chunk // max(1, c * r))
        for i in range(0, b, rows):
            yield slice(i, min(b, i + rows)), slice(0, r)
    else:
        cols = max(1, chunk // max(1, c))
        for i in range(b):
            for j in range(0, r, cols):
                yield slice(i, i + 1), slice(j, min(r, j + cols))


def map_chunks(x3: Tensor, fn, *others: Tensor) -> tuple[Tensor, list[Tensor] | None]:
    """fn(out chunk, x3 chunk, chunks of ``others``) over the chunks of a (B, C, R) tensor
    (``others`` share its shape): fn writes its output chunk and returns per-chunk sums (a
    sequence of tensors, e.g. parameter gradients) or None. Returns the output (x3's shape)
    and the sums added over chunks."""
    out = torch.empty_like(x3)
    sums = None
    for bs, rs in slices(x3):
        i = (bs, slice(None), rs)
        part = fn(out[i], x3[i], *(o[i] for o in others))
        if part is not None:
            sums = list(part) if sums is None else [a + b for a, b in zip(sums, part)]
    return out, sums


def coefficient_getter(params: Tensor, dtype: torch.dtype):
    """k -> coefficient k as a Python float (shared) or a (1, C, 1) tensor (per channel)."""
    if params.ndim == 1:
        values = params.detach().to(torch.float64).tolist()
        return lambda k: values[k]
    table = params.detach().to(dtype)
    cols = [table[:, k].reshape(1, -1, 1).contiguous() for k in range(table.shape[1])]
    return lambda k: cols[k]


def scalar_tensor(v, like: Tensor) -> Tensor:
    """A broadcastable tensor for v (Python float -> 0-d tensor)."""
    if isinstance(v, Tensor):
        return v
    return torch.tensor(v, dtype=like.dtype, device=like.device)


def axpy(acc: Tensor, h: Tensor, ck) -> None:
    """acc += ck * h in place (ck a Python float or a broadcastable tensor)."""
    if isinstance(ck, Tensor):
        acc.addcmul_(h, ck)
    else:
        acc.add_(h, alpha=ck)
