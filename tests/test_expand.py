"""expand(): a Linear/Hermite stack is the polynomial it prints."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import learnact


@pytest.mark.parametrize("per_channel", [False, True])
def test_expansion_matches_network_float64(per_channel: bool) -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(2, 5), learnact.Hermite(3, channels=5 if per_channel else None),
                        nn.Linear(5, 4), learnact.Hermite(2, channels=4 if per_channel else None),
                        nn.Linear(4, 2)).double()
    with torch.no_grad():
        for m in net:
            if isinstance(m, learnact.Hermite):
                m.coeffs.add_(0.3 * torch.randn_like(m.coeffs))
    poly = learnact.expand(net)
    x = torch.randn(200, 2, dtype=torch.float64)
    with torch.no_grad():
        ref = net(x)
    assert poly.degree == 6
    assert (poly(x) - ref).abs().max().item() <= 1e-8 * max(1.0, ref.abs().max().item())
    assert "Polynomial(2 inputs -> 2 outputs, degree 6)" in repr(poly)
    exps, _ = poly.terms(0)[0]
    assert sum(exps) == 6


def test_single_layer_is_the_hermite_series() -> None:
    h = learnact.Hermite(4).double()
    net = nn.Sequential(nn.Linear(1, 1, bias=False), h).double()
    with torch.no_grad():
        net[0].weight.fill_(1.0)
    poly = learnact.expand(net)
    # He_4(x)/4! = (x^4 - 6 x^2 + 3)/24: the x^4 coefficient is c_4 / 24
    assert dict(poly.terms())[(4,)] == pytest.approx(h.coeffs[4].item() / 24, rel=1e-12)


def test_unsupported_layers() -> None:
    with pytest.raises(ValueError, match="cannot expand"):
        learnact.expand(nn.Sequential(nn.Linear(2, 2), nn.ReLU()))
    with pytest.raises(ValueError, match="tails"):
        learnact.expand(nn.Sequential(nn.Linear(2, 2), learnact.Hermite(2, tails="linear")))
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        learnact.expand(nn.Sequential(nn.Linear(2, 1)))(torch.randn(3, 3))
