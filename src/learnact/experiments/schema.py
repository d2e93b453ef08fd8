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
               "recorder": {...} (only with --record)}, ...],
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

__all__ = ["EpochRecord", "RunRecord", "AutoencoderResults", "read_autoencoder_results"]


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
                              _typed(r, "diverged", bool, w), epochs, r.get("recorder")))
    baselines = d.get("baselines", {})
    if not isinstance(baselines, dict):
        raise ValueError(f"{source}.baselines: expected an object, got {baselines!r}")
    world = d.get("world_size", 1)
    if isinstance(world, bool) or not isinstance(world, int):
        raise ValueError(f"{source}.world_size: expected an int, got {world!r}")
    return AutoencoderResults(config, runs, baselines, world)
