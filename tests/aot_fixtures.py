"""Kernels that the ahead-of-time check (learnact.ops.triton.aot) must refuse: one that spills
registers to local memory, one whose element stream cannot move in vector instructions. Used by
tests/test_triton_aot.py; they are compiled for sm_90, never run."""

from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def spills(x_ptr, y_ptr, N, B: tl.constexpr):
    """B elements per program on one warp: with B = 16384 each thread holds 512 values of x
    across the reduction (the hardware has 255 registers), so ptxas spills."""
    i = tl.program_id(0) * B + tl.arange(0, B)
    x = tl.load(x_ptr + i, mask=i < N, other=0.0)
    s = tl.sum(x * x, axis=0)
    tl.store(y_ptr + i, x * s + tl.exp(x), mask=i < N)


@triton.jit
def strided(x_ptr, y_ptr, N, B: tl.constexpr):
    """Reads every other element: no two neighbours are adjacent, so the loads are scalar."""
    i = tl.program_id(0) * B + tl.arange(0, B)
    x = tl.load(x_ptr + 2 * i, mask=i < N, other=0.0)
    tl.store(y_ptr + i, x * 2.0, mask=i < N)
