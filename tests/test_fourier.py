"""Fourier: op vs numpy float64 formula, moments, inits, gradients."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from numpy.polynomial import hermite_e as He

import learnact
from learnact.ops.fourier import fourier_op


def _numpy_fourier(x, a0, c, w, p):
    th = np.multiply.outer(x, w) - p
    return a0 + (c * np.cos(th)).sum(-1), -(c * w * np.sin(th)).sum(-1)


@pytest.mark.parametrize("degree", list(range(1, 9)))
@pytest.mark.parametrize("n", [10001, 257])
def test_fp32_matches_numpy(degree: int, n: int) -> None:
    g = torch.Generator().manual_seed(degree)
    params = [torch.randn((), generator=g)] + [torch.randn(degree, generator=g) for _ in range(3)]
    x = torch.linspace(-6, 6, n, requires_grad=True)
    y = fourier_op(x, *params, channel_dim=0)
    (dy,) = torch.autograd.grad(y.sum(), x)
    ref, dref = _numpy_fourier(x.detach().double().numpy(), *(p.double().numpy() for p in params))
    scale = max(1.0, float(np.abs(ref).max()), float(params[2].abs().max()) * 6)
    assert np.abs(y.detach().double().numpy() - ref).max() <= 4e-6 * scale
    assert np.abs(dy.double().numpy() - dref).max() <= 4e-6 * scale * max(1.0, float(params[2].abs().max()))


@pytest.mark.parametrize("degree", list(range(1, 9)))
def test_unit_init_moments_against_gauss_hermite(degree: int) -> None:
    act = learnact.Fourier(degree)
    p = [t.detach().double().numpy() for t in (act.bias, act.amplitude, act.frequency, act.phase)]
    z, w = He.hermegauss(200)
    w = w / w.sum()
    f, df = _numpy_fourier(z, *p)
    assert (w * f * f).sum() == pytest.approx(1.0, rel=1e-2)
    assert (w * df * df).sum() == pytest.approx(1.0, rel=1e-2)
    e2, ed2 = learnact.second_moments(act)
    assert e2 == pytest.approx((w * f * f).sum(), rel=1e-7)
    assert ed2 == pytest.approx((w * df * df).sum(), rel=1e-7)


def test_paper_init_matches_published_constants_and_gain() -> None:
    act = learnact.Fourier(5, init="paper")
    k = np.arange(1, 6)
    fact = np.array([math.factorial(i) for i in k], dtype=np.float64)
    assert np.allclose(act.amplitude.detach().numpy(), 0.66232645879 / fact, rtol=1e-6)
    assert np.allclose(act.phase.detach().numpy(), math.pi / 4)
    assert np.allclose(act.frequency.detach().numpy(), k)
    e2, _ = learnact.second_moments(act)
    assert e2 == pytest.approx(1.31, abs=0.005)  # the published init does not preserve variance


@pytest.mark.parametrize("channels", [None, 3])
def test_gradcheck(channels) -> None:
    pre = (channels,) if channels else ()
    x = torch.randn((2, 3, 4) if channels else (9,), dtype=torch.float64, requires_grad=True)
    ps = [torch.randn(pre, dtype=torch.float64, requires_grad=True)] + [
        torch.randn(pre + (3,), dtype=torch.float64, requires_grad=True) for _ in range(3)]
    fn = lambda *a: fourier_op(*a, channel_dim=1 if channels else 0)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x, *ps))
    assert torch.autograd.gradgradcheck(fn, (x, *ps))
