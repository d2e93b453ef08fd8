"""Perlin noise in learnact.jax and learnact.keras against a scalar float64 reference written
from the definition (value and gradient noise, octaves, C1-linear continuation, bases)."""

from __future__ import annotations

import math

import jax.numpy as jnp
import keras
import numpy as np
import pytest
from flax import nnx

import learnact.jax as lj
import learnact.keras as lk
from learnact.core.perlin import lattices


def _scalar(x, lats, r, kind, amplitude, base):
    def noise(u, lat):
        n = len(lat) - 1
        i = min(max(math.floor(u), 0), n - 1)
        t = u - i
        if kind == "value":
            return lat[i] + (lat[i + 1] - lat[i]) * (3 * t * t - 2 * t ** 3)
        f = 6 * t ** 5 - 15 * t ** 4 + 10 * t ** 3
        return (1 - f) * lat[i] * t + f * lat[i + 1] * (t - 1)

    def inside(v):
        return sum(0.5 ** o * noise((v + r) / (2 * r) * (len(lat) - 1), lat)
                   for o, lat in enumerate(lats))

    xc = min(max(x, -r), r)
    slope = 0.0
    if kind == "gradient" and x != xc:
        end = 0 if x < 0 else -1
        slope = sum(0.5 ** o * (len(lat) - 1) / (2 * r) * lat[end] for o, lat in enumerate(lats))
    y = amplitude * (inside(xc) + (x - xc) * slope)
    b = {"none": 0.0, "identity": x, "relu": max(x, 0.0),
         "gelu": 0.5 * x * (1 + math.erf(x / math.sqrt(2)))}[base]
    return y + b


@pytest.mark.parametrize("kind", ["value", "gradient"])
@pytest.mark.parametrize("base", ["none", "gelu"])
def test_values_match_the_scalar_reference(kind, base):
    x = np.linspace(-4.5, 4.5, 181)
    lats = lattices(4, 3, seed=7)
    want = np.array([_scalar(v, lats, 2.5, kind, 0.8, base) for v in x])
    spec = f"perlin:kind={kind},resolution=4,octaves=3,radius=2.5,seed=7,amplitude=0.8,base={base}"
    m = lj.create(spec)
    np.testing.assert_allclose(np.asarray(lj.Perlin(
        kind, 4, 3, 2.5, 7, 0.8, base, param_dtype=jnp.float64)(jnp.asarray(x))), want,
        rtol=0, atol=1e-12)
    assert m(jnp.asarray(x, jnp.float32)).dtype == jnp.float32
    layer = lk.create(spec, dtype="float64")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(x)), want, rtol=0, atol=1e-12)


def test_learnable_lattices_train_and_buffers_do_not():
    fixed = lj.create("perlin")
    assert not nnx.state(fixed, nnx.Param)  # buffers only
    m = lj.create("perlin:learnable=true,octaves=2")
    grads = nnx.grad(lambda mod: mod(jnp.linspace(-2, 2, 50)).sum())(m)
    assert set(grads) == {"lattice0", "lattice1"}
    assert float(jnp.abs(grads["lattice0"][...]).sum()) > 0
    assert len(lk.create("perlin:learnable=true").trainable_weights) == 3
    assert len(lk.create("perlin").trainable_weights) == 0


def test_keras_perlin_round_trips_its_seed(tmp_path):
    layer = lk.create("perlin:seed=3,kind=gradient", channels=4)
    model = keras.Sequential([keras.Input((4,)), layer])
    model.save(tmp_path / "p.keras")
    loaded = keras.saving.load_model(tmp_path / "p.keras")
    x = np.random.default_rng(0).normal(size=(5, 4)).astype("float32")
    np.testing.assert_array_equal(model.predict(x, verbose=0), loaded.predict(x, verbose=0))
    assert loaded.layers[0].get_config()["seed"] == 3


def test_errors():
    with pytest.raises(ValueError, match="kind must be one of"):
        lj.create("perlin:kind=simplex")
    with pytest.raises(ValueError, match=r"octaves must be an integer in \[1, 12\]"):
        lk.create("perlin:octaves=13")
    with pytest.raises(TypeError, match="learnable must be True or False"):
        lj.Perlin(learnable=1)
