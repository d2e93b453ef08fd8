"""Tensor parallelism (DTensor) and FSDP2 with learnact activations, 2 processes over gloo on
this CPU (tests/distributed_script.py under torchrun; 4 for a 2-D mesh): a ColwiseParallel ->
ChannelParallel -> RowwiseParallel MLP for every family op, fully_shard, and both on a
(dp=2, tp=2) mesh train 3 SGD steps equal to the
same model in one process (losses, every gradient at the first step, every parameter after
the third, to float32 rounding); a DTensor input with plain parameters is a clear error."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from learnact.ops import family_ops

SCRIPT = Path(__file__).with_name("distributed_script.py")


def _run(tmp: Path, procs: int) -> dict[str, dict]:
    out = tmp / f"out{procs}.jsonl"
    with socket.socket() as sock:  # a free port: parallel runs must not collide
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run",
                           f"--nproc_per_node={procs}", f"--master_port={port}", str(SCRIPT),
                           str(out)], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-4000:]
    return {r["case"]: r for r in map(json.loads, out.read_text().splitlines())}


@pytest.fixture(scope="module")
def rows(tmp_path_factory) -> dict[str, dict]:
    return _run(tmp_path_factory.mktemp("dist"), 2)


@pytest.mark.slow
def test_fsdp2_times_tensor_parallel_on_a_2d_mesh(tmp_path) -> None:
    """4 processes, mesh (dp=2, tp=2): parallelize_module on "tp", fully_shard on "dp"."""
    got = _run(tmp_path, 4)
    assert len(got) == 4 and all(k.startswith("fsdp2xtp ") for k in got)
    assert "fsdp2xtp ditac:channels=16,channel_dim=-1" in got
    for case, r in got.items():
        assert r["loss_err"] < 1e-5 and r["grad_err"] < 1e-5 and r["param_err"] < 1e-5, (case, r)
        assert r["losses"][-1] < r["losses"][0], (case, r["losses"])


@pytest.mark.slow
def test_tensor_parallel_mlp_equals_one_process_for_every_family_op(rows) -> None:
    tp = {k.split(" ", 1)[1]: v for k, v in rows.items() if k.startswith("tp ")}
    names = {spec.split(":")[0] for spec in tp}
    assert set(family_ops()) <= names, set(family_ops()) - names  # the library's one list
    for spec, r in tp.items():
        assert r["loss_err"] < 1e-5 and r["grad_err"] < 1e-5 and r["param_err"] < 1e-5, (spec, r)
        assert r["losses"][-1] < r["losses"][0], (spec, r["losses"])  # it trains
        if "channels=" in spec:  # each rank holds and trains its own channels' parameters
            assert r["act_grad_placements"] and all(
                "Shard(dim=0)" in p for p in r["act_grad_placements"]), (spec, r)
        else:  # shared parameters: a partial sum over the ranks
            assert all("Partial" in p or "Replicate" in p for p in r["act_grad_placements"])


@pytest.mark.slow
def test_parameters_laid_out_unlike_x_are_a_clear_error(rows) -> None:
    """A per-channel family op whose rows are replicated beside channel shards of x: DTensor
    would silently redistribute; learnact names both layouts instead."""
    err = rows["hermite layout"]["error"]
    assert err.startswith("ValueError: learnact.hermite: x is placed (Shard(dim=1),)"), err
    assert "parameter coeffs must be (Shard(dim=0),)" in err and "(Replicate(),)" in err


@pytest.mark.slow
def test_ditac_tensor_parallel_exact_table_shared_and_prior(rows) -> None:
    """DiTAC is not one family op (a table chain on theta, then the flow): it runs each rank's
    shard through DTensor's local_map with the family ops' placement rules."""
    tp = {k.split(" ", 1)[1] for k in rows if k.startswith("tp ")}
    assert {"ditac:channels=16,channel_dim=-1", "ditac:channels=16,channel_dim=-1,lut=256",
            "leaky_ditac:gate=identity,channels=16,channel_dim=-1", "ditac"} <= tp
    prior = rows["ditac prior"]  # lambda theta^T P theta summed over every rank's rows
    assert prior["plain"] and prior["value_err"] < 1e-6 and prior["grad_err"] < 1e-6, prior
    batch = rows["ditac batch-sharded"]  # x split on rows: theta's gradient summed over ranks
    assert batch["value_err"] < 1e-6 and batch["grad_err"] < 1e-5, batch
    layout = rows["ditac layout"]["error"]
    assert layout.startswith("ValueError: learnact.ditac: x is placed (Shard(dim=1),)"), layout
    assert "parameter theta must be (Shard(dim=0),)" in layout
    assert "but it is (Replicate(),)" in layout
    assert rows["ditac mixed"]["error"].startswith(
        "TypeError: learnact.ditac: x is a DTensor but theta is a plain Tensor")


@pytest.mark.slow
def test_fsdp2_equals_one_process(rows) -> None:
    """Hermite and DiTAC (per channel and shared, its prior in the loss) under fully_shard."""
    fsdp = {k: v for k, v in rows.items() if k.startswith("fsdp2 ")}
    assert len(fsdp) == 4 and {"fsdp2 ditac", "fsdp2 ditac:channels=16,channel_dim=-1"} <= set(fsdp)
    for case, r in fsdp.items():
        assert r["loss_err"] < 1e-5 and r["grad_err"] < 1e-5 and r["param_err"] < 1e-5, (case, r)


@pytest.mark.slow
def test_dtensor_input_with_plain_parameters_is_a_clear_error(rows) -> None:
    assert rows["mixed"]["error"] == (
        "learnact.hermite: x is a DTensor but coeffs is a plain Tensor: distribute the "
        "activation's parameters with the input (torch.distributed.tensor.distribute_module, "
        "or parallelize_module's plans) or call it on local tensors")
