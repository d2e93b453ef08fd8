"""Hostile input to the JAX and Keras frontends, generated (the PyTorch suite's test_fuzz.py,
for learnact.jax and learnact.keras): spec strings, shapes, dtypes and channel axes, and every
family at |x| up to the float32 range. The property: a clear error (ValueError/TypeError with a
message) or a result of the input's shape and dtype, finite for finite input (and finite
wherever the float64 reference is finite and inside the float32 range). No torch here.
Examples are derandomised (LEARNACT_FUZZ=explore draws fresh ones, LEARNACT_FUZZ_SCALE=10
draws ten times as many)."""

from __future__ import annotations

import os

import jax.numpy as jnp
import keras
import numpy as np
import pytest
from flax import nnx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import learnact.jax as lj
import learnact.keras as lk

from .conftest import SPECS
from .references import evaluate

DERANDOMIZE = os.environ.get("LEARNACT_FUZZ", "") != "explore"
SCALE = int(os.environ.get("LEARNACT_FUZZ_SCALE", "1"))
SETTINGS = dict(deadline=None, derandomize=DERANDOMIZE,
                suppress_health_check=[HealthCheck.too_slow])
CLEAR = (ValueError, TypeError)
NAMES = sorted(lj.available())
VALUES = st.one_of(
    st.integers(-3, 70).map(str),
    st.sampled_from(["0", "-1", "1e308", "nan", "inf", "-inf", "1e-320", "2048", "1000000000",
                     "0.5", "true", "none", "", "linear", "gelu", "unit", "paper", "x", "1,2",
                     "=", ":", "-2"]),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)
KEYS = ["degree", "channels", "channel_dim", "init", "tails", "bound", "num_degree",
        "den_degree", "cells", "lut", "a", "b", "resolution", "octaves", "k", "approximate"]


@st.composite
def specs(draw) -> str:
    name = draw(st.one_of(st.sampled_from(NAMES), st.sampled_from(["hermitte", "", "HERMITE",
                                                                    "ditac ", "fourier:"]),
                          st.text(max_size=8)))
    pairs = draw(st.lists(st.tuples(st.one_of(st.sampled_from(KEYS), st.text(max_size=5)),
                                    VALUES), max_size=3))
    return name + (":" + ",".join(f"{k}={v}" for k, v in pairs) if pairs else "")


def _size(m) -> int:
    return sum(int(np.prod(getattr(m, n)[...].shape)) for n in getattr(m, "tensor_names", ()))


@settings(max_examples=300 * SCALE, **SETTINGS)
@given(specs())
def test_any_spec_string_builds_or_says_why_in_jax(spec: str) -> None:
    try:
        m = lj.create(spec, rngs=nnx.Rngs(0))
    except CLEAR as exc:
        assert str(exc), spec
        return
    assert _size(m) < 50_000_000, spec  # size-like parameters are capped, as in PyTorch
    x = jnp.linspace(-4, 4, 64, dtype=jnp.float32).reshape(2, 32)
    try:
        y = m(x)
    except CLEAR as exc:  # e.g. a per-channel module given no channel axis of its size
        assert str(exc)
        return
    assert y.shape == x.shape and y.dtype == x.dtype
    assert bool(jnp.isfinite(y).all()), f"{spec}: non-finite output for finite input"


@settings(max_examples=120 * SCALE, **SETTINGS)
@given(specs())
def test_any_spec_string_builds_or_says_why_in_keras(spec: str) -> None:
    try:
        layer = lk.create(spec)
    except CLEAR as exc:
        assert str(exc), spec
        return
    x = np.linspace(-4, 4, 64, dtype=np.float32).reshape(2, 32)
    try:
        y = keras.ops.convert_to_numpy(layer(x))
    except CLEAR as exc:
        assert str(exc)
        return
    assert y.shape == x.shape and y.dtype == x.dtype
    assert np.isfinite(y).all(), f"{spec}: non-finite output for finite input"


SHAPES = st.lists(st.integers(0, 5), max_size=4)
DTYPES = st.sampled_from([jnp.float32, jnp.float64, jnp.bfloat16, jnp.float16, jnp.int32,
                          jnp.bool_, jnp.complex64, jnp.uint8])


def _input(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    if jnp.issubdtype(dtype, jnp.floating) or jnp.issubdtype(dtype, jnp.complexfloating):
        return jnp.asarray(rng.normal(scale=2.0, size=shape)).astype(dtype)
    return jnp.asarray(rng.integers(0, 3, size=shape)).astype(dtype)


def _check_result_or_clear_error(call, x, dtype) -> None:
    try:
        y = call(x)
    except CLEAR as exc:
        msg = str(exc)
        assert any(w in msg for w in ("dtype", "channel", "dimension", "dim", "float")), msg
        return
    assert jnp.issubdtype(dtype, jnp.floating), f"{dtype} accepted silently"
    y = np.asarray(y)
    assert y.shape == x.shape and y.dtype == np.dtype(dtype)
    assert np.isfinite(y.astype(np.float32)).all() or dtype == jnp.float16


@settings(max_examples=200 * SCALE, **SETTINGS)
@given(st.sampled_from(SPECS), st.booleans(), SHAPES, DTYPES, st.integers(-4, 3))
def test_any_shape_and_dtype_in_jax(spec, per_channel, shape, dtype, channel_dim) -> None:
    try:
        m = lj.create(spec, channels=3 if per_channel else None, channel_dim=channel_dim,
                      rngs=nnx.Rngs(0))
    except CLEAR as exc:
        assert "channel_dim" in str(exc)
        return
    _check_result_or_clear_error(m, _input(shape, dtype), dtype)


@settings(max_examples=60 * SCALE, **SETTINGS)
@given(st.sampled_from(SPECS), st.booleans(), SHAPES, st.sampled_from([np.float32, np.float64]))
def test_any_shape_in_keras(spec, per_channel, shape, dtype) -> None:
    try:
        layer = lk.create(spec, channels=3 if per_channel else None, dtype=np.dtype(dtype).name)
    except CLEAR as exc:
        assert str(exc)
        return
    x = np.asarray(_input(shape, dtype))
    try:
        y = keras.ops.convert_to_numpy(layer(x))
    except CLEAR as exc:
        assert any(w in str(exc) for w in ("channel", "dimension", "dim", "shape", "rank")), exc
        return
    assert y.shape == x.shape and y.dtype == np.dtype(dtype)
    assert np.isfinite(y).all()


# -- |x| up to the float32 range ---------------------------------------------------------------
BIG = np.array([-3e38, -1e30, -1e20, -5e9, -1e8, -1e4, -2.5, 0.0, 0.7, 3.0, 1e4, 1e8, 5e9, 1e20,
                1e30, 3e38])
F32_MAX = float(np.finfo(np.float32).max)


def _params(m) -> dict[str, np.ndarray]:
    return {n: np.asarray(getattr(m, n)[...], dtype=np.float64) for n in m.tensor_names}


@pytest.mark.parametrize("spec", SPECS)
@pytest.mark.parametrize("numel", [len(BIG), 4096])  # 4096: the native kernels run
def test_no_overflow_before_the_true_value_overflows(spec, numel) -> None:
    """As tests/test_large_inputs.py for PyTorch: where the float64 reference (numpy, written
    from the formulas) is finite and inside the float32 range, JAX's float32 result (the
    jax.numpy formula for small inputs, the native kernel for large ones) and the Keras
    layer's are finite."""
    m = lj.create(spec, rngs=nnx.Rngs(0))
    x64 = np.resize(BIG, numel)
    want = evaluate(m.family, x64, _params(m), False, dict(m.config))
    inside = np.isfinite(want) & (np.abs(want) < F32_MAX / 2)
    got = np.asarray(m(jnp.asarray(x64, jnp.float32)), np.float64)
    bad = inside & ~np.isfinite(got)
    assert not bad.any(), f"{spec}: non-finite at x = {x64[bad][:4]}, float64 gives {want[bad][:4]}"
    layer = lk.create(spec)
    got = keras.ops.convert_to_numpy(layer(x64.astype(np.float32).reshape(1, -1)))[0]
    weights = {w.path.split("/")[-1]: np.asarray(keras.ops.convert_to_numpy(w), np.float64)
               for w in layer.weights}
    layer_want = evaluate(m.family, x64, weights, False, dict(m.config))
    inside = np.isfinite(layer_want) & (np.abs(layer_want) < F32_MAX / 2)
    bad = inside & ~np.isfinite(got.astype(np.float64))
    assert not bad.any(), f"keras {spec}: non-finite at x = {x64[bad][:4]}"
