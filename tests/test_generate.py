"""learnact bench generate: the VAE's negative ELBO against torch.distributions in float64,
the baseline against numpy, determinism of the score, errors before training, and the command
end to end on the tiny preset."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from learnact.experiments import generate as gen


def test_nelbo_matches_torch_distributions_float64() -> None:
    torch.manual_seed(0)
    model = gen.build_vae("tropical", width=4, latent=3).double().eval()
    x = torch.bernoulli(torch.rand(5, 1, 28, 28, dtype=torch.float64))
    eps = torch.randn(5, 3, dtype=torch.float64)
    got = gen.nelbo(model, x, eps)
    logits, mu, logvar = model(x, eps)
    rec = -torch.distributions.Bernoulli(logits=logits).log_prob(x).flatten(1).sum(1)
    q = torch.distributions.Normal(mu, torch.exp(0.5 * logvar))
    p = torch.distributions.Normal(torch.zeros_like(mu), torch.ones_like(mu))
    kl = torch.distributions.kl_divergence(q, p).sum(1)
    torch.testing.assert_close(got, rec + kl, rtol=1e-12, atol=1e-10)


def test_pixel_baseline_matches_numpy() -> None:
    rng = np.random.default_rng(0)
    xtr = torch.from_numpy(rng.uniform(0, 1, (50, 1, 28, 28)).astype(np.float32))
    xte = torch.from_numpy((rng.uniform(0, 1, (20, 1, 28, 28)) < 0.4).astype(np.float32))
    p = np.clip(xtr.double().numpy().mean(0, keepdims=True), 1e-4, 1 - 1e-4)
    t = xte.double().numpy()
    want = -(t * np.log(p) + (1 - t) * np.log1p(-p)).mean() / math.log(2)
    assert gen.pixel_baseline_bits(xtr, xte) == pytest.approx(want, rel=1e-5)


def test_score_is_deterministic_and_samples_are_fixed() -> None:
    torch.manual_seed(1)
    model = gen.build_vae("gelu", width=4, latent=3).eval()
    x = torch.bernoulli(torch.rand(7, 1, 28, 28))
    torch.manual_seed(5)
    a = gen.test_bits_per_dim(model, x)
    torch.manual_seed(6)  # the global RNG does not enter the score
    assert gen.test_bits_per_dim(model, x) == a and a > 0
    assert torch.equal(gen.samples(model, 4), gen.samples(model, 4))


@pytest.mark.parametrize("kw, pattern", [({"acts": ["nosuchfamily"]}, "nosuchfamily"),
                                         ({"epochs": 0}, "--epochs"), ({"lr": -1.0}, "--lr"),
                                         ({"seeds": []}, "--seeds")])
def test_bad_config_fails_before_training(kw, pattern) -> None:
    with pytest.raises((ValueError, KeyError), match=pattern):
        gen.make_config("tiny", **kw)


def test_generate_command_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "run"
    done = subprocess.run([sys.executable, "-m", "learnact", "bench", "generate", "--preset", "tiny",
                           "--acts", "gelu,relu,tropical", "--quiet", "--out", str(out)],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    assert [(r["act"], r["seed"]) for r in results["runs"]] == [
        (a, s) for a in ("gelu", "relu", "tropical") for s in (0, 1)]
    for r in results["runs"]:
        assert len(r["epochs"]) == 2 and all(0 < e["test_bpd"] < 2 for e in r["epochs"])
    assert 0.3 < results["baselines"]["independent_pixels_bpd"] < 1.0
    summary = (out / "summary.md").read_text()
    assert "vs `gelu`" in summary and "vs `relu`" in summary and "**Against GELU" in summary
    for name in ("samples.png", "samples-gelu.png", "samples-tropical.png", "curves.png"):
        assert (out / name).stat().st_size > 5_000
