"""Surrogate-derivative activations: forward values and exactly the declared backward."""

from __future__ import annotations

import math

import pytest
import torch

import learnact
from learnact.functional import surrogate as S
from learnact.modules import SURROGATES
from torch.autograd.gradcheck import GradcheckError


def _grad(act, x, g=None):
    x = x.clone().requires_grad_(True)
    y = act(x)
    y.backward(torch.ones_like(y) if g is None else g)
    return y.detach(), x.grad


def test_staircase_levels_and_flat_gradient() -> None:
    act = learnact.create("staircase:steps=6,width=0.5,sharpness=2")
    x = torch.linspace(-4, 4, 4001, dtype=torch.float64)
    y, gx = _grad(act, x)
    levels = {round(v * 2) / 2 for v in y.tolist()}
    assert levels == {(k - 3) * 0.5 for k in range(7)}  # exactly the declared step values
    assert torch.equal(gx, S.staircase_derivative(x, 6, 0.5, 2.0))
    flat = (x > -0.4) & (x < -0.1)  # inside one flat step: the true derivative is 0
    assert (gx[flat] > 0.05).all()
    xs = torch.tensor([-0.3, 0.2, 0.7], dtype=torch.float64, requires_grad=True)
    with pytest.raises(GradcheckError):
        torch.autograd.gradcheck(act, (xs,))


@pytest.mark.parametrize("depth", [1, 2, 3, 5])
def test_cantor_staircase(depth: int) -> None:
    act = learnact.create(f"cantor:depth={depth}")
    x = torch.linspace(-3, 3, 200001, dtype=torch.float64)
    y, gx = _grad(act, x)
    values = torch.unique(y)
    assert values.numel() == 2**depth
    assert torch.allclose(values, -3 + 6 * torch.arange(2**depth, dtype=torch.float64) / 2**depth)
    assert torch.all(gx == 0)
    assert torch.all(act(torch.tensor([-10.0, 10.0])) == torch.tensor([-3.0, 3 - 6 / 2**depth]))
    y2, g2 = _grad(learnact.create(f"cantor2:depth={depth}"), x)
    assert torch.equal(y, y2) and torch.all(g2 == 1)


def test_cantor_reference_values() -> None:
    # C(1/4) = 1/3 for the Cantor function; the depth-n staircase approaches it from below
    u = torch.tensor([0.25], dtype=torch.float64)
    vals = [float(S.cantor_staircase(u, n, 0.0, 1.0)) for n in (2, 4, 8, 16)]
    assert vals == sorted(vals) and abs(vals[-1] - 1 / 3) < 1e-4
    assert float(S.cantor_staircase(torch.tensor([0.5], dtype=torch.float64), 3, 0.0, 1.0)) == 0.5


def test_cantor2_gradcheck_fails_by_design() -> None:
    x = torch.tensor([-2.2, 0.1, 1.9], dtype=torch.float64, requires_grad=True)
    with pytest.raises(GradcheckError):
        torch.autograd.gradcheck(learnact.create("cantor2"), (x,))


def test_noisy_derivative() -> None:
    act = learnact.create("noisy:lower=0.25,upper=0.75")
    x = torch.randn(10000, dtype=torch.float64)
    y, g = _grad(act, x)
    assert torch.equal(y, torch.relu(x))
    pos = x > 0
    assert (g[~pos] == 0).all() and (g[pos] >= 0.25).all() and (g[pos] <= 0.75).all()
    assert g[pos].std() > 0.1  # per-element noise
    act.eval()
    _, ge = _grad(act, x)
    assert torch.equal(ge, pos.double())
    act.train()
    xs = torch.tensor([0.5, 1.5], dtype=torch.float64, requires_grad=True)
    with pytest.raises(GradcheckError):
        torch.autograd.gradcheck(act, (xs,))


def test_left_right_rule() -> None:
    act = learnact.create("left_right")
    x = torch.tensor([-2.0, -1.0, 1.0, 2.0])
    g = torch.tensor([-1.0, 1.0, -1.0, 1.0])
    y, gx = _grad(act, x, g)
    assert torch.equal(y, torch.relu(x))
    # x < 0: grad < 0 (output should grow) -> right derivative 1; grad > 0 -> left derivative 0
    assert gx.tolist() == [-1.0, 0.0, -1.0, 1.0]


def test_generic_surrogate() -> None:
    act = learnact.Surrogate(torch.sign, lambda x: 1.0 - torch.tanh(x) ** 2)
    x = torch.tensor([-1.0, 0.5])
    _, g = _grad(act, x)
    assert torch.allclose(g, 1 - torch.tanh(x) ** 2)


@pytest.mark.parametrize("spec,exc,pattern", [
    ("staircase:steps=0", ValueError, "steps"), ("staircase:sharpness=-1", ValueError, "sharpness"),
    ("staircase:width=0", ValueError, "width"), ("cantor:depth=0", ValueError, "depth"),
    ("cantor:lo=1,hi=-1", ValueError, "lo < hi"), ("noisy:lower=2,upper=1", ValueError, "lower"),
])
def test_bad_input(spec, exc, pattern) -> None:
    with pytest.raises(exc, match=pattern):
        learnact.create(spec)
    assert math.isfinite(1.0)


@pytest.mark.parametrize("name", sorted(SURROGATES))
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float64])
def test_output_and_gradient_keep_the_input_dtype(name, dtype) -> None:
    """cantor/cantor2 returned float32 for bf16 input (a where() of Python scalars)."""
    x = torch.linspace(-4, 4, 41, dtype=dtype).requires_grad_(True)
    act = learnact.create(name)
    y = act(x)
    y.sum().backward()
    assert y.dtype == dtype and x.grad.dtype == dtype
    ref = act(x.detach().double())
    # half inputs may fall on the other side of a step: most values agree
    assert float((y.double() - ref).abs().median()) <= (0.05 if dtype != torch.float64 else 0.0)
