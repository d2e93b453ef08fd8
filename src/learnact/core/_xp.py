"""Broadcasting helpers written against an array namespace (numpy, jax.numpy, keras.ops)."""

from __future__ import annotations

from typing import Any


def channel_view(xp: Any, p: Any, nd: int, cd: int) -> Any:
    """A () parameter as is; a (C,) parameter reshaped to broadcast along dimension cd of an
    nd-dimensional input."""
    if len(getattr(p, "shape", ())) == 0:  # a () array or a Python number
        return p
    shape = [1] * nd
    shape[cd % nd] = p.shape[0]
    return xp.reshape(p, shape)


def column(xp: Any, p: Any, k: int, nd: int, cd: int) -> Any:
    """Entry k of the last axis of a (K,) or (C, K) table, broadcast against the input."""
    return channel_view(xp, p[..., k], nd, cd)


#: |phase| bound of the periodic families (Fourier's w x, SELU variation's omega x): 2^127, exact
#: in float32, bfloat16 and float64. Past ~2^24 a float32 phase carries no information, but a
#: product that overflows to inf made cos/sin NaN where the true value is finite, so every path
#: (core, PyTorch reference and frozen forms, native and Triton kernels) clips the product here.
PHASE_BOUND = 2.0 ** 127


def clipped_phase(xp: Any, x: Any, w: Any) -> Any:
    """w x clipped to [-PHASE_BOUND, PHASE_BOUND] (NaN stays NaN)."""
    return xp.clip(x * w, -PHASE_BOUND, PHASE_BOUND)
