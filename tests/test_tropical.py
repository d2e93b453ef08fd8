"""Tropical and tropical rational: op vs numpy max-plus, exact moments vs Monte Carlo, grads."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import learnact
from learnact.ops.tropical import tropical_op, tropical_rational_op


def _np_env(x, s, c):
    v = np.multiply.outer(x, s) + c
    i = v.argmax(-1)
    return v.max(-1), s[i]


def _mc(f_df, n=4_000_000, seed=0):
    z = np.random.default_rng(seed).standard_normal(n)
    f, df = f_df(z)
    return (f * f).mean(), (df * df).mean()


@pytest.mark.parametrize("degree", list(range(2, 9)))
def test_tropical_unit_moments_monte_carlo(degree: int) -> None:
    act = learnact.Tropical(degree)
    s = act.slopes.double().numpy()
    c, a, b = (t.detach().double().numpy() for t in (act.coeffs, act.scale, act.offset))

    def f_df(z):
        v, sl = _np_env(z, s, c)
        return a * v + b, a * sl

    e2, ed2 = _mc(f_df)
    assert e2 == pytest.approx(1.0, rel=1e-2) and ed2 == pytest.approx(1.0, rel=1e-2)
    q2, qd2 = learnact.second_moments(act)
    assert q2 == pytest.approx(1.0, abs=1e-6) and qd2 == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("degree", list(range(2, 6)))
def test_tropical_rational_unit_moments_monte_carlo(degree: int) -> None:
    act = learnact.TropicalRational(degree)
    p, a, q, b, al, be = (t.detach().double().numpy() for t in (
        act.num_slopes, act.num_coeffs, act.den_slopes, act.den_coeffs, act.scale, act.offset))

    def f_df(z):
        v1, s1 = _np_env(z, p, a)
        v2, s2 = _np_env(z, q, b)
        return al * (v1 - v2) + be, al * (s1 - s2)

    e2, ed2 = _mc(f_df)
    assert e2 == pytest.approx(1.0, rel=1e-2) and ed2 == pytest.approx(1.0, rel=1e-2)
    q2, qd2 = learnact.second_moments(act)
    assert q2 == pytest.approx(1.0, abs=1e-6) and qd2 == pytest.approx(1.0, abs=1e-6)


def test_quadrature_moments_exact_for_random_rational() -> None:
    """Arbitrary (non-convex, learned-looking) parameters: quadrature vs 4M-sample Monte Carlo."""
    act = learnact.TropicalRational(4, init="paper")
    p, a, q, b, al, be = (t.detach().double().numpy() for t in (
        act.num_slopes, act.num_coeffs, act.den_slopes, act.den_coeffs, act.scale, act.offset))

    def f_df(z):
        v1, s1 = _np_env(z, p, a)
        v2, s2 = _np_env(z, q, b)
        return al * (v1 - v2) + be, al * (s1 - s2)

    e2, ed2 = _mc(f_df, seed=3)
    q2, qd2 = learnact.second_moments(act)
    assert q2 == pytest.approx(e2, rel=1e-2) and qd2 == pytest.approx(ed2, rel=1e-2)


@pytest.mark.parametrize("degree", [2, 5, 8])
def test_paper_tropical_is_scaled_relu(degree: int) -> None:
    act = learnact.Tropical(degree, init="paper")
    x = torch.linspace(-4, 4, 101)
    expect = math.sqrt(2) * torch.relu(x) + math.sqrt(2) / degree
    assert torch.allclose(act(x), expect, atol=1e-6)
    e2, _ = learnact.second_moments(act)
    assert e2 == pytest.approx(1 + 4 / (math.sqrt(2 * math.pi) * degree) + 2 / degree**2, rel=1e-6)


@pytest.mark.parametrize("n", [10001, 333])
def test_tropical_values_and_grads_against_numpy(n: int) -> None:
    c = torch.randn(6)
    x = torch.linspace(-5, 5, n, requires_grad=True)
    s = torch.arange(6.0)
    y = tropical_op(x, s, c, torch.tensor(0.7), torch.tensor(-0.2), 0)
    (dy,) = torch.autograd.grad(y.sum(), x)
    v, sl = _np_env(x.detach().double().numpy(), s.double().numpy(), c.double().numpy())
    assert np.abs(y.detach().double().numpy() - (0.7 * v - 0.2)).max() < 1e-5
    assert np.abs(dy.double().numpy() - 0.7 * sl).max() < 1e-6


def test_ties_give_first_index_subgradient() -> None:
    # published init: all intercepts equal, every line meets at x = 0
    act = learnact.Tropical(4, init="paper")
    for n in (5, 5000):
        x = torch.zeros(n, requires_grad=True)
        act(x).sum().backward()
        assert torch.all(x.grad == 0.0)  # slope 0 line wins the tie
        assert act.coeffs.grad[0].item() == pytest.approx(n * act.scale.item(), rel=1e-5)
        assert torch.all(act.coeffs.grad[1:] == 0)
        act.zero_grad()


@pytest.mark.parametrize("channels", [None, 3])
def test_gradcheck(channels) -> None:
    pre = (channels,) if channels else ()
    # points at least 1e-3 away from every kink so finite differences do not straddle one
    x = torch.tensor([-2.3, -1.1, -0.37, 0.21, 0.93, 1.77, 2.5], dtype=torch.float64)
    x = x.repeat(6).reshape(2, 3, 7).requires_grad_(True) if channels else x.requires_grad_(True)
    cd = 1 if channels else 0
    s = torch.arange(5.0, dtype=torch.float64)
    c = (torch.tensor([0.0, -0.2, -0.9, -2.1, -3.9], dtype=torch.float64)
         .expand(pre + (5,)).clone().requires_grad_(True))
    sc = torch.full(pre, 0.8, dtype=torch.float64, requires_grad=True)
    of = torch.full(pre, 0.1, dtype=torch.float64, requires_grad=True)
    fn = lambda *a: tropical_op(a[0], s, *a[1:], channel_dim=cd)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x, c, sc, of))
    assert torch.autograd.gradgradcheck(fn, (x, c, sc, of))
    p = torch.tensor([0.0, 1.0, 2.5], dtype=torch.float64).expand(pre + (3,)).clone().requires_grad_(True)
    a = torch.tensor([0.0, 0.3, -1.7], dtype=torch.float64).expand(pre + (3,)).clone().requires_grad_(True)
    q = torch.tensor([-0.5, 0.5, 1.0], dtype=torch.float64).expand(pre + (3,)).clone().requires_grad_(True)
    b = torch.tensor([0.2, 0.0, -0.4], dtype=torch.float64).expand(pre + (3,)).clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda *t: tropical_rational_op(*t, channel_dim=cd),
                                    (x, p, a, q, b, sc, of))
    assert torch.autograd.gradgradcheck(lambda *t: tropical_rational_op(*t, channel_dim=cd),
                                        (x, p, a, q, b, sc, of))
