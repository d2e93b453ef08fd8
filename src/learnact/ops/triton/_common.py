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
# channels per tile across a channels-last input: 16 channels x 64 rows keeps 64-byte
# contiguous runs (two 32-byte sectors, 128-bit loads) and writes the backward's per-channel
# partial sums once per 64 rows (P x 4 / 64 bytes per element; 64 x 16 tiles: P x 4 / 16,
# 9-28% of the pass, benchmarks/results/gpu_aot.md)
_BC_MAX = 16


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
            self.BC = min(_BC_MAX, triton.next_power_of_2(self.C))
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


@triton.jit
def sincos(t):
    """(sin t, cos t) in registers only (libdevice's sin/cos call a Payne-Hanek slow path for
    |t| > 105615 that spills registers around the call). t = j pi/2 + r, |r| <= pi/4, by three
    FMAs with pi/2 split in three float32 parts, and one more step where t 2/pi rounded j one
    off (accurate while |j| < 2^24: |t| < 2.6e7), then
    the Taylor series to r^11 / r^12 (learnact/native/vecmath.h's float ones) and the quadrant
    by selects. Past 2^24 a float32 phase carries no information (its ulp is 2): r is clamped
    to [-pi/4, pi/4], so the values stay finite and in [-1, 1]. NaN stays NaN."""
    j = tl.floor(t * 0.6366197723675814 + 0.5)
    r = tl.fma(j, -1.5707963705062866, t)
    r = tl.fma(j, 4.371138828673793e-08, r)
    r = tl.fma(j, 1.7151245100058819e-15, r)
    # t * 2/pi rounds by up to 0.5 where t > 2^23: j can be one off; one more (exact) step
    k = tl.floor(r * 0.6366197723675814 + 0.5)
    r = tl.fma(k, 4.371138828673793e-08, tl.fma(k, -1.5707963705062866, r))
    j = j + k
    big = tl.abs(t) >= 16777216.0  # NaN: False, and the selects below keep it
    r = tl.where(big & (r > 0.7853981633974483), 0.7853981633974483, r)
    r = tl.where(big & (r < -0.7853981633974483), -0.7853981633974483, r)
    r2 = r * r
    s = r + r * r2 * (-1.0 / 6 + r2 * (1.0 / 120 + r2 * (-1.0 / 5040 + r2 * (
        1.0 / 362880 + r2 * (-1.0 / 39916800)))))
    c = 1.0 + r2 * (-0.5 + r2 * (1.0 / 24 + r2 * (-1.0 / 720 + r2 * (
        1.0 / 40320 + r2 * (-1.0 / 3628800 + r2 * (1.0 / 479001600))))))
    m = j - 4.0 * tl.floor(j * 0.25)  # the quadrant, 0..3
    odd = (m == 1.0) | (m == 3.0)
    sv = tl.where(odd, c, s)
    cv = tl.where(odd, s, c)
    return tl.where(m >= 2.0, -sv, sv), tl.where((m == 1.0) | (m == 2.0), -cv, cv)
