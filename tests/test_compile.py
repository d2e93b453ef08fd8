"""torch.compile(fullgraph=True) of every family matches eager (slow tier: 3-30 s per graph)."""

from __future__ import annotations

import pytest
import torch

import learnact

from .conftest import LEARNABLE, perturb_

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("name,kw", LEARNABLE + [("hermite", {"degree": 4, "tails": "linear"}),
                                                ("ditac", {"cells": 5, "lut": 64})])
@pytest.mark.parametrize("channels", [None, 4])
def test_compiled_matches_eager(name, kw, channels) -> None:
    torch._dynamo.reset()
    act = perturb_(learnact.create(name, channels=channels, **kw))
    x = torch.randn(3, 4, 50, requires_grad=True)
    g = torch.randn_like(x)
    y = act(x)
    y.backward(g)
    gx, gp = x.grad.clone(), [p.grad.clone() for p in act.parameters()]
    x.grad = None
    act.zero_grad()
    cact = torch.compile(act, fullgraph=True)
    yc = cact(x)
    yc.backward(g)
    assert torch.allclose(yc, y, atol=1e-5, rtol=1e-5)
    assert torch.allclose(x.grad, gx, atol=1e-5, rtol=1e-5)
    for a, p in zip(gp, act.parameters()):
        assert torch.allclose(p.grad, a, atol=1e-4, rtol=1e-4)
