"""SELU variation: the published formula, safe exp, unit init, gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import learnact
from learnact.ops.selu_variation import selu_variation_op


def _published(x, lam=1.0507, alpha=1.67326, beta=1.0, gamma=0.1, omega=2.0):
    """The published formula, in numpy float64."""
    return np.where(x > 0, lam * x, lam * (alpha * (np.exp(beta * np.minimum(x, 0)) - 1)
                                           + gamma * np.sin(omega * x)))


def test_paper_init_equals_published_formula() -> None:
    act = learnact.create("selu_variation")
    x = np.concatenate([np.linspace(-30, 30, 6001), [0.0, -1e-7, 1e-7, -80.0, 80.0, 1e4, -1e4]])
    y = act(torch.from_numpy(x).float()).detach().double().numpy()
    ref = _published(x.astype(np.float32).astype(np.float64))
    assert np.abs(y - ref).max() <= 2e-6 * max(1.0, np.abs(ref).max()) + 1e-6
    assert act(torch.tensor([0.0])).item() == 0.0


def test_negative_beta_no_overflow_in_unused_branch() -> None:
    act = learnact.create("selu_variation")
    with torch.no_grad():
        act.beta.fill_(-2.0)
    x = torch.tensor([0.0, 1.0, 50.0, 500.0, 1e4, -0.5, -10.0], requires_grad=True)
    y = act(x)
    y.sum().backward()
    assert torch.isfinite(y).all() and torch.isfinite(x.grad).all()
    assert all(torch.isfinite(p.grad).all() for p in act.parameters())
    ref = _published(x.detach().double().numpy(), beta=-2.0)
    assert np.allclose(y.detach().double().numpy(), ref, rtol=1e-5, atol=1e-5)


def test_unit_init_has_unit_moments() -> None:
    e2, ed2 = learnact.second_moments(learnact.create("selu_variation:init=unit"))
    assert e2 == pytest.approx(1.0, abs=1e-6) and ed2 == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("channels", [None, 3])
def test_gradcheck(channels) -> None:
    pre = (channels,) if channels else ()
    x = (torch.randn(2, 3, 5, dtype=torch.float64) * 2).requires_grad_(True)
    vals = [1.05, 1.6, 0.8, 0.3, 2.0, 1.1, 0.2]
    ps = [torch.full(pre, v, dtype=torch.float64, requires_grad=True) for v in vals]
    fn = lambda *a: selu_variation_op(*a, channel_dim=1)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x, *ps))
    assert torch.autograd.gradgradcheck(fn, (x, *ps))
