"""The learnable families as pure ``jax.numpy`` functions (jit, grad, vmap and bf16 work).

Each takes the input and the family's parameter arrays (shared shapes ``(K,)``/``()`` or per
channel ``(C, K)``/``(C,)``, broadcast along ``channel_dim``) and evaluates the core's formula
(``learnact.core.<family>``). Half-precision inputs are computed in float32 and returned in
their own dtype; parameters are cast to the compute dtype.
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp

from .. import xla_native
from .._validate import canonical_dim, check_int
from ..xla_native.ditac import JNP as _JNP  # jax.numpy + DiTAC's fused kernels
from .._xla import cpab_flow as _cpab_flow  # noqa: F401 (tests)
from ..core import cpab as _cpab
from ..core import fourier as _fourier
from ..core import hermite as _hermite
from ..core import pwlu as _pwlu
from ..core import rational as _rational
from ..core import selu_variation as _selu
from ..core import tropical as _tropical

__all__ = ["hermite", "fourier", "tropical", "tropical_rational", "rational", "selu_variation",
           "ditac", "pwlu", "compute_dtype"]

Array = Any


def compute_dtype(dtype: Any) -> Any:
    """float32 for float16/bfloat16, else the dtype itself (float32 or float64)."""
    if not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(f"input must be a floating-point array, got dtype {dtype}")
    return jnp.float32 if jnp.dtype(dtype).itemsize < 4 else dtype


def _call(formula, x: Array, params: tuple, channel_dim: int, fused: str | None = None,
          names: tuple[str, ...] = ()) -> Array:
    """The formula in the compute dtype; ``fused``: the family whose CPU kernels
    (learnact.xla_native) run instead where they apply, its tensors called ``names``."""
    x = jnp.asarray(x)
    ct = compute_dtype(x.dtype)
    ps = tuple(None if p is None else jnp.asarray(p).astype(ct) for p in params)
    channel_dim = check_int("channel_dim", channel_dim)
    y = None
    # per channel: a (C, K) table, or a (C,) per-channel scalar of a fused family
    kinds = dict(xla_native.FAMILIES[fused]) if fused is not None else {}
    rows = [p.shape[0] for n, p in zip(names or ("",) * len(ps), ps) if p is not None and (
        p.ndim == 2 or p.ndim == 1 and kinds.get(n, False))]
    if rows and x.ndim > 0:  # as PyTorch's ops: the channel axis must exist
        canonical_dim(x.ndim, channel_dim)
    if fused is not None:
        kw = {"channel_dim": channel_dim, "channels": rows[0] if rows else None}
        y = xla_native.apply(fused, x.astype(ct), dict(zip(names, ps)), kw)
    if y is None:
        y = formula(_JNP, x.astype(ct), *ps, channel_dim=channel_dim)
    return y.astype(x.dtype)


def hermite(x: Array, coeffs: Array, channel_dim: int = -1, lo: Array | None = None,
            hi: Array | None = None) -> Array:
    """f(x) = sum_k c_k He_k(x)/k! (Clenshaw); linear outside [lo, hi] when given."""
    return _call(_hermite_formula, x, (coeffs, lo, hi), channel_dim, "hermite",
                 ("coeffs", "lo", "hi"))


def _hermite_formula(xp: Any, x: Array, c: Array, lo: Array | None, hi: Array | None,
                     channel_dim: int) -> Array:
    return _hermite.hermite(xp, x, c, channel_dim, lo, hi)


def fourier(x: Array, bias: Array, amplitude: Array, frequency: Array, phase: Array,
            channel_dim: int = -1) -> Array:
    """f(x) = bias + sum_k amplitude_k cos(frequency_k x - phase_k)."""
    return _call(_fourier.fourier, x, (bias, amplitude, frequency, phase), channel_dim,
                 "fourier", _fourier.NAMES)


def tropical(x: Array, slopes: Array, coeffs: Array, scale: Array, offset: Array,
             channel_dim: int = -1) -> Array:
    """f(x) = scale max_k (slopes_k x + coeffs_k) + offset."""
    return _call(_tropical.tropical, x, (slopes, coeffs, scale, offset), channel_dim,
                 "tropical", ("slopes", "coeffs", "scale", "offset"))


def tropical_rational(x: Array, num_slopes: Array, num_coeffs: Array, den_slopes: Array,
                      den_coeffs: Array, scale: Array, offset: Array,
                      channel_dim: int = -1) -> Array:
    """f(x) = scale (max_k (p_k x + a_k) - max_k (q_k x + b_k)) + offset."""
    return _call(_tropical.tropical_rational, x,
                 (num_slopes, num_coeffs, den_slopes, den_coeffs, scale, offset), channel_dim,
                 "tropical_rational", _tropical.RATIONAL_NAMES)


def rational(x: Array, num: Array, den: Array, scale: Array, offset: Array,
             channel_dim: int = -1) -> Array:
    """f(x) = scale P(x)/(1 + |A(x)|) + offset; num: x^0..x^n, den: x^1..x^m."""
    return _call(_rational.rational, x, (num, den, scale, offset), channel_dim,
                 "rational", _rational.NAMES)


def selu_variation(x: Array, lam: Array, alpha: Array, beta: Array, gamma: Array,
                   omega: Array, scale: Array, offset: Array, channel_dim: int = -1) -> Array:
    """f(x) = scale lam (x if x > 0 else alpha (e^{beta x} - 1) + gamma sin(omega x)) + offset."""
    return _call(_selu.selu_variation, x, (lam, alpha, beta, gamma, omega, scale, offset),
                 channel_dim, "selu_variation", _selu.NAMES)


def ditac(x: Array, theta: Array, basis: Array, channel_dim: int = -1, *, a: float = -0.5,
          b: float = 2.0, gate: str = "gelu", alpha: float = 0.01, warp: str = "input"
          ) -> Array:
    """DiTAC's f(x) = x~ s(x) (``warp="output"``: the warp of x s(x)); theta (d,) or (C, d)
    with channels at ``channel_dim``, basis B (2N, d) (learnact.core.cpab.basis(N))."""
    cells = jnp.shape(basis)[0] // 2

    def formula(xp, x, theta, basis, channel_dim):
        return _cpab.ditac(xp, x, theta, basis, a=a, b=b, cells=cells, gate_name=gate,
                           alpha=alpha, warp=warp, channel_dim=channel_dim,
                           per_channel=len(theta.shape) == 2)

    return _call(formula, x, (theta, basis), channel_dim)


def pwlu(x: Array, knots: Array, left_slope: Array, right_slope: Array, channel_dim: int = -1,
         *, a: float = -3.0, b: float = 3.0) -> Array:
    """The piecewise-linear unit: knot values ``knots`` (N+1,) or (C, N+1) at a + j (b - a)/N,
    linear tails with slopes ``left_slope`` and ``right_slope`` (learnact.core.pwlu)."""

    def formula(xp, x, knots, left, right, channel_dim):
        return _pwlu.pwlu(xp, x, knots, left, right, a, b, channel_dim)

    return _call(formula, x, (knots, left_slope, right_slope), channel_dim)
