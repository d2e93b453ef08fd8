"""The DiTAC paper's Figure 3 experiment (learnact bench toy2d --task regression1d) at a tiny
preset: it runs end to end from the CLI, records what it says, and its nodes are what the
figure draws (ReLU nodes are max(z, 0) of a line; DiTAC at theta = 0 is GELU of it)."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from learnact.cli import main
from learnact.experiments.regression1d import Net, Regression1dConfig, summarize, target


@pytest.mark.slow
def test_cli_runs_and_writes_results(tmp_path) -> None:
    out = tmp_path / "r1d"
    assert main(["bench", "toy2d", "--task", "regression1d", "--acts", "relu,ditac:cells=5",
                 "--seeds", "0,1", "--reg-steps", "40", "--out", str(out), "--quiet"]) == 0
    res = json.loads((out / "results.json").read_text())
    assert [(r["act"], r["seed"]) for r in res["runs"]] == [
        ("relu", 0), ("relu", 1), ("ditac:cells=5", 0), ("ditac:cells=5", 1)]
    assert all(r["test_mse"] > 0 and not r["diverged"] for r in res["runs"])
    ditac = next(r for r in res["summary"] if r["act"] == "ditac:cells=5")
    assert ditac["vs"] == "relu" and ditac["verdict"] in ("better", "worse",
                                                         "not distinguishable")
    assert (out / "regression1d.png").stat().st_size > 10_000
    summary = (out / "summary.md").read_text()
    assert "| `relu` |" in summary and "vs `relu`" in summary


def test_nodes_are_what_the_figure_draws() -> None:
    x = torch.linspace(-2, 2, 101).unsqueeze(1)
    torch.manual_seed(0)
    relu = Net("relu", 3)
    z, h = relu.nodes(x)
    assert z.shape == h.shape == (101, 3)
    assert torch.equal(h, torch.clamp(z, min=0))
    # z is a line in x per node
    assert torch.allclose(z, x * relu.inp.weight[:, 0] + relu.inp.bias, atol=1e-6)
    ditac = Net("ditac:init=zeros", 3)
    assert ditac.act.theta.shape[0] == 3  # one field per node
    z, h = ditac.nodes(x)
    assert torch.allclose(h, F.gelu(z), atol=1e-6)
    assert torch.allclose(target(torch.tensor([0.0, 1.0])),
                          torch.tensor([0.0, float(torch.sin(torch.tensor(3.0))) + 0.5]))


def test_summary_interval_and_paired_verdict() -> None:
    runs = [{"act": "relu", "seed": s, "test_mse": 0.40 + 0.001 * s} for s in range(3)] + \
           [{"act": "ditac", "seed": s, "test_mse": 0.02 + 0.002 * s} for s in range(3)]
    rows = summarize(runs, ["relu", "ditac"])
    assert [r["act"] for r in rows] == ["ditac", "relu"]
    d = rows[0]
    assert d["verdict"] == "better" and abs(d["diff"] - (0.022 - 0.401)) < 1e-12
    assert d["low"] < d["mean"] < d["high"]


def test_bad_config_is_refused_before_training() -> None:
    with pytest.raises(ValueError, match="steps"):
        Regression1dConfig(steps=0)
    with pytest.raises(ValueError, match="acts"):
        Regression1dConfig(acts=[])
    with pytest.raises(ValueError, match="unknown activation 'no_such_activation'"):
        Regression1dConfig(acts=["no_such_activation"])
