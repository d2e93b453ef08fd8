"""torch.compile(fullgraph=True) of every family matches eager (slow tier: 3-30 s per graph)."""

from __future__ import annotations

import pytest
import torch

import learnact
from learnact.core.families import FAMILIES

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


@pytest.mark.parametrize("name", sorted(n for n, f in FAMILIES.items() if f.table))
def test_compiled_per_channel_native_kernel_matches_eager(name) -> None:
    """Per-channel CPU calls keep the op (and its native kernel) under torch.compile: large
    enough for the kernel, channels last. Its parameter gradients were column views of the
    kernel's table, which inductor's stride check refused (the fake kernel says contiguous)."""
    torch._dynamo.reset()
    act = perturb_(learnact.create(name, channels=48, channel_dim=-1))
    x = torch.randn(120, 48, requires_grad=True)  # 5760 elements: the native kernel runs
    g = torch.randn_like(x)
    act(x).backward(g)
    gx, gp = x.grad.clone(), [p.grad.clone() for p in act.parameters()]
    x.grad = None
    act.zero_grad()
    cact = torch.compile(act, fullgraph=True)
    cact(x).backward(g)
    assert torch.allclose(x.grad, gx, atol=1e-5, rtol=1e-5)
    for a, p in zip(gp, act.parameters()):
        assert torch.allclose(p.grad, a, atol=1e-4, rtol=1e-4)
