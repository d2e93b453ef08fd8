r"""Forward functions and the derivatives that surrogate activations declare for backward.

These are experiments: a surrogate's backward computes ``grad * declared(x)``, which is *not*
the true gradient where the declared derivative differs from f' (that is the point).

* staircase: forward f(x) = w (clamp(floor(x/w + n/2), 0, n) - n/2) - n+1 levels k w - n w/2;
  declared derivative: that of the smooth staircase
  s(x) = w sum_j sigmoid(k (x - b_j)/w) with jumps b_j = (j - n/2) w, j = 1..n and sharpness
  k: s'(x) = k sum_j sigmoid'(k (x - b_j)/w) > 0, so flat steps still pass gradient.
* cantor: the depth-n Cantor staircase C_n on [0, 1] from the first n ternary digits (digit 1
  ends the expansion: a removed middle third), applied to u = (x - lo)/(hi - lo) clamped to
  [0, 1], rescaled to [lo, hi]: 2^n flat steps. Declared derivative 0 (its derivative almost
  everywhere) for ``cantor``, 1 for ``cantor2``.
* left/right: for f with one-sided derivatives d-(x), d+(x) (ReLU: d- = [x > 0], d+ = 1), the
  backward uses d+ where the upstream gradient asks the output to increase (grad < 0, so a
  descent step raises f) and d- where it asks it to decrease.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["staircase", "staircase_derivative", "cantor_staircase"]


def _wide(x: Tensor) -> Tensor:
    """float16/bfloat16 in float32 (as every family computes half inputs: a half-precision
    x / w + n / 2 rounds across a step edge), else x (TorchScript-compilable)."""
    if x.dtype == torch.float16 or x.dtype == torch.bfloat16:
        return x.float()
    return x


def staircase(x: Tensor, steps: int, width: float) -> Tensor:
    t = _wide(x)
    k = torch.clamp(torch.floor(t / width + steps / 2.0), 0, steps)
    return (width * (k - steps / 2.0)).to(x.dtype)


def staircase_derivative(x: Tensor, steps: int, width: float, sharpness: float) -> Tensor:
    t = _wide(x)
    out = torch.zeros_like(t)
    for j in range(1, steps + 1):
        b = (j - steps / 2.0) * width
        sg = torch.sigmoid(sharpness * (t - b) / width)
        out = out + sharpness * sg * (1.0 - sg)
    return out.to(x.dtype)


def cantor_staircase(x: Tensor, depth: int, lo: float, hi: float) -> Tensor:
    return _cantor(_wide(x), depth, lo, hi).to(x.dtype)


def _cantor(x: Tensor, depth: int, lo: float, hi: float) -> Tensor:
    u = torch.clamp((x - lo) / (hi - lo), 0.0, 1.0)
    value = torch.zeros_like(u)
    active = torch.ones_like(u, dtype=torch.bool)
    scale = 0.5
    for _ in range(depth):
        d = torch.clamp(torch.floor(u * 3.0), 0, 2)  # u = 1 reads as 0.222... in ternary
        is_mid = active & (d == 1)
        # in u's dtype: a where() of two Python scalars is float32 and promoted bf16 output
        value = value + scale * (is_mid | (active & (d == 2))).to(u.dtype)
        active = active & ~is_mid
        u = u * 3.0 - d
        scale *= 0.5
    value = torch.where(torch.isnan(x), x, value)
    return lo + (hi - lo) * value
