"""Rational (Padé) activation: numpy reference, no poles, leaky-ReLU fit, gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import learnact
from learnact.ops.rational import rational_op


def _numpy(x, a, b, s=1.0, t=0.0):
    p = np.polyval(a[::-1], x)
    q = 1 + np.abs(np.polyval(np.concatenate([b[::-1], [0.0]]), x))
    return s * p / q + t, q


def test_matches_numpy_and_has_no_poles() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.linspace(-8, 8, 5001, dtype=torch.float64)
    for _ in range(5):
        a = torch.randn(6, generator=g, dtype=torch.float64) * 3
        b = torch.randn(4, generator=g, dtype=torch.float64) * 3
        y = rational_op(x, a, b, torch.tensor(1.3, dtype=torch.float64),
                        torch.tensor(-0.2, dtype=torch.float64), 0)
        ref, q = _numpy(x.numpy(), a.numpy(), b.numpy(), 1.3, -0.2)
        assert q.min() >= 1.0 and np.isfinite(y.numpy()).all()
        assert np.allclose(y.numpy(), ref, rtol=1e-12, atol=1e-12)


def test_default_init_fits_leaky_relu() -> None:
    act = learnact.create("rational")  # (5, 4), fitted to leaky ReLU
    x = torch.linspace(-3, 3, 6001)
    err = (act(x) - torch.nn.functional.leaky_relu(x, 0.01)).abs().max().item()
    assert err <= 0.02
    gelu = learnact.create("rational:init=gelu")
    assert (gelu(x) - torch.nn.functional.gelu(x)).abs().max().item() < 0.01
    e2, ed2 = learnact.second_moments(learnact.create("rational:init=unit"))
    assert e2 == pytest.approx(1.0, abs=1e-6) and ed2 == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("channels", [None, 2])
def test_gradcheck(channels) -> None:
    pre = (channels,) if channels else ()
    x = torch.randn(3, 2, 4, dtype=torch.float64).requires_grad_(True)
    a = torch.randn(pre + (4,), dtype=torch.float64, requires_grad=True)
    b = torch.randn(pre + (3,), dtype=torch.float64, requires_grad=True)
    s = torch.full(pre, 0.7, dtype=torch.float64, requires_grad=True)
    t = torch.full(pre, 0.1, dtype=torch.float64, requires_grad=True)
    fn = lambda *z: rational_op(*z, channel_dim=1)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x, a, b, s, t))
    assert torch.autograd.gradgradcheck(fn, (x, a, b, s, t))


def test_bad_degrees() -> None:
    with pytest.raises(ValueError, match="num_degree"):
        learnact.create("rational:num_degree=0")
    with pytest.raises(TypeError, match="den_degree"):
        learnact.Rational(5, 2.5)


@pytest.mark.parametrize("target", ["leaky_relu", "gelu"])
def test_shipped_default_inits_match_a_fresh_fit(target) -> None:
    """The shipped (5, 4) coefficients are what the fitting procedure produces: their max error
    to the target on [-3, 3] is within 5% of a fresh fit's, and the two curves agree."""
    from learnact.fit import resolve_target
    from learnact.functional.rational import rational as rational_fn
    from learnact.modules.rational import _SHIPPED, _fit_coefficients

    x = torch.linspace(-3, 3, 6001, dtype=torch.float64)
    y = resolve_target(target)(x).double()

    def curve(coeffs):
        num, den, (s, t) = coeffs
        f64 = dict(dtype=torch.float64)
        return rational_fn(x, torch.tensor(num, **f64), torch.tensor(den, **f64),
                           torch.tensor(s, **f64), torch.tensor(t, **f64))

    shipped, fresh = curve(_SHIPPED[(5, 4, target)]), curve(_fit_coefficients(5, 4, target))
    e_shipped, e_fresh = (shipped - y).abs().max().item(), (fresh - y).abs().max().item()
    assert e_shipped <= 1.05 * e_fresh + 1e-6
    assert (shipped - fresh).abs().max().item() < 0.2 * max(e_fresh, 1e-3)
