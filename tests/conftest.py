"""Shared fixtures: deterministic seeds, small thread count, the family catalogue."""

from __future__ import annotations

import os

import pytest
import torch

# The Triton kernels (ops/triton/) run on CPU tensors through Triton's interpreter: it must be
# on before they load (CI has no GPU; on a GPU machine they compile for the device instead).
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

from learnact.modules import FAMILIES
from learnact.registry import spec_kwargs

torch.set_num_threads(2)

# (registry name, keyword arguments) of every learnable family at a small degree: each family
# declares its own (``test_specs`` on the class, read from the registration list), so a new
# family joins every shared property test; tests/test_registry.py checks none is missing
LEARNABLE = [spec_kwargs(spec) for cls in FAMILIES for spec in cls.test_specs]


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
