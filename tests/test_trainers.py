"""charlm and convnext trainers: resume == uninterrupted, DDP ranks identical, bad input."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from learnact.experiments import charlm, convnext
from learnact.experiments.common import load_model

TRAINERS = {"charlm": charlm, "convnext": convnext}


def _tiny(name: str, out: Path, **kw):
    mod = TRAINERS[name]
    extra = {"steps": 12, "eval_every": 4} if name == "charlm" else {}
    return mod.make_config("tiny", acts=["hermite:degree=4"], out=str(out), quiet=True,
                           threads=1, **{**extra, **kw})


def _run(name: str, cfg, resume=None) -> Path:
    return getattr(TRAINERS[name], f"run_{name}")(cfg, resume=resume)


def _final(path: Path) -> dict:
    res = json.loads((path / "results.json").read_text())
    return res["runs"][-1]


@pytest.mark.parametrize("name", ["charlm", "convnext"])
def test_resume_reaches_the_uninterrupted_loss(name: str, tmp_path: Path) -> None:
    full = _run(name, _tiny(name, tmp_path / "full"))
    half = tmp_path / "half"
    _run(name, _tiny(name, half, stop_after=4 if name == "charlm" else 10))
    assert not _final(half)["completed"]  # interrupted after its first checkpoint
    _run(name, _tiny(name, half), resume=str(half))
    a, b = _final(full), _final(half)
    assert b["completed"] and len(a["evals"]) == len(b["evals"])
    key = "val_loss" if name == "charlm" else "test_loss"
    assert [e[key] for e in a["evals"]] == pytest.approx([e[key] for e in b["evals"]], abs=1e-6)
    ma, _ = load_model(next((full / "models").glob("*.pt")))
    mb, _ = load_model(next((half / "models").glob("*.pt")))
    for (k, v), w in zip(ma.state_dict().items(), mb.state_dict().values()):
        assert torch.allclose(v, w, atol=1e-6), k
    assert (full / "summary.md").exists()


def test_charlm_learns_below_unigram(tmp_path: Path) -> None:
    cfg = charlm.make_config("tiny", acts=["gelu"], steps=60, eval_every=30, out=str(tmp_path),
                             quiet=True, threads=1)
    path = _run("charlm", cfg)
    res = json.loads((path / "results.json").read_text())
    assert res["runs"][0]["evals"][-1]["val_loss"] < res["unigram_val_loss"]
    assert len(res["runs"][0]["sample"]) > 20


def test_charlm_bad_input(tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("   \n")
    with pytest.raises(ValueError, match="empty"):
        _run("charlm", _tiny("charlm", tmp_path / "a", text=str(empty)))
    latin = tmp_path / "latin.txt"
    latin.write_bytes("caf\xe9 au lait".encode("latin-1"))
    with pytest.raises(ValueError, match="not UTF-8"):
        _run("charlm", _tiny("charlm", tmp_path / "b", text=str(latin)))
    short = tmp_path / "short.txt"
    short.write_text("to be or not to be " * 3)
    with pytest.raises(ValueError, match="context"):
        _run("charlm", _tiny("charlm", tmp_path / "c", text=str(short)))
    with pytest.raises(ValueError, match="unknown configuration key 'n_layers'"):
        charlm.make_config("tiny", n_layers=3)
    with pytest.raises(ValueError, match="unknown preset"):
        charlm.make_config("huge")


@pytest.mark.parametrize("name", ["charlm", "convnext"])
def test_checkpoint_from_another_config_is_refused(name: str, tmp_path: Path) -> None:
    run = tmp_path / "r"
    _run(name, _tiny(name, run, stop_after=4 if name == "charlm" else 10))
    other = _tiny(name, run, batch_size=4)
    with pytest.raises(ValueError, match="different configuration.*batch_size"):
        _run(name, other, resume=str(run))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["charlm", "convnext"])
def test_torchrun_two_ranks_hold_identical_parameters(name: str, tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    args = ["--preset", "tiny", "--acts", "hermite:degree=4", "--out", str(tmp_path / "run"),
            "--check-sync", "--quiet", "--threads", "1"]
    if name == "charlm":
        args += ["--steps", "6", "--eval-every", "3"]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
           f"--master_port={port}", "-m", "learnact", "train", name, *args]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, p.stderr[-3000:]
    res = json.loads((tmp_path / "run" / "results.json").read_text())
    assert res["world_size"] == 2
    assert all(r["ranks_identical"] and r["completed"] for r in res["runs"])


def _torchrun(procs: int, *args: str, task: str = "charlm") -> subprocess.CompletedProcess:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return subprocess.run([sys.executable, "-m", "torch.distributed.run",
                           f"--nproc_per_node={procs}", f"--master_port={port}", "-m",
                           "learnact", "train", task, *args],
                          capture_output=True, text=True, timeout=900)


def _evals(path: Path, key: str = "val_loss") -> dict[str, list[float]]:
    res = json.loads((path / "results.json").read_text())
    return {r["act"]: [e[key] for e in r["evals"]] for r in res["runs"]}


@pytest.mark.slow
def test_tensor_parallel_charlm_equals_one_process_and_resumes(tmp_path: Path) -> None:
    """--tp 2 on 2 processes splits every MLP and its activation (Hermite: the family op's
    sharding rules; DiTAC: local_map) and trains the single-process model; --tp 2 on 4
    processes (FSDP2 over 2 data-parallel groups) trains the 2-process DDP model; a stopped
    --tp run resumes to the uninterrupted one; the saved model is the plain one."""
    common = ["--preset", "tiny", "--acts", "hermite:degree=4;ditac", "--steps", "6",
              "--eval-every", "3", "--quiet", "--threads", "1"]
    one = charlm.run_charlm(charlm.make_config(
        "tiny", acts=["hermite:degree=4", "ditac"], steps=6, eval_every=3, quiet=True,
        threads=1, out=str(tmp_path / "one")))
    runs = {}
    for name, procs, extra in (("tp", 2, ["--tp", "2", "--check-sync"]), ("ddp", 2, []),
                               ("dp2tp2", 4, ["--tp", "2", "--check-sync"]),
                               ("half", 2, ["--tp", "2", "--stop-after", "3"])):
        p = _torchrun(procs, *common, "--out", str(tmp_path / name), *extra)
        assert p.returncode == 0, (name, p.stderr[-3000:])
        runs[name] = tmp_path / name
    p = _torchrun(2, *common, "--tp", "2", "--resume", str(tmp_path / "half"))
    assert p.returncode == 0, p.stderr[-3000:]

    def close(a: dict, b: dict) -> bool:
        return a.keys() == b.keys() and all(
            abs(x - y) < 1e-5 for k in a for x, y in zip(a[k], b[k], strict=True))

    assert close(_evals(runs["tp"]), _evals(one)), (_evals(runs["tp"]), _evals(one))
    assert close(_evals(runs["dp2tp2"]), _evals(runs["ddp"]))
    assert close(_evals(runs["half"]), _evals(runs["tp"]))
    for name in ("tp", "dp2tp2"):
        res = json.loads((runs[name] / "results.json").read_text())
        assert all(r["ranks_identical"] and r["completed"] for r in res["runs"])
    model, _ = load_model(runs["tp"] / "models" / "ditac-s0.pt")
    ref, _ = load_model(one / "models" / "ditac-s0.pt")
    for (k, v), (_, w) in zip(model.state_dict().items(), ref.state_dict().items()):
        assert type(v) is torch.Tensor and torch.allclose(v, w, atol=1e-5), k


def test_tensor_parallel_bad_sizes_fail_before_training(tmp_path: Path) -> None:
    cfg = charlm.make_config("tiny", tp=2, out=str(tmp_path / "r"), quiet=True)
    with pytest.raises(ValueError, match=r"--tp 2 needs a world size that is a multiple of 2 "
                                         r"\(torchrun --nproc_per_node=K\*2\); this run has 1"):
        charlm.run_charlm(cfg)
    assert not (tmp_path / "r").exists()
    with pytest.raises(ValueError, match="--tp must be an integer >= 1"):
        charlm.run_charlm(charlm.make_config("tiny", tp=0, out=str(tmp_path / "s")))


def test_token_bin_files_and_record(tmp_path: Path) -> None:
    """uint16 .bin train/val files (the OpenWebText format) train too; --record keeps
    histograms per evaluation interval; an id beyond the vocabulary is refused."""
    import numpy as np

    rng = np.random.default_rng(0)
    data = tmp_path / "bin"
    data.mkdir()
    (rng.integers(0, 50, 5000).astype(np.uint16)).tofile(data / "train.bin")
    (rng.integers(0, 50, 800).astype(np.uint16)).tofile(data / "val.bin")
    cfg = charlm.make_config("tiny", data_bin=str(data), vocab_size=64, acts=["gelu"],
                             record=True, record_every=1, out=str(tmp_path / "r"), quiet=True,
                             threads=1)
    path = _run("charlm", cfg)
    run = json.loads((path / "results.json").read_text())["runs"][0]
    assert run["completed"] and "unigram_val_loss" not in json.loads(
        (path / "results.json").read_text())
    rec = run["recorder"]["h.0.mlp.act"]
    assert len(rec["inputs"]["counts"]) == 2  # two evaluation intervals
    assert sum(map(sum, rec["inputs"]["counts"])) == rec["seen"] == 20 * 8 * 16 * 4 * 32
    bad = tmp_path / "bad"
    bad.mkdir()
    np.array([1, 2, 70], dtype=np.uint16).tofile(bad / "train.bin")
    np.array([1, 2, 3], dtype=np.uint16).tofile(bad / "val.bin")
    with pytest.raises(ValueError, match="vocab-size"):
        _run("charlm", charlm.make_config("tiny", data_bin=str(bad), vocab_size=64,
                                          out=str(tmp_path / "b"), quiet=True))


def test_gpu_presets_are_the_documented_settings() -> None:
    """#19 item 5: one-GPU presets for the autoencoder (the blog's architecture, all 60k images)
    and the ConvNeXt (all images, a ConvNeXt-T-like shape), 3 seeds each."""
    from learnact.experiments import autoencoder, convnext

    ae = autoencoder.make_config("gpu")
    blog = autoencoder.make_config("blog")
    assert (ae.channels, ae.latent, ae.train_limit, ae.test_limit) == (
        blog.channels, blog.latent, None, None) and ae.seeds == [0, 1, 2]
    cn = convnext.make_config("gpu")
    assert cn.train_limit is None and cn.dims == [64, 128, 256] and cn.depths == [2, 2, 6]
    assert cn.seeds == [0, 1, 2] and "ditac" in cn.acts
    assert convnext.make_config("gpu", epochs=1).epochs == 1  # overrides still apply


@pytest.mark.slow
def test_tensor_parallel_convnext_equals_one_process_and_ddp(tmp_path: Path) -> None:
    """convnext --tp 2: every block's channels-last MLP split (pwconv1 column-wise, the
    activation on its rank's channels, pwconv2 row-wise) trains the single-process model; on 4
    processes (FSDP2 over 2 data-parallel groups, one unit per block) the 2-process DDP model.
    The test set (64 images, one evaluation batch) leaves one data-parallel group without a
    batch: it still runs the forward (each is a collective under FSDP2), uncounted."""
    acts = ["hermite:degree=4", "ditac"]
    common = ["--preset", "tiny", "--acts", ";".join(acts), "--quiet", "--threads", "1"]
    one = convnext.run_convnext(convnext.make_config("tiny", acts=acts, quiet=True, threads=1,
                                                     out=str(tmp_path / "one")))
    runs = {}
    for name, procs, extra in (("tp", 2, ["--tp", "2", "--check-sync"]), ("ddp", 2, []),
                               ("dp2tp2", 4, ["--tp", "2", "--check-sync"])):
        p = _torchrun(procs, *common, "--out", str(tmp_path / name), *extra, task="convnext")
        assert p.returncode == 0, (name, p.stderr[-3000:])
        runs[name] = tmp_path / name

    def close(a: dict, b: dict) -> bool:
        return a.keys() == b.keys() and all(
            abs(x - y) < 1e-5 for k in a for x, y in zip(a[k], b[k], strict=True))

    assert close(_evals(runs["tp"], "test_loss"), _evals(one, "test_loss"))
    assert close(_evals(runs["dp2tp2"], "test_loss"), _evals(runs["ddp"], "test_loss"))
    for name in ("tp", "dp2tp2"):
        res = json.loads((runs[name] / "results.json").read_text())
        assert all(r["ranks_identical"] and r["completed"] for r in res["runs"])
