"""DiTAC / CPAB: basis, closed form vs an ODE solver, inverse, gradients, GELU limits, LUT, prior."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.integrate import solve_ivp

import learnact
from learnact.functional import cpab


@pytest.mark.parametrize("cells,zero", [(2, True), (5, True), (10, True), (50, True), (7, False)])
def test_basis_is_orthonormal_null_space(cells: int, zero: bool) -> None:
    B = cpab.cpa_basis(cells, zero).numpy()
    L = cpab.constraint_matrix(cells, zero)
    assert B.shape == (2 * cells, cells - 1 if zero else cells + 1)
    assert np.abs(L @ B).max() < 1e-12
    assert np.abs(B.T @ B - np.eye(B.shape[1])).max() < 1e-12


@pytest.mark.parametrize("cells", [2, 5, 10, 50])
def test_closed_form_matches_solve_ivp(cells: int) -> None:
    B = cpab.cpa_basis(cells)
    g = torch.Generator().manual_seed(cells)
    theta = torch.randn(B.shape[1], generator=g, dtype=torch.float64) * 3.0
    x = torch.linspace(0, 1, 301, dtype=torch.float64)
    T = cpab.integrate(x, theta, B)

    def rhs(t, y):
        return cpab.velocity(torch.from_numpy(y), theta, B).numpy()

    sol = solve_ivp(rhs, (0.0, 1.0), x.numpy(), rtol=1e-11, atol=1e-13, method="DOP853")
    assert np.abs(sol.y[:, -1] - T.numpy()).max() <= 1e-7
    assert bool((T[1:] > T[:-1]).all())  # strictly increasing
    assert abs(float(T[0])) < 1e-12 and abs(float(T[-1]) - 1) < 1e-12
    assert torch.allclose(cpab.integrate(T, theta, B, t=-1.0), x, atol=1e-12)  # T_-theta T_theta
    half = cpab.integrate(cpab.integrate(x, theta, B, 0.4), theta, B, 0.6)  # flow semigroup
    assert torch.allclose(half, T, atol=1e-12)
    assert torch.equal(cpab.integrate(x, torch.zeros_like(theta), B), x)  # theta = 0: identity


def test_gradcheck_x_and_theta_near_knots_and_zeros() -> None:
    B = cpab.cpa_basis(10)
    g = torch.Generator().manual_seed(3)
    theta = (torch.randn(9, generator=g, dtype=torch.float64) * 2).requires_grad_(True)
    x = torch.cat([torch.rand(30, generator=g, dtype=torch.float64),
                   torch.tensor([0.1 + 1e-7, 0.3 - 1e-7, 0.5, 0.7 + 1e-6], dtype=torch.float64)])
    x.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, b: cpab.integrate(a, b, B), (x, theta))
    T = cpab.integrate(x, theta, B)
    (dx,) = torch.autograd.grad(T.sum(), x)
    v, vT = cpab.velocity(x.detach(), theta.detach(), B), cpab.velocity(T.detach(), theta.detach(), B)
    m = v.abs() > 1e-4
    assert torch.allclose(dx[m], (vT / v)[m], rtol=1e-9)  # dT/dx = v(T)/v(x)


@pytest.mark.parametrize("channels", [None, 3])
def test_module_gradcheck(channels) -> None:
    act = learnact.DiTAC(channels=channels).double()
    x = (torch.rand(2, 3, 7, dtype=torch.float64) * 4 - 1.5).requires_grad_(True)
    th = act.theta.detach().clone().requires_grad_(True)

    def fn(x, th):
        return torch.func.functional_call(act, {"theta": th}, (x,))

    assert torch.autograd.gradcheck(fn, (x, th))


def test_gelu_outside_and_at_zero() -> None:
    act = learnact.create("ditac")
    x = torch.cat([torch.linspace(-6, -0.51, 200), torch.linspace(2.01, 6, 200)])
    assert torch.equal(act(x), F.gelu(x)) or torch.allclose(act(x), F.gelu(x), atol=1e-6)
    z = learnact.create("ditac:init=zeros")
    xx = torch.linspace(-4, 4, 1001)
    assert torch.allclose(z(xx), F.gelu(xx), atol=1e-6)
    # continuous at a and b
    for edge in (-0.5, 2.0):
        e = torch.tensor([edge - 1e-6, edge, edge + 1e-6])
        y = act(e)
        assert float((y[0] - y[2]).abs().detach()) < 1e-4
    ge = learnact.create("ge_ditac")
    neg = torch.linspace(-5, -1e-3, 100)
    assert torch.allclose(ge(neg), F.gelu(neg), atol=1e-6)


def test_lut_error_bound_and_train_eval_identical() -> None:
    exact = learnact.create("ditac")
    lut = learnact.create("ditac:lut=257")
    lut.load_state_dict(exact.state_dict())
    x = torch.linspace(-0.5, 2.0, 5001, dtype=torch.float64)
    te, tl = exact.double().transform(x), lut.double().transform(x)
    u = torch.linspace(0, 1, 4001, dtype=torch.float64)
    th = exact.theta.detach()
    du = cpab.velocity(cpab.integrate(u, th, exact.basis.double()), th,
                       exact.basis.double()) / cpab.velocity(u, th, exact.basis.double()).clamp_min(1e-9)
    bound = 0.5 * 2.5 / 256 * float(du.abs().max()) + 1e-9
    assert float((te - tl).abs().max()) <= bound * 1.01
    lut.eval()
    ev = lut.transform(x)
    lut.train()
    assert torch.equal(ev, lut.transform(x))
    assert torch.unique(lut.transform(x)).numel() <= 257


def test_prior_loss_matches_autograd_of_quadratic_form() -> None:
    act = learnact.DiTAC()
    loss = learnact.regularization(torch.nn.Sequential(act, torch.nn.Linear(1, 1)))
    th = act.theta.detach().double()
    P = act.precision.double()
    assert float(loss) == pytest.approx(float(0.1 * th @ P @ th), rel=1e-5)
    loss.backward()
    assert torch.allclose(act.theta.grad.double(), 0.2 * P @ th, rtol=1e-4, atol=1e-8)


def test_transform_and_velocity_contract() -> None:
    act = learnact.DiTAC()
    x = torch.linspace(-1, 3, 101)
    t = act.transform(x)
    inside = (x >= -0.5) & (x <= 2.0)
    assert torch.equal(t[~inside], x[~inside])
    v = act.velocity(x)
    assert torch.all(v[~inside] == 0) and v.shape == x.shape


@pytest.mark.parametrize("spec,pattern", [("ditac:a=1,b=1", "a < b"), ("ditac:cells=0", "cells"),
                                          ("ditac:lut=1", "lut"), ("ditac:gate=swish", "gate")])
def test_bad_input(spec: str, pattern: str) -> None:
    with pytest.raises(ValueError, match=pattern):
        learnact.create(spec)
    act = learnact.DiTAC(cells=10)
    with pytest.raises(RuntimeError, match="theta"):
        act.load_state_dict({"theta": torch.zeros(5)})


def test_large_theta_gives_finite_values_and_gradients() -> None:
    """e^{t a} overflows float32 for large theta; unused branches must not poison gradients."""
    act = learnact.DiTAC(channels=4, channel_dim=-1)
    with torch.no_grad():
        act.theta.mul_(40.0)
    x = (torch.rand(256, 4) * 3 - 0.75).requires_grad_(True)
    y = act(x)
    y.sum().backward()
    assert torch.isfinite(y).all() and torch.isfinite(x.grad).all()
    assert torch.isfinite(act.theta.grad).all()
    t = act.transform(x.detach())
    inside = (x.detach() >= -0.5) & (x.detach() <= 2.0)
    assert ((t[inside] >= -0.5 - 1e-5) & (t[inside] <= 2.0 + 1e-5)).all()
