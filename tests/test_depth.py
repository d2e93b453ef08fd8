"""A 50-block pre-norm residual MLP keeps unit-scale signals and gradients at init."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import learnact

from .conftest import LEARNABLE


class Block(nn.Module):
    def __init__(self, width: int, act: nn.Module, depth: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.w1 = nn.Linear(width, width, bias=False)
        self.w2 = nn.Linear(width, width, bias=False)
        self.act = act
        nn.init.normal_(self.w1.weight, std=1 / math.sqrt(width))
        nn.init.normal_(self.w2.weight, std=1 / math.sqrt(width * depth))

    def forward(self, x):
        return x + self.w2(self.act(self.w1(self.norm(x))))


# families with a unit-moment init (DiTAC has only "prior"/"zeros": GELU-like, no unit init)
UNIT = [(n, kw) for n, kw in LEARNABLE if "unit" in type(learnact.create(n, **kw)).inits]


@pytest.mark.parametrize("name,kw", UNIT + [("hermite", {"degree": 16}),
                                                 ("fourier", {"degree": 8}),
                                                 ("tropical", {"degree": 8})])
@pytest.mark.parametrize("per_channel", [False, True])
def test_prenorm_residual_stack_is_stable(name, kw, per_channel) -> None:
    width, depth = 256, 50
    torch.manual_seed(0)
    acts = [learnact.create(name, channels=width if per_channel else None, channel_dim=-1, **kw)
            for _ in range(depth)]
    blocks = nn.ModuleList(Block(width, a, depth) for a in acts)
    x0 = torch.randn(512, width, requires_grad=True)
    outs = []
    x = x0
    for b in blocks:
        h = b.act(b.w1(b.norm(x)))
        h.retain_grad()
        outs.append(h)
        x = x + b.w2(h)
    x.backward(torch.randn_like(x))
    stds = [o.std().item() for o in outs]
    assert all(0.5 <= s <= 2.0 for s in stds), stds
    assert 0.5 <= x0.grad.std().item() <= 2.0


def test_depth_bench_writes_table_and_figure(tmp_path) -> None:
    """bench depth on a small stack: unit inits stay in range pre-norm; the plain stack follows
    V'(1): Hermite d8 (V'(1) = 2) leaves [0.5, 2], the identity keeps unit scale."""
    import json

    from learnact.experiments.depth import DepthConfig, measure_stack, run_depth

    cfg = DepthConfig(specs=["hermite:degree=8", "rational"], inits=["unit", "naive"],
                      references=["identity"], width=64, depth=12, batch=64,
                      out=str(tmp_path), quiet=True)
    path = run_depth(cfg)
    rows = {r["case"]: r for r in json.loads((path / "results.json").read_text())["rows"]}
    assert set(rows) == {"hermite:degree=8 [unit]", "hermite:degree=8 [naive]",
                         "rational [unit]", "rational [naive]", "identity"}
    for case in ("hermite:degree=8 [unit]", "rational [unit]"):
        r = rows[case]
        assert r["second"] == pytest.approx(1.0, abs=1e-6)
        assert 0.5 <= r["prenorm"]["forward"][-1] <= 2 and 0.5 <= r["prenorm"]["backward"][0] <= 2
    assert rows["hermite:degree=8 [unit]"]["vprime"] == pytest.approx(2.0, abs=1e-3)
    plain = float(rows["hermite:degree=8 [unit]"]["plain"]["forward"][-1])  # JSON keeps inf as "inf"
    assert not (0.5 <= plain <= 2.0)  # V'(1) = 2 > 1: the plain stack leaves unit scale
    ident = rows["identity"]["plain"]
    assert 0.7 <= ident["forward"][-1] <= 1.4 and 0.7 <= ident["backward"][0] <= 1.4
    assert (path / "depth.png").stat().st_size > 5000 and "| case |" in (path / "summary.md").read_text()
    with pytest.raises(ValueError, match="kind"):
        measure_stack(lambda i: torch.nn.GELU(), "resnet", 8, 2, 4, 0)
