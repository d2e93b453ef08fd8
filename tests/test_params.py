"""param_groups and regularization."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import learnact


def test_param_groups_split_activation_parameters() -> None:
    model = nn.Sequential(nn.Linear(4, 8), learnact.Hermite(3, channels=8), nn.Linear(8, 2),
                          nn.PReLU())
    groups = learnact.param_groups(model, lr=1e-2, weight_decay=0.1)
    assert len(groups) == 2
    rest, acts = groups
    assert rest["weight_decay"] == 0.1 and "lr" not in rest
    assert acts["weight_decay"] == 0.0 and acts["lr"] == 1e-2
    assert {id(p) for p in acts["params"]} == {id(model[1].coeffs), id(model[3].weight)}
    assert len(rest["params"]) + len(acts["params"]) == len(list(model.parameters()))
    opt = torch.optim.AdamW(groups, lr=1e-3)
    before = model[1].coeffs.detach().clone()
    model(torch.randn(5, 4)).sum().backward()
    opt.step()
    assert not torch.equal(before, model[1].coeffs)


def test_param_groups_without_activations() -> None:
    groups = learnact.param_groups(nn.Linear(2, 2))
    assert len(groups) == 1


def test_regularization_sums_prior_losses() -> None:
    class WithPrior(nn.Module):
        def __init__(self, v):
            super().__init__()
            self.t = nn.Parameter(torch.tensor(v))

        def prior_loss(self):
            return self.t**2

    model = nn.Sequential(WithPrior(2.0), nn.Linear(2, 2), WithPrior(3.0))
    assert learnact.regularization(model).item() == 13.0
    assert learnact.regularization(nn.Linear(2, 2)).item() == 0.0


def test_param_groups_matrices_only_decay() -> None:
    """decay="matrices" (the trainers' rule): 2-D weights decay; biases, norm gains and
    activation parameters do not."""
    model = nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4), learnact.create("hermite:degree=3"))
    groups = learnact.param_groups(model, weight_decay=0.1, decay="matrices")
    by_decay = [(g["weight_decay"], {id(p) for p in g["params"]}) for g in groups]
    assert by_decay == [(0.1, {id(model[0].weight)}),
                        (0.0, {id(model[0].bias), id(model[1].weight), id(model[1].bias)}),
                        (0.0, {id(model[2].coeffs)})]
    with pytest.raises(ValueError, match="decay must be"):
        learnact.param_groups(model, decay="some")


def test_param_groups_activation_keywords_mirror_the_others() -> None:
    """activation_lr / activation_weight_decay name the activation group's settings as
    weight_decay names the others'; lr stays as activation_lr's old name."""
    model = nn.Sequential(nn.Linear(3, 4), learnact.create("hermite:degree=4"), nn.Linear(4, 1))
    groups = learnact.param_groups(model, activation_lr=2e-3, activation_weight_decay=1e-4,
                                   weight_decay=0.05)
    act = groups[-1]
    assert act["lr"] == 2e-3 and act["weight_decay"] == 1e-4
    assert {id(p) for p in act["params"]} == {id(p) for p in model[1].parameters()}
    assert [g["weight_decay"] for g in groups[:-1]] == [0.05]
    assert "lr" not in groups[0]
    old = learnact.param_groups(model, lr=2e-3, weight_decay=0.05)
    assert old[-1]["lr"] == 2e-3 and old[-1]["weight_decay"] == 0.0
    with pytest.raises(ValueError, match="activation_lr or lr"):
        learnact.param_groups(model, lr=1e-3, activation_lr=1e-3)
    for kw, match in (({"activation_lr": 0.0}, "activation_lr must be a finite number > 0"),
                      ({"lr": float("nan")}, "lr must be a finite number > 0"),
                      ({"weight_decay": -1.0}, "weight_decay must be a finite number >= 0"),
                      ({"activation_weight_decay": float("inf")},
                       "activation_weight_decay must be")):
        with pytest.raises(ValueError, match=match):
            learnact.param_groups(model, **kw)
