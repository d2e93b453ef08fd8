"""fit(): closed-form fits are exact, fast and deterministic; every family fits GELU."""

from __future__ import annotations

import math
import time

import pytest
import torch
import torch.nn.functional as F

import learnact
from learnact.fit import domain_points


def test_hermite8_gelu_fast_deterministic_accurate() -> None:
    a, b = learnact.Hermite(8), learnact.Hermite(8)
    t = time.perf_counter()
    rep = learnact.fit(a, "gelu")
    assert time.perf_counter() - t < 1.0
    learnact.fit(b, "gelu")
    assert torch.equal(a.coeffs, b.coeffs)  # bit-identical
    assert rep.method.startswith("closed-form")
    # independent check of the reported max errors over [-3, 3]
    x = torch.linspace(-3, 3, 2001, dtype=torch.float64, requires_grad=True)
    y = a.double()(x)
    (dy,) = torch.autograd.grad(y.sum(), x)
    xg = x.detach().requires_grad_(True)
    g = F.gelu(xg)
    (dg,) = torch.autograd.grad(g.sum(), xg)
    assert (y - g).abs().max().item() == pytest.approx(rep.max_error, rel=1e-3)
    assert (dy - dg).abs().max().item() == pytest.approx(rep.max_deriv_error, rel=1e-3)
    assert rep.max_error < 0.05 and rep.max_deriv_error < 0.1


def test_closed_form_is_the_least_squares_optimum() -> None:
    """Perturbing the fitted coefficients never lowers the weighted objective."""
    act = learnact.Hermite(5).double()
    learnact.fit(act, "silu", derivative_weight=0.5)
    x, w, _ = domain_points("normal")
    xs = x.clone().requires_grad_(True)

    def objective(c: torch.Tensor) -> float:
        y = learnact.ops.hermite_op(xs, c, 0)
        (dy,) = torch.autograd.grad(y.sum(), xs, create_graph=False)
        t = F.silu(xs)
        (dt,) = torch.autograd.grad(t.sum(), xs)
        return float(((w * (y - t) ** 2).sum() + 0.5 * (w * (dy - dt) ** 2).sum()).detach())

    c0 = act.coeffs.detach().clone()
    best = objective(c0)
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        assert objective(c0 + 1e-3 * torch.randn(6, generator=g, dtype=torch.float64)) >= best


def test_exact_recovery_of_a_polynomial_target() -> None:
    src = learnact.Hermite(6, init="paper").double()
    dst = learnact.Hermite(6).double()
    learnact.fit(dst, src)
    assert torch.allclose(dst.coeffs, src.coeffs, atol=1e-9)


@pytest.mark.parametrize("degree", [3, 4, 6, 8, 12, 16])
def test_hermite_error_decreases_with_degree(degree: int) -> None:
    rep = learnact.fit(learnact.Hermite(degree), "gelu")
    lower = learnact.fit(learnact.Hermite(degree - 1), "gelu")
    assert rep.rms_error <= lower.rms_error + 1e-12


@pytest.mark.parametrize("target,tol", [("silu", 0.05), ("tanh", 0.1), ("relu", 0.2)])
def test_other_targets(target: str, tol: float) -> None:
    rep = learnact.fit(learnact.Hermite(8), target)
    assert rep.rms_error < tol


@pytest.mark.parametrize("spec,rms_tol", [("fourier:degree=4", 0.2), ("tropical:degree=8", 0.1),
                                          ("tropical_rational:degree=4", 0.05)])
def test_every_family_fits_gelu(spec: str, rms_tol: float) -> None:
    act = learnact.create(spec)
    t = time.perf_counter()
    rep = learnact.fit(act, "gelu")
    assert time.perf_counter() - t < 10.0
    assert rep.rms_error < rms_tol, rep
    again = learnact.create(spec)
    learnact.fit(again, "gelu")
    for p, q in zip(act.parameters(), again.parameters()):
        assert torch.equal(p, q)  # deterministic


def test_domains_and_per_channel_samples() -> None:
    act = learnact.Hermite(6, channels=3, channel_dim=-1, tails="linear", bound=4)
    samples = torch.randn(5000, 3) * torch.tensor([0.5, 1.0, 3.0])
    rep = learnact.fit(act, "gelu", domain=samples)
    assert rep.per_channel is not None and len(rep.per_channel) == 3
    assert not torch.equal(act.coeffs[0], act.coeffs[2])
    rep2 = learnact.fit(learnact.Hermite(6), torch.tanh, domain=(-2, 2))
    assert "U[-2, 2]" in rep2.domain and rep2.max_error < 0.03


def test_bad_input() -> None:
    with pytest.raises(TypeError, match="target must be"):
        learnact.fit(learnact.Hermite(3), 42)
    with pytest.raises(ValueError, match="no parameters"):
        learnact.fit(learnact.create("gelu"), "relu")
    with pytest.raises(ValueError, match="domain"):
        learnact.fit(learnact.Hermite(3), "gelu", domain="uniform")
    with pytest.raises(ValueError, match="lo < hi"):
        learnact.fit(learnact.Hermite(3), "gelu", domain=(2, 1))
    with pytest.raises(ValueError, match="derivative_weight"):
        learnact.fit(learnact.Hermite(3), "gelu", derivative_weight=-1)
    with pytest.raises(ValueError, match="not finite"):
        learnact.fit(learnact.Hermite(3), lambda x: torch.log(x), domain=(-1, 1))
    assert math.isfinite(learnact.fit(learnact.Hermite(3), "gelu").rms_error)


def test_report_plot(tmp_path) -> None:
    rep = learnact.fit(learnact.Hermite(8), "gelu")
    p = rep.plot(tmp_path / "fit.png")
    assert p.stat().st_size > 10_000
    assert "max|f-t|" in str(rep)


@pytest.mark.parametrize("kw,pattern", [
    ({"sigma": 0}, "sigma must be a finite number > 0"),
    ({"sigma": -1}, "sigma must be a finite number > 0"),
    ({"sigma": float("nan")}, "sigma must be"),
    ({"points": 1}, "points must be an integer >= 2"),
    ({"steps": -1}, "steps must be an integer >= 0"),
    ({"domain": (1.0, 1.0)}, "lo < hi"),
    ({"domain": torch.full((50,), 0.3)}, "domain samples are constant"),
    ({"domain": torch.full((50,), float("nan"))}, "empty .or all non-finite"),
])
def test_domain_arguments_are_validated_and_leave_the_module(kw, pattern) -> None:
    act = learnact.Hermite(4)
    before = act.coeffs.detach().clone()
    with pytest.raises(ValueError, match=pattern):
        learnact.fit(act, "gelu", **kw)
    assert torch.equal(act.coeffs, before)


def test_non_finite_fit_is_refused_and_rolled_back(monkeypatch) -> None:
    import sys

    fitmod = sys.modules["learnact.fit"]  # (learnact.fit is also the function)

    act = learnact.Hermite(4)
    before = act.coeffs.detach().clone()
    real = fitmod._fit

    def poisoned(act, *a, **k):
        rep = real(act, *a, **k)
        with torch.no_grad():
            act.coeffs[1] = float("inf")
        return rep

    monkeypatch.setattr(fitmod, "_fit", poisoned)
    with pytest.raises(ValueError, match="coeffs are not finite; the module is left as it was"):
        learnact.fit(act, "gelu")
    assert torch.equal(act.coeffs, before)


def test_step_function_target_has_zero_derivative() -> None:
    """A target without an autograd graph (x > 0) is piecewise constant: f' = 0, no error."""
    rep = learnact.fit(learnact.create("tropical:degree=4"), lambda x: (x > 0).to(x.dtype))
    assert math.isfinite(rep.rms_error) and rep.rms_error < 0.5
    rep = learnact.fit(learnact.Hermite(8), lambda x: (x > 0).to(x.dtype), derivative_weight=0)
    assert rep.rms_error < 0.25  # the best constant (1/2) has rms 1/2
