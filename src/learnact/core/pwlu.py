r"""Piecewise-linear unit (PWLU): the whole family, defined once.

With N uniform segments on [a, b] (width w = (b - a)/N, knots x_j = a + j w) and learnable knot
values y_0..y_N, a learnable left slope k_l and right slope k_r:

.. math::

    f(x) = \begin{cases} y_0 + k_l (x - a) & x < a \\
    y_i + (y_{i+1} - y_i)\,(x - x_i)/w & x_i \le x < x_{i+1} \\
    y_N + k_r (x - b) & x \ge b \end{cases}

written here, for every array namespace, as a sum of clipped hinges (no gather: numpy,
jax.numpy, keras.ops and torch evaluate the same expression, per channel along any axis):

.. math::

    f(x) = y_0 + k_l \min(x - a, 0) + \sum_{j<N} (y_{j+1} - y_j)\,
    \mathrm{clip}((x - x_j)/w, 0, 1) + k_r \max(x - b, 0).

Parameters (all learnable): ``knots`` (N+1,) or (C, N+1); ``left_slope``, ``right_slope`` ()
or (C,). Inits: ``"unit"`` (default: GELU's values at the knots and its slopes at a and b, then
the general unit route f = s g + t of :mod:`learnact.core.quadrature`, so E[f^2] = E[f'^2] = 1
under N(0, 1)), ``"gelu"`` (GELU interpolated, unscaled), ``"relu"``.

Source: Y. Zhou, Z. Zhu, Z.-H. Zhong, "Learning specialized activation functions with the
Piecewise Linear Unit", ICCV 2021 (arXiv:2104.03693). The paper also learns the bounds and
re-aligns them from batch statistics; here [a, b] are fixed hyperparameters (choose them from
the pre-activation range; the unit init assumes inputs near N(0, 1)).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .._validate import check_float, check_int
from ._xp import channel_view, column
from .definition import Family
from .quadrature import expectations, unit_scale_offset

__all__ = ["pwlu", "pwlu_derivative", "init_parameters", "knots", "INITS", "NAMES",
           "MAX_SEGMENTS", "PWLU"]

INITS = ("unit", "gelu", "relu")
NAMES = ("knots", "left_slope", "right_slope")
MAX_SEGMENTS = 1024


def knots(segments: int, a: float, b: float) -> np.ndarray:
    """The N + 1 knot positions a + j (b - a)/N (float64)."""
    return a + (b - a) * np.arange(segments + 1, dtype=np.float64) / segments


def pwlu(xp: Any, x: Any, knots: Any, left_slope: Any, right_slope: Any, a: float, b: float,
         channel_dim: int = -1) -> Any:
    """f(x) as the sum of clipped hinges (see the module docstring)."""
    nd = len(x.shape)
    n = knots.shape[-1] - 1
    w = (b - a) / n
    zero = xp.zeros_like(x)
    one = zero + 1.0
    y = (column(xp, knots, 0, nd, channel_dim)
         + channel_view(xp, left_slope, nd, channel_dim) * xp.minimum(x - a, zero))
    for j in range(n):
        rise = column(xp, knots, j + 1, nd, channel_dim) - column(xp, knots, j, nd, channel_dim)
        y = y + rise * xp.minimum(xp.maximum((x - (a + j * w)) * (1.0 / w), zero), one)
    return y + channel_view(xp, right_slope, nd, channel_dim) * xp.maximum(x - b, zero)


def pwlu_derivative(x: np.ndarray, knots: np.ndarray, left_slope: Any, right_slope: Any,
                    a: float, b: float) -> np.ndarray:
    """f'(x) (numpy float64, one channel): k_l left of a, k_r from b on, the segment's slope
    between (the right-hand derivative at a knot)."""
    n = knots.shape[-1] - 1
    w = (b - a) / n
    i = np.clip(np.floor((x - a) / w), 0, n - 1).astype(np.int64)
    inside = (knots[i + 1] - knots[i]) / w
    return np.where(x < a, left_slope, np.where(x >= b, right_slope, inside))


def _gelu(x: np.ndarray) -> np.ndarray:
    erf = np.vectorize(math.erf, otypes=[np.float64])
    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


def _gelu_slope(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0))) + x * math.exp(-0.5 * x * x) / math.sqrt(
        2.0 * math.pi)


def init_parameters(segments: int, a: float, b: float, init: str = "unit"
                    ) -> dict[str, np.ndarray]:
    """float64 initial values of one channel for ``init`` (see the module docstring)."""
    pos = knots(segments, a, b)
    if init == "relu":
        return {"knots": np.maximum(pos, 0.0), "left_slope": np.array(0.0),
                "right_slope": np.array(1.0)}
    v = {"knots": _gelu(pos), "left_slope": np.array(_gelu_slope(a)),
         "right_slope": np.array(_gelu_slope(b))}
    if init == "unit":
        k_l, k_r = float(v["left_slope"]), float(v["right_slope"])
        s, t = unit_scale_offset(expectations(
            lambda z: (pwlu(np, z, v["knots"], k_l, k_r, a, b),
                       pwlu_derivative(z, v["knots"], k_l, k_r, a, b)), pos))
        v = {"knots": s * v["knots"] + t, "left_slope": np.array(s * k_l),
             "right_slope": np.array(s * k_r)}
    return v


class PWLU(Family):
    r"""Learnable piecewise-linear unit (PWLU): N uniform segments on [a, b] with learnable
    knot values and learnable linear tails.

    .. math::

        f(x) = y_0 + k_l \min(x - a, 0) + \sum_{j<N} (y_{j+1} - y_j)\,
        \mathrm{clip}\big((x - a - j w)/w, 0, 1\big) + k_r \max(x - b, 0), \quad w = (b-a)/N

    i.e. linear interpolation of the knot values y_j at a + j w, continued linearly with slope
    k_l left of a and k_r right of b.

    Parameters (learnable): ``knots`` y, shape (N+1,) shared or (C, N+1) per channel;
    ``left_slope`` k_l and ``right_slope`` k_r, shape () or (C,).

    Arguments of the generated classes (``learnact.PWLU``, ``learnact.jax.PWLU``,
    ``learnact.keras.PWLU``): ``segments`` N in [1, 1024] (default 16); ``a`` < ``b``, the
    interval the segments cover (default -3, 3); ``init``: "unit" (default: GELU at the knots,
    GELU's slopes at a and b, scaled and shifted so that E[f^2] = E[f'^2] = 1 under N(0, 1)),
    "gelu" (GELU interpolated, unscaled) or "relu"; ``channels`` None (one shared set) or C
    (one set per channel along ``channel_dim``: PyTorch default 1, JAX and Keras -1).

    Source: Y. Zhou, Z. Zhu, Z.-H. Zhong, "Learning specialized activation functions with the
    Piecewise Linear Unit", ICCV 2021 (arXiv:2104.03693); the bounds, learnt and re-aligned
    there, are fixed hyperparameters here.
    """

    name = "pwlu"
    derived = True
    class_name = "PWLU"
    inits = INITS
    arguments = (("segments", int, 16), ("a", float, -3.0), ("b", float, 3.0),
                 ("init", str, "unit"))
    test_specs = ("pwlu:segments=6",)
    torch_kernel = "learnact.ops.pwlu:pwlu_function"
    missing = {
        "torchscript": "the frozen form evaluates the formula written once for every array "
                       "namespace, which TorchScript cannot parse (torch.jit.trace, torch.export "
                       "and ONNX take it)",
        "torch_op": "no torch.library op: its eager kernel (ops/pwlu.py, a bin lookup and an "
                    "analytic backward) is an autograd Function; compile traces the formula",
        "xla_kernel": "no fused kernel yet: XLA fuses the formula",
        "triton": "no GPU kernel yet: the formula as torch operators",
    }
    main_job_specs = ()  # not in the main job yet (its committed README table)

    def check(self, kw):
        out = super().check(kw)
        out["segments"] = check_int("segments", kw["segments"], 1, MAX_SEGMENTS)
        out["a"] = check_float("a", kw["a"])
        out["b"] = check_float("b", kw["b"])
        if not out["a"] < out["b"]:
            raise ValueError(f"pwlu needs a < b, got a={out['a']}, b={out['b']}")
        return out

    def tensors(self, kw):
        return NAMES, ()

    def shared_init(self, kw, normal):
        return init_parameters(kw["segments"], kw["a"], kw["b"], kw["init"])

    def forward(self, xp, x, p, kw):
        return pwlu(xp, x, p["knots"], p["left_slope"], p["right_slope"], kw["a"], kw["b"],
                    kw["channel_dim"])

    def derivative(self, x, p, kw):
        return pwlu_derivative(x, p["knots"], p["left_slope"], p["right_slope"], kw["a"],
                               kw["b"])

    def kinks(self, kw, p):
        return knots(kw["segments"], kw["a"], kw["b"])

    def flops_per_element(self, kw):
        return 4 + 6 * kw["segments"], 0
