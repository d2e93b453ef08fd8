"""The surrogate-derivative activations in learnact.jax and learnact.keras: the forward against
scalar references written from the definitions, the backward equal to the declared derivative
(not the forward's own), on whichever Keras backend runs the suite. No torch."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import keras
import numpy as np
import pytest

import learnact.jax as lj
import learnact.keras as lk

X = np.linspace(-4.0, 4.0, 81)
W = np.cos(np.arange(81.0))  # upstream gradient with both signs


def _staircase(x, n=8, w=0.5):
    return w * (min(max(math.floor(x / w + n / 2), 0), n) - n / 2)


def _cantor(x, depth=4, lo=-3.0, hi=3.0):
    u = min(max((x - lo) / (hi - lo), 0.0), 1.0)
    value, scale = 0.0, 0.5
    for _ in range(depth):  # ternary digits: a 1 ends the expansion (the middle third is flat)
        d = min(max(math.floor(u * 3), 0), 2)
        if d >= 1:
            value += scale
        if d == 1:
            break
        u, scale = u * 3 - d, scale / 2
    return lo + (hi - lo) * value


def _declared(name, x, g):
    if name == "staircase":
        s = 0.0
        for j in range(1, 9):
            b = (j - 4) * 0.5
            sg = 1 / (1 + math.exp(-2.0 * (x - b) / 0.5))
            s += 2.0 * sg * (1 - sg)
        return g * s
    if name == "cantor":
        return 0.0
    if name == "cantor2":
        return g
    return g if g < 0 else (g if x > 0 else 0.0)


FORWARD = {"staircase": _staircase, "cantor": _cantor, "cantor2": _cantor,
           "left_right": lambda x: max(x, 0.0)}


def _keras_grad(layer, x, w):
    backend = keras.backend.backend()
    if backend == "jax":
        return np.asarray(jax.grad(lambda t: (layer(t) * w).sum())(jnp.asarray(x)))
    if backend == "tensorflow":
        import tensorflow as tf

        t = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(t)
            out = tf.reduce_sum(layer(t) * w)
        return tape.gradient(out, t).numpy()
    pytest.fail(f"no gradient helper for backend {backend}")


@pytest.mark.parametrize("name", sorted(FORWARD))
def test_forward_and_declared_backward(name):
    want = np.array([FORWARD[name](v) for v in X])
    dwant = np.array([_declared(name, v, g) for v, g in zip(X, W)])
    m = lj.create(name)
    np.testing.assert_allclose(np.asarray(m(jnp.asarray(X))), want, rtol=0, atol=1e-12)
    g = jax.grad(lambda t: (m(t) * W).sum())(jnp.asarray(X))
    np.testing.assert_allclose(np.asarray(g), dwant, rtol=1e-12, atol=1e-12)
    layer = lk.create(name, dtype="float64")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(X)), want, rtol=0, atol=1e-12)
    np.testing.assert_allclose(_keras_grad(layer, X, W), dwant, rtol=1e-12, atol=1e-12)


def test_half_precision_and_errors():
    y = lj.create("staircase")(jnp.asarray(X, jnp.bfloat16))
    assert y.dtype == jnp.bfloat16
    with pytest.raises(ValueError, match=r"depth must be an integer in \[1, 30\]"):
        lj.create("cantor:depth=0")
    with pytest.raises(ValueError, match="cantor needs lo < hi"):
        lk.create("cantor2:lo=1,hi=0")
    with pytest.raises(TypeError, match="has no parameter 'step'; did you mean 'steps'"):
        lk.create("staircase:step=3")
    assert {"staircase", "cantor", "cantor2", "left_right"} <= set(lj.available(False))
    assert not {"staircase", "cantor"} & set(lk.available(True))


def test_keras_surrogate_round_trips(tmp_path):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(3), lk.create(
        "staircase:steps=4,width=1.0"), keras.layers.Dense(1)])
    x = np.random.default_rng(0).normal(size=(8, 3)).astype("float32")
    model.compile(optimizer="adam", loss="mse")
    model.fit(x, x[:, :1], epochs=1, verbose=0)
    model.save(tmp_path / "s.keras")
    loaded = keras.saving.load_model(tmp_path / "s.keras")
    np.testing.assert_array_equal(model.predict(x, verbose=0), loaded.predict(x, verbose=0))
    assert loaded.layers[1].get_config()["steps"] == 4
