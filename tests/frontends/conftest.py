"""The JAX and Keras frontends' tests. They never import torch: CI also runs them in a venv
without torch (``make test-frontends``), with ``--confcutdir tests/frontends`` so that the
PyTorch suite's tests/conftest.py is not loaded there."""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "jax")  # before any keras import; CI also runs tensorflow

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)  # float64 references; float32 stays the default dtype

# (spec, per-channel spec) of every family the frontends build, at small sizes
SPECS = [
    "hermite:degree=5", "hermite:degree=4,tails=linear,bound=2.5", "hermite:degree=6,init=gelu",
    "fourier:degree=4", "tropical:degree=4", "tropical_rational:degree=3", "rational",
    "rational:init=unit", "selu_variation", "selu_variation:init=unit", "ditac:cells=5",
]
