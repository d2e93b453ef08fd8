"""learnact bench sampling: the histogram statistics against numpy on samples, and the whole
command end to end on the tiny preset (train, analyse, figure, summary; --analyse again)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from learnact.experiments import sampling as smp
from learnact.viz.recorder import _Hist


def _hist(values: np.ndarray, lo=-6.0, hi=6.0, bins=120, scale="linear") -> tuple[list, dict]:
    h = _Hist(lo, hi, bins, scale)
    h.add(torch.from_numpy(values))
    h.end_epoch()
    st = h.state()
    return st["counts"][0], st


def test_quantile_matches_numpy_within_a_bin() -> None:
    x = np.random.default_rng(0).normal(0.5, 1.3, 200_000)
    counts, st = _hist(x)
    for q in (0.01, 0.25, 0.5, 0.9, 0.99):
        assert abs(smp.quantile(counts, st, q) - np.quantile(x, q)) < 0.1 + 1e-9  # bin width 0.1
    # mass outside the range reads as the edge
    counts, st = _hist(np.array([-100.0, -50.0, 0.0, 0.1]))
    assert smp.quantile(counts, st, 0.01) == -6.0
    with pytest.raises(ValueError, match="q must be"):
        smp.quantile(counts, st, 1.5)


def test_wasserstein_of_a_shift_is_the_shift() -> None:
    x = np.random.default_rng(1).normal(0.0, 1.0, 100_000)
    a, st = _hist(x)
    b, _ = _hist(x + 0.8)
    assert smp.wasserstein1(a, b, st) == pytest.approx(0.8, abs=0.02)
    assert smp.wasserstein1(a, a, st) == 0.0
    with pytest.raises(ValueError, match="differ in shape"):
        smp.wasserstein1(a, a[:-1], st)


def test_grad_stats_median_and_tail_against_numpy() -> None:
    rng = np.random.default_rng(2)
    g = rng.choice([-1.0, 1.0], 300_000) * 10.0 ** rng.normal(-4.0, 1.0, 300_000)
    counts, st = _hist(g, -12.0, 12.0, 120, "symlog")
    st["floor"] = 1e-10
    out = smp.grad_stats(counts, st)
    med = np.median(np.abs(g))
    assert abs(np.log10(out["median_abs"]) - np.log10(med)) <= 0.2  # one bin: 0.2 decades
    tail = np.log10(np.quantile(np.abs(g), 0.999)) - np.log10(med)  # ~3.09 decades for sd 1
    assert abs(out["tail_decades"] - tail) <= 0.3
    assert out["zero_fraction"] < 1e-3
    zeros = np.concatenate([np.zeros(1000), g[:1000]])
    counts, st = _hist(zeros, -12.0, 12.0, 120, "symlog")
    st["floor"] = 1e-10
    assert smp.grad_stats(counts, st)["zero_fraction"] == pytest.approx(0.5, abs=0.01)


def test_sampling_command_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "learnact", "bench", "sampling", "--preset", "tiny", "--acts",
           "relu,tropical", "--lrs", "1e-3,4e-3", "--seeds", "0,1", "--epochs", "2", "--quiet",
           "--out", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    analysis = json.loads((out / "sampling.json").read_text())
    assert len(analysis["runs"]) == 8
    comp = analysis["comparisons"]["tropical"]
    assert comp["lrs"] == [1e-3, 4e-3] and comp["seeds"] == [0, 1]
    for layer in comp["layers"].values():
        assert layer["n_seed_pairs"] == 2 and layer["n_lr_pairs"] == 2
        assert layer["seed_w1"] > 0 and layer["lr_w1"] > 0
    run0 = analysis["runs"][0]["layers"]
    for layer in run0.values():
        ep = layer["epochs"]
        assert len(ep) == 2 and all(e["q01"] < e["q99"] for e in ep)
    text = (out / "sampling.md").read_text()
    for phrase in ("**Where is it sampled?**", "**Do the learning rate or the run change it?**",
                   "**Does the region move over the 2 epochs?**", "**What do the loss derivatives look like?**"):
        assert text.count(phrase) == 2  # one per activation
    assert (out / "sampling.png").stat().st_size > 20_000
    # the analysis alone, again: the same numbers
    (out / "sampling.json").unlink()
    done = subprocess.run([sys.executable, "-m", "learnact", "bench", "sampling", "--analyse", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads((out / "sampling.json").read_text()) == analysis


def test_analyse_refuses_runs_without_histograms(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="--record"):
        smp.analyse({"runs": [{"act": "relu", "lr": 1e-3, "seed": 0, "epochs": []}]})
    done = subprocess.run([sys.executable, "-m", "learnact", "bench", "sampling", "--analyse",
                           str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert done.returncode != 0 and "results.json not found" in done.stderr
