"""learnact.keras: values against independent float64 references, serialisation, model.fit,
dtype policies, errors and seeding. Runs on whichever backend KERAS_BACKEND names (CI: jax and
tensorflow, each in its own process; no torch)."""

from __future__ import annotations

import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import learnact.keras as lk

from .conftest import SPECS
from .references import evaluate


def _perturbed(spec: str, channels: int | None = None, seed: int = 0, **kw):
    layer = lk.create(spec, channels=channels, dtype="float64", **kw)
    rng = np.random.default_rng(seed)
    for w in layer.trainable_weights:
        w.assign(keras.ops.convert_to_numpy(w) + 0.1 * rng.normal(size=w.shape))
    return layer


def _params(layer) -> dict[str, np.ndarray]:
    return {w.name: keras.ops.convert_to_numpy(w) for w in layer.weights}


def test_import_never_imports_torch():
    code = ("import sys, numpy as np, learnact.keras as lk\n"
            "lk.create('hermite:degree=8,channels=4')(np.ones((2, 4), 'float32'))\n"
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300, env=os.environ | {"KERAS_BACKEND": keras.backend.backend()})
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "False"


@pytest.mark.parametrize("spec", SPECS)
@pytest.mark.parametrize("channels", [None, 3])
def test_values_match_the_float64_reference(spec, channels):
    layer = _perturbed(spec, channels)
    x = np.random.default_rng(1).normal(scale=2.0, size=(5, 3))
    x[0, 0] = 0.0
    got = keras.ops.convert_to_numpy(layer(x))
    want = evaluate(layer.family, x, _params(layer), channels is not None,
                    layer._kw)
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10 * np.abs(want).max())


def test_buffers_are_not_trainable():
    h = lk.create("hermite:tails=linear")
    assert [w.name for w in h.trainable_weights] == ["coeffs"]
    assert sorted(w.name for w in h.non_trainable_weights) == ["hi", "lo"]
    t = lk.create("tropical")
    assert [w.name for w in t.non_trainable_weights] == ["slopes"]


def _model(act: str) -> keras.Model:
    return keras.Sequential([keras.Input((2,)),
                             keras.layers.Dense(16, kernel_initializer=keras.initializers
                                                .GlorotUniform(seed=0)),
                             lk.create(act) if act == "gelu" else lk.create(act, channels=16),
                             keras.layers.Dense(1, kernel_initializer=keras.initializers
                                                .GlorotUniform(seed=1))])


@pytest.mark.parametrize("spec", ["hermite:degree=4", "tropical_rational:degree=3",
                                  "rational", "gelu"])
def test_save_load_round_trip(spec, tmp_path):
    model = _model(spec)
    x = np.random.default_rng(0).normal(size=(8, 2)).astype("float32")
    model.compile(optimizer="adam", loss="mse")
    model.fit(x, x[:, :1], epochs=2, verbose=0)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_array_equal(model.predict(x, verbose=0), loaded.predict(x, verbose=0))
    assert loaded.layers[1].get_config() == model.layers[1].get_config()
    for a, b in zip(model.layers[1].weights, loaded.layers[1].weights):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(a),
                                      keras.ops.convert_to_numpy(b))


def test_fit_lowers_the_loss_and_trains_the_activation():
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.uniform(-2, 2, size=(256, 2)).astype("float32")
    y = (np.sin(2 * x[:, :1]) * np.cos(x[:, 1:])).astype("float32")
    model = _model("fourier:degree=4")
    before = keras.ops.convert_to_numpy(model.layers[1].amplitude).copy()
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    hist = model.fit(x, y, epochs=40, batch_size=64, verbose=0).history["loss"]
    assert hist[-1] < 0.3 * hist[0]
    assert not np.allclose(before, keras.ops.convert_to_numpy(model.layers[1].amplitude))


def test_mixed_bfloat16_policy():
    full = lk.create("hermite:degree=6,channels=3", seed=0)
    half = lk.create("hermite:degree=6,channels=3", seed=0, dtype="mixed_bfloat16")
    x = np.random.default_rng(0).normal(size=(4, 3)).astype("float32")
    y = half(x)
    assert keras.backend.standardize_dtype(y.dtype) == "bfloat16"
    assert keras.backend.standardize_dtype(half.coeffs.dtype) == "float32"
    ref = keras.ops.convert_to_numpy(full(x))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(keras.ops.cast(y, "float32")), ref,
                               rtol=2e-2, atol=2e-2 * np.abs(ref).max())


@pytest.mark.parametrize("spec", [*SPECS, *(k for k in sorted(lk.layers._SURROGATES)
                                             if k != "perlin")])
def test_mixed_bfloat16_model_fit(spec):
    """Every layer trains under the mixed_bfloat16 policy on this backend. On TensorFlow
    DiTAC's prior loss came out in bfloat16 (the step failed adding it to the float32 data
    loss) and noisy's gradient mixed bfloat16 and float32: weights are now read at float32
    (``autocast=False``; the math runs in float32, as PyTorch's) and losses are float32."""
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        act = lk.create(spec)
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8), act,
                                  keras.layers.Dense(1)])
        model.compile(optimizer="adam", loss="mse")
        rng = np.random.default_rng(0)
        hist = model.fit(rng.normal(size=(32, 4)).astype("float32"),
                         rng.normal(size=(32, 1)).astype("float32"), epochs=2, verbose=0)
        assert np.isfinite(hist.history["loss"]).all()
        assert all(keras.backend.standardize_dtype(w.dtype) == "float32" for w in act.weights)
        model(np.ones((2, 4), "float32"))
        assert all(keras.backend.standardize_dtype(v.dtype) == "float32" for v in model.losses)
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_seed_selu_variation_formula():
    layer = lk.SELUVariation(dtype="float64")
    x = np.array([-1e4, -3.0, -0.5, 0.0, 0.5, 1e4])
    y = keras.ops.convert_to_numpy(layer(x))
    xn = np.minimum(x, 0)
    want = 1.0507 * np.where(x > 0, x, 1.67326 * np.expm1(xn) + 0.1 * np.sin(2 * xn))
    np.testing.assert_allclose(y, want, rtol=1e-6, atol=1e-12)
    assert np.isfinite(y).all() and y[3] == 0.0


def test_errors_match_the_torch_api():
    with pytest.raises(ValueError, match=r"unknown activation 'hermit'; did you mean 'hermite'"):
        lk.create("hermit")
    with pytest.raises(ValueError, match=r"degree must be an integer in \[1, 64\], got 65"):
        lk.create("fourier:degree=65")
    with pytest.raises(TypeError, match="has no parameter 'chanels'; did you mean 'channels'"):
        lk.create("hermite:chanels=3")
    layer = lk.create("tropical:channels=4")
    with pytest.raises(ValueError, match=r"input has 3 channels along channel_dim=-1"):
        layer(np.ones((2, 3), "float32"))
    with pytest.raises(TypeError, match="floating-point"):
        layer(np.ones((2, 4), "int32"))
    with pytest.raises(ValueError, match="activation must be one of"):
        lk.Fixed("rellu")


def test_seeded_random_init():
    a = lk.TropicalRational(3, channels=2, init="paper", seed=0)
    b = lk.TropicalRational(3, channels=2, init="paper", seed=0)
    c = lk.TropicalRational(3, channels=2, init="paper", seed=1)
    pa, pb, pc = _params(a), _params(b), _params(c)
    np.testing.assert_array_equal(pa["num_coeffs"], pb["num_coeffs"])
    assert not np.allclose(pa["num_coeffs"], pc["num_coeffs"])
    assert not np.allclose(pa["num_coeffs"], pa["den_coeffs"])
    assert not np.allclose(pa["num_slopes"][0], pa["num_slopes"][1])


def test_fixed_baselines_follow_torch_defaults():
    x = np.linspace(-3, 3, 7)
    gelu = keras.ops.convert_to_numpy(lk.create("gelu", dtype="float64")(x))
    from math import erf, sqrt
    np.testing.assert_allclose(gelu, [0.5 * v * (1 + erf(v / sqrt(2))) for v in x], rtol=1e-12)
    leaky = keras.ops.convert_to_numpy(lk.create("leaky_relu:negative_slope=0.2",
                                                 dtype="float64")(x))
    np.testing.assert_allclose(leaky, np.where(x > 0, x, 0.2 * x))


def test_ditac_adds_its_prior_to_the_losses_and_round_trips(tmp_path):
    from learnact.core.cpab import precision

    layer = lk.DiTAC(cells=5, channels=3, seed=4, dtype="float64", lambda_reg=0.3)
    again = lk.DiTAC(cells=5, channels=3, seed=4, dtype="float64", lambda_reg=0.3)
    theta = keras.ops.convert_to_numpy(layer.theta)
    np.testing.assert_array_equal(theta, keras.ops.convert_to_numpy(again.theta))
    assert theta.shape == (3, 4) and not np.allclose(theta[0], theta[1])
    y = layer(np.random.default_rng(0).normal(size=(4, 3)))
    P = precision(5).astype(np.float32).astype(np.float64)
    want = 0.3 * float(np.einsum("ci,ij,cj->", theta, P, theta))
    assert len(layer.losses) == 1
    assert float(keras.ops.convert_to_numpy(layer.losses[0])) == pytest.approx(want, rel=1e-10)
    assert not [w for w in layer.trainable_weights if w.name == "basis"]
    model = keras.Sequential([keras.Input((3,)), layer])
    model.save(tmp_path / "d.keras")
    loaded = keras.saving.load_model(tmp_path / "d.keras")
    x = np.random.default_rng(1).normal(size=(5, 3))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(x)),
                               keras.ops.convert_to_numpy(model(x)), rtol=0, atol=1e-13)
    assert keras.ops.convert_to_numpy(y).shape == (4, 3)
    with pytest.raises(ValueError, match="prior must be one of"):
        lk.create("ditac:prior=implicit")
    lut = lk.create("ditac:lut=64,cells=5", seed=4, dtype="float64")
    grid = -0.5 + 2.5 * np.arange(64) / 63
    ref = lk.create("ditac:cells=5", seed=4, dtype="float64")
    ref.theta.assign(keras.ops.convert_to_numpy(lut.theta))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(lut(grid)),
                               keras.ops.convert_to_numpy(ref(grid)), rtol=0, atol=1e-12)


def _value_and_grads(layer, x: np.ndarray, w: np.ndarray, training: bool | None = None):
    """sum(layer(x) w) and its gradients in x and the layer's trainable weights, by the
    backend's own autodiff (the layer's custom gradients included)."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        xv = tf.Variable(x)
        with tf.GradientTape() as tape:
            y = tf.reduce_sum(layer(xv, training=training) * w)
        grads = tape.gradient(y, [xv, *layer.trainable_weights])
        return float(y), [np.asarray(g) for g in grads]
    import jax

    layer(x)  # built (stateless_call needs it)
    tv = [v.value for v in layer.trainable_weights]
    ntv = [v.value for v in layer.non_trainable_weights]

    def f(x, tv):
        return (layer.stateless_call(tv, ntv, x, training=training)[0] * w).sum()

    y, (gx, gt) = jax.value_and_grad(f, (0, 1))(x, tv)
    return float(y), [np.asarray(gx), *(np.asarray(g) for g in gt)]


@pytest.mark.parametrize("spec,channels", [("ditac:cells=6", None), ("ditac:cells=5", 3),
                                           ("ditac:cells=4,gate=silu,warp=output", None)])
def test_ditac_gradients_match_finite_differences(spec, channels):
    """DiTAC's exact flow carries its analytic derivative (keras.ops.custom_gradient, on every
    backend): gradients in x and theta against central differences, float64."""
    layer = _perturbed(spec, channels, seed=3, lambda_reg=0.0)
    rng = np.random.default_rng(5)
    x = rng.uniform(-0.8, 2.3, size=(7, 3))
    w = rng.normal(size=x.shape)
    _, (gx, gt) = _value_and_grads(layer, x, w)
    h = 1e-6

    def value(x):
        return float(np.sum(keras.ops.convert_to_numpy(layer(x)) * w))

    fd = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[i] = h
        fd[i] = (value(x + e) - value(x - e)) / (2 * h)
    np.testing.assert_allclose(gx, fd, rtol=1e-5, atol=1e-6)
    theta = layer.trainable_weights[0]
    t0 = keras.ops.convert_to_numpy(theta)
    fdt = np.zeros_like(t0)
    for i in np.ndindex(t0.shape):
        e = np.zeros_like(t0)
        e[i] = h
        theta.assign(t0 + e)
        up = value(x)
        theta.assign(t0 - e)
        fdt[i] = (up - value(x)) / (2 * h)
    theta.assign(t0)
    np.testing.assert_allclose(gt, fdt, rtol=1e-5, atol=1e-6)
    assert np.abs(fdt).max() > 1e-3


def test_ditac_released_prior_reproduces_the_released_update():
    """prior="released": no prior loss; with training=True theta's gradient is
    d g + 2 lambda theta * colsum(P); without it (inference) g."""
    kw = dict(seed=4, dtype="float64", lambda_reg=0.3, channels=3)
    plain = lk.create("ditac:cells=5", **kw)
    rel = lk.create("ditac:cells=5,prior=released", **kw)
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 2.5, size=(9, 3))
    w = rng.normal(size=x.shape)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(rel(x)),
                                  keras.ops.convert_to_numpy(plain(x)))
    assert float(rel.prior_loss()) == 0.0 and not rel.losses
    assert float(plain.prior_loss()) > 0
    _, (_, g) = _value_and_grads(plain, x, w, training=True)
    theta = keras.ops.convert_to_numpy(plain.theta)
    P = np.asarray(plain._precision, dtype=np.float64)
    want = theta.shape[-1] * g + 2 * 0.3 * theta * P.sum(0)
    np.testing.assert_allclose(_value_and_grads(rel, x, w, training=True)[1][1], want,
                               rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(_value_and_grads(rel, x, w)[1][1], g, rtol=1e-12, atol=1e-14)
