"""Hermite: fp32 op vs numpy float64 hermeval, exact moments, inits, gradients."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from numpy.polynomial import hermite_e as He

import learnact
from learnact.functional import hermite as F
from learnact.ops.hermite import hermite_op


def _numpy_f_df(x: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Independent reference: He-series with coefficients c_k/k! via numpy (float64)."""
    a = c / np.array([math.factorial(k) for k in range(len(c))], dtype=np.float64)
    return He.hermeval(x, a), He.hermeval(x, He.hermeder(a))


@pytest.mark.parametrize("degree", list(range(1, 17)))
@pytest.mark.parametrize("n", [10001, 301])  # fused CPU kernel (>= 4096 elements) and plain path
def test_fp32_matches_hermeval(degree: int, n: int) -> None:
    g = torch.Generator().manual_seed(degree)
    c = (F.unit_coefficients(degree) + 0.3 * torch.randn(degree + 1, generator=g,
                                                        dtype=torch.float64)).float()
    x = torch.linspace(-6, 6, n, dtype=torch.float32, requires_grad=True)
    y = hermite_op(x, c, 0)
    (dy,) = torch.autograd.grad(y.sum(), x)
    ref, dref = _numpy_f_df(x.detach().double().numpy(), c.double().numpy())
    tol = 2e-6 * max(1.0, float(np.abs(ref).max()))
    dtol = 2e-6 * max(1.0, float(np.abs(dref).max()))
    assert np.abs(y.detach().double().numpy() - ref).max() <= tol
    assert np.abs(dy.double().numpy() - dref).max() <= dtol


@pytest.mark.parametrize("degree", [1, 2, 3, 8, 16, 32])
def test_closed_form_moments_match_gauss_hermite(degree: int) -> None:
    g = torch.Generator().manual_seed(degree)
    c = torch.randn(degree + 1, generator=g, dtype=torch.float64)
    m = F.hermite_moments(c)
    z, w = He.hermegauss(degree + 40)
    w = w / w.sum()
    f, df = _numpy_f_df(z, c.numpy())
    a = c.numpy() / np.array([math.factorial(k) for k in range(degree + 1)], dtype=np.float64)
    d2f = He.hermeval(z, He.hermeder(a, 2))
    assert float(m["second"]) == pytest.approx((w * f * f).sum(), rel=1e-10)
    assert float(m["deriv_second"]) == pytest.approx((w * df * df).sum(), rel=1e-10)
    assert float(m["vprime"]) == pytest.approx((w * (df * df + f * d2f)).sum(), rel=1e-9, abs=1e-12)
    assert float(m["vprime"]) == pytest.approx((w * z * f * df).sum(), rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("degree", list(range(1, 33)))
def test_unit_init_has_unit_moments(degree: int) -> None:
    act = learnact.Hermite(degree)
    e2, ed2 = learnact.second_moments(act)
    assert e2 == pytest.approx(1.0, rel=1e-6)
    assert ed2 == pytest.approx(1.0, rel=1e-6)


@pytest.mark.parametrize("degree", [1, 2, 3, 5, 8, 12])
def test_paper_init_reproduces_published_gain(degree: int) -> None:
    act = learnact.Hermite(degree, init="paper")
    gain = sum(1.0 / math.factorial(j) for j in range(degree)) / math.e
    c = act.coeffs.detach().double()
    assert float(c[0]) == pytest.approx(math.sqrt(1 - 1 / math.factorial(degree)) / math.sqrt(math.e), rel=1e-6)
    assert torch.allclose(c[1:], torch.full((degree,), 1 / math.sqrt(math.e), dtype=torch.float64), rtol=1e-6)
    e2, ed2 = learnact.second_moments(act)
    assert e2 == pytest.approx(gain, rel=1e-6)
    assert ed2 == pytest.approx(gain, rel=1e-6)
    assert learnact.create(f"hermite:degree={degree},init=published").coeffs.tolist() == c.float().tolist()


@pytest.mark.parametrize("degree", [2, 3, 4, 8, 16])
def test_stable_init_unit_and_contracting(degree: int) -> None:
    act = learnact.Hermite(degree, init="stable")
    m = learnact.moments(act)
    assert m.second == pytest.approx(1.0, rel=1e-6)
    assert m.deriv_second == pytest.approx(1.0, rel=1e-6)
    assert m.vprime < 1.0
    # the paper-shaped unit init is expansive (the reason the option exists)
    assert learnact.variance_map_slope(learnact.Hermite(degree)) > 1.0


def test_vprime_matches_finite_difference_of_variance_map() -> None:
    act = learnact.Hermite(6)
    z, w = He.hermegauss(80)
    w = w / w.sum()
    c = act.coeffs.detach().double().numpy()

    def V(q: float) -> float:
        return float((w * _numpy_f_df(math.sqrt(q) * z, c)[0] ** 2).sum())

    h = 1e-5
    assert learnact.variance_map_slope(act) == pytest.approx((V(1 + h) - V(1 - h)) / (2 * h), rel=1e-6)


@pytest.mark.parametrize("channels", [None, 3])
def test_gradcheck_input_and_coefficients(channels) -> None:
    shape = (2, 3, 5) if channels else (7, 4)
    x = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    c = torch.randn((channels, 6) if channels else (6,), dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: hermite_op(a, b, 1), (x, c))
    assert torch.autograd.gradgradcheck(lambda a, b: hermite_op(a, b, 1), (x, c))


@pytest.mark.parametrize("channels,cd,shape", [(None, 1, (3, 8, 40, 41)), (8, 1, (3, 8, 40, 41)),
                                               (41, -1, (3, 8, 40, 41))])
def test_fused_grads_match_naive_float64_composition(channels, cd, shape) -> None:
    """The fused CPU kernel (fp32, 39K elements) vs autograd through the naive basis (fp64)."""
    x = torch.randn(shape)
    c = torch.randn((channels, 7) if channels else (7,))
    g = torch.randn(shape)
    xa, ca = x.clone().requires_grad_(), c.clone().requires_grad_()
    hermite_op(xa, ca, cd).backward(g)
    xr, cr = x.double().requires_grad_(), c.double().requires_grad_()
    basis = F.hermite_basis(xr, 6)
    dim = cd % len(shape)
    view = [1] * len(shape)
    view[dim] = -1
    ref = sum((cr[..., k].reshape(view) if channels else cr[k]) * basis[k] for k in range(7))
    ref.backward(g.double())
    assert torch.allclose(xa.grad.double(), xr.grad, rtol=1e-5, atol=1e-4)
    assert torch.allclose(ca.grad.double(), cr.grad, rtol=1e-4, atol=1e-2)
