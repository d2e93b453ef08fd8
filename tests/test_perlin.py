"""Perlin-noise activation: determinism, C1 continuity, linear continuation, learnable lattices."""

from __future__ import annotations

import pytest
import torch

import learnact


@pytest.mark.parametrize("kind", ["value", "gradient"])
def test_same_seed_same_function(kind: str) -> None:
    x = torch.linspace(-5, 5, 1001)
    a = learnact.create(f"perlin:kind={kind},seed=7")
    b = learnact.create(f"perlin:kind={kind},seed=7")
    c = learnact.create(f"perlin:kind={kind},seed=8")
    assert torch.equal(a(x), b(x)) and not torch.equal(a(x), c(x))
    assert torch.equal(a.double()(x.double()).float(), b.double()(x.double()).float())


@pytest.mark.parametrize("kind", ["value", "gradient"])
def test_c1_at_lattice_points_and_ends(kind: str) -> None:
    act = learnact.Perlin(kind=kind, resolution=4, octaves=3, radius=2.0, seed=3).double()
    knots = act.kinks()  # every lattice point of the finest octave, and +-r
    h = 1e-6
    for k in knots.tolist():
        xs = torch.tensor([k - 2 * h, k - h, k, k + h, k + 2 * h], dtype=torch.float64)
        y = act(xs).detach()
        left = (y[2] - y[0]) / (2 * h)
        right = (y[4] - y[2]) / (2 * h)
        assert abs(float(y[1] - y[3])) < 1e-4  # continuous
        assert abs(float(left - right)) < 1e-3 * max(1.0, abs(float(left)))  # C1
    # linear outside [-r, r], with the end slope
    x = torch.tensor([2.0, 3.0, 4.0], dtype=torch.float64)
    y = act(x).detach()
    assert float((y[2] - y[1]) - (y[1] - y[0])) == pytest.approx(0.0, abs=1e-9)


def test_learnable_lattices_get_gradients() -> None:
    act = learnact.create("perlin:learnable=true,octaves=2")
    assert len(list(act.parameters())) == 2
    act(torch.randn(100)).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in act.parameters())
    fixed = learnact.create("perlin")
    assert len(list(fixed.parameters())) == 0 and len(list(fixed.buffers())) == 3
    assert "perlin" not in learnact.available(learnable=True)


def test_base_and_moments() -> None:
    act = learnact.create("perlin:base=gelu,amplitude=0.1")
    x = torch.linspace(-3, 3, 101)
    assert (act(x) - torch.nn.functional.gelu(x)).abs().max() <= 0.1 * 2.0
    e2, ed2 = learnact.second_moments(act)
    assert 0 < e2 < 2 and ed2 > 0


@pytest.mark.parametrize("spec,pattern", [("perlin:octaves=0", "octaves"),
                                          ("perlin:radius=0", "radius"),
                                          ("perlin:radius=-1", "radius"),
                                          ("perlin:resolution=0", "resolution"),
                                          ("perlin:kind=pink", "kind")])
def test_bad_input(spec: str, pattern: str) -> None:
    with pytest.raises(ValueError, match=pattern):
        learnact.create(spec)


@pytest.mark.parametrize("kind", ["value", "gradient"])
def test_nan_stays_local(kind) -> None:
    """A NaN input gives NaN at its own place only (it used to index the lattice with an
    undefined integer cast and raise IndexError)."""
    act = learnact.create(f"perlin:kind={kind}")
    x = torch.tensor([-4.0, float("nan"), 0.3, 5.0])
    y = act(x)
    assert torch.isnan(y[1]) and torch.isfinite(y[[0, 2, 3]]).all()
    assert torch.equal(y[[0, 2, 3]], act(x[[0, 2, 3]]))
