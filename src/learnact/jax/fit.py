"""Fit a learnact.jax activation to a target function, value and derivative (Flax NNX).

``fit(module, "gelu")`` moves the module's parameters to minimise

    sum_i w_i [(f(x_i) - y_i)^2 + derivative_weight (f'(x_i) - y'_i)^2]

over the domain's points (``"normal"``: Gauss-Hermite nodes of N(0, sigma^2); ``(lo, hi)``:
Gauss-Legendre nodes, uniform weight; an array: the observed samples) by L-BFGS (optax) on
every parameter, the same objective as PyTorch's ``learnact.fit`` (which solves the families
linear in their parameters in closed form; here the optimiser reaches the same minimum for
them, the tests check Hermite against the least-squares solution). f' is autodiff's (DiTAC's
exact flow included: its custom derivative is itself differentiable). Per-channel modules fit
every channel to the same target. The module changes only when the fit succeeds (finite
parameters and error); it returns a :class:`FitReport` measured on the domain.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from .._frontend import FIXED_NAMES
from .._validate import check_float, check_int
from ..core.quadrature import fit_domain

__all__ = ["FitReport", "fit", "domain_points"]


@dataclass
class FitReport:
    """What a fit achieved on its domain (``normal``: errors on [-3 sigma, 3 sigma])."""

    max_error: float
    rms_error: float
    max_deriv_error: float
    rms_deriv_error: float
    steps: int
    seconds: float
    domain: str
    points: int

    def __str__(self) -> str:
        return (f"fit [{self.domain}, {self.points} points, {self.steps} L-BFGS steps, "
                f"{self.seconds:.2f} s]: max |f - target| {self.max_error:.3g}, "
                f"rms {self.rms_error:.3g}; max |f' - target'| {self.max_deriv_error:.3g}")


def domain_points(domain: Any, sigma: float = 1.0, points: int | None = None
                  ) -> tuple[np.ndarray, np.ndarray, str]:
    """(points, weights summing to 1, description) of a fitting domain, float64 numpy:
    "normal" and intervals by :func:`learnact.core.quadrature.fit_domain`, samples here."""
    if isinstance(domain, str) or (isinstance(domain, (tuple, list)) and len(domain) == 2):
        return fit_domain(domain, sigma, points)
    s = np.asarray(domain, dtype=np.float64).reshape(-1)
    s = s[np.isfinite(s)]
    if s.size == 0 or not s.max() - s.min() > 1e-9 * max(1.0, float(np.abs(s).max())):
        raise ValueError("domain samples must be finite and have spread (not constant); give "
                         "samples, an interval or 'normal'")
    return s, np.full(s.size, 1.0 / s.size), f"empirical ({s.size} samples)"


def _target_fn(target: Any) -> Callable[[Any], Any]:
    if isinstance(target, str):
        from .modules import Fixed

        if target not in FIXED_NAMES:
            raise ValueError(f"target: a classical activation's name ({', '.join(FIXED_NAMES)}), "
                             f"a module or a function, got {target!r}")
        return Fixed(target)
    if callable(target):
        return target
    raise TypeError(f"target must be a name, a module or a function, got {type(target).__name__}")


def fit(module: nnx.Module, target: Any, *, domain: Any = "normal", sigma: float = 1.0,
        derivative_weight: float = 1.0, steps: int = 300, points: int | None = None
        ) -> FitReport:
    """Fit ``module`` (a learnable learnact.jax activation, changed in place) to ``target``
    (a classical activation's name such as ``"gelu"``, another module, or a jnp function) on
    ``domain``; ``derivative_weight`` weighs the derivative's squared error, ``steps`` bounds
    the L-BFGS iterations. Returns a :class:`FitReport`."""
    sigma = check_float("sigma", sigma, 0.0, lo_open=True)
    dw = check_float("derivative_weight", derivative_weight, 0.0)
    steps = check_int("steps", steps, 1)
    graphdef, params, rest = nnx.split(module, nnx.Param, ...)
    leaves = jax.tree_util.tree_leaves(params)
    if not leaves:
        raise ValueError(f"fit: {type(module).__name__} has no trainable parameters")
    fn = _target_fn(target)
    dtype = jnp.result_type(*leaves)
    x_np, w_np, desc = domain_points(domain, sigma, points)
    x, w = jnp.asarray(x_np, dtype), jnp.asarray(w_np, dtype)
    channels = getattr(module, "channels", None)
    # 2-D input for a per-channel module: points along one axis, channels along its channel axis
    axis = None if channels is None else getattr(module, "channel_dim", -1) % 2
    y = fn(x)
    dy = jax.grad(lambda s: fn(s).sum())(x)

    def spread(t: Any) -> Any:  # (n,) -> the input's layout, (n, C) or (C, n)
        return t if axis is None else jnp.expand_dims(t, axis)

    xin = x if axis is None else spread(x) + jnp.zeros((1, channels) if axis else (channels, 1),
                                                       dtype)
    wb, ref, dref = spread(w), spread(y), spread(dy)

    def values(p: Any, t: Any) -> tuple[Any, Any]:
        f = lambda s: nnx.merge(graphdef, p, rest)(s)  # noqa: E731
        return f(t), jax.grad(lambda s: f(s).sum())(t)

    def loss(p: Any) -> Any:
        f, df = values(p, xin)
        return jnp.sum(wb * ((f - ref) ** 2 + dw * (df - dref) ** 2))

    opt = optax.lbfgs()
    vg = optax.value_and_grad_from_state(loss)

    @jax.jit
    def step(p: Any, state: Any) -> tuple[Any, Any, Any]:
        value, grad = vg(p, state=state)
        updates, state = opt.update(grad, state, p, value=value, grad=grad, value_fn=loss)
        return optax.apply_updates(p, updates), state, value

    start = time.perf_counter()
    p, state = params, opt.init(params)
    done = 0
    for done in range(1, steps + 1):
        p, state, _ = step(p, state)
        gnorm = optax.tree_utils.tree_norm(optax.tree_utils.tree_get(state, "grad"))
        if float(gnorm) < 1e-12:
            break
    new = jax.tree_util.tree_leaves(p)
    if not all(bool(jnp.isfinite(v).all()) for v in new) or not bool(jnp.isfinite(loss(p))):
        raise ValueError("fit: the optimisation diverged (non-finite parameters or error); "
                         "the module is unchanged: try a smaller domain or derivative_weight")
    nnx.update(module, p)
    f, df = values(p, xin)
    inside = (np.abs(x_np) <= 3 * sigma) if isinstance(domain, str) else np.ones(x_np.size, bool)

    def per_point(t: Any) -> np.ndarray:  # (n, channels or 1)
        a = np.abs(np.asarray(t, dtype=np.float64))
        return a.reshape(x.size, -1) if axis in (None, 1) else a.T

    err, derr = per_point(f - ref), per_point(df - dref)
    rms = float(np.sqrt((w_np[:, None] * err ** 2).sum(0).max()))
    drms = float(np.sqrt((w_np[:, None] * derr ** 2).sum(0).max()))
    return FitReport(float(err[inside].max()), rms, float(derr[inside].max()), drms, done,
                     time.perf_counter() - start, desc, int(x.size))
