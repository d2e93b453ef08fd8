"""learnact for JAX: pure functions (``learnact.jax.functional``) and Flax NNX modules.

Same families, argument names, inits and spec strings as the PyTorch API, built from the
framework-neutral core (``learnact.core``); torch is never imported::

    import jax.numpy as jnp
    from flax import nnx
    import learnact.jax as lj

    act = lj.create("hermite:degree=8,channels=64")   # an nnx.Module
    y = act(jnp.ones((32, 64)))                        # channels last (channel_dim=-1)

Differences from PyTorch, by design: ``channel_dim`` defaults to -1 (JAX/Flax arrays are
channels-last); ``param_dtype`` chooses the parameters' dtype (float32 by default; float64 needs
``jax.config.update("jax_enable_x64", True)``); random inits draw from ``rngs`` (one key per
table). bf16/fp16 inputs are computed in float32 and returned in their own dtype.
Install: ``pip install 'learnact[jax]'`` (jax, flax, optax; no torch).

On the CPU, Hermite, Fourier, tropical, tropical rational, rational and SELU-variation
activations run fused kernels (``learnact.xla_native``: one forward and one backward custom
call, built on first use with the system C++ compiler); forward-mode differentiation
(``jax.jvp``, ``jax.hessian``) needs ``use_kernels(False)`` first.
"""

from __future__ import annotations

try:
    import jax  # noqa: F401
    from flax import nnx  # noqa: F401
except ModuleNotFoundError as exc:  # pragma: no cover - exercised without jax installed
    raise ImportError("learnact.jax needs jax and flax: pip install 'learnact[jax]'") from exc

from ..xla_native import use_kernels
from . import functional
from .fit import FitReport, fit
from .modules import (DERIVED, Activation, Cantor, Cantor2, DiTAC, Fixed, GEDiTAC,
                      LeakyDiTAC, LeftRight, NoisyDerivative, Perlin,
                      Staircase, SurrogateActivation, available,
                      create, parameters, regularization)

__all__ = ["functional", "Activation", "Fixed", "Perlin", "DiTAC", "LeakyDiTAC", "GEDiTAC",
           "SurrogateActivation", "Staircase", "Cantor", "Cantor2", "LeftRight",
           "NoisyDerivative", "create", "available", "parameters", "regularization", "fit",
           "FitReport", "use_kernels"]

# the classes generated from the definitions (Hermite, ..., PWLU), by class name
globals().update({c.__name__: c for c in DERIVED.values()})
__all__ += [c.__name__ for c in DERIVED.values()]
