"""learnact.jax: values against independent float64 references, autodiff, jit/vmap/bf16,
per-channel broadcasting, errors, seeding and a short NNX training loop. No torch here."""

from __future__ import annotations

import math
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx
from jax.test_util import check_grads

import learnact.jax as lj
from learnact.core import quadrature
from learnact.core.tropical import envelope_kinks

from .conftest import SPECS
from .references import evaluate


def _perturbed(spec: str, channels: int | None = None, seed: int = 0, **kw):
    m = lj.create(spec, channels=channels, param_dtype=jnp.float64, rngs=nnx.Rngs(0), **kw)
    rng = np.random.default_rng(seed)
    for n in m.tensor_names:
        v = getattr(m, n)
        if isinstance(v, nnx.Param):
            v[...] = v[...] + 0.1 * rng.normal(size=v[...].shape)
    return m


def _params(m) -> dict[str, np.ndarray]:
    return {n: np.asarray(getattr(m, n)[...]) for n in m.tensor_names}


def test_import_never_imports_torch():
    out = subprocess.run([sys.executable, "-c", (
        "import sys, learnact.jax as lj, jax.numpy as jnp\n"
        "lj.create('hermite:degree=8,channels=4')(jnp.ones((2, 4)))\n"
        "print('torch' in sys.modules)")], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("spec", SPECS)
@pytest.mark.parametrize("channels", [None, 3])
def test_values_match_the_float64_reference(spec, channels):
    m = _perturbed(spec, channels)
    x = np.random.default_rng(1).normal(scale=2.0, size=(5, 3))
    x[0, 0] = 0.0
    got = np.asarray(m(jnp.asarray(x)))
    want = evaluate(m.family, x, _params(m), channels is not None,
                    dict(m.config))
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10 * np.abs(want).max())


@pytest.mark.parametrize("spec", SPECS)
def test_gradients_match_finite_differences(spec):
    m = _perturbed(spec, 3)
    x = jnp.asarray(np.random.default_rng(2).normal(scale=1.5, size=(4, 3)))
    graphdef, state = nnx.split(m)

    def f(x, state):
        return nnx.merge(graphdef, state)(x)

    # DiTAC's derivative jumps at the window's ends and its field's knots: central
    # differences (step 1e-4 here) straddling one err by O(step) (the output warp moves the
    # knots to where x s(x) crosses them: 1.7e-5 relative seen); a wrong derivative is O(1)
    tol = 1e-4 if "ditac" in spec else 1e-6
    check_grads(f, (x, state), order=1, modes=["rev"], atol=tol, rtol=tol)


@pytest.mark.parametrize("spec", SPECS)
def test_jit_vmap_and_bf16(spec):
    m = _perturbed(spec, 3)
    x = jnp.asarray(np.random.default_rng(3).normal(size=(6, 3)), dtype=jnp.float32)
    eager = m(x)
    assert eager.dtype == jnp.float32
    np.testing.assert_allclose(nnx.jit(lambda m, x: m(x))(m, x), eager, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(jax.vmap(m)(x), eager, rtol=1e-6, atol=1e-6)
    half = m(x.astype(jnp.bfloat16))
    assert half.dtype == jnp.bfloat16
    np.testing.assert_allclose(np.asarray(half, np.float32), eager,
                               rtol=2e-2, atol=2e-2 * float(jnp.abs(eager).max()))


def test_channel_dim_one_matches_channels_last():
    a = _perturbed("hermite:degree=4", 3, channel_dim=1)
    b = lj.Hermite(4, channels=3, channel_dim=-1, param_dtype=jnp.float64)
    b.coeffs[...] = a.coeffs[...]
    x = jnp.asarray(np.random.default_rng(4).normal(size=(2, 3, 4, 5)))
    np.testing.assert_allclose(a(x), jnp.moveaxis(b(jnp.moveaxis(x, 1, -1)), -1, 1),
                               rtol=1e-13)


@pytest.mark.parametrize("spec", ["hermite", "hermite:init=stable", "hermite:tails=linear",
                                  "hermite:init=gelu", "fourier", "tropical",
                                  "tropical_rational", "rational:init=unit",
                                  "selu_variation:init=unit"])
def test_unit_inits_have_unit_moments(spec):
    m = lj.create(spec, param_dtype=jnp.float64)
    f = jax.vmap(jax.value_and_grad(lambda z: m(z)))
    p = _params(m)
    kinks = [np.array([-3.0, 0.0, 3.0])]  # Hermite's tail bounds, SELU's branch point
    if m.family == "tropical":
        kinks.append(envelope_kinks(p["slopes"], p["coeffs"]))
    if m.family == "tropical_rational":
        kinks += [envelope_kinks(p["num_slopes"], p["num_coeffs"]),
                  envelope_kinks(p["den_slopes"], p["den_coeffs"])]
    mom = quadrature.expectations(lambda z: tuple(np.asarray(t) for t in f(jnp.asarray(z))),
                                  np.concatenate(kinks))
    assert mom.second == pytest.approx(1.0, abs=1e-9)
    assert mom.deriv_second == pytest.approx(1.0, abs=1e-9)


def test_seed_selu_variation_formula():
    m = lj.SELUVariation(param_dtype=jnp.float64)
    x = jnp.asarray([-1e4, -3.0, -0.5, 0.0, 0.5, 1e4])
    y = np.asarray(m(x))
    xn = np.minimum(np.asarray(x), 0)
    want = 1.0507 * np.where(np.asarray(x) > 0, np.asarray(x),
                             1.67326 * np.expm1(xn) + 0.1 * np.sin(2 * xn))
    np.testing.assert_allclose(y, want, rtol=1e-6, atol=1e-12)
    assert np.isfinite(y).all() and y[3] == 0.0
    g = jax.grad(lambda x: m(x).sum())(x)
    assert np.isfinite(np.asarray(g)).all()


def test_errors_match_the_torch_api():
    with pytest.raises(ValueError, match=r"unknown activation 'hermit'; did you mean 'hermite'"):
        lj.create("hermit")
    with pytest.raises(ValueError, match=r"degree must be an integer in \[1, 64\], got 0"):
        lj.create("hermite:degree=0")
    with pytest.raises(TypeError, match="has no parameter 'degre'; did you mean 'degree'"):
        lj.create("hermite:degre=3")
    with pytest.raises(ValueError, match="init must be one of"):
        lj.Fourier(init="pape")
    m = lj.create("hermite:channels=4")
    with pytest.raises(ValueError, match=r"input has 3 channels along channel_dim=-1 .* "
                                         r"built with channels=4"):
        m(jnp.ones((2, 3)))
    with pytest.raises(TypeError, match="floating-point"):
        m(jnp.ones((2, 4), dtype=jnp.int32))
    with pytest.raises(ValueError, match=r"\(num_degree, den_degree\) must be one of"):
        lj.Rational(3, 2)
    with pytest.raises(ValueError, match="pass rngs=nnx.Rngs"):
        lj.TropicalRational(init="paper")


def test_random_init_one_key_per_table_and_reproducible():
    a = lj.TropicalRational(3, channels=2, init="paper", rngs=nnx.Rngs(0))
    b = lj.TropicalRational(3, channels=2, init="paper", rngs=nnx.Rngs(0))
    c = lj.TropicalRational(3, channels=2, init="paper", rngs=nnx.Rngs(1))
    tables = [np.asarray(getattr(a, n)[...]) for n in
              ("num_slopes", "num_coeffs", "den_slopes", "den_coeffs")]
    for i in range(4):
        for j in range(i + 1, 4):
            assert not np.allclose(tables[i], tables[j])
        assert not np.allclose(tables[i][0], tables[i][1])  # channels differ too
    np.testing.assert_array_equal(a.num_coeffs[...], b.num_coeffs[...])
    assert not np.allclose(a.num_coeffs[...], c.num_coeffs[...])


class _Net(nnx.Module):
    def __init__(self, act: str, rngs: nnx.Rngs) -> None:
        self.inp = nnx.Linear(2, 16, rngs=rngs)
        self.act = lj.create(act) if act == "gelu" else lj.create(act, channels=16)
        self.out = nnx.Linear(16, 1, rngs=rngs)

    def __call__(self, x):
        return self.out(self.act(self.inp(x)))


def test_nnx_training_lowers_the_loss_and_trains_the_activation():
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.uniform(-2, 2, size=(256, 2)), dtype=jnp.float32)
    y = jnp.sin(2 * x[:, :1]) * jnp.cos(x[:, 1:])
    model = _Net("hermite:degree=4", nnx.Rngs(0))
    before = np.asarray(model.act.coeffs[...]).copy()
    opt = nnx.Optimizer(model, optax.adam(1e-2), wrt=nnx.Param)

    @nnx.jit
    def step(model, opt):
        loss, grads = nnx.value_and_grad(lambda m: jnp.mean((m(x) - y) ** 2))(model)
        opt.update(model, grads)
        return loss

    losses = [float(step(model, opt)) for _ in range(200)]
    assert losses[-1] < 0.3 * losses[0]
    assert not np.allclose(before, model.act.coeffs[...])
    params = lj.parameters(model)
    assert [tuple(path) for path, _ in nnx.to_flat_state(params)] == [("act", "coeffs")]


@pytest.mark.parametrize("spec", SPECS)
def test_pure_functions_equal_the_modules(spec):
    """learnact.jax.functional.<family>(x, *tensors) is the module's forward (DiTAC's variants
    through ``ditac`` with their interval and gate, PWLU with its interval)."""
    m = _perturbed(spec, 3)
    x = jnp.asarray(np.random.default_rng(9).normal(size=(4, 3)))
    cfg = dict(m.config)
    fn = getattr(lj.functional, "ditac" if m.family.endswith("ditac") else m.family)
    args = [getattr(m, n)[...] for n in m.tensor_names]
    if m.family == "hermite" and len(args) == 3:
        got = fn(x, args[0], -1, args[1], args[2])
    elif m.family.endswith("ditac"):
        got = fn(x, *args, channel_dim=-1, **{k: cfg[k] for k in ("a", "b", "gate", "alpha",
                                                                   "warp")})
    elif m.family == "pwlu":
        got = fn(x, *args, channel_dim=-1, a=cfg["a"], b=cfg["b"])
    else:
        got = fn(x, *args, channel_dim=-1)
    np.testing.assert_array_equal(np.asarray(got), np.asarray(m(x)))
    half = fn(x.astype(jnp.bfloat16), *args[:1]) if m.family == "hermite" else None
    assert half is None or half.dtype == jnp.bfloat16


def _prior_np(theta: np.ndarray, cells: int, lam: float = 0.1) -> float:
    from learnact.core.cpab import precision

    P = precision(cells).astype(np.float32).astype(np.float64)
    th = np.atleast_2d(theta)
    return lam * float(np.einsum("ci,ij,cj->", th, P, th))


def test_ditac_prior_init_regularization_and_velocity():
    """DiTAC in Flax NNX: one prior draw per channel from rngs (reproducible), zeros = GELU,
    regularization(model) = the sum of lambda theta^T P theta, the velocity field."""
    a = lj.DiTAC(cells=6, channels=3, rngs=nnx.Rngs(1), param_dtype=jnp.float64)
    b = lj.DiTAC(cells=6, channels=3, rngs=nnx.Rngs(1), param_dtype=jnp.float64)
    ta = np.asarray(a.theta[...])
    np.testing.assert_array_equal(ta, np.asarray(b.theta[...]))
    assert ta.shape == (3, 5) and not np.allclose(ta[0], ta[1])
    z = lj.create("ditac:init=zeros", param_dtype=jnp.float64)
    x = jnp.linspace(-4, 4, 41, dtype=jnp.float64)
    np.testing.assert_allclose(z(x), jax.nn.gelu(x, approximate=False), rtol=0, atol=1e-14)

    class Net(nnx.Module):
        def __init__(self):
            self.one = lj.DiTAC(cells=6, channels=3, rngs=nnx.Rngs(1),
                                param_dtype=jnp.float64)
            self.two = lj.LeakyDiTAC(cells=4, lambda_reg=0.5, rngs=nnx.Rngs(2),
                                     param_dtype=jnp.float64)
            self.other = lj.create("hermite:degree=3")

    net = Net()
    want = _prior_np(np.asarray(net.one.theta[...]), 6) + _prior_np(
        np.asarray(net.two.theta[...]), 4, 0.5)
    assert float(lj.regularization(net)) == pytest.approx(want, rel=1e-12)
    assert float(lj.regularization(lj.create("hermite"))) == 0.0
    g = nnx.grad(lambda m: lj.regularization(m))(net)  # differentiable, reaches theta
    assert float(jnp.abs(g.two.theta[...]).max()) > 0
    from learnact.core.cpab import basis

    s = lj.DiTAC(cells=6, rngs=nnx.Rngs(3), param_dtype=jnp.float64)
    A = basis(6) @ np.asarray(s.theta[...])
    xs = np.array([-1.0, -0.5, 0.1, 0.9, 1.7, 2.0, 3.0])
    u = (xs + 0.5) / 2.5
    c = np.clip(np.floor(u * 6), 0, 5).astype(int)
    want_v = np.where((xs >= -0.5) & (xs <= 2.0), 2.5 * (A[2 * c] * u + A[2 * c + 1]), 0.0)
    np.testing.assert_allclose(s.velocity(jnp.asarray(xs)), want_v, atol=1e-12)
    with pytest.raises(ValueError, match=r"lut must be an integer in \[2, 1048576\]"):
        lj.create("ditac:lut=1", rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="prior must be one of"):
        lj.create("ditac:prior=implicit", rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="pass rngs"):
        lj.create("ditac")
    with pytest.raises(ValueError, match="a < b"):
        lj.create("ditac:a=2,b=1,init=zeros")


def test_ditac_float32_gradients_are_finite_where_the_field_is_flat():
    """v(0) of a float32 field is ~1e-8, not 0: d(dist/v)/dv overflowed in the unused
    branch and autodiff's zero cotangent times it gave NaN theta gradients (the first
    training step of a 50-channel DiTAC)."""
    m = lj.create("ditac", channels=50, rngs=nnx.Rngs(0))
    x = jnp.asarray(np.random.default_rng(0).normal(size=(98, 50)) * 2, jnp.float32)
    graphdef, params, rest = nnx.split(m, nnx.Param, ...)
    g = jax.grad(lambda p: nnx.merge(graphdef, p, rest)(x).sum())(params)
    grads = np.asarray(g["theta"][...])
    assert np.isfinite(grads).all() and np.abs(grads).max() > 0


def test_ditac_lookup_table_reads_the_exact_flow_on_its_grid():
    """lut=n: on the grid points themselves the table is exact; between them the nearest
    point's displacement (error <= half a step times max |T' - 1| (b - a)); the derivative in
    x is the straight-through T'(u_r); theta's gradient flows through the table."""
    exact = lj.DiTAC(cells=6, rngs=nnx.Rngs(5), param_dtype=jnp.float64)
    table = lj.DiTAC(cells=6, lut=101, rngs=nnx.Rngs(5), param_dtype=jnp.float64)
    grid = -0.5 + 2.5 * jnp.arange(101) / 100.0
    np.testing.assert_allclose(table(grid), exact(grid), rtol=0, atol=1e-12)
    x = jnp.linspace(-3.0, 3.0, 601)
    slope = jax.vmap(jax.grad(exact))(grid)
    bound = 0.5 * 2.5 / 100 * float(jnp.abs(slope / jax.scipy.stats.norm.cdf(grid) - 1).max())
    assert float(jnp.abs(table(x) - exact(x)).max()) <= 2.5 * bound + 1e-12
    outside = jnp.array([-3.0, -0.6, 2.1, 3.0])
    np.testing.assert_allclose(table(outside), jax.nn.gelu(outside, approximate=False),
                               atol=1e-14)
    graphdef, params, rest = nnx.split(table, nnx.Param, ...)
    g = jax.grad(lambda p: nnx.merge(graphdef, p, rest)(x).sum())(params)
    assert float(jnp.abs(g["theta"][...]).max()) > 0


def _flow_case(cells: int, scale: float, channels: int | None, seed: int):
    """A field (a, b) of `cells` cells from theta ~ scale x the init prior, and u in [0, 1]
    of shape (5, channels or 3, 40) (channels at dimension 1)."""
    from learnact.core import cpab

    rng = np.random.default_rng(seed)
    B = np.asarray(cpab.basis(cells))
    shape = (B.shape[1],) if channels is None else (channels, B.shape[1])
    theta = scale * cpab.init_theta(cells, rng.standard_normal, shape)
    A = (theta @ B.T).reshape(shape[:-1] + (cells, 2))
    u = rng.uniform(0.0, 1.0, (5, channels or 3, 40))
    return jnp.asarray(A[..., 0]), jnp.asarray(A[..., 1]), jnp.asarray(u), rng


# (each case ~50 s: eager autodiff of the closed form, whose jit compile alone takes longer;
# per channel once, in a strong field, since (10, 1.0, 4) added nothing (10, 1.0, None) and
# (7, 3.0, 4) did not cover)
@pytest.mark.parametrize("cells,scale,channels", [(10, 1.0, None), (10, 4.0, None),
                                                  (3, 2.0, None), (7, 3.0, 4)])
def test_ditac_flow_derivative_is_autodiff_of_the_closed_form(cells, scale, channels):
    """The frontends' flow carries learnact.core.cpab.flow_vjp as its derivative: the same
    first derivatives (u, a, b) as autodiff of the closed form and the same second ones
    (grad of a gradient), shared and per-channel, from mild to strong fields (many cells
    crossed), float64."""
    from learnact.core import cpab
    from learnact.jax.functional import _JNP, _cpab_flow

    a, b, u, rng = _flow_case(cells, scale, channels, 0)
    g = jnp.asarray(rng.standard_normal(u.shape))
    w = jnp.asarray(rng.standard_normal(u.shape))

    def plain(u, a, b):
        return (cpab.flow(_JNP, u, a, b, cells, 3, 1) * g).sum()

    def custom(u, a, b):
        return (_cpab_flow(u, a, b, cells, 1) * g).sum()

    want, got = jax.grad(plain, (0, 1, 2))(u, a, b), jax.grad(custom, (0, 1, 2))(u, a, b)
    for x, y in zip(got, want):
        np.testing.assert_allclose(x, y, rtol=1e-9, atol=1e-12 * float(jnp.abs(y).max()))
    assert float(jnp.abs(want[1]).max()) > 0 and float(jnp.abs(want[2]).max()) > 0

    wa, wb = (jnp.asarray(rng.standard_normal(a.shape)) for _ in range(2))

    def second(f):  # every first derivative weighted: the VJP's (a, b) outputs differentiated
        # too (points in a zero-boundary field's last cell once made them NaN)
        def first(a, b):
            gu, ga, gb = jax.grad(f, (0, 1, 2))(u, a, b)
            return (gu * w).sum() + (ga * wa).sum() + (gb * wb).sum()
        return jax.grad(first, (0, 1))(a, b)

    for x, y in zip(second(custom), second(plain)):
        np.testing.assert_allclose(x, y, rtol=1e-8, atol=1e-11 * float(jnp.abs(y).max()))
    # the closed form itself against the independent per-point reference
    from .references import _ditac_flow

    T = cpab.flow(_JNP, u, a, b, cells, 3, 1)
    for i, j, k in [(0, 0, 0), (1, 2, 5), (4, 1, 39), (2, 0, 17)]:
        ch = j if channels is not None else None
        aa = np.asarray(a if ch is None else a[ch])
        bb = np.asarray(b if ch is None else b[ch])
        assert abs(float(T[i, j, k]) - _ditac_flow(float(u[i, j, k]), aa, bb)) < 1e-10


def test_ditac_flow_forward_mode_is_refused_clearly():
    """The exact flow's derivative is a custom reverse-mode rule: forward mode (jvp, jacfwd,
    hessian) raises JAX's own error instead of differentiating something else."""
    a, b, u, _ = _flow_case(5, 1.0, None, 1)
    from learnact.jax.functional import _cpab_flow

    with pytest.raises(TypeError, match="forward-mode"):
        jax.jvp(lambda u: _cpab_flow(u, a, b, 5, 1), (u,), (jnp.ones_like(u),))


def test_materialize_is_the_identity_and_keeps_its_conditional():
    """learnact._xla.materialize returns its arrays unchanged (NaN, inf, -0, ints, bools,
    empty) and compiles to a conditional, which XLA does not fuse through (the speed of the
    frontends' DiTAC rests on it; JAX drops a conditional with identical branches and XLA's
    CPU pipeline expands optimization_barrier before fusion)."""
    from learnact import _xla

    vals = (jnp.array([np.nan, np.inf, -0.0, 1.5]), jnp.arange(4), jnp.array([True, False]),
            jnp.zeros((0,)))
    out = jax.jit(_xla.materialize)(vals[:3])
    for x, y in zip(out, vals):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
        assert x.dtype == y.dtype
    assert _xla.materialize(vals[3:])[0].shape == (0,)
    text = jax.jit(lambda t: _xla.materialize((t * 3.0,))[0] * 2.0).lower(
        jnp.ones(8)).compile().as_text()
    assert "conditional" in text


@pytest.mark.parametrize("spec,channels", [("ditac:cells=6", None), ("ditac:cells=5,lut=64", 3)])
def test_ditac_released_prior_reproduces_the_released_update(spec, channels):
    """prior="released": the same outputs as the explicit prior, no prior loss, and theta's
    gradient d g + 2 lambda theta * colsum(P) while training; model.eval() restores g."""
    kw = dict(channels=channels, param_dtype=jnp.float64, lambda_reg=0.3)
    plain = lj.create(spec, rngs=nnx.Rngs(4), **kw)
    rel = lj.create(spec + ",prior=released", rngs=nnx.Rngs(4), **kw)
    x = jnp.asarray(np.random.default_rng(0).uniform(-1, 2.5, size=(9, 3)))
    w = jnp.asarray(np.random.default_rng(1).normal(size=x.shape))
    np.testing.assert_array_equal(np.asarray(rel(x)), np.asarray(plain(x)))
    assert float(rel.prior_loss()) == 0.0 and float(lj.regularization(rel)) == 0.0
    assert float(plain.prior_loss()) > 0

    def theta_grad(m):
        graphdef, params, rest = nnx.split(m, nnx.Param, ...)
        return jax.grad(lambda p: (nnx.merge(graphdef, p, rest)(x) * w).sum())(
            params)["theta"][...]

    g = theta_grad(plain)
    theta = np.asarray(plain.theta[...])
    P = np.asarray(plain.precision[...])
    want = theta.shape[-1] * np.asarray(g) + 2 * 0.3 * theta * P.sum(0)
    np.testing.assert_allclose(theta_grad(rel), want, rtol=1e-12, atol=1e-14)
    rel.eval()
    np.testing.assert_allclose(theta_grad(rel), g, rtol=1e-12, atol=1e-14)


def test_fit_hermite_reaches_the_least_squares_solution():
    """lj.fit on a linear family: the weighted least-squares coefficients of value and
    derivative (numpy lstsq on He_k/k! columns at the same Gauss-Hermite points), to 1e-6."""
    m = lj.create("hermite:degree=6", param_dtype=jnp.float64)
    rep = lj.fit(m, "gelu", steps=500)
    z, w = np.polynomial.hermite_e.hermegauss(120)
    w = w / w.sum()
    K = 7
    He = np.stack([np.polynomial.hermite_e.hermeval(z, np.eye(K)[k]) / math.factorial(k)
                   for k in range(K)], 1)
    dHe = np.concatenate([np.zeros((z.size, 1)), He[:, :-1]], 1)  # h_k' = h_{k-1}
    cdf = 0.5 * (1 + np.vectorize(math.erf)(z / math.sqrt(2)))
    gelu = z * cdf
    dgelu = cdf + z * np.exp(-z * z / 2) / math.sqrt(2 * math.pi)
    sw = np.sqrt(w)[:, None]
    A = np.concatenate([He * sw, dHe * sw])
    b = np.concatenate([gelu * sw[:, 0], dgelu * sw[:, 0]])
    want = np.linalg.lstsq(A, b, rcond=None)[0]
    np.testing.assert_allclose(np.asarray(m.coeffs[...]), want, atol=1e-6)
    assert rep.max_error < 0.05 and rep.rms_error < 0.02 and rep.steps >= 1
    assert "N(0, 1^2)" in str(rep)


# DiTAC with 4 cells: the jitted L-BFGS step compiles second derivatives through its custom VJP
# over the per-cell table graph (8 cells: 114 s to compile alone, the test 203 s; 4 cells: 58 s)
@pytest.mark.parametrize("spec,channels", [("tropical:degree=6", None), ("ditac:cells=4", 3),
                                           ("rational", None)])
def test_fit_any_family_lowers_the_error(spec, channels):
    """Any learnable family (per-channel too; DiTAC through its custom derivative): the fitted
    module is closer to the target on the domain than before, and the report measures it."""
    m = lj.create(spec, channels=channels, rngs=nnx.Rngs(0), param_dtype=jnp.float64)
    x = jnp.linspace(-2.0, 2.0, 201)
    xin = x if channels is None else jnp.broadcast_to(x[:, None], (201, channels))
    target = jax.nn.silu(xin)
    before = float(jnp.abs(m(xin) - target).max())
    rep = lj.fit(m, jax.nn.silu, domain=(-2.0, 2.0), steps=150)
    after = float(jnp.abs(m(xin) - target).max())
    assert after < 0.5 * before and abs(after - rep.max_error) < 0.05 * before
    assert np.isfinite(rep.rms_deriv_error)


def test_fit_refuses_bad_input_and_keeps_the_module():
    m = lj.create("hermite:degree=4", param_dtype=jnp.float64)
    c = np.asarray(m.coeffs[...]).copy()
    with pytest.raises(ValueError, match="derivative_weight must be"):
        lj.fit(m, "gelu", derivative_weight=-1)
    with pytest.raises(ValueError, match="domain interval must satisfy lo < hi"):
        lj.fit(m, "gelu", domain=(1.0, -1.0))
    with pytest.raises(ValueError, match="target: a classical activation's name"):
        lj.fit(m, "hermite")
    with pytest.raises(ValueError, match="no trainable parameters"):
        lj.fit(lj.create("gelu"), "relu")
    np.testing.assert_array_equal(np.asarray(m.coeffs[...]), c)
