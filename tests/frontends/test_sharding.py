"""The family kernels on a device mesh (4 host devices, tests/frontends/sharding_script.py in a
process of its own): under ``jax.jit`` every device runs the custom calls on its shard (the
compiled HLO's calls have the shard's shape and no all-gather), values and every gradient equal
the unsharded run; inside ``shard_map`` too; Keras 3's DataParallel and ModelParallel (the
activation's per-channel rows sharded by a LayoutMap) train equal to one device."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from learnact import xla_native

SCRIPT = Path(__file__).with_name("sharding_script.py")


@pytest.fixture(scope="module")
def rows(tmp_path_factory) -> dict[str, dict]:
    if not xla_native.available():
        pytest.fail("the JAX kernels must build in the test environment")
    out = tmp_path_factory.mktemp("sharding") / "rows.jsonl"
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    done = subprocess.run([sys.executable, str(SCRIPT), str(out)], capture_output=True,
                          text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-4000:]
    return {r["case"]: r for r in map(json.loads, out.read_text().splitlines())}


def test_every_family_runs_on_its_shard_under_jit(rows) -> None:
    jit = [r for case, r in rows.items() if case.startswith("jit ")]
    assert len(jit) == 4 * (len(xla_native.FAMILIES) + 2)  # and DiTAC exact and lookup
    assert {"jit ditac P('dp', None, 'tp') channels=32",
            "jit ditac:lut=256 P('dp', None, 'tp') channels=32"} <= {r["case"] for r in jit}
    for r in jit:
        assert not r["all_gather"], r["case"]
        # forward and backward, each on the shard's shape (without the partitioning rule
        # every device ran them on the whole (8, 16, 32) input after an all-gather)
        assert len(r["calls"]) == 2 and set(r["calls"]) == {r["local"]}, r
        assert r["local"] != "f32[8,16,32]"
        # float32 sums over 4096 elements, in another order; DiTAC's table sums then pass
        # through the crossing times' derivatives in float32 (a cancelling chain: 1.2e-5 seen)
        assert r["error"] <= (5e-5 if r["case"].startswith("jit ditac") else 1e-5), r


def test_shard_map_runs_the_kernel_per_shard(rows) -> None:
    r = rows["shard_map hermite"]
    assert r["calls"] == ["f32[2,16,32]"]
    assert r["error"] <= 1e-6


@pytest.mark.parametrize("label", ["DataParallel", "ModelParallel"])
def test_keras_distribution_trains_like_one_device(rows, label) -> None:
    r = rows[f"keras {label}"]
    assert r["loss_error"] <= 1e-6 and r["error"] <= 1e-6, r
    if label == "ModelParallel":  # the LayoutMap reached the activation's parameters
        assert r["specs"]["coeffs"] == "P('model', None)", r["specs"]
        assert r["specs"]["scale"] == "P('model',)"
