"""The schema of the autoencoder's ``results.json``, as dataclasses that check what they read.

``results.json`` (written after every finished run, read by report.py, ``--resume`` and the
plot commands)::

    {"task": "autoencoder",
     "config": {...AutoencoderConfig fields...},
     "runs": [{"act": str, "seed": int, "width": int, "lr": float, "params": int,
               "act_params": int, "diverged": bool,
               "epochs": [{"epoch": int, "train_loss": num, "test_loss": num,
                           "seconds": float}, ...],   (the finished epochs)
               "diverged_epoch": int (only when diverged: the epoch whose batch had a
                                 non-finite loss; training stopped there),
               "recorder": {layer: {"inputs": hist, "grads": hist, "seen": int}}
                           (only with --record; hist: {"lo", "hi", "bins", "scale", "floor",
                           "counts": per epoch [underflow, bins..., overflow]})}, ...],
     "baselines": {"mean_image_test_loss": float},
     "world_size": int}

``num`` is a float, or ``null`` / ``"inf"`` / ``"-inf"`` for NaN and infinities (JSON has
none; experiments/common.py writes them so). :func:`read_autoencoder_results` turns a loaded
dict into :class:`AutoencoderResults` or raises a ValueError naming the first bad field.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

__all__ = ["EpochRecord", "RunRecord", "AutoencoderResults", "read_autoencoder_results",
           "read_recorder", "load_autoencoder_results"]

#: the largest histogram a results.json may describe (learnact.viz.Recorder uses 120 bins)
MAX_BINS = 100_000


def _num(v: Any, where: str) -> float:
    if v is None:
        return math.nan
    if v in ("inf", "-inf"):
        return float(v)
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ValueError(f"{where}: expected a number (or null/'inf'/'-inf'), got {v!r}")
    return float(v)


def _typed(d: Any, key: str, typ: type | tuple[type, ...], where: str) -> Any:
    if not isinstance(d, dict) or key not in d:
        raise ValueError(f"{where}: missing field {key!r}")
    v = d[key]
    types = typ if isinstance(typ, tuple) else (typ,)
    if not isinstance(v, types) or (isinstance(v, bool) and bool not in types):
        names = "/".join(t.__name__ for t in types)
        raise ValueError(f"{where}.{key}: expected {names}, got {v!r}")
    return v


@dataclass(frozen=True)
class EpochRecord:
    epoch: int
    train_loss: float
    test_loss: float
    seconds: float


@dataclass(frozen=True)
class RunRecord:
    act: str
    seed: int
    width: int
    lr: float
    params: int
    act_params: int
    diverged: bool
    epochs: list[EpochRecord]
    recorder: dict | None = None


@dataclass(frozen=True)
class AutoencoderResults:
    config: dict
    runs: list[RunRecord]
    baselines: dict = field(default_factory=dict)
    world_size: int = 1


def _finite(v: Any, where: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise ValueError(f"{where}: expected a finite number, got {v!r}")
    return float(v)


def _hist(h: Any, where: str) -> None:
    lo, hi = _finite(_typed(h, "lo", (int, float), where), where + ".lo"), \
        _finite(_typed(h, "hi", (int, float), where), where + ".hi")
    bins = _typed(h, "bins", int, where)
    if not lo < hi or not 1 <= bins <= MAX_BINS:
        raise ValueError(f"{where}: needs lo < hi and bins in [1, {MAX_BINS}], got lo={lo}, "
                         f"hi={hi}, bins={bins}")
    if h.get("scale", "linear") not in ("linear", "symlog"):
        raise ValueError(f"{where}.scale: expected 'linear' or 'symlog', got {h['scale']!r}")
    if h.get("scale") == "symlog" and not _finite(h.get("floor"), where + ".floor") > 0:
        raise ValueError(f"{where}.floor: expected a number > 0, got {h['floor']!r}")
    epochs = _typed(h, "counts", list, where)
    if not epochs:
        raise ValueError(f"{where}.counts: no finished epoch")
    for e, counts in enumerate(epochs):
        if (not isinstance(counts, list) or len(counts) != bins + 2 or not all(
                isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in counts)):
            raise ValueError(f"{where}.counts[{e}]: expected {bins + 2} counts (integers >= 0: "
                             f"underflow, {bins} bins, overflow)")


def read_recorder(state: Any, where: str) -> dict:
    """Check a :class:`learnact.viz.Recorder` state read from a file (ValueError naming the
    field): every layer's input and gradient histograms, with the same number of epochs."""
    if not isinstance(state, dict) or not state:
        raise ValueError(f"{where}: expected an object of layers, got {state!r:.60}")
    for layer, st in state.items():
        w = f"{where}[{layer!r}]"
        for kind in ("inputs", "grads"):
            _hist(_typed(st, kind, dict, w), f"{w}.{kind}")
        if len(st["inputs"]["counts"]) != len(st["grads"]["counts"]):
            raise ValueError(f"{w}: inputs and grads have different numbers of epochs")
    return state


def read_autoencoder_results(d: Any, source: str = "results.json") -> AutoencoderResults:
    """Check a loaded results.json against the schema above; ValueError names the bad field."""
    if not isinstance(d, dict):
        raise ValueError(f"{source}: expected a JSON object, got {type(d).__name__}")
    if d.get("task") != "autoencoder":
        raise ValueError(f"{source}: task is {d.get('task')!r}, not 'autoencoder'")
    config = _typed(d, "config", dict, source)
    runs = []
    for i, r in enumerate(_typed(d, "runs", list, source)):
        w = f"{source}: runs[{i}]"
        epochs = []
        for j, e in enumerate(_typed(r, "epochs", list, w)):
            we = f"{w}.epochs[{j}]"
            epochs.append(EpochRecord(_typed(e, "epoch", int, we),
                                      _num(e.get("train_loss"), we + ".train_loss"),
                                      _num(e.get("test_loss"), we + ".test_loss"),
                                      _num(_typed(e, "seconds", (int, float), we), we)))
        runs.append(RunRecord(_typed(r, "act", str, w), _typed(r, "seed", int, w),
                              _typed(r, "width", int, w), float(_typed(r, "lr", (int, float), w)),
                              _typed(r, "params", int, w), _typed(r, "act_params", int, w),
                              _typed(r, "diverged", bool, w), epochs,
                              None if r.get("recorder") is None
                              else read_recorder(r["recorder"], w + ".recorder")))
    baselines = d.get("baselines", {})
    if not isinstance(baselines, dict):
        raise ValueError(f"{source}.baselines: expected an object, got {baselines!r}")
    world = d.get("world_size", 1)
    if isinstance(world, bool) or not isinstance(world, int):
        raise ValueError(f"{source}.world_size: expected an int, got {world!r}")
    return AutoencoderResults(config, runs, baselines, world)


def load_autoencoder_results(run: Any, task_error: str | None = None
                             ) -> tuple[dict, AutoencoderResults]:
    """(the raw dict, its checked form) of the results.json in run directory ``run``; a
    missing file, a file that is not JSON or a field that breaks the schema is a ValueError
    (FileNotFoundError) naming the file. ``task_error``: the message (``{task}`` filled in)
    when the file is another task's results."""
    import json
    from pathlib import Path

    p = Path(run) / "results.json"
    if not p.is_file():
        raise FileNotFoundError(f"{p} not found (a run directory of `learnact bench "
                                f"autoencoder` or `bench sampling` holds one)")
    try:
        d = json.loads(p.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"{p}: not a valid JSON file ({exc})") from None
    task = d.get("task") if isinstance(d, dict) else None
    if task_error is not None and isinstance(task, str) and task != "autoencoder":
        raise ValueError(task_error.format(task=task))
    return d, read_autoencoder_results(d, str(p))
