"""Trust: files we load never run code, runs refuse folders that are not theirs, corrupt files
are clear errors naming the file (issue "Trust", failures 1 and 4)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from learnact.experiments import charlm
from learnact.experiments.common import (RUN_MARKER, RunDir, load_model, read_run_marker,
                                         save_model)
from learnact.experiments.trainer import load_checkpoint


class _Planted:
    """A pickle that, when unpickled with code execution, writes a file."""

    def __init__(self, target: Path) -> None:
        self.target = str(target)

    def __reduce__(self):
        return (os.system, (f"touch {self.target}",))


def _plant(path: Path, canary: Path, **payload) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({**payload, "evil": _Planted(canary)}, path)
    return path


def test_planted_model_never_executes(tmp_path: Path) -> None:
    canary = tmp_path / "PWNED"
    f = _plant(tmp_path / "run" / "models" / "gelu-s0.pt", canary, format="learnact-model-1",
               builder="toy2d_mlp", kwargs={})
    with pytest.raises(ValueError, match="refusing to load.*weights_only"):
        load_model(f)
    assert not canary.exists()


def test_planted_model_through_the_cli_never_executes(tmp_path: Path) -> None:
    """`learnact plot shapes RUN` on a shared run directory holding a planted models/*.pt."""
    canary = tmp_path / "PWNED"
    run = tmp_path / "run"
    _plant(run / "models" / "gelu-s0.pt", canary, format="learnact-model-1",
           builder="toy2d_mlp", kwargs={})
    out = subprocess.run([sys.executable, "-m", "learnact", "plot", "shapes", str(run),
                          "--out", str(tmp_path / "fig")], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode != 0
    assert "refusing to load" in out.stderr and "Traceback" not in out.stderr
    assert not canary.exists()


def test_planted_checkpoint_never_executes_on_resume(tmp_path: Path) -> None:
    canary = tmp_path / "PWNED"
    run = tmp_path / "r"
    cfg = charlm.make_config("tiny", acts=["gelu"], steps=8, eval_every=4, out=str(run),
                             quiet=True, threads=1, stop_after=4)
    charlm.run_charlm(cfg)
    (ck,) = (run / "checkpoints").glob("*.pt")
    _plant(ck, canary, format="learnact-ckpt-1")
    cfg.optim.stop_after = None
    with pytest.raises(ValueError, match=f"{ck.name}.*refusing to load"):
        charlm.run_charlm(cfg, resume=str(run))
    assert not canary.exists()


def test_truncated_checkpoint_names_the_file_and_the_fix(tmp_path: Path) -> None:
    run = tmp_path / "r"
    cfg = charlm.make_config("tiny", acts=["gelu"], steps=8, eval_every=4, out=str(run),
                             quiet=True, threads=1, stop_after=4)
    charlm.run_charlm(cfg)
    (ck,) = (run / "checkpoints").glob("*.pt")
    data = ck.read_bytes()
    ck.write_bytes(data[: len(data) // 2])
    cfg.optim.stop_after = None
    with pytest.raises(ValueError, match=f"{ck.name}: not a readable.*truncated or corrupt.*delete"):
        charlm.run_charlm(cfg, resume=str(run))
    with pytest.raises(ValueError, match="not a readable"):
        load_checkpoint(ck, {})


def test_checkpoint_missing_fields_is_refused(tmp_path: Path) -> None:
    f = tmp_path / "c.pt"
    torch.save({"format": "learnact-ckpt-1", "run_config": {}}, f)
    with pytest.raises(ValueError, match="incomplete learnact checkpoint.*model"):
        load_checkpoint(f, {})


def test_saved_model_round_trips_and_bad_headers_are_refused(tmp_path: Path) -> None:
    from learnact.experiments.toy2d import build_mlp

    torch.manual_seed(0)
    kw = {"spec": "hermite:degree=4", "sizes": [2, 8, 1], "per_channel": True}
    m = build_mlp(**kw)
    f = save_model(tmp_path / "m.pt", m, "toy2d_mlp", kw)
    back, payload = load_model(f)
    for (k, v), w in zip(m.state_dict().items(), back.state_dict().values()):
        assert torch.equal(v, w), k
    bad = dict(torch.load(f, weights_only=True))
    for change, pattern in [({"builder": "os.system"}, "unknown builder"),
                            ({"kwargs": ["spec"]}, "kwargs must be a dict"),
                            ({"state_dict": {"w": 1.0}}, "state dict of named tensors"),
                            ({"state_dict": {"nope": torch.zeros(1)}}, "does not match its stored state")]:
        torch.save({**bad, **change}, tmp_path / "b.pt")
        with pytest.raises(ValueError, match=pattern):
            load_model(tmp_path / "b.pt")
    (tmp_path / "garbage.pt").write_bytes(b"not a zip file at all")
    with pytest.raises(ValueError, match="garbage.pt: not a readable"):
        load_model(tmp_path / "garbage.pt")
    with pytest.raises(FileNotFoundError, match="no such"):
        load_model(tmp_path / "missing.pt")


def test_run_dir_marker_rules(tmp_path: Path) -> None:
    new = RunDir(tmp_path / "new", "toy2d")
    assert read_run_marker(new.path) == {"format": "learnact-run-1", "task": "toy2d"}
    RunDir(tmp_path / "new", "toy2d")  # an earlier run of the same task: fine
    RunDir(tmp_path / "new", "toy2d", resume=True)
    with pytest.raises(ValueError, match="holds a 'toy2d' run, not 'depth'"):
        RunDir(tmp_path / "new", "depth")
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "config.json").write_text('{"mine": true}')
    with pytest.raises(ValueError, match="--out .*not a learnact run"):
        RunDir(foreign, "toy2d")
    with pytest.raises(ValueError, match="--resume .*not a learnact run directory"):
        RunDir(foreign, "toy2d", resume=True)
    assert json.loads((foreign / "config.json").read_text()) == {"mine": True}
    assert sorted(p.name for p in foreign.iterdir()) == ["config.json"]
    with pytest.raises(ValueError, match="--resume .*no such run directory"):
        RunDir(tmp_path / "missing", "toy2d", resume=True)
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="not a directory"):
        RunDir(tmp_path / "file", "toy2d")
    (new.path / RUN_MARKER).write_text("{not json")
    with pytest.raises(ValueError, match="--resume .*not a learnact run"):
        RunDir(new.path, "toy2d", resume=True)


def test_resume_on_a_foreign_folder_touches_nothing(tmp_path: Path) -> None:
    """`train charlm --resume DIR` on a folder of someone else's files: refused, unchanged."""
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "config.json").write_text("theirs")
    cfg = charlm.make_config("tiny", acts=["gelu"], steps=4, eval_every=4, quiet=True, threads=1)
    with pytest.raises(ValueError, match="not a learnact run directory"):
        charlm.run_charlm(cfg, resume=str(foreign))
    assert [p.name for p in foreign.iterdir()] == ["config.json"]
    assert (foreign / "config.json").read_text() == "theirs"
    with pytest.raises(ValueError, match="no such run directory"):
        charlm.run_charlm(cfg, resume=str(tmp_path / "nothing-here"))


_LOAD = """
import logging, sys
logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
from learnact import _build
from learnact.ops import _native
lib = _native.library("cpab")  # families.cc goes through the same cache code (a 30 s build)
ok = lib is not None and lib.la_abi() == _build.abi()
print("LOADED" if ok else "NONE")
"""


def _load_native(cache: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "LEARNACT_CACHE": str(cache), "LEARNACT_NATIVE": "1"}
    return subprocess.run([sys.executable, "-c", _LOAD], capture_output=True, text=True,
                          env=env, timeout=300)


def test_damaged_native_cache_is_rebuilt_not_loaded(tmp_path: Path) -> None:
    """A truncated cached kernel used to crash every later run with a bus error; a garbage one
    was kept forever. Now each is detected by its checksum, rebuilt with one warning, and
    loaded; the run after that is quiet."""
    first = _load_native(tmp_path)
    assert first.returncode == 0 and "LOADED" in first.stdout, first.stderr
    (so,) = tmp_path.glob("cpab-*.so")
    data = so.read_bytes()
    for damage in ("truncate", "garbage", "no-checksum"):
        if damage == "truncate":
            so.write_bytes(data[: len(data) // 3])
        elif damage == "garbage":
            so.write_bytes(b"\x7fELF" + b"\0" * 200)
        else:
            so.with_name(so.name + ".sha256").unlink()
        again = _load_native(tmp_path)
        assert again.returncode == 0, (damage, again.stderr)  # no SIGBUS
        assert "LOADED" in again.stdout, damage
        assert again.stderr.count("failed its checksum") == 1, damage
    quiet = _load_native(tmp_path)  # healed: no warning any more
    assert "LOADED" in quiet.stdout and "checksum" not in quiet.stderr


@pytest.mark.parametrize("argv", [["bench", "autoencoder", "--preset", "tiny"],
                                  ["bench", "toy2d", "--task", "regression"]])
def test_missing_matplotlib_fails_before_training(argv, monkeypatch, tmp_path, capsys):
    """Without the [plots] extra a benchmark used to crash after training (summary lost)."""
    import sys as _sys

    from learnact.cli import main

    monkeypatch.setitem(_sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    assert main([*argv, "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "pip install 'learnact[plots]' (nothing has run yet)" in err
    assert not (tmp_path / "run").exists()
