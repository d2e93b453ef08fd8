"""2-D toy tasks: the known mixture, the sine-mixture target, a short end-to-end run."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from learnact.experiments import toy2d


def test_bayes_accuracy_matches_bayes_classifier_on_samples() -> None:
    gmm = toy2d.make_gmm(8, 3, 0.5, seed=1234)
    x, y = gmm.sample(100_000, np.random.default_rng(5))
    empirical = float((gmm.posterior(x.astype(np.float64)).argmax(1) == y).mean())
    assert toy2d.bayes_accuracy(gmm) == pytest.approx(empirical, abs=0.005)
    # posterior rows are distributions
    p = gmm.posterior(x[:100].astype(np.float64))
    assert np.allclose(p.sum(1), 1.0) and (p >= 0).all()


def test_sine_mixture_formula() -> None:
    x = torch.tensor([[0.3, -0.7]], dtype=torch.float64)
    a = np.array(toy2d.A_MATRIX, dtype=np.float64)
    w = np.array(toy2d.W_VECTOR)
    expect = float((w * np.sin(a @ x[0].numpy())).sum())
    assert toy2d.sine_mixture(x).item() == pytest.approx(expect, rel=1e-12)


def test_fourier_features_shape_and_values() -> None:
    ff = toy2d.FourierFeatures(3)
    x = torch.tensor([[0.5, -0.25]])
    z = ff(x)
    assert z.shape == (1, 12)
    assert z[0, 0].item() == pytest.approx(math.sin(math.pi * 0.5), abs=1e-6)
    mlp = toy2d.build_mlp("gelu", [2, 7, 1], per_channel=False, fourier=3)
    assert mlp(torch.rand(5, 2)).shape == (5, 1)


@pytest.mark.slow
def test_short_run_writes_tables_and_figures(tmp_path: Path) -> None:
    cfg = toy2d.make_config(acts=["relu", "gelu", "hermite:degree=3"], gmm_steps=150,
                            reg_steps=150, out=str(tmp_path), quiet=True)
    path = toy2d.run_toy2d(cfg)
    res = json.loads((path / "results.json").read_text())
    assert 0.5 < res["gmm"]["bayes_accuracy"] < 1.0
    accs = {r["act"]: r["test_accuracy"] for r in res["gmm"]["runs"]}
    assert accs["gelu"] >= 0.8 * res["gmm"]["bayes_accuracy"]
    assert all(math.isfinite(r["test_mse"]) for r in res["regression"]["runs"])
    summary = (path / "summary.md").read_text()
    assert "Bayes-optimal accuracy" in summary and "R²" in summary
    assert (path / "gmm.png").stat().st_size > 10_000 and (path / "regression.png").exists()


@pytest.mark.parametrize("kw,pattern", [({"task": "both2"}, "--task"), ({"acts": ["nope"]}, "unknown"),
                                        ({"gmm_steps": 0}, "--gmm-steps"), ({"classes": 9}, "--classes"),
                                        ({"bad_key": 1}, "unknown config key")])
def test_bad_config(kw, pattern) -> None:
    with pytest.raises(ValueError, match=pattern):
        toy2d.make_config(**kw)
