"""The JAX and Keras frontends' tests. They never import torch: CI also runs them in a venv
without torch (``make test-frontends``), with ``--confcutdir tests/frontends`` so that the
PyTorch suite's tests/conftest.py is not loaded there."""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "jax")  # before any keras import; CI also runs tensorflow

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)  # float64 references; float32 stays the default dtype

from learnact.core.families import FAMILIES  # noqa: E402  (THE list of learnable families)

# every family the frontends build (Perlin has its own tests: test_perlin.py), at the small
# specs its definition declares for tests: a new family joins every test below by itself.
# DiTAC's lookup table is an approximation of the exact flow these tests compare with: its own
# tests (test_jax.py test_ditac_lookup_table_*) cover it.
SPECS = [s for d in FAMILIES.values() if d.name != "perlin"
         for s in (*d.test_specs, *d.variant_specs)
         if s not in d.torch_only_specs and "lut=" not in s]
