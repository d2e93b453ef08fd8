"""Argument checks with messages that name the argument and the allowed range (internal)."""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from difflib import get_close_matches
from typing import Any


def check_int(name: str, value: Any, lo: int | None = None, hi: int | None = None) -> int:
    """An integer in [lo, hi]; bools and non-integral floats are rejected."""
    rng = _range_text(lo, hi)
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        raise TypeError(f"{name} must be an integer{rng}, got {value!r}")
    if isinstance(value, numbers.Integral):  # int, numpy's integer scalars
        value = int(value)
    elif isinstance(value, numbers.Real) and math.isfinite(value) and float(value).is_integer():
        value = int(value)
    else:
        raise TypeError(f"{name} must be an integer{rng}, got {value!r}")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise ValueError(f"{name} must be an integer{rng}, got {value}")
    return value


MAX_MAGNITUDE = 1e6  # a hyperparameter beyond this is a typo (and overflows float32 math)


def check_float(name: str, value: Any, lo: float | None = None, hi: float | None = None,
                *, lo_open: bool = False, hi_open: bool = False) -> float:
    """A finite real in the given (closed unless *_open) interval, of magnitude <= 1e6."""
    # numbers.Real: int, float and numpy's integer and floating scalars (np.float32(2))
    if (isinstance(value, bool) or type(value).__name__ == "bool_"
            or not isinstance(value, numbers.Real)):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    v = float(value)
    lo_ok = lo is None or (v > lo if lo_open else v >= lo)
    hi_ok = hi is None or (v < hi if hi_open else v <= hi)
    if not math.isfinite(v) or not lo_ok or not hi_ok or abs(v) > MAX_MAGNITUDE:
        left = "(" if lo_open else "["
        right = ")" if hi_open else "]"
        lo_s = f"{-MAX_MAGNITUDE:g}" if lo is None or lo < -MAX_MAGNITUDE else f"{lo:g}"
        hi_s = f"{MAX_MAGNITUDE:g}" if hi is None or hi > MAX_MAGNITUDE else f"{hi:g}"
        raise ValueError(f"{name} must be a finite number in {left}{lo_s}, {hi_s}{right}, got {value!r}")
    return v


def check_choice(name: str, value: Any, choices: Iterable[str]) -> str:
    """One of choices (strings), with a close-match hint."""
    choices = list(choices)
    if not isinstance(value, str) or value not in choices:
        hint = suggest(str(value), choices)
        raise ValueError(f"{name} must be one of {choices}, got {value!r}{hint}")
    return value


MAX_CHANNELS = 1 << 20  # per-channel parameters beyond this are a typo, not a model


def check_channels(channels: Any) -> int | None:
    if channels is None:
        return None
    return check_int("channels", channels, 1, MAX_CHANNELS)


def suggest(word: str, options: Iterable[str]) -> str:
    close = get_close_matches(word, list(options), n=3, cutoff=0.6)
    return f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""


def _range_text(lo: int | None, hi: int | None) -> str:
    if lo is not None and hi is not None:
        return f" in [{lo}, {hi}]"
    if lo is not None:
        return f" >= {lo}"
    if hi is not None:
        return f" <= {hi}"
    return ""


def canonical_dim(ndim: int, channel_dim: int) -> int:
    """Non-negative channel dimension of an ndim-array."""
    d = channel_dim + ndim if channel_dim < 0 else channel_dim
    if not 0 <= d < ndim:
        raise ValueError(
            f"channel_dim={channel_dim} is out of range for an input with {ndim} dimension(s); "
            f"allowed: -{ndim} <= channel_dim < {ndim}"
        )
    return d


def check_input_channels(shape: tuple, channels: int | None, channel_dim: int,
                         owner: str) -> None:
    """The input's size along channel_dim equals the module's channels (every frontend)."""
    if channels is None:
        return
    if len(shape) == 0:
        raise ValueError(
            f"{owner}(channels={channels}) needs an input with a channel "
            f"dimension (channel_dim={channel_dim}), got a 0-d tensor")
    d = canonical_dim(len(shape), channel_dim)
    if shape[d] is not None and shape[d] != channels:
        raise ValueError(
            f"input has {shape[d]} channels along channel_dim={channel_dim} "
            f"(shape {tuple(shape)}), but this {owner} was built with "
            f"channels={channels}")
