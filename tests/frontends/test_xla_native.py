"""learnact.xla_native: the fused JAX CPU kernels against the jax.numpy formulas of
learnact.core (values, every gradient, ties, layouts, dtypes, transformations) and their
fallbacks. No torch here."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import learnact.jax as lj
from learnact import xla_native
from learnact._xla import JNP
from learnact.core.families import FAMILIES, family

from .pinned import last_lines_on_one_and_all_cpus



def _arguments(spec: str) -> tuple[str, dict]:
    """(family, every constructor argument) of a spec, as the JAX module built from it has
    them."""
    kw = dict(lj.create(spec, rngs=nnx.Rngs(0)).config)
    return spec.split(":")[0], {k: v for k, v in kw.items() if k not in ("channels",
                                                                          "channel_dim")}


# (family, constructor arguments) covering every kernel and option: every family with XLA
# kernels (learnact.core.families, THE list) at its test, layout and edge specs
CASES = [_arguments(s) for d in FAMILIES.values() if d.name in xla_native.FAMILIES
         for s in (*d.test_specs, *d.variant_specs, *d.edge_specs) if s not in d.torch_only_specs]
# (channels, channel_dim, shape): shared; channels last (the lanes schedule); a middle and a
# first channel axis (runs of one channel); odd sizes everywhere (partial blocks)
LAYOUTS = [(None, -1, (3, 37, 7)), (7, -1, (3, 50, 7)), (5, 1, (2, 5, 41)), (5, 0, (5, 3)),
           (40, -1, (70, 40))]


@pytest.fixture(autouse=True)
def _kernels_on():
    assert xla_native.available(), "CI has a C++ compiler: never test only the fallback"
    yield
    xla_native.use_kernels(True)


def _setup(name, kw0, channels, cd, dtype, seed=0):
    fam = family(name)
    kw = fam.check(dict(kw0, channels=channels, channel_dim=cd))
    rng = np.random.default_rng(seed)
    values = fam.initial(kw, lambda s: rng.normal(size=s))
    names, buffers = fam.tensors(kw)
    p = {n: jnp.asarray(values[n] + (0 if n in buffers else 0.1 * rng.normal(
        size=np.shape(values[n]))), dtype) for n in names}
    return kw, p, rng


def _pair(name, kw, p, g):
    """(kernel, formula) losses sum(f(x) g)."""
    def fused(x, p):
        y = xla_native.apply(name, x, p, kw)
        assert y is not None
        return (y * g).sum()

    def formula(x, p):
        return (family(name).forward(JNP, x, p, kw) * g).sum()

    return fused, formula


def _rel(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))


@pytest.mark.parametrize("name,kw0", CASES)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype,tol", [(jnp.float64, 1e-12), (jnp.float32, 1e-5)])
def test_values_and_every_gradient_match_the_formula(name, kw0, layout, dtype, tol):
    """Against the formula in float64 (float32 kernels: error relative to max(|ref|, 1); a
    float32 formula would be no reference for sums like the offset's, sum(g))."""
    channels, cd, shape = layout
    kw, p, rng = _setup(name, kw0, channels, cd, dtype)
    x = jnp.asarray(2.0 * rng.normal(size=shape), dtype)
    x = x.at[(0,) * len(shape)].set(0.0)  # the rational's A(0) = 0, a tropical tie point
    g = jnp.asarray(rng.normal(size=shape), dtype)
    f64 = {n: v.astype(jnp.float64) for n, v in p.items()}
    fused, _ = _pair(name, kw, p, g)
    _, formula = _pair(name, kw, f64, g.astype(jnp.float64))
    floor = 0.0 if dtype == jnp.float64 else 1.0

    def err(a, b):
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        return float(np.abs(a - b).max() / max(np.abs(b).max(), floor, 1e-30))

    y1 = xla_native.apply(name, x, p, kw)
    y2 = family(name).forward(JNP, x.astype(jnp.float64), f64, kw)
    assert y1.dtype == dtype and y1.shape == x.shape
    assert err(y1, y2) <= tol
    gx1, gp1 = jax.grad(fused, argnums=(0, 1))(x, p)
    gx2, gp2 = jax.grad(formula, argnums=(0, 1))(x.astype(jnp.float64), f64)
    assert gx1.dtype == dtype and err(gx1, gx2) <= tol
    for n in p:  # buffers too: their gradient is the formula's, never a silent zero
        assert gp1[n].shape == p[n].shape and gp1[n].dtype == dtype
        assert err(gp1[n], gp2[n]) <= tol, n


def test_hermite_tails_clamp_on_both_sides_and_bounds_get_their_gradient():
    kw, p, _ = _setup("hermite", dict(degree=5, init="unit", tails="linear", bound=0.5), None,
                      -1, jnp.float64)
    x = jnp.linspace(-3.0, 3.0, 301)
    fused, formula = _pair("hermite", kw, p, jnp.cos(x))
    g1, g2 = jax.grad(fused, argnums=1)(x, p), jax.grad(formula, argnums=1)(x, p)
    for n in ("lo", "hi"):
        assert abs(float(g2[n])) > 1e-3  # the clamp is active on that side
        assert abs(float(g1[n] - g2[n])) <= 1e-12 * abs(float(g2[n]))


def test_tropical_ties_give_the_first_line_its_gradient():
    # slopes 0..2, intercepts 0, 0, 0: at x = 0 all three lines tie
    p = {"slopes": jnp.arange(3.0), "coeffs": jnp.zeros(3), "scale": jnp.asarray(1.5),
         "offset": jnp.asarray(0.25)}
    kw = {"channels": None, "channel_dim": -1}
    x = jnp.asarray([-1.0, 0.0, 0.0, 2.0])
    fused, formula = _pair("tropical", kw, p, jnp.ones(4))
    (gx1, gp1), (gx2, gp2) = (jax.grad(f, argnums=(0, 1))(x, p) for f in (fused, formula))
    np.testing.assert_array_equal(gx1, gx2)
    np.testing.assert_array_equal(gp1["coeffs"], gp2["coeffs"])
    np.testing.assert_array_equal(gp1["coeffs"], [4.5, 0.0, 1.5])  # x=0 ties pick line 0


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_sin_cos_and_expm1_over_their_whole_range(dtype):
    """The kernels' own sin/cos (a Cody-Waite reduction and Taylor series; beyond |t| = 6000
    in float32, 3e6 in float64, the C library's) and expm1 (overflow to inf, -1 far left),
    with NaN propagated, against the formula."""
    t = np.concatenate([np.linspace(-40.0, 40.0, 1001), [0.0, -0.0, 5999.5, 6000.5, -7e3, 1e5,
                        2.9e6, 3.1e6, -1e9, 1e20]])
    kw = {"channels": None, "channel_dim": -1}
    x = jnp.asarray(np.concatenate([t, [np.nan]]), dtype)
    p = {"bias": jnp.asarray(0.25, dtype), "amplitude": jnp.asarray([1.0, -0.5], dtype),
         "frequency": jnp.asarray([1.0, 3.0], dtype), "phase": jnp.asarray([0.3, -1.0], dtype)}
    y1 = np.asarray(xla_native.apply("fourier", x, p, kw), np.float64)
    y2 = np.asarray(family("fourier").forward(JNP, x, p, kw), np.float64)
    assert np.isnan(y1[-1]) and np.isnan(y2[-1])
    np.testing.assert_allclose(y1[:-1], y2[:-1], rtol=0, atol=2e-6 if dtype == jnp.float32
                               else 1e-13)
    z = np.concatenate([np.linspace(-30.0, 30.0, 601), [-800.0, -100.0, 88.0, 89.0, 700.0,
                                                        720.0, np.nan]])
    sp = {n: jnp.asarray(v, dtype) for n, v in dict(
        lam=1.05, alpha=1.7, beta=-1.0, gamma=0.1, omega=2.0, scale=1.0, offset=0.0).items()}
    x = jnp.asarray(z, dtype)  # beta < 0: expm1(beta min(x, 0)) overflows far left
    y1 = np.asarray(xla_native.apply("selu_variation", x, sp, kw), np.float64)
    y2 = np.asarray(family("selu_variation").forward(JNP, x, sp, kw), np.float64)
    np.testing.assert_array_equal(np.isinf(y1), np.isinf(y2))
    np.testing.assert_array_equal(np.isnan(y1), np.isnan(y2))
    ok = np.isfinite(y2)
    assert np.isinf(y2).any() and ok.sum() > 600
    np.testing.assert_allclose(y1[ok], y2[ok], rtol=2e-6 if dtype == jnp.float32 else 1e-13)
    sp["beta"] = jnp.asarray(1.0, dtype)  # and -1 (alpha (e^z - 1) -> -alpha) on the left
    y1 = np.asarray(xla_native.apply("selu_variation", x, sp, kw), np.float64)
    y2 = np.asarray(family("selu_variation").forward(JNP, x, sp, kw), np.float64)
    np.testing.assert_allclose(y1[:-1], y2[:-1], rtol=2e-6 if dtype == jnp.float32 else 1e-13)


def test_grad_of_grad_vmap_jit_and_bfloat16():
    kw, p, rng = _setup("rational", dict(num_degree=5, den_degree=4, init="paper"), None, -1,
                        jnp.float64)
    x = jnp.asarray(rng.normal(size=(4, 9)))
    fused, formula = _pair("rational", kw, p, jnp.ones_like(x))

    def second(loss):
        return jax.grad(lambda p: jax.grad(loss)(x, p).sum())(p)

    s1, s2 = second(fused), second(formula)
    for n in p:
        assert _rel(s1[n], s2[n]) <= 1e-10, n
    # vmap over a batch axis (a loop over the batch, each call one kernel)
    f = jax.vmap(lambda r: xla_native.apply("rational", r, p, kw))
    ref = family("rational").forward(JNP, x, p, kw)
    assert _rel(f(x), ref) <= 1e-12
    assert _rel(jax.jit(f)(x), ref) <= 1e-12
    # bfloat16 through the module: computed in float32, returned in bfloat16
    m = lj.create("hermite:degree=6")
    xb = jnp.linspace(-2, 2, 64).astype(jnp.bfloat16)
    assert m(xb).dtype == jnp.bfloat16
    xla_native.use_kernels(False)
    ref = m(xb)
    xla_native.use_kernels(True)
    np.testing.assert_array_equal(np.asarray(m(xb), np.float32), np.asarray(ref, np.float32))


def test_modules_and_functions_run_the_kernels():
    """The NNX modules, the pure functions and Keras on the JAX backend lower to the custom
    call; with use_kernels(False) they lower to the formula."""
    x = jnp.ones((2, 8), jnp.float32)
    m = lj.create("tropical:degree=3,channels=8")
    assert "learnact_tropical_fwd_f32" in jax.jit(m).lower(x).as_text()
    c = jnp.ones(5, jnp.float32)
    assert "learnact_hermite_fwd_f32" in jax.jit(lj.functional.hermite).lower(x, c).as_text()
    import keras  # noqa: PLC0415

    if keras.backend.backend() == "jax":
        import learnact.keras as lk  # noqa: PLC0415

        layer = lk.create("rational")
        layer.build(x.shape)
        tv = [v.value for v in layer.trainable_variables]
        text = jax.jit(lambda x: layer.stateless_call(tv, [], x)[0]).lower(x).as_text()
        assert "learnact_rational_fwd_f32" in text
    xla_native.use_kernels(False)  # jit caches per function: a new one traces again
    assert "learnact_" not in jax.jit(lambda v: m(v)).lower(x).as_text()


def test_forward_mode_needs_the_kernels_off():
    m = lj.create("hermite:degree=4")
    x = jnp.linspace(-1.0, 1.0, 5)
    with pytest.raises(TypeError, match="forward-mode"):
        jax.jvp(m, (x,), (jnp.ones_like(x),))
    assert xla_native.use_kernels() is True
    assert xla_native.use_kernels(False) is False
    y, t = jax.jvp(m, (x,), (jnp.ones_like(x),))
    h = jax.hessian(lambda v: m(v).sum())(x)
    xla_native.use_kernels(True)
    _, vjp = jax.vjp(m, x)
    np.testing.assert_allclose(t, vjp(jnp.ones_like(x))[0], rtol=1e-6)  # diagonal Jacobian
    assert h.shape == (5, 5) and float(jnp.abs(h - jnp.diag(jnp.diag(h))).max()) == 0.0
    with pytest.raises(TypeError, match="enabled must be True, False or None"):
        xla_native.use_kernels(1)


def test_where_the_kernels_do_not_apply_the_formula_runs(monkeypatch):
    kw = {"channels": None, "channel_dim": -1}
    p = {"coeffs": jnp.ones(4)}
    assert xla_native.apply("hermite", jnp.zeros((0,)), p, kw) is None  # empty
    assert xla_native.apply("hermite", jnp.asarray(1.0), p, kw) is None  # 0-d
    assert xla_native.apply("perlin", jnp.ones(3), p, kw) is None  # no kernel
    assert xla_native.apply("hermite", jnp.ones(3, jnp.float16), p, kw) is None  # dtype
    # a table that is not this layout's (the formula then raises its own error)
    assert xla_native.apply("hermite", jnp.ones((2, 3)), {"coeffs": jnp.ones((4, 4))},
                            {"channels": 4, "channel_dim": -1}) is None
    # one tail bound alone: no tails, as in the formula
    kw1 = {"channels": None, "channel_dim": -1}
    x = jnp.linspace(-4.0, 4.0, 9)
    one = xla_native.apply("hermite", x, {"coeffs": jnp.ones(4), "lo": jnp.asarray(-1.0)}, kw1)
    np.testing.assert_allclose(one, family("hermite").forward(JNP, x, {"coeffs": jnp.ones(4)},
                                                               kw1), rtol=1e-12)
    # and the modules keep working
    m = lj.create("hermite:degree=3,channels=3", rngs=nnx.Rngs(0))
    assert m(jnp.ones((0, 3))).shape == (0, 3)
    monkeypatch.setenv("LEARNACT_NATIVE", "0")
    assert not xla_native.available()
    assert xla_native.apply("hermite", jnp.ones(3), p, kw) is None


_THREADS_SCRIPT = """
import jax, jax.numpy as jnp, numpy as np
from learnact import xla_native
jax.config.update("jax_enable_x64", True)
rng = np.random.default_rng(0)
out = []
for shape, channels, cd in (((600, 40), 40, -1), ((3, 7, 20000), 7, 1), ((200000,), None, -1)):
    x = jnp.asarray(rng.normal(size=shape), jnp.float32)
    g = jnp.asarray(rng.normal(size=shape), jnp.float32)
    c = jnp.asarray(rng.normal(size=(9,) if channels is None else (channels, 9)), jnp.float32)
    kw = {"channels": channels, "channel_dim": cd}
    f = lambda c: (xla_native.apply("hermite", x, {"coeffs": c}, kw) * g).sum()
    out.append(np.asarray(jax.grad(f)(c)).tobytes().hex())
print(xla_native.available(), "|".join(out))
"""


def test_parameter_gradients_do_not_depend_on_the_thread_count():
    """The parameter sums are added in a fixed order: one CPU (XLA sizes its intra-op pool by
    the affinity mask) and all of them give the same bits."""
    runs = last_lines_on_one_and_all_cpus(_THREADS_SCRIPT)
    assert runs[0].startswith("True ") and runs[0] == runs[1]
