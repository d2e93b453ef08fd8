r"""Surrogate-derivative activations: a fixed forward with a declared derivative.

* staircase: f(x) = w (clamp(floor(x/w + n/2), 0, n) - n/2) (n+1 levels); declared
  derivative k sum_j sigma'(k (x - b_j)/w), b_j = (j - n/2) w (the smooth staircase's);
* Cantor staircase of depth n on [lo, hi] (2^n flat steps); declared derivative 0 (cantor)
  or 1 (cantor2, straight through);
* left_right: ReLU forward; backward grad where grad < 0, grad [x > 0] elsewhere.

The forward formulas are written against an array namespace (numpy, jax.numpy, keras.ops).
"""

from __future__ import annotations

from typing import Any

from .._validate import check_float, check_int

__all__ = ["staircase", "staircase_derivative", "cantor_staircase", "left_right_backward",
           "DEFAULTS", "check", "forward", "backward"]


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
