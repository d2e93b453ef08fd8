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


@pytest.mark.parametrize("n", [10001, 301])
@pytest.mark.parametrize("channels", [None, 2])
def test_linear_tails(n: int, channels) -> None:
    act = learnact.Hermite(6, channels=channels, channel_dim=0, tails="linear", bound=2.5)
    with torch.no_grad():
        act.coeffs.add_(0.2 * torch.randn_like(act.coeffs))
    x = torch.linspace(-8, 8, n).expand(channels or 1, n).reshape((channels, n) if channels else (n,))
    x = x.clone().requires_grad_(True)
    y = act(x)
    (dy,) = torch.autograd.grad(y.sum(), x)
    c = act.coeffs.detach().double()
    c = c[-1] if channels else c
    xs = x.detach().double().numpy().reshape(-1, n)[-1]
    xb = np.clip(xs, -2.5, 2.5)
    p, dp = _numpy_f_df(xb, c.numpy())
    ref = p + dp * (xs - xb)
    yy = y.detach().double().numpy().reshape(-1, n)[-1]
    dd = dy.double().numpy().reshape(-1, n)[-1]
    assert np.abs(yy - ref).max() < 2e-5 * max(1.0, np.abs(ref).max())
    assert np.abs(dd - dp).max() < 2e-5 * max(1.0, np.abs(dp).max())  # f' = P'(clamp(x))


def test_linear_tails_unit_moments_and_gradcheck() -> None:
    for init in ("unit", "stable"):
        act = learnact.Hermite(8, tails="linear", init=init)
        e2, ed2 = learnact.second_moments(act)
        assert e2 == pytest.approx(1.0, abs=1e-6) and ed2 == pytest.approx(1.0, abs=1e-6)
    x = torch.tensor([-4.0, -3.2, -1.0, 0.3, 2.0, 2.9, 5.5], dtype=torch.float64, requires_grad=True)
    c = torch.randn(5, dtype=torch.float64, requires_grad=True)
    lo, hi = torch.tensor(-3.0, dtype=torch.float64), torch.tensor(3.0, dtype=torch.float64)
    fn = lambda a, b: hermite_op(a, b, 0, lo, hi)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x, c))
    xl = (torch.rand(3, 2000, dtype=torch.float64) * 12 - 6).requires_grad_(True)
    cl = torch.randn(2, 5, dtype=torch.float64, requires_grad=True)
    lo2, hi2 = torch.tensor([-2.0, -1.0], dtype=torch.float64), torch.tensor([1.5, 3.0], dtype=torch.float64)
    # fused kernel (6000 elements) against the plain path (small slices), per channel
    xs = xl.reshape(3, 2, 1000)
    out_fast = hermite_op(xs, cl, 1, lo2, hi2)
    g = torch.randn_like(out_fast)
    gx, gc = torch.autograd.grad(out_fast, (xl, cl), g)
    out_ref = torch.cat([hermite_op(xs[:, :, i:i + 10], cl, 1, lo2, hi2) for i in range(0, 1000, 10)], 2)
    gx2, gc2 = torch.autograd.grad(out_ref, (xl, cl), g)
    assert torch.allclose(out_fast, out_ref) and torch.allclose(gx, gx2) and torch.allclose(gc, gc2)


def test_set_bounds_validates() -> None:
    act = learnact.Hermite(3, tails="linear")
    act.set_bounds(-5.0, 7.0)
    assert act.lo.item() == -5.0 and act.hi.item() == 7.0
    with pytest.raises(ValueError, match="lo < hi"):
        act.set_bounds(1.0, 1.0)
    with pytest.raises(ValueError, match="tails='linear'"):
        learnact.Hermite(3).set_bounds(-1, 1)
    with pytest.raises(ValueError, match="bound must be"):
        learnact.Hermite(3, tails="linear", bound=0)
