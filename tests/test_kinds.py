"""is_activation / is_learnable_activation: one answer for surgery, optimiser groups and viz."""

from __future__ import annotations

import pytest
from torch import nn

import learnact


@pytest.mark.parametrize("spec", ["hermite", "ditac", "cantor", "staircase", "left_right", "sin",
                                  "gelu", "prelu", "identity"])
def test_every_registered_name_is_an_activation(spec) -> None:
    m = learnact.create(spec)
    if spec == "identity":  # nn.Identity is no activation to surgery (it is in every model)
        assert not learnact.is_activation(m)
    else:
        assert learnact.is_activation(m)


def test_learnable_is_families_and_prelu_only() -> None:
    assert learnact.is_learnable_activation(learnact.create("hermite"))
    assert learnact.is_learnable_activation(nn.PReLU())
    for m in (nn.GELU(), learnact.create("cantor"), nn.Linear(2, 2)):
        assert not learnact.is_learnable_activation(m)
    assert not learnact.is_activation(nn.Linear(2, 2))
