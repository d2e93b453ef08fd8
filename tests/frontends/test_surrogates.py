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
from flax import nnx

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


def _keras_grad_training(layer, x, w, training):
    """d sum(layer(x, training) w)/dx on the running backend."""
    backend = keras.backend.backend()
    if backend == "jax":
        return np.asarray(jax.grad(lambda t: (layer(t, training=training) * w).sum())(
            jnp.asarray(x)))
    import tensorflow as tf

    t = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(t)
        out = tf.reduce_sum(layer(t, training=training) * w)
    return tape.gradient(out, t).numpy()


# classical derivatives from their definitions (central differences of the float64 math
# functions, away from the kinks) for noisy's base
_BASES = {"relu": lambda x: max(x, 0.0), "silu": lambda x: x / (1 + math.exp(-x)),
          "gelu": lambda x: 0.5 * x * (1 + math.erf(x / math.sqrt(2))), "tanh": math.tanh,
          "elu": lambda x: x if x > 0 else math.expm1(x),
          "softplus": lambda x: math.log1p(math.exp(x)),
          "selu": lambda x: 1.0507009873554805 * (x if x > 0 else 1.6732632423543772
                                                  * math.expm1(x))}


@pytest.mark.parametrize("base", sorted(_BASES))
def test_noisy_derivative(base):
    """noisy: base's forward; backward base'(x) g without noise (JAX after eval(), Keras
    outside training), base'(x) g u with u in [lower, upper] while training, the noise
    changing from call to call (JAX: the module's key stream) and reproducible from the
    seed."""
    f = _BASES[base]
    x = X[np.abs(X) > 0.05]  # off relu/elu/selu's kink
    w = W[: x.size]
    h = 1e-6
    d = np.array([(f(v + h) - f(v - h)) / (2 * h) for v in x])
    m = lj.create(f"noisy:base={base},lower=0.25,upper=0.75,seed=3")
    np.testing.assert_allclose(np.asarray(m(jnp.asarray(x))), [f(v) for v in x], atol=1e-12)
    # nnx.grad carries the module's key stream out of the trace (as for nnx.Dropout)
    loss = nnx.grad(lambda m, t: (m(t) * w).sum(), argnums=1)
    m = lj.create(f"noisy:base={base},lower=0.25,upper=0.75,seed=3")

    def grad(t):
        return loss(m, t)

    g1, g2 = np.asarray(grad(jnp.asarray(x))), np.asarray(grad(jnp.asarray(x)))
    live = np.abs(d * w) > 1e-9
    for g in (g1, g2):
        ratio = g[live] / (d * w)[live]
        assert ratio.min() >= 0.25 - 1e-9 and ratio.max() <= 0.75 + 1e-9 and ratio.std() > 0.05
    assert not np.allclose(g1, g2)  # a fresh key per call
    again = lj.create(f"noisy:base={base},lower=0.25,upper=0.75,seed=3")
    np.testing.assert_array_equal(np.asarray(loss(again, jnp.asarray(x))), g1)
    m.eval()
    np.testing.assert_allclose(np.asarray(grad(jnp.asarray(x))), d * w, rtol=1e-6, atol=1e-9)
    layer = lk.create(f"noisy:base={base},lower=0.25,upper=0.75", seed=3, dtype="float64")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(x)), [f(v) for v in x],
                               atol=1e-12)
    np.testing.assert_allclose(_keras_grad_training(layer, x, w, None), d * w, rtol=1e-6,
                               atol=1e-9)
    ratio = _keras_grad_training(layer, x, w, True)[live] / (d * w)[live]
    assert ratio.min() >= 0.25 - 1e-9 and ratio.max() <= 0.75 + 1e-9 and ratio.std() > 0.05


def test_noisy_errors_and_config():
    with pytest.raises(ValueError, match="noisy needs lower <= upper"):
        lj.create("noisy:lower=2,upper=1")
    with pytest.raises(ValueError, match="base must be one of"):
        lk.create("noisy:base=hermite")
    assert "noisy" in lj.available(False) and "noisy" in lk.available(False)
    layer = lk.create("noisy:base=silu,lower=0.1,upper=0.2", seed=7)
    again = lk.NoisyDerivative.from_config(layer.get_config())
    assert (again.base, again.lower, again.upper, again.seed) == ("silu", 0.1, 0.2, 7)
