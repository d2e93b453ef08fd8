"""Every experiment trains on the loss plus learnact.regularization(model) (DiTAC's prior, an
explicit loss by design), unless --no-prior: checked in each training loop."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

import learnact
from learnact.experiments import autoencoder as ae
from learnact.experiments import charlm, toy2d, trainer
from learnact.experiments.common import Dist
from learnact.params import with_prior


def test_with_prior_adds_exactly_the_regularization() -> None:
    model = nn.Sequential(nn.Linear(3, 4), learnact.create("ditac:cells=5"), nn.Linear(4, 1))
    loss = torch.tensor(0.25)
    reg = learnact.regularization(model)
    assert float(reg.detach()) > 0  # DiTAC's prior at its init draw
    assert torch.equal(with_prior(loss, model), loss + reg)
    assert torch.equal(with_prior(loss, model, scale=0.5), loss + 0.5 * reg)
    assert with_prior(loss, model, enabled=False) is loss
    plain = nn.Sequential(nn.Linear(3, 4), nn.GELU())
    assert torch.equal(with_prior(loss, plain), loss)  # an exact 0 for families without one


class _Spy:
    """Wraps with_prior in an experiment module: records (objective - loss, regularization)."""

    def __init__(self, monkeypatch, module) -> None:
        self.calls: list[tuple[float, float]] = []

        def spy(loss, model, enabled=True, scale=1.0):
            out = with_prior(loss, model, enabled, scale)
            self.calls.append((float((out - loss).detach()),
                               float(learnact.regularization(model).detach()) * scale
                               if enabled else 0.0))
            return out

        monkeypatch.setattr(module, "with_prior", spy)

    def check(self, prior: bool) -> None:
        assert self.calls, "the training loop never formed its objective through with_prior"
        for added, reg in self.calls:
            if prior:
                # (loss + reg) - loss in float32: within a few ulps of the loss
                assert reg > 0 and added == pytest.approx(reg, rel=1e-6, abs=2e-6)
            else:
                assert added == 0.0


@pytest.mark.parametrize("prior", [True, False])
def test_autoencoder_loss_includes_the_prior(monkeypatch, prior) -> None:
    spy = _Spy(monkeypatch, trainer)  # the shared loop (the autoencoder is one of its tasks)
    cfg = ae.make_config("tiny", acts=["ditac:lut=64"], epochs=1, quiet=True, train_limit=64,
                         test_limit=32, prior=prior)
    xtr, xte = torch.rand(64, 1, 28, 28), torch.rand(32, 1, 28, 28)
    rec = ae.train_one(cfg, "ditac:lut=64", 0, cfg.channels, cfg.lr, xtr, xte, Dist())
    assert not rec["diverged"]
    spy.check(prior)


@pytest.mark.parametrize("prior", [True, False])
def test_toy2d_losses_include_the_prior(monkeypatch, prior) -> None:
    spy = _Spy(monkeypatch, trainer)  # the shared loop (toy2d is one of its tasks)
    cfg = toy2d.make_config(acts=["ditac:cells=5"], gmm_steps=3, reg_steps=3, prior=prior,
                            quiet=True)
    x = torch.rand(64, 2) * 2 - 1
    gmm = {"xtr": x, "ytr": torch.randint(0, cfg.classes, (64,)), "xte": x,
           "yte": torch.randint(0, cfg.classes, (64,)), "grid": x}
    toy2d._train_gmm(cfg, "ditac:cells=5", 0, gmm)
    toy2d._train_regression(cfg, "ditac:cells=5", 0, {"xreg": x, "yreg": toy2d.sine_mixture(x)})
    assert len(spy.calls) == 6
    spy.check(prior)


@pytest.mark.parametrize("prior", [True, False])
def test_trainer_loss_includes_the_prior(monkeypatch, tmp_path: Path, prior) -> None:
    spy = _Spy(monkeypatch, trainer)
    cfg = charlm.make_config("tiny", acts=["ditac:cells=5"], steps=2, eval_every=2,
                             out=str(tmp_path), quiet=True, threads=1, prior=prior)
    charlm.run_charlm(cfg)
    spy.check(prior)


def test_no_prior_flag_reaches_every_experiment() -> None:
    from learnact.cli import build_parser

    parser = build_parser()
    for argv in (["bench", "autoencoder"], ["bench", "toy2d"], ["train", "charlm"],
                 ["train", "convnext"]):
        assert parser.parse_args(argv + ["--no-prior"]).no_prior is True
        assert parser.parse_args(argv).no_prior is False
