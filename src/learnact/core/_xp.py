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
