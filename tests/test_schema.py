"""results.json's schema (experiments/schema.py): real runs pass, malformed files are clear
errors that name the field."""

from __future__ import annotations

import copy

import pytest

from learnact.experiments.schema import read_autoencoder_results

GOOD = {"task": "autoencoder", "config": {"channels": 8, "lr": 0.002, "seeds": [0]},
        "runs": [{"act": "gelu", "seed": 0, "width": 8, "lr": 0.002, "params": 100,
                  "act_params": 0, "diverged": False,
                  "epochs": [{"epoch": 1, "train_loss": 0.1, "test_loss": None, "seconds": 1.5},
                             {"epoch": 2, "train_loss": "inf", "test_loss": 0.05,
                              "seconds": 1}]}],
        "baselines": {"mean_image_test_loss": 0.086}, "world_size": 1}


def test_a_valid_file_reads_with_nonfinite_numbers() -> None:
    res = read_autoencoder_results(GOOD)
    (run,) = res.runs
    assert run.act == "gelu" and run.epochs[0].test_loss != run.epochs[0].test_loss  # NaN
    assert run.epochs[1].train_loss == float("inf") and run.epochs[1].seconds == 1.0


@pytest.mark.parametrize("path,value,match", [
    (("runs", 0, "epochs", 1, "test_loss"), "low", r"runs\[0\]\.epochs\[1\]\.test_loss"),
    (("runs", 0, "seed"), "0", r"runs\[0\]\.seed: expected int"),
    (("runs", 0, "diverged"), 0, r"runs\[0\]\.diverged: expected bool"),
    (("runs", 0, "params"), True, r"runs\[0\]\.params: expected int"),
    (("task",), "toy2d", "not 'autoencoder'"),
    (("world_size",), 1.5, "world_size: expected an int"),
])
def test_malformed_fields_name_themselves(path, value, match) -> None:
    bad = copy.deepcopy(GOOD)
    node = bad
    for k in path[:-1]:
        node = node[k]
    node[path[-1]] = value
    with pytest.raises(ValueError, match=match):
        read_autoencoder_results(bad)


def test_missing_fields_and_wrong_shapes() -> None:
    bad = copy.deepcopy(GOOD)
    del bad["runs"][0]["epochs"][0]["epoch"]
    with pytest.raises(ValueError, match=r"epochs\[0\]: missing field 'epoch'"):
        read_autoencoder_results(bad)
    with pytest.raises(ValueError, match="expected a JSON object"):
        read_autoencoder_results([1, 2])
    with pytest.raises(ValueError, match="missing field 'runs'"):
        read_autoencoder_results({"task": "autoencoder", "config": {}})
