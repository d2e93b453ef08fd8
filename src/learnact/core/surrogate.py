r"""Surrogate-derivative activations: a fixed forward with a declared derivative.

* staircase: f(x) = w (clamp(floor(x/w + n/2), 0, n) - n/2) (n+1 levels); declared
  derivative k sum_j sigma'(k (x - b_j)/w), b_j = (j - n/2) w (the smooth staircase's);
* Cantor staircase of depth n on [lo, hi] (2^n flat steps); declared derivative 0 (cantor)
  or 1 (cantor2, straight through);
* left_right: ReLU forward; backward grad where grad < 0, grad [x > 0] elsewhere;
* noisy: a classical activation's forward; backward grad f'(x) u, u ~ U(lower, upper) per
  element while training (the frontends draw u; :func:`fixed_derivative` gives f').

The forward formulas are written against an array namespace (numpy, jax.numpy, keras.ops).
"""

from __future__ import annotations

import math
from typing import Any

from .._validate import check_float, check_int

__all__ = ["staircase", "staircase_derivative", "cantor_staircase", "left_right_backward",
           "fixed_derivative", "check_noisy", "DEFAULTS", "check", "forward", "backward"]

_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def staircase(xp: Any, x: Any, steps: int, width: float) -> Any:
    k = xp.floor(x / width + steps / 2.0)
    k = xp.minimum(xp.maximum(k, xp.zeros_like(k)), xp.zeros_like(k) + float(steps))
    return width * (k - steps / 2.0)


def staircase_derivative(xp: Any, x: Any, steps: int, width: float, sharpness: float) -> Any:
    out = xp.zeros_like(x)
    for j in range(1, steps + 1):
        b = (j - steps / 2.0) * width
        sg = 1.0 / (1.0 + xp.exp(-sharpness * (x - b) / width))
        out = out + sharpness * sg * (1.0 - sg)
    return out


def cantor_staircase(xp: Any, x: Any, depth: int, lo: float, hi: float) -> Any:
    """lo + (hi - lo) C_depth((x - lo)/(hi - lo)), input clamped to [lo, hi]; NaN stays NaN."""
    zero = xp.zeros_like(x)
    one = zero + 1.0
    u = xp.minimum(xp.maximum((x - lo) / (hi - lo), zero), one)
    value, active, scale = zero, one, 0.5
    for _ in range(depth):
        d = xp.minimum(xp.maximum(xp.floor(u * 3.0), zero), zero + 2.0)
        value = value + scale * active * xp.where(d >= 1.0, one, zero)
        active = active * xp.where(d == 1.0, zero, one)
        u = u * 3.0 - d
        scale *= 0.5
    value = xp.where(x != x, x, value)  # NaN in, NaN out
    return lo + (hi - lo) * value


def left_right_backward(xp: Any, x: Any, g: Any) -> Any:
    """grad where grad < 0 (the right derivative 1), grad [x > 0] elsewhere."""
    return xp.where(g < 0, g, xp.where(x > 0, g, xp.zeros_like(g)))


def fixed_derivative(xp: Any, name: str, x: Any, approximate: str = "none",
                     negative_slope: float = 0.01) -> Any:
    """f'(x) of a classical activation by its PyTorch name, as PyTorch's backward computes
    it (relu' = [x > 0]; softplus' = 1 above its threshold 20; gelu exact or "tanh")."""
    one, zero = xp.ones_like(x), xp.zeros_like(x)
    pos = x > 0
    if name == "identity":
        return one
    if name == "relu":
        return xp.where(pos, one, zero)
    if name == "leaky_relu":
        return xp.where(pos, one, zero + negative_slope)
    if name == "elu":
        return xp.where(pos, one, xp.exp(xp.minimum(x, zero)))
    if name == "selu":
        return _SELU_SCALE * xp.where(pos, one, _SELU_ALPHA * xp.exp(xp.minimum(x, zero)))
    if name in ("sigmoid", "silu", "softplus"):
        s = 1.0 / (1.0 + xp.exp(-x))
        if name == "sigmoid":
            return s * (1.0 - s)
        if name == "silu":
            return s * (1.0 + x * (1.0 - s))
        return xp.where(x > 20.0, one, s)
    if name == "tanh":
        t = xp.tanh(x)
        return 1.0 - t * t
    if name == "gelu":
        if approximate == "tanh":
            k = math.sqrt(2.0 / math.pi)
            t = xp.tanh(k * (x + 0.044715 * x * x * x))
            return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * k * (1.0 + 3 * 0.044715 * x * x)
        return (0.5 + 0.5 * xp.erf(x * (1.0 / math.sqrt(2.0)))
                + x * xp.exp(-0.5 * x * x) * (1.0 / math.sqrt(2.0 * math.pi)))
    raise ValueError(f"no derivative for activation {name!r}")


def check_noisy(base: str, lower: float, upper: float, fixed_names: tuple[str, ...]
                ) -> tuple[str, float, float]:
    """noisy's arguments (PyTorch's messages; ``base`` one of the classical activations)."""
    if base not in fixed_names:
        raise ValueError(f"noisy: base must be one of {', '.join(fixed_names)} in the JAX and "
                         f"Keras frontends (PyTorch's takes any spec), got {base!r}")
    lower, upper = check_float("lower", lower), check_float("upper", upper)
    if lower > upper:
        raise ValueError(f"noisy needs lower <= upper, got lower={lower}, upper={upper}")
    return base, lower, upper


# --- what the JAX and Keras frontends build: checks, forward, declared backward -------------

#: name -> the keyword arguments and defaults (as the PyTorch classes; channels accepted and
#: ignored, for a uniform interface)
DEFAULTS: dict[str, dict[str, Any]] = {
    "staircase": {"steps": 8, "width": 0.5, "sharpness": 2.0},
    "cantor": {"depth": 4, "lo": -3.0, "hi": 3.0},
    "cantor2": {"depth": 4, "lo": -3.0, "hi": 3.0},
    "left_right": {},
}


def check(name: str, kw: dict[str, Any]) -> dict[str, Any]:
    """Validated arguments (the PyTorch classes' ranges and messages)."""
    if name == "staircase":
        return {"steps": check_int("steps", kw["steps"], 1),
                "width": check_float("width", kw["width"], 0.0, lo_open=True),
                "sharpness": check_float("sharpness", kw["sharpness"], 0.0, lo_open=True)}
    if name in ("cantor", "cantor2"):
        out = {"depth": check_int("depth", kw["depth"], 1, 30), "lo": check_float("lo", kw["lo"]),
               "hi": check_float("hi", kw["hi"])}
        if not out["lo"] < out["hi"]:
            raise ValueError(f"cantor needs lo < hi, got lo={kw['lo']}, hi={kw['hi']}")
        return out
    return {}


def forward(xp: Any, name: str, x: Any, kw: dict[str, Any]) -> Any:
    if name == "staircase":
        return staircase(xp, x, kw["steps"], kw["width"])
    if name in ("cantor", "cantor2"):
        return cantor_staircase(xp, x, kw["depth"], kw["lo"], kw["hi"])
    return xp.maximum(x, xp.zeros_like(x))  # left_right: ReLU


def backward(xp: Any, name: str, x: Any, g: Any, kw: dict[str, Any]) -> Any:
    """dL/dx from the upstream gradient g under the declared derivative."""
    if name == "staircase":
        return g * staircase_derivative(xp, x, kw["steps"], kw["width"], kw["sharpness"])
    if name == "cantor":
        return xp.zeros_like(g)
    if name == "cantor2":
        return g
    return left_right_backward(xp, x, g)
