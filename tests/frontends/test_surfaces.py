"""The JAX and Keras surfaces of every family in THE list (learnact.core.families.FAMILIES),
the regressions of the copies that drifted before the definitions were shared, and PWLU (the
first family whose every class is generated from its definition) in both frontends."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import keras
import numpy as np
import pytest
from flax import nnx

import learnact.jax as lj
import learnact.keras as lk
from learnact.core.definition import SURFACES
from learnact.core.families import FAMILIES


@pytest.mark.parametrize("surface,frontend", [("jax", lj), ("keras", lk)])
@pytest.mark.parametrize("name", list(FAMILIES))
def test_every_family_is_built_by_both_frontends_or_says_why(name, surface, frontend) -> None:
    assert surface in SURFACES
    reason = FAMILIES[name].missing.get(surface)
    has = name in frontend.available()
    assert has != bool(reason), (name, surface, reason)


@pytest.mark.parametrize("spec,match", [
    ("ditac:lambda_smooth=nan", r"lambda_smooth must be a finite number in \(0, 1e\+06\]"),
    ("hermite:bound=inf", r"bound must be a finite number"),
    ("pwlu:a=3,b=1", "pwlu needs a < b"),
    ("perlin:resolution=4096,octaves=12", r"lattice points must be <= 1048576"),
])
def test_every_frontend_refuses_the_same_specs_with_the_same_message(spec, match) -> None:
    with pytest.raises(ValueError, match=match):
        lj.create(spec, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match=match):
        lk.create(spec)


def test_numpy_scalars_are_accepted_where_python_numbers_are() -> None:
    m = lj.create("hermite", channels=np.int64(4), bound=np.float32(2))
    assert m.coeffs[...].shape == (4, 9) and dict(m.config)["bound"] == 2.0
    layer = lk.create("hermite", channels=np.int32(4), degree=np.int64(3))
    assert layer.channels == 4 and isinstance(layer.channels, int)


@pytest.mark.parametrize("cd", [5, -3])
def test_functional_channel_dim_out_of_range_is_refused(cd) -> None:
    with pytest.raises(ValueError, match=f"channel_dim={cd} is out of range"):
        lj.functional.hermite(jnp.ones((2, 3)), jnp.ones((3, 6)), channel_dim=cd)


@pytest.mark.parametrize("kernels", [True, False])
def test_hermite_tails_derivative_at_infinity_is_the_bound_slope(kernels) -> None:
    lj.use_kernels(kernels)
    try:
        c = jnp.asarray(np.random.default_rng(0).normal(size=6))
        lo, hi = jnp.asarray(-3.0), jnp.asarray(3.0)
        x = jnp.array([-jnp.inf, -4.0, 0.5, 4.0, jnp.inf])
        g = jax.grad(lambda x: lj.functional.hermite(x, c, -1, lo, hi).sum())(x)
        assert np.isfinite(np.asarray(g)).all()
        assert g[0] == g[1] and g[3] == g[4]  # the tail slopes f'(lo), f'(hi)
    finally:
        lj.use_kernels(True)


def _pwlu_reference(x, knots, k_l, k_r, a, b):
    pos = np.linspace(a, b, knots.shape[-1])
    return (np.interp(x, pos, knots) + np.where(x < a, k_l * (x - a), 0.0)
            + np.where(x > b, k_r * (x - b), 0.0))


@pytest.mark.parametrize("channels", [None, 3])
def test_pwlu_in_jax_and_keras_against_numpy_interp(channels) -> None:
    m = lj.PWLU(segments=5, a=-2.0, b=2.5, channels=channels, param_dtype=jnp.float64,
                rngs=nnx.Rngs(0))
    rng = np.random.default_rng(1)
    m.knots[...] = m.knots[...] + 0.1 * rng.normal(size=m.knots[...].shape)
    x = jnp.asarray(rng.normal(size=(7, 3)) * 3)
    y = np.asarray(m(x))
    kn = np.broadcast_to(np.asarray(m.knots[...]), (3, 6))
    kl = np.broadcast_to(np.asarray(m.left_slope[...]), (3,))
    kr = np.broadcast_to(np.asarray(m.right_slope[...]), (3,))
    for c in range(3):
        want = _pwlu_reference(np.asarray(x[:, c]), kn[c], kl[c], kr[c], -2.0, 2.5)
        assert np.abs(y[:, c] - want).max() <= 1e-12 * max(1.0, np.abs(want).max())
    layer = lk.PWLU(segments=5, a=-2.0, b=2.5, channels=channels, dtype="float64")
    layer.build((7, 3))
    for n in ("knots", "left_slope", "right_slope"):
        getattr(layer, n).assign(np.asarray(getattr(m, n)[...]))
    assert np.abs(np.asarray(layer(x)) - y).max() <= 1e-12 * max(1.0, np.abs(y).max())
    g = jax.grad(lambda x: m(x).sum())(x)
    assert np.isfinite(np.asarray(g)).all()
    model = keras.Sequential([keras.Input((3,)), lk.create("pwlu:segments=4,channels=3")])
    cfg = model.layers[0].get_config()
    assert cfg["segments"] == 4 and cfg["channels"] == 3
