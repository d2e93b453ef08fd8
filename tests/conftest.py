"""Shared fixtures: deterministic seeds, small thread count, the family catalogue."""

from __future__ import annotations

import pytest
import torch

torch.set_num_threads(2)

# (registry spec, keyword arguments) of every learnable family at a small degree
LEARNABLE = [
    ("hermite", {"degree": 5}),
    ("fourier", {"degree": 4}),
    ("tropical", {"degree": 4}),
    ("tropical_rational", {"degree": 3}),
    ("selu_variation", {}),
    ("rational", {"num_degree": 3, "den_degree": 2}),
    ("ditac", {"cells": 5}),
]


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield


def perturb_(module: torch.nn.Module, scale: float = 0.1, seed: int = 1) -> torch.nn.Module:
    """Move every parameter off its init so that tests do not rely on symmetric values."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return module
