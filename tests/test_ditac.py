"""DiTAC / CPAB: basis, closed form vs an ODE solver, inverse, gradients, GELU limits, LUT, prior."""

from __future__ import annotations

import copy
import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.integrate import solve_ivp

import learnact
from learnact.functional import cpab
from learnact.ops import cpab as ops_cpab


@pytest.fixture(params=["native", "pytorch"])
def flow_path(request, monkeypatch):
    """Run a test on the exact mode's native C kernel and on its PyTorch path, which stays the
    fallback (no compiler) and the CUDA path."""
    from learnact.ops import _native
    from learnact.ops import cpab as ops

    if request.param == "pytorch":
        monkeypatch.setattr(ops.flow, "_native_flow", lambda *a: False)
    elif os.environ.get("LEARNACT_NATIVE", "1") != "0":
        assert _native.library() is not None  # CI has a C compiler: never test only fallback
    return request.param


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
    T = ops_cpab.integrate(x, theta, B)

    def rhs(t, y):
        return cpab.velocity(torch.from_numpy(y), theta, B).numpy()

    # the solver's own error dominates (scipy 1.17, rtol 1e-11: 1.1e-7 at 10 cells; 1e-13:
    # 1.3e-8 at most): tight tolerances keep the reference an order below the bound
    sol = solve_ivp(rhs, (0.0, 1.0), x.numpy(), rtol=1e-13, atol=1e-15, method="DOP853")
    assert np.abs(sol.y[:, -1] - T.numpy()).max() <= 1e-7
    assert bool((T[1:] > T[:-1]).all())  # strictly increasing
    assert abs(float(T[0])) < 1e-12 and abs(float(T[-1]) - 1) < 1e-12
    assert torch.allclose(ops_cpab.integrate(T, theta, B, t=-1.0), x, atol=1e-12)  # T_-theta T_theta
    half = ops_cpab.integrate(ops_cpab.integrate(x, theta, B, 0.4), theta, B, 0.6)  # flow semigroup
    assert torch.allclose(half, T, atol=1e-12)
    assert torch.equal(ops_cpab.integrate(x, torch.zeros_like(theta), B), x)  # theta = 0: identity


def test_gradcheck_x_and_theta_near_knots_and_zeros() -> None:
    B = cpab.cpa_basis(10)
    g = torch.Generator().manual_seed(3)
    theta = (torch.randn(9, generator=g, dtype=torch.float64) * 2).requires_grad_(True)
    x = torch.cat([torch.rand(30, generator=g, dtype=torch.float64),
                   torch.tensor([0.1 + 1e-7, 0.3 - 1e-7, 0.5, 0.7 + 1e-6], dtype=torch.float64)])
    x.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, b: ops_cpab.integrate(a, b, B), (x, theta))
    T = ops_cpab.integrate(x, theta, B)
    (dx,) = torch.autograd.grad(T.sum(), x)
    v, vT = cpab.velocity(x.detach(), theta.detach(), B), cpab.velocity(T.detach(), theta.detach(), B)
    m = v.abs() > 1e-4
    assert torch.allclose(dx[m], (vT / v)[m], rtol=1e-9)  # dT/dx = v(T)/v(x)


@pytest.mark.parametrize("channels", [None, 3])
def test_module_gradcheck(channels, flow_path) -> None:
    act = learnact.DiTAC(channels=channels).double()
    x = (torch.rand(2, 3, 7, dtype=torch.float64) * 4 - 1.5).requires_grad_(True)
    th = act.theta.detach().clone().requires_grad_(True)

    def fn(x, th):
        return torch.func.functional_call(act, {"theta": th}, (x,))

    assert torch.autograd.gradcheck(fn, (x, th))


def test_gelu_outside_and_at_zero(flow_path) -> None:
    """float32 against GELU in float64 (F.gelu's own float32 result is 9e-7 off on this range;
    the native kernel's polynomial gate 4e-7), and float64 exactly."""
    act = learnact.create("ditac")
    x = torch.cat([torch.linspace(-6, -0.51, 200), torch.linspace(2.01, 6, 200)])
    gelu64 = F.gelu(x.double())
    assert torch.allclose(act(x).double(), gelu64, atol=5e-7, rtol=0)
    assert torch.allclose(copy.deepcopy(act).double()(x.double()), gelu64, atol=1e-14, rtol=0)
    z = learnact.create("ditac:init=zeros")
    xx = torch.linspace(-4, 4, 1001)
    assert torch.allclose(z(xx).double(), F.gelu(xx.double()), atol=5e-7, rtol=0)
    assert torch.allclose(copy.deepcopy(z).double()(xx.double()), F.gelu(xx.double()),
                          atol=1e-14, rtol=0)
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
    x = torch.linspace(-1.0, 2.5, 7001, dtype=torch.float64)
    te, tl = exact.double().transform(x).detach(), lut.double().transform(x).detach()
    B, th = exact.basis.double(), exact.theta.detach()
    # independent reference: the grid point nearest to x, displaced by T(u_r) - u_r
    r = torch.floor((x + 0.5) / 2.5 * 256 + 0.5)
    ur = (r / 256).clamp(0, 1)
    ref = torch.where((r >= 0) & (r <= 256), x + 2.5 * (ops_cpab.integrate(ur, th, B) - ur), x)
    assert torch.allclose(tl, ref, atol=1e-12)
    assert torch.equal(tl[(x < -0.5 - 2.5 / 512) | (x > 2.0 + 2.5 / 512)],
                       x[(x < -0.5 - 2.5 / 512) | (x > 2.0 + 2.5 / 512)])
    # error bound: half a grid step times max |T' - 1|
    u = torch.linspace(0, 1, 4001, dtype=torch.float64)
    du = cpab.velocity(ops_cpab.integrate(u, th, B), th, B) / cpab.velocity(u, th, B).clamp_min(1e-9)
    bound = 0.5 * 2.5 / 256 * float((du - 1).abs().max()) + 1e-9
    assert float((te - tl).abs().max()) <= bound * 1.01
    assert float((te - tl).abs().max()) > 0.1 * bound  # the bound is not vacuous
    # ... which implies the issue's half a step times max T' (max |T' - 1| <= max T')
    assert bound <= 0.5 * 2.5 / 256 * float(du.max()) + 1e-9
    # theta = 0: T = identity and the displacement table is 0: x~ = x exactly, f = GELU
    zero = learnact.create("ditac:lut=257,init=zeros")
    assert torch.equal(zero.transform(x.float()), x.float())
    assert torch.allclose(zero(x.float()), F.gelu(x.float()), atol=1e-6, rtol=0)
    lut.eval()
    ev = lut.transform(x)
    lut.train()
    assert torch.equal(ev, lut.transform(x))


def test_prior_loss_matches_autograd_of_quadratic_form() -> None:
    act = learnact.DiTAC()
    loss = learnact.regularization(torch.nn.Sequential(act, torch.nn.Linear(1, 1)))
    th = act.theta.detach().double()
    P = act.precision.double()
    assert float(loss.detach()) == pytest.approx(float(0.1 * th @ P @ th), rel=1e-5)
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


def test_large_theta_gives_finite_values_and_gradients(flow_path) -> None:
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


@pytest.mark.parametrize("cells", [1, 2, 5, 10, 50])
@pytest.mark.parametrize("t", [1.0, -1.0, 0.3, 2.5])
def test_fast_flow_equals_stepwise_reference(cells: int, t: float) -> None:
    """Tabulated knot-to-knot times + binary search == the cell-by-cell loop (values, grads)."""
    B = cpab.cpa_basis(cells, zero_boundary=cells > 1)
    g = torch.Generator().manual_seed(cells)
    theta = (torch.randn(B.shape[1], generator=g, dtype=torch.float64) * 3).requires_grad_(True)
    knots = torch.arange(cells + 1, dtype=torch.float64) / cells
    x = torch.cat([torch.rand(400, generator=g, dtype=torch.float64), knots,
                   (knots + 1e-9).clamp(max=1.0)]).requires_grad_(True)
    w = torch.randn(x.shape, generator=g, dtype=torch.float64)
    fast = ops_cpab.integrate(x, theta, B, t)
    ref = cpab.integrate_stepwise(x, theta, B, t)
    assert torch.allclose(fast, ref, atol=1e-12, rtol=0)
    gf = torch.autograd.grad((fast * w).sum(), (x, theta))
    gr = torch.autograd.grad((ref * w).sum(), (x, theta))
    for a, b in zip(gf, gr):
        assert torch.allclose(a, b, atol=1e-8, rtol=1e-8)


def test_fast_flow_per_channel_and_float32() -> None:
    B = cpab.cpa_basis(10)
    g = torch.Generator().manual_seed(5)
    theta = (torch.randn(3, 9, generator=g, dtype=torch.float64) * 2).requires_grad_(True)
    x = torch.rand(3, 60, generator=g, dtype=torch.float64).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, b: ops_cpab.integrate(a, b, B), (x, theta))
    rows = torch.stack([cpab.integrate_stepwise(x[c], theta[c], B) for c in range(3)])
    assert torch.allclose(ops_cpab.integrate(x, theta, B), rows, atol=1e-12)
    y32 = ops_cpab.integrate(x.detach().float(), theta.detach(), B)  # per-element work in fp32
    assert y32.dtype == torch.float32 and torch.allclose(y32.double(), rows, atol=2e-6)


def _windowed_op_case(gate: str, channels, cells: int, seed: int, scale: float, x_shape):
    """(fn(x, theta) = the exact op through flow_tables on [-0.5, 2], x, theta) in float64."""
    from learnact.ops.cpab import cpab_op

    B = cpab.cpa_basis(cells)
    g = torch.Generator().manual_seed(seed)
    shape = (cells - 1,) if channels is None else (channels, cells - 1)
    theta = (torch.randn(shape, generator=g, dtype=torch.float64) * scale).requires_grad_(True)
    x = (torch.rand(x_shape, generator=g, dtype=torch.float64) * 4 - 1.5).requires_grad_(True)
    cd = None if channels is None else 1

    def fn(x, theta):
        a2, b2, tau2 = cpab.flow_tables(theta, B)
        return cpab_op(x, a2, b2, tau2, lo=-0.5, hi=2.0, gate=gate, alpha=0.1, channel_dim=cd)

    return fn, x, theta, B


@pytest.mark.parametrize("gate", ["gelu", "silu", "leaky_relu", "identity"])
@pytest.mark.parametrize("channels", [None, 3])
def test_cpab_op_gradcheck_gates_and_tables(gate: str, channels, flow_path) -> None:
    fn, x, theta, B = _windowed_op_case(gate, channels, 6, 2, 2.0, (2, 3, 9))
    assert torch.autograd.gradcheck(fn, (x, theta))
    # independent composition: window + stepwise flow + gate
    xd = x.detach()
    inside = (xd >= -0.5) & (xd <= 2.0)
    u = torch.where(inside, (xd + 0.5) / 2.5, torch.zeros_like(xd))
    if channels is None:
        T = cpab.integrate_stepwise(u, theta.detach(), B)
    else:
        T = torch.stack([cpab.integrate_stepwise(u[:, c], theta.detach()[c], B)
                         for c in range(channels)], 1)
    xt = torch.where(inside, -0.5 + 2.5 * T, xd)
    s = {"gelu": lambda z: 0.5 * (1 + torch.erf(z / 2**0.5)), "silu": torch.sigmoid,
         "leaky_relu": lambda z: torch.where(z > 0, 1.0, 0.1),
         "identity": torch.ones_like}[gate](xd)
    assert torch.allclose(fn(xd, theta.detach()), xt * s, atol=1e-12)


def test_lut_op_backward_is_straight_through() -> None:
    from learnact.ops.cpab import cpab_lut_op

    g = torch.Generator().manual_seed(4)
    n = 17
    table = torch.sort(torch.rand(n, generator=g, dtype=torch.float64))[0].requires_grad_(True)
    dtable = torch.rand(n, generator=g, dtype=torch.float64) + 0.5
    x = (torch.rand(400, generator=g, dtype=torch.float64) * 3 - 0.6).requires_grad_(True)
    w = torch.randn(400, generator=g, dtype=torch.float64)
    y = cpab_lut_op(x, table, dtable, lo=0.0, hi=2.0, gate="gelu")
    gx, gt = torch.autograd.grad((y * w).sum(), (x, table))
    xd = x.detach()
    r = torch.floor(xd / 2 * (n - 1) + 0.5).long()
    used = (r >= 0) & (r < n)
    rc = r.clamp(0, n - 1)
    xt = torch.where(used, xd + 2 * (table.detach()[rc] - rc / (n - 1)), xd)
    phi, Phi = torch.exp(-xd**2 / 2) / (2 * torch.pi) ** 0.5, 0.5 * (1 + torch.erf(xd / 2**0.5))
    assert torch.allclose(y.detach(), xt * Phi, atol=1e-14)
    dxt = torch.where(used, dtable[rc], torch.ones_like(xd))
    assert torch.allclose(gx, w * (dxt * Phi + xt * phi), atol=1e-12)
    ref_gt = torch.zeros(n, dtype=torch.float64).index_add(0, rc[used], (w * Phi * 2)[used])
    assert torch.allclose(gt, ref_gt, atol=1e-12)
    assert bool((~used).any()) and bool(used.any())
    nan = cpab_lut_op(torch.tensor([float("nan"), 1e30, -1e30]), table.detach().float(),
                      dtable.float(), lo=0.0, hi=2.0, gate="identity")
    assert torch.isnan(nan[0]) and nan[1] == 1e30 and nan[2] == -1e30
    with pytest.raises(ValueError, match="same shape"):
        cpab_lut_op(xd, table, dtable[:-1], lo=0.0, hi=2.0)


@pytest.mark.parametrize("gate", ["gelu", "silu", "leaky_relu", "identity"])
@pytest.mark.parametrize("channels", [None, 2])
def test_exact_op_gradgradcheck(gate: str, channels, flow_path) -> None:
    """Second derivatives of the exact op (x and theta, every gate, shared and per channel):
    gradgradcheck against finite differences of the first-order backward."""
    fn, x, theta, B = _windowed_op_case(gate, channels, 5, 7, 1.5, (2, 2, 5))
    assert torch.autograd.gradgradcheck(fn, (x, theta))
    u = (x.detach()[0, 0] / 4 + 0.3).requires_grad_(True)  # the bare flow on [0, 1]
    th = theta.detach().reshape(-1)[:4].clone().requires_grad_(True)
    assert torch.autograd.gradgradcheck(lambda a, b: ops_cpab.integrate(a, b, B), (u, th))


@pytest.mark.parametrize("spec", ["ditac", "leaky_ditac", "ge_ditac", "ditac:channels=3"])
def test_gradient_penalty_reaches_theta(spec: str, flow_path) -> None:
    """A gradient penalty (dy/dx)^2 through DiTAC changes theta's gradient by its true amount
    (it used to add exactly 0): autograd == central finite differences of the penalty."""
    act = learnact.create(spec).double()
    g = torch.Generator().manual_seed(1)
    x = (torch.rand(2, 3, 8, generator=g, dtype=torch.float64) * 4 - 2).requires_grad_(True)
    th0 = act.theta.detach().clone()

    def penalty(th: torch.Tensor) -> torch.Tensor:
        y = torch.func.functional_call(act, {"theta": th}, (x,))
        (gx,) = torch.autograd.grad(y.sum(), x, create_graph=True)
        return (gx ** 2).sum()

    def value(th: torch.Tensor) -> float:
        return float(penalty(th).detach())

    th = th0.clone().requires_grad_(True)
    (got,) = torch.autograd.grad(penalty(th), th)
    eps = 1e-6
    fd = torch.zeros_like(th0).reshape(-1)
    for i in range(fd.numel()):
        d = torch.zeros_like(fd)
        d[i] = eps
        fd[i] = (value(th0 + d.reshape(th0.shape)) - value(th0 - d.reshape(th0.shape))) / (2 * eps)
    assert float(fd.abs().max()) > 1e-3  # the penalty does depend on theta
    assert torch.allclose(got.reshape(-1), fd, rtol=1e-5, atol=1e-7)


def test_lut_double_backward_raises_clearly() -> None:
    """Lookup-table mode has first derivatives only: create_graph=True is a clear error, even
    when another term keeps the graph alive (never a silent zero)."""
    act = learnact.create("ditac:lut=64").double()
    lin = torch.nn.Linear(4, 4).double()
    x = torch.rand(3, 4, dtype=torch.float64, requires_grad=True)
    y = act(lin(x)).sum()
    with pytest.raises(RuntimeError, match="lookup-table mode.*first derivatives only"):
        torch.autograd.grad(y, x, create_graph=True)
    (gx,) = torch.autograd.grad(act(lin(x)).sum(), x)  # first order still works
    assert torch.isfinite(gx).all()


@pytest.mark.parametrize("channels", [None, 3])
def test_grid_op_values_jacobian_and_opcheck(channels) -> None:
    """cpab_grid: T and dT/du on the grid vs the stepwise reference and the velocity ratio;
    its backward (a stored Jacobian) by gradcheck through theta; torch.library.opcheck."""
    from learnact.ops.cpab import cpab_grid

    B = cpab.cpa_basis(6)
    g = torch.Generator().manual_seed(8)
    shape = (5,) if channels is None else (channels, 5)
    theta = (torch.randn(shape, generator=g, dtype=torch.float64) * 2).requires_grad_(True)
    n = 33
    T, dT, J = cpab_grid(*cpab.flow_tables(theta, B), n, 1.0, True)
    u = torch.linspace(0, 1, n, dtype=torch.float64)
    th = theta.detach()
    if channels is None:
        ref = cpab.integrate_stepwise(u, th, B)
        dref = cpab.velocity(ref, th, B) / cpab.velocity(u, th, B)
    else:
        ref = torch.stack([cpab.integrate_stepwise(u, th[c], B) for c in range(channels)])
        dref = torch.stack([cpab.velocity(ref[c], th[c], B) / cpab.velocity(u, th[c], B)
                            for c in range(channels)])
    assert torch.allclose(T, ref, atol=1e-12)
    inner = (u > 0) & (u < 1)  # v = 0 at the ends: the ratio is 0/0 there
    assert torch.allclose(dT[..., inner], dref[..., inner], rtol=1e-9, atol=1e-12)
    assert J.shape == T.shape + (3 * 12,)
    assert torch.autograd.gradcheck(
        lambda t: cpab_grid(*cpab.flow_tables(t, B), n, 1.0, True)[0], (theta,))
    a2, b2, tau2 = (t.detach() for t in cpab.flow_tables(th, B))
    torch.library.opcheck(cpab_grid, (a2, b2, tau2, n, 1.0, False))


def test_binsum_matches_index_add_and_opcheck() -> None:
    from learnact.ops.cpab import binsum

    g = torch.Generator().manual_seed(9)
    for m in (7, 4096 * 3 + 5, 300000):
        idx = torch.randint(0, 50, (m,), generator=g)
        w = torch.randn(m, generator=g, dtype=torch.float64)
        ref = torch.zeros(50, dtype=torch.float64).index_add_(0, idx, w)
        assert torch.allclose(binsum(idx, w, 50), ref, atol=1e-9)
    torch.library.opcheck(binsum, (idx[:100], w[:100], 50))


def test_released_prior_quirk_option() -> None:
    """prior="released": theta's gradient is the released code's broadcast sum
    (grad[None, :] + 2 lambda P * theta[None, :]).sum(0) = d grad + 2 lambda theta colsum(P),
    in training mode only; the explicit prior_loss is then 0."""
    quirk = learnact.create("ditac:prior=released,cells=6")
    plain = learnact.create("ditac:cells=6,lambda_reg=0")
    plain.load_state_dict(quirk.state_dict())
    x = torch.randn(300)
    w = torch.randn(300)
    (quirk(x) * w).sum().backward()
    (plain(x) * w).sum().backward()
    P, th = quirk.precision, quirk.theta.detach()
    emulated = (plain.theta.grad[None, :] + 2 * 0.1 * P * th[None, :]).sum(0)
    assert torch.allclose(quirk.theta.grad, emulated, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(quirk.theta.grad, plain.theta.grad, rtol=1e-2)
    assert float(quirk.prior_loss()) == 0.0 and "released" in repr(quirk)
    quirk.zero_grad()
    plain.zero_grad()
    quirk.eval()
    (quirk(x) * w).sum().backward()
    (plain(x) * w).sum().backward()
    assert torch.allclose(quirk.theta.grad, plain.theta.grad)
    with pytest.raises(ValueError, match="prior"):
        learnact.create("ditac:prior=implicit")


@pytest.mark.parametrize("channels,channel_dim", [(None, 1), (6, 1), (6, -1)])
def test_lut_chunked_path_equals_pieces_and_half_inputs(channels, channel_dim) -> None:
    """The LUT op over a large input (CPU chunks, int32 bins, one histogram accumulated over
    pieces) equals the same input evaluated in small pieces (plain path), values and every
    gradient; bf16 inputs run in float32 inside and come back as bf16."""
    act = learnact.create("ditac", lut=129, channels=channels, channel_dim=channel_dim)
    shape = (40, 6, 9, 11) if channel_dim == 1 else (40, 9, 11, 6)
    x = torch.randn(shape) * 1.5
    g = torch.randn_like(x)
    xa = x.clone().requires_grad_()
    act(xa).backward(g)
    ga = act.theta.grad.clone()
    act.zero_grad()
    xb = x.clone().requires_grad_()
    ya = act(xa).detach()
    yb = torch.cat([act(xb[i:i + 1]) for i in range(40)])
    yb.backward(g)
    assert torch.allclose(ya, yb.detach(), atol=1e-6)
    assert torch.allclose(xa.grad, xb.grad, atol=1e-5)
    assert torch.allclose(ga, act.theta.grad, rtol=1e-4, atol=1e-4)
    yh = act(x.bfloat16())
    assert yh.dtype == torch.bfloat16
    assert torch.allclose(yh.float(), act(x.bfloat16().float()).detach(), atol=1e-2, rtol=1e-2)


@pytest.mark.parametrize("cells,scale,channels", [(1, 1.0, None), (2, 3.0, None),
                                                  (5, 2.0, None), (10, 5.0, 3), (50, 10.0, None)])
def test_large_forward_matches_stepwise_reference(cells, scale, channels, flow_path) -> None:
    """Large no-grad inputs (the chunked CPU path): values vs the stepwise reference (float64,
    incl. grid points, knots, the ends and both sides of zeros of v) and vs the same op over
    small pieces (float32 and float64)."""
    from learnact.ops import cpab as ops

    B = cpab.cpa_basis(cells, zero_boundary=cells > 1)
    g = torch.Generator().manual_seed(cells)
    shape = (B.shape[1],) if channels is None else (channels, B.shape[1])
    theta = torch.randn(shape, generator=g, dtype=torch.float64) * scale
    m = 70_000
    special = torch.cat([torch.linspace(0, 1, 2049, dtype=torch.float64),  # bin ends, knots
                         torch.linspace(0, 1, cells + 1, dtype=torch.float64)])
    u = torch.cat([special, torch.rand(m, generator=g, dtype=torch.float64)])
    if channels is not None:
        u = u.expand(channels, -1).contiguous()
    with torch.no_grad():
        fast = ops_cpab.integrate(u, theta, B)
        ref = (cpab.integrate_stepwise(u, theta, B) if channels is None else
               torch.stack([cpab.integrate_stepwise(u[c], theta[c], B) for c in range(channels)]))
        assert torch.allclose(fast, ref, atol=1e-10, rtol=0)
        x = u * 3.5 - 1.0
        x[..., :3] = torch.tensor([float("nan"), float("inf"), -2.0])
        a2, b2, tau2 = cpab.flow_tables(theta, B)
        cd = None if channels is None else 0
        for dtype, gate, tol in ((torch.float64, "gelu", 1e-10), (torch.float32, "identity", 3e-4)):
            # (float32: both paths carry the float32 conditioning of T, up to ~1e-4 at scale 10)
            xs = x.to(dtype)
            y = ops.cpab_op(xs, a2, b2, tau2, lo=-0.5, hi=2.0, gate=gate, channel_dim=cd)
            pieces = torch.cat([ops.cpab_op(p, a2, b2, tau2, lo=-0.5, hi=2.0, gate=gate,
                                            channel_dim=cd) for p in xs.split(2000, -1)], -1)
            assert torch.allclose(y, pieces, atol=tol, rtol=0, equal_nan=True)
            assert torch.isnan(y[..., 0]).all() and torch.isinf(y[..., 1]).all()


@pytest.mark.parametrize("cells,scale,channels,gate", [(1, 0.5, 3, "gelu"), (5, 5.0, None, "silu"),
                                                        (10, 10.0, 3, "leaky_relu"),
                                                        (50, 2.0, None, "identity")])
def test_large_backward_matches_pieces_and_gradcheck(cells, scale, channels, gate, flow_path) -> None:
    """Large inputs (the chunked CPU path): x and theta gradients vs the same op over small
    pieces, and gradcheck of a weighted sum w.r.t. theta."""
    from learnact.ops import cpab as ops

    B = cpab.cpa_basis(cells, zero_boundary=cells > 1)
    g = torch.Generator().manual_seed(cells + 100)
    shape = (B.shape[1],) if channels is None else (channels, B.shape[1])
    theta = (torch.randn(shape, generator=g, dtype=torch.float64) * scale).requires_grad_(True)
    x = torch.rand(channels or 1, 68_000, generator=g, dtype=torch.float64)
    x = (x * 3.5 - 1.0).reshape(-1) if channels is None else x * 3.5 - 1.0
    x.requires_grad_(True)
    w = torch.randn(x.shape, generator=g, dtype=torch.float64)
    cd = None if channels is None else 0

    def f(xx, th):
        return ops.cpab_op(xx, *cpab.flow_tables(th, B), lo=-0.5, hi=2.0, gate=gate,
                           alpha=0.1, channel_dim=cd)

    gx, gt = torch.autograd.grad((f(x, theta) * w).sum(), (x, theta))
    pieces = torch.cat([f(p, theta) for p in x.split(2000, -1)], -1)
    gx2, gt2 = torch.autograd.grad((pieces * w).sum(), (x, theta))
    assert torch.allclose(gx, gx2, atol=1e-9, rtol=1e-9)
    assert torch.allclose(gt, gt2, atol=1e-9, rtol=1e-8)
    xd = x.detach()
    assert torch.autograd.gradcheck(lambda th: (f(xd, th) * w).sum(), (theta,), atol=1e-5,
                                    rtol=1e-4)


def test_float32_theta_gradients_close_to_float64(flow_path) -> None:
    """The backward's per-element weights are the trajectory's stable pieces (E, E', L', series
    near 0): float32 theta gradients stay within 2e-6 (relative to the largest) of float64,
    per channel too, on the native kernel (float64 histograms); the PyTorch path adds its
    per-element terms per cell in float32 (binsum): 5.3e-6 measured, bound 1e-5."""
    bound = 2e-6 if flow_path == "native" else 1e-5
    for channels in (None, 16):
        torch.manual_seed(3)
        act = learnact.create("ditac", channels=channels, channel_dim=-1)
        with torch.no_grad():
            act.theta.mul_(2.0)
        x = torch.randn(8, 600, 16, requires_grad=True)  # 77K elements: the chunked path
        w = torch.randn_like(x)
        (act(x) * w).sum().backward()
        a64 = copy.deepcopy(act).double()
        a64.zero_grad()
        (a64(x.detach().double()) * w.double()).sum().backward()
        g32, g64 = act.theta.grad.double(), a64.theta.grad
        assert float((g32 - g64).abs().max() / g64.abs().max()) < bound


def test_fit_of_a_lookup_table_ditac_fits_its_exact_twin() -> None:
    """fit's derivative term needs second derivatives, which lut=N lacks (it raises): fit()
    fits the exact mode with the same theta and copies theta back (surgery with
    "ditac:lut=256" failed before); the result equals fitting the exact module."""
    import learnact

    lut = learnact.create("ditac:lut=256")
    exact = learnact.create("ditac")
    rep = learnact.fit(lut, torch.nn.SiLU(), steps=30)
    rep_exact = learnact.fit(exact, torch.nn.SiLU(), steps=30)
    assert "same parameters" in rep.method
    torch.testing.assert_close(lut.theta, exact.theta)
    assert rep.max_error == pytest.approx(rep_exact.max_error, rel=1e-3)
    assert lut.lut == 256  # the module keeps its mode


@pytest.mark.parametrize("channels", [None, 3])
@pytest.mark.parametrize("spec", ["ditac", "ditac:gate=identity", "leaky_ditac"])
def test_theta_gradient_under_create_graph(spec: str, channels) -> None:
    """With create_graph=True the gradient with respect to theta used to count the paths
    through tau2 twice (the tables depend on each other upstream): it must equal the
    first-order gradient, and its derivative must equal finite differences of it (a
    Hessian-vector product, as gradient penalties and meta-learning use)."""
    torch.manual_seed(1)
    kw = {} if channels is None else {"channels": channels, "channel_dim": 1}
    m = learnact.create(spec, **kw).double().eval()
    with torch.no_grad():
        m.theta.add_(0.3 * torch.randn_like(m.theta))
    x = torch.randn(6, 3, dtype=torch.float64) * 1.5
    u = torch.randn(6, 3, dtype=torch.float64)
    theta0 = m.theta.detach().clone()

    def grad_theta(theta: torch.Tensor, create_graph: bool) -> torch.Tensor:
        y = torch.func.functional_call(m, {"theta": theta}, (x,))
        return torch.autograd.grad((y * u).sum(), theta, create_graph=create_graph)[0]

    th = theta0.clone().requires_grad_(True)
    first = grad_theta(th, False)
    with_graph = grad_theta(th, True)
    torch.testing.assert_close(with_graph.detach(), first, rtol=1e-10, atol=1e-12)
    v = torch.randn_like(theta0)
    (hv,) = torch.autograd.grad((with_graph * v).sum(), th)
    eps = 1e-6
    fd = (grad_theta((theta0 + eps * v).requires_grad_(True), False)
          - grad_theta((theta0 - eps * v).requires_grad_(True), False)) / (2 * eps)
    torch.testing.assert_close(hv, fd, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("flow", ["exact", "lut"])
def test_leaky_ditac_both_readings(flow) -> None:
    """The default Leaky-DiTAC is a leaky ReLU at theta = 0; the paper's Figure 4(c) reading
    (gate=identity) is the identity at theta = 0 and the identity outside [a, b] always."""
    lut = ",lut=4096" if flow == "lut" else ""
    x = torch.linspace(-6, 6, 2001, dtype=torch.float64)
    gated = learnact.create(f"leaky_ditac:init=zeros{lut}").double()
    assert torch.allclose(gated(x), F.leaky_relu(x, 0.01), atol=1e-12, rtol=0)
    ident = learnact.create(f"leaky_ditac:gate=identity,init=zeros{lut}").double()
    assert torch.allclose(ident(x), x, atol=1e-12, rtol=0)
    torch.manual_seed(0)
    warped = learnact.create(f"leaky_ditac:gate=identity{lut}").double()  # a prior draw
    with torch.no_grad():
        warped.theta.mul_(3.0)
    y = warped(x)
    outside = (x < -0.5) | (x > 2.0)
    assert torch.equal(y[outside], x[outside])
    inside = ~outside
    assert (y[inside] - x[inside]).abs().max() > 1e-2  # the warp moved the inside
    assert bool((y[1:] >= y[:-1]).all())  # still a diffeomorphism: increasing
