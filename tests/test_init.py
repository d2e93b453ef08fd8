"""Exact moments of fixed activations vs scipy adaptive quadrature; the V'(1) table."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import integrate

import learnact


def _scipy_moments(fn, dfn):
    phi = lambda z: math.exp(-z * z / 2) / math.sqrt(2 * math.pi)  # noqa: E731
    pts = [-3, -1, 0, 1, 3, 6]
    e2 = integrate.quad(lambda z: fn(z) ** 2 * phi(z), -14, 14, points=pts, limit=400,
                        epsabs=1e-13)[0]
    ed2 = integrate.quad(lambda z: dfn(z) ** 2 * phi(z), -14, 14, points=pts, limit=400,
                         epsabs=1e-13)[0]
    return e2, ed2


REFS = {
    "relu": (lambda z: max(z, 0.0), lambda z: float(z > 0)),
    "tanh": (math.tanh, lambda z: 1 - math.tanh(z) ** 2),
    "gelu": (lambda z: z * 0.5 * (1 + math.erf(z / math.sqrt(2))),
             lambda z: 0.5 * (1 + math.erf(z / math.sqrt(2))) + z * math.exp(-z * z / 2) / math.sqrt(2 * math.pi)),
    "hardtanh": (lambda z: min(max(z, -1.0), 1.0), lambda z: float(-1 < z < 1)),
    "sin": (math.sin, math.cos),
    "identity": (lambda z: z, lambda z: 1.0),
}


@pytest.mark.parametrize("name", sorted(REFS))
def test_fixed_activation_moments_match_scipy(name: str) -> None:
    e2, ed2 = learnact.second_moments(learnact.create(name))
    r2, rd2 = _scipy_moments(*REFS[name])
    assert e2 == pytest.approx(r2, rel=1e-9, abs=1e-12)
    assert ed2 == pytest.approx(rd2, rel=1e-9, abs=1e-12)


def test_known_closed_forms() -> None:
    assert learnact.second_moments(learnact.create("relu")) == pytest.approx((0.5, 0.5), rel=1e-12)
    assert learnact.second_moments(learnact.create("sin"))[0] == pytest.approx((1 - math.exp(-2)) / 2, rel=1e-12)
    assert learnact.second_moments(torch.tanh)[0] == pytest.approx(_scipy_moments(*REFS["tanh"])[0], rel=1e-9)


def test_per_channel_modules_return_tensors() -> None:
    act = learnact.create("hermite:degree=4,channels=5")
    e2, ed2 = learnact.second_moments(act)
    assert isinstance(e2, torch.Tensor) and e2.shape == (5,)
    assert torch.allclose(e2, torch.ones(5, dtype=torch.float64))
    trop = learnact.create("tropical:degree=4,channels=3")
    with torch.no_grad():
        trop.coeffs[1] += torch.tensor([0.0, 0.5, -0.3, 0.2, 0.1])
    e2, _ = learnact.second_moments(trop)
    assert e2.shape == (3,) and abs(float(e2[0]) - 1) < 1e-6 and abs(float(e2[1]) - 1) > 1e-3


def test_vprime_table_and_stability_prediction() -> None:
    """V'(1) from quadrature equals d/dq E[f(sqrt(q) z)^2] by finite differences, per family."""
    z, w = np.polynomial.hermite_e.hermegauss(200)
    w = w / w.sum()
    for spec in ("fourier:degree=4", "hermite:degree=3", "gelu"):
        act = learnact.create(spec)
        vp = learnact.variance_map_slope(act)
        with torch.no_grad():
            def V(q):
                y = act(torch.from_numpy(math.sqrt(q) * z).float()).double().numpy()
                return float((w * y * y).sum())
            h = 1e-3
            assert vp == pytest.approx((V(1 + h) - V(1 - h)) / (2 * h), rel=2e-3, abs=2e-3)


def test_not_finite_is_an_error() -> None:
    act = learnact.Hermite(3)
    with torch.no_grad():
        act.coeffs[2] = float("inf")
    with pytest.raises(ValueError, match="not finite"):
        learnact.second_moments(act)
