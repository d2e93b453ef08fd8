"""Semantic segmentation (learnact bench segment): canvases and labels are what the docstring
says, the scores are right on known confusion matrices, and the CLI runs end to end at the
tiny preset (results, summary, figure)."""

from __future__ import annotations

import json

import pytest
import torch

from learnact.cli import main
from learnact.experiments.segment import (BACKGROUND, CLASSES, SegNet, canvases, confusion,
                                          make_config, scores)


def test_canvases_and_labels() -> None:
    images = torch.zeros(3, 1, 28, 28)
    images[0, 0, 2:5, 3:9] = 0.9   # ink
    images[0, 0, 10, 10] = 0.1     # too faint to count
    images[1, 0, 20:22, 0:28] = 0.5
    labels = torch.tensor([7, 2, 4])
    x, y = canvases(images, labels, 5, 40, 2, torch.Generator().manual_seed(0))
    assert x.shape == (5, 1, 40, 40) and y.shape == (5, 40, 40) and y.dtype == torch.long
    assert set(y.unique().tolist()) <= {BACKGROUND, 7, 2}  # image 2 has no ink
    assert torch.all((y == BACKGROUND) == (x[:, 0] <= 0.2))  # labels exactly where ink is
    assert torch.all(x[:, 0][y == 7] == 0.9) and torch.all(x[:, 0][y == 2] == 0.5)


def test_scores_on_known_confusions() -> None:
    cm = torch.zeros(CLASSES, CLASSES, dtype=torch.long)
    cm[BACKGROUND, BACKGROUND] = 90
    cm[3, 3] = 6
    cm[3, BACKGROUND] = 2   # two class-3 pixels called background
    cm[5, 3] = 2            # two class-5 pixels called class 3
    s = scores(cm)
    assert s["pixel_accuracy"] == pytest.approx(96 / 100)
    # IoU: background 90/92, class 3 6/10, class 5 0/2; classes never seen are left out
    assert s["miou"] == pytest.approx((90 / 92 + 6 / 10 + 0.0) / 3)


def test_confusion_counts_every_pixel() -> None:
    torch.manual_seed(0)
    net = SegNet(lambda c: torch.nn.ReLU(), width=2)
    x, y = torch.rand(4, 1, 32, 32), torch.randint(CLASSES, (4, 32, 32))
    assert net(x).shape == (4, CLASSES, 32, 32)
    cm = confusion(net, x, y, batch=3)
    assert int(cm.sum()) == 4 * 32 * 32
    assert torch.equal(cm.sum(1), torch.bincount(y.flatten(), minlength=CLASSES))


def test_bad_configuration_is_refused() -> None:
    with pytest.raises(ValueError, match="--size"):
        make_config(size=30)
    with pytest.raises(ValueError, match="--epochs"):
        make_config(epochs=0)
    with pytest.raises(ValueError, match="unknown activation"):
        make_config(acts=["nope"])


@pytest.mark.slow
def test_cli_runs_the_tiny_preset(tmp_path) -> None:
    out = tmp_path / "seg"
    assert main(["bench", "segment", "--preset", "tiny", "--acts", "relu,ditac:lut=256",
                 "--out", str(out), "--quiet"]) == 0
    res = json.loads((out / "results.json").read_text())
    assert [(r["act"], r["seed"]) for r in res["runs"]] == [
        ("relu", 0), ("relu", 1), ("ditac:lut=256", 0), ("ditac:lut=256", 1)]
    for r in res["runs"]:
        e = r["epochs"][-1]
        assert 0 <= e["test_miou"] <= 1 and 0 <= e["test_pixel_accuracy"] <= 1
    row = next(r for r in res["summary"] if r["act"] == "ditac:lut=256")
    assert row["vs_relu"]["verdict"] in ("better", "worse", "not distinguishable")
    assert row["params"] > 0
    assert "| `relu` |" in (out / "summary.md").read_text()
    assert (out / "predictions.png").stat().st_size > 5_000
