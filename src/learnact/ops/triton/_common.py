"""The (B, C, R) tiling every family kernel shares (internal).

x is viewed as a contiguous (B, C, R) tensor: C the channels of per-channel parameters (1 for
shared ones: the whole tensor is one channel), R the elements after the channel dimension
(1 for channels-last). A program handles a [BC, BR] tile: BC channels by BR positions of the
flattened (B, R) axis, at ``(j // R) * C * R + c * R + j % R``, so a tile reads contiguous
memory along R (NCHW) or along C (channels-last) alike, and its parameter-gradient partial
sums are per channel (a sum over the tile's axis 1). Grid: (position blocks, channel blocks).
"""

from __future__ import annotations

import math

import torch
import triton
import triton.language as tl
from torch import Tensor

from ..._tensor import canonical_dim

__all__ = ["Layout", "layout", "tile_offsets", "tile_xg"]

_TILE = 1024  # elements per program (BC * BR)


class Layout:
    """x's (B, C, R) view and the kernel tiling for it."""

    def __init__(self, x: Tensor, channels: int, channel_dim: int) -> None:
        self.x = x.contiguous()
        if channels == 1:
            self.B, self.C, self.R = 1, 1, max(1, x.numel())
        else:
            d = canonical_dim(x.ndim, channel_dim)
            self.B = math.prod(x.shape[:d])
            self.C = x.shape[d]
            self.R = math.prod(x.shape[d + 1:])
            if self.C != channels:
                raise ValueError(f"input has {self.C} channels along channel_dim={channel_dim}, "
                                 f"the parameters {channels}")
        self.N = self.B * self.R  # positions per channel
        if self.R >= 64 or self.C == 1:
            self.BC = 1
        else:  # channels-last-like: tiles across channels
            self.BC = min(64, triton.next_power_of_2(self.C))
        self.BR = _TILE // self.BC
        self.grid = (max(1, -(-self.N // self.BR)), -(-self.C // self.BC))

    def partials(self, count: int) -> Tensor:
        """A (position blocks, C, count) fp32 buffer for per-program parameter-gradient sums."""
        return torch.zeros((self.grid[0], self.C, count), dtype=torch.float32, device=self.x.device)


def layout(x: Tensor, table: Tensor, channel_dim: int) -> Layout:
    """The layout for a family whose coefficient table is (C, K) per channel or (K,) shared
    (one channel)."""
    return Layout(x, table.shape[0] if table.ndim == 2 else 1, channel_dim)


@triton.jit
def tile_offsets(C, R, N, BC: tl.constexpr, BR: tl.constexpr):
    """This program's channels c [BC], their mask, the [BC, BR] element offsets and mask."""
    j = tl.program_id(0) * BR + tl.arange(0, BR)
    c = tl.program_id(1) * BC + tl.arange(0, BC)
    off = (j // R)[None, :] * (C * R) + c[:, None] * R + (j % R)[None, :]
    cm = c < C
    return c, cm, off, cm[:, None] & (j < N)[None, :]


@triton.jit
def tile_xg(x_ptr, g_ptr, C, R, N, BC: tl.constexpr, BR: tl.constexpr):
    """A backward program's tile: (channels, their mask, offsets, mask, x and dL/dy in fp32)."""
    c, cm, off, m = tile_offsets(C, R, N, BC, BR)
    x = tl.load(x_ptr + off, mask=m, other=0.0).to(tl.float32)
    g = tl.load(g_ptr + off, mask=m, other=0.0).to(tl.float32)
    return c, cm, off, m, x, g


@triton.jit
def clipped_phase(x, w):
    """w x clipped to +-2^127 (learnact.core._xp.PHASE_BOUND; NaN kept: comparisons with NaN
    are false)."""
    t = x * w
    t = tl.where(t > 1.7014118346046923e38, 1.7014118346046923e38, t)
    return tl.where(t < -1.7014118346046923e38, -1.7014118346046923e38, t)
