"""The framework-neutral core (learnact.core) and the lazy package import."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
import torch

import learnact
from learnact import core
from learnact.core import fourier, hermite, quadrature, rational, selu_variation, tropical


def _run(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_package_and_core_import_without_torch():
    code = ("import sys, learnact, learnact.core, learnact._spec\n"
            "learnact.core.hermite.init_parameters(8, 'gelu', 'linear')\n"
            "print(sorted(m for m in ('torch', 'jax', 'keras', 'scipy', 'tensorflow') "
            "if m in sys.modules))")
    assert _run(code) == "[]"


def test_torch_api_loads_on_first_use_and_functions_win_over_submodules():
    code = ("import learnact.fit, learnact.moments, learnact.expand, learnact\n"
            "print(callable(learnact.fit), callable(learnact.moments), "
            "callable(learnact.expand), type(learnact.Hermite(3)).__name__)")
    assert _run(code) == "True True True Hermite"
    assert _run("from learnact.registry import create; print(create('hermite:degree=3'))"
                ).startswith("Hermite(degree=3")


def test_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'hermit'"):
        learnact.hermit  # noqa: B018


@pytest.mark.parametrize("degree", [1, 2, 5, 9])
def test_hermite_formula_matches_numpy_hermeval(degree):
    rng = np.random.default_rng(degree)
    c = rng.normal(size=degree + 1)
    x = np.linspace(-4, 4, 101)
    fact = np.array([math.factorial(k) for k in range(degree + 1)], dtype=np.float64)
    want = np.polynomial.hermite_e.hermeval(x, c / fact)
    np.testing.assert_allclose(hermite.hermite(np, x, c), want, rtol=1e-12, atol=1e-12)
    dwant = np.polynomial.hermite_e.hermeval(x, np.polynomial.hermite_e.hermeder(c / fact))
    np.testing.assert_allclose(hermite.hermite_derivative(np, x, c), dwant, rtol=1e-12,
                               atol=1e-12)


def test_quadrature_matches_closed_form_moments():
    c = np.random.default_rng(0).normal(size=7)
    closed = hermite.moments(c)
    quad = quadrature.expectations(
        lambda z: (hermite.hermite(np, z, c), hermite.hermite_derivative(np, z, c)))
    for name in ("mean", "second", "deriv_second", "vprime"):
        assert getattr(quad, name) == pytest.approx(getattr(closed, name), rel=1e-12, abs=1e-13)


def _numpy_moments(f, df, kinks=None):
    return quadrature.expectations(lambda z: (f(z), df(z)), kinks)


@pytest.mark.parametrize("init,tails", [("unit", "polynomial"), ("stable", "polynomial"),
                                        ("gelu", "polynomial"), ("unit", "linear"),
                                        ("gelu", "linear")])
def test_hermite_inits_have_unit_moments(init, tails):
    c = hermite.init_parameters(8, init, tails)["coeffs"]
    lo, hi = (np.float64(-3), np.float64(3)) if tails == "linear" else (None, None)
    m = _numpy_moments(lambda z: hermite.hermite(np, z, c, -1, lo, hi),
                       lambda z: hermite.hermite_derivative(np, z, c, -1, lo, hi),
                       None if lo is None else np.array([lo, hi]))
    assert m.second == pytest.approx(1.0, abs=1e-12)
    assert m.deriv_second == pytest.approx(1.0, abs=1e-12)
    if init == "stable":
        assert m.vprime < 1.0


def test_unit_inits_of_every_family_have_unit_moments_by_torch_quadrature():
    """Independent check: the torch modules built from the core's values, integrated by the
    torch-side moments (its own evaluators)."""
    for act in (learnact.Fourier(6).double(), learnact.Tropical(5).double(),
                learnact.TropicalRational(3).double(), learnact.Rational(init="unit").double(),
                learnact.SELUVariation(init="unit").double(),
                learnact.Hermite(6, tails="linear", init="gelu").double()):
        m = learnact.moments(act)
        assert m.second == pytest.approx(1.0, abs=2e-7), act
        assert m.deriv_second == pytest.approx(1.0, abs=2e-7), act


def test_formulas_match_the_torch_references_in_float64():
    from learnact.functional import fourier as tf
    from learnact.functional import rational as tr
    from learnact.functional import selu_variation as ts
    from learnact.functional import tropical as tt

    x = np.linspace(-5, 5, 301)
    xt = torch.from_numpy(x)

    def t(d):
        return {k: torch.from_numpy(np.asarray(v, dtype=np.float64)) for k, v in d.items()}

    p = fourier.init_parameters(5)
    np.testing.assert_allclose(fourier.fourier(np, x, *(p[n] for n in fourier.NAMES)),
                               tf.fourier(xt, *t(p).values(), channel_dim=-1).numpy(),
                               rtol=0, atol=1e-13)
    p = tropical.tropical_rational_init(3, "paper", normal=np.random.default_rng(1).normal)
    want = tt.tropical_rational(xt, *(t(p)[n] for n in tropical.RATIONAL_NAMES), -1)
    np.testing.assert_allclose(tropical.tropical_rational(np, x, *(p[n] for n in
                                                                   tropical.RATIONAL_NAMES)),
                               want.numpy(), rtol=0, atol=1e-13)
    p = rational.init_parameters(init="gelu")
    np.testing.assert_allclose(rational.rational(np, x, *(p[n] for n in rational.NAMES)),
                               tr.rational(xt, *t(p).values(), channel_dim=-1).numpy(),
                               rtol=1e-13, atol=1e-13)
    p = selu_variation.init_parameters("unit")
    got = selu_variation.selu_variation(np, x, *(p[n] for n in selu_variation.NAMES))
    want = ts.selu_variation(xt, *(torch.tensor(p[n], dtype=torch.float64)
                                   for n in selu_variation.NAMES), channel_dim=-1)
    np.testing.assert_allclose(got, want.numpy(), rtol=0, atol=1e-13)


def test_per_channel_broadcasting_along_any_dim():
    c = np.random.default_rng(3).normal(size=(4, 5))
    x = np.random.default_rng(4).normal(size=(2, 4, 3))
    got = hermite.hermite(np, x, c, 1)
    for ch in range(4):
        np.testing.assert_allclose(got[:, ch], hermite.hermite(np, x[:, ch], c[ch]),
                                   rtol=1e-13)
    got = hermite.hermite(np, np.moveaxis(x, 1, -1), c, -1)
    np.testing.assert_allclose(np.moveaxis(got, -1, 1), hermite.hermite(np, x, c, 1),
                               rtol=1e-13)


def test_seed_selu_variation_constants_and_extremes():
    p = selu_variation.init_parameters("paper")
    assert (p["lam"], p["alpha"], p["beta"], p["gamma"], p["omega"]) == (
        1.0507, 1.67326, 1.0, 0.1, 2.0)
    x = np.array([-1e4, -2.0, 0.0, 0.5, 1e4])
    y = selu_variation.selu_variation(np, x, *(p[n] for n in selu_variation.NAMES))
    lam, alpha = 1.0507, 1.67326
    want = lam * np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0)) + 0.1 * np.sin(
        2 * np.minimum(x, 0)))
    np.testing.assert_allclose(y, want, rtol=1e-15)
    assert np.isfinite(y).all() and y[2] == 0.0


def test_rational_other_degrees_need_a_fit_callback():
    with pytest.raises(ValueError, match=r"one of \[\(5, 4\)\].*got \(3, 2\)"):
        rational.init_parameters(3, 2)
    assert core.rational.init_parameters(3, 2, fit=lambda n, m, t: (
        (0.0,) * (n + 1), (0.0,) * m, (1.0, 0.0)))["num"].shape == (4,)


def test_tropical_rational_paper_init_needs_a_generator():
    with pytest.raises(ValueError, match="pass normal="):
        tropical.tropical_rational_init(3, "paper")


def test_version_is_single_sourced_and_printed():
    from importlib.metadata import version

    from learnact.cli import main

    assert version("learnact") == learnact.__version__
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
