"""learnact.xla_native.ditac: DiTAC's fused JAX CPU kernels (exact flow and lookup table)
against the jax.numpy formulas of learnact.core.cpab (the kernels off): values and the
gradients in x and theta for every gate, layout and dtype, second derivatives, jit and vmap,
the modules and Keras lowering to the calls, the fallbacks, and thread-count independence.
No torch here."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import learnact.jax as lj
from learnact import xla_native
from learnact.core import cpab
from learnact.xla_native import ditac as xd
from learnact.xla_native.ditac import JNP  # with DiTAC's kernels

from .pinned import last_lines_on_one_and_all_cpus

CELLS = 16
B = cpab.basis(CELLS)


@pytest.fixture(autouse=True)
def _kernels_on():
    assert xd.available(), "CI has a C++ compiler: never test only the fallback"
    yield
    xla_native.use_kernels(True)


def _rel(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / (1e-30 + np.max(np.abs(b))))


def _f(x, theta, *, on, lut, gate, channel_dim=-1, per_channel=False, warp="input"):
    xla_native.use_kernels(on)
    try:
        return cpab.ditac(JNP, x, theta, jnp.asarray(B, x.dtype), a=-0.5, b=2.0, cells=CELLS,
                          gate_name=gate, alpha=0.01, warp=warp, channel_dim=channel_dim,
                          per_channel=per_channel, lut=lut)
    finally:
        xla_native.use_kernels(True)


# (channels, channel_dim, shape): shared; channels last; a middle channel axis (runs of one
# channel); odd sizes (partial blocks)
LAYOUTS = [(None, -1, (3, 37, 7)), (7, -1, (3, 50, 7)), (5, 1, (2, 5, 41))]


# every gate on the first layout, every layout with the GELU gate
CASES = [(g, LAYOUTS[0]) for g in cpab.GATES] + [("gelu", lay) for lay in LAYOUTS[1:]]


@pytest.mark.parametrize("lut", [None, 256])
@pytest.mark.parametrize("gate,layout", CASES)
@pytest.mark.parametrize("dtype,tol", [(jnp.float64, 1e-9), (jnp.float32, 2e-5)])
def test_values_and_gradients_match_the_formula(lut, gate, layout, dtype, tol):
    channels, cd, shape = layout
    rng = np.random.default_rng(0)
    # inputs across the window [-0.5, 2] and beyond; theta moved off zero (points cross knots)
    x = jnp.asarray(rng.uniform(-1.5, 3.0, size=shape), dtype)
    theta = jnp.asarray(0.7 * rng.normal(size=((channels,) if channels else ()) + (B.shape[1],)),
                        dtype)
    g = jnp.asarray(rng.normal(size=shape), dtype)
    kw = dict(lut=lut, gate=gate, channel_dim=cd, per_channel=channels is not None)
    got, want = [_value_and_vjp(on, x, theta, g, **kw) for on in (True, False)]
    assert got[0].dtype == dtype
    for a, b in zip(got, want):  # f, dL/dx, dL/dtheta
        assert _rel(a, b) <= tol


def _value_and_vjp(on, x, theta, g, jit=True, **kw):
    """f and its VJP (dL/dx, dL/dtheta) with the kernels on or off, under jax.jit (one
    compilation; eagerly every small operation of the formula compiles on its own)."""
    def run(x, theta, g):
        y, vjp = jax.vjp(lambda x, t: _f(x, t, on=on, **kw), x, theta)
        return (y, *vjp(g))
    return (jax.jit(run) if jit else run)(x, theta, g)


@pytest.mark.parametrize("lut", [None, 256])
def test_eager_calls_match_jit(lut):
    """The same kernels outside jax.jit (eager nnx training): the formula's result under jit."""
    rng = np.random.default_rng(2)
    x = jnp.asarray(rng.uniform(-1.5, 3.0, size=(3, 50, 7)), jnp.float32)
    theta = jnp.asarray(0.7 * rng.normal(size=(7, B.shape[1])), jnp.float32)
    g = jnp.asarray(rng.normal(size=x.shape), jnp.float32)
    kw = dict(lut=lut, gate="gelu", channel_dim=-1, per_channel=True)
    got = _value_and_vjp(True, x, theta, g, jit=False, **kw)
    want = _value_and_vjp(False, x, theta, g, **kw)
    for a, b in zip(got, want):
        assert _rel(a, b) <= 2e-5


def test_the_kernels_run_and_fall_back_where_they_do_not_apply():
    x = jnp.linspace(-1.0, 2.5, 64, dtype=jnp.float32)
    theta = jnp.full((B.shape[1],), 0.3, jnp.float32)
    for lut, target in ((None, "learnact_ditac_flow_fwd_f32"), (64, "learnact_ditac_lut_fwd_f32")):
        text = jax.jit(lambda x, t, lut=lut: _f(x, t, on=True, lut=lut, gate="gelu")
                       ).lower(x, theta).as_text()
        assert target in text
        # warp="output" warps x s(x): not the kernels' fused form, the formula runs
        out = jax.jit(lambda x, t, lut=lut: _f(x, t, on=True, lut=lut, gate="gelu",
                                               warp="output")).lower(x, theta).as_text()
        assert "learnact_ditac" not in out
    opts = dict(lut=None, a=-0.5, b=2.0, cells=CELLS, gate="gelu", alpha=0.01, channel_dim=-1,
                per_channel=False)
    tables = (jnp.zeros(CELLS), jnp.zeros(CELLS))
    assert xd.apply("flow", jnp.ones(3, jnp.float16), tables, **opts) is None  # dtype
    assert xd.apply("flow", jnp.zeros((0,)), tables, **opts) is None  # empty
    xla_native.use_kernels(False)
    assert xd.apply("flow", jnp.ones(3), tables, **opts) is None  # turned off


def test_modules_and_keras_lower_to_the_kernels():
    x = jnp.ones((2, 8), jnp.float32)
    m = lj.create("ditac:channels=8", rngs=nnx.Rngs(0))
    assert "learnact_ditac_flow_fwd_f32" in jax.jit(m).lower(x).as_text()
    m = lj.create("ditac:lut=128", rngs=nnx.Rngs(0))
    assert "learnact_ditac_lut_fwd_f32" in jax.jit(m).lower(x).as_text()
    import keras  # noqa: PLC0415

    if keras.backend.backend() == "jax":
        import learnact.keras as lk  # noqa: PLC0415

        layer = lk.create("ditac", seed=0)
        layer.build(x.shape)
        tv = [v.value for v in layer.trainable_variables]
        nv = [v.value for v in layer.non_trainable_variables]  # the basis
        text = jax.jit(lambda x: layer.stateless_call(tv, nv, x)[0]).lower(x).as_text()
        assert "learnact_ditac_flow_fwd_f32" in text


@pytest.mark.parametrize("lut", [None, 64])
def test_grad_of_grad_jit_and_vmap(lut):
    jax.config.update("jax_enable_x64", True)
    rng = np.random.default_rng(1)
    x = jnp.asarray(rng.uniform(-1.0, 2.5, size=(4, 6)))
    theta = jnp.asarray(0.5 * rng.normal(size=(6, B.shape[1])))
    kw = dict(lut=lut, gate="silu", per_channel=True)

    def second(on):  # a gradient penalty: d/dtheta of |dL/dx|^2
        def penalty(t):
            gx = jax.grad(lambda v: _f(v, t, on=on, **kw).sum())(x)
            return (gx ** 2).sum()
        return jax.jit(jax.grad(penalty))(theta)

    assert _rel(second(True), second(False)) <= 1e-9
    f = jax.jit(jax.vmap(lambda r: _f(r, theta, on=True, **kw)))
    assert _rel(f(x), _f(x, theta, on=False, **kw)) <= 1e-12


_THREADS_SCRIPT = """
import jax, jax.numpy as jnp, numpy as np
from learnact.core import cpab
from learnact.xla_native import ditac
from learnact.xla_native.ditac import JNP
rng = np.random.default_rng(0)
B = jnp.asarray(cpab.basis(16), jnp.float32)
out = []
for shape, channels, lut in (((3000, 40), 40, None), ((400000,), None, None), ((400000,), None, 512),
                             ((3000, 40), 40, 256)):
    x = jnp.asarray(rng.uniform(-1, 3, size=shape), jnp.float32)
    g = jnp.asarray(rng.normal(size=shape), jnp.float32)
    t = jnp.asarray(0.5 * rng.normal(size=((channels,) if channels else ()) + (B.shape[1],)),
                    jnp.float32)
    f = lambda t: (cpab.ditac(JNP, x, t, B, a=-0.5, b=2.0, cells=16, gate_name="gelu",
                              alpha=0.01, warp="input", channel_dim=-1,
                              per_channel=channels is not None, lut=lut) * g).sum()
    out.append(np.asarray(jax.jit(jax.grad(f))(t)).tobytes().hex())
print(ditac.available(), "|".join(out))
"""


def test_theta_gradients_do_not_depend_on_the_thread_count():
    """The kernels' sums run in parts fixed by the shape and are added in part order: one CPU
    (XLA sizes its pool by the affinity mask) and all of them give the same bits."""
    runs = last_lines_on_one_and_all_cpus(_THREADS_SCRIPT)
    assert runs[0].startswith("True ") and runs[0] == runs[1]
