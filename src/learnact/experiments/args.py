"""Argument helpers shared by every experiment's command line (imports nothing back from the
experiments, so any of them can use it)."""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path

__all__ = ["ints", "floats", "limit", "split_specs", "add_prior_flag", "positive_int",
           "nonneg_int", "positive_float", "nonneg_float", "finite_float", "seeds",
           "positive_ints", "positive_floats", "device", "port", "new_file", "bounded_int"]


def _int(text: str, lo: int, hi: int | None = None) -> int:
    try:
        v = int(text)
    except ValueError:
        v = None
    if v is None or v < lo or (hi is not None and v > hi):
        rng = f"an integer >= {lo}" if hi is None else f"an integer in [{lo}, {hi}]"
        raise argparse.ArgumentTypeError(f"must be {rng}, got {text!r}")
    return v


def _float(text: str, lo: float | None, strict: bool) -> float:
    try:
        v = float(text)
    except ValueError:
        v = math.nan
    ok = math.isfinite(v) and (lo is None or (v > lo if strict else v >= lo))
    if not ok:
        rng = "a finite number" + ("" if lo is None else f" {'>' if strict else '>='} {lo:g}")
        raise argparse.ArgumentTypeError(f"must be {rng}, got {text!r}")
    return v


def bounded_int(lo: int, hi: int | None = None):
    """An argparse type for integers in [lo, hi] (hi None: no upper bound)."""
    def parse(text: str) -> int:
        return _int(text, lo, hi)

    parse.__name__ = f"int_{lo}_{hi}"
    return parse


def positive_int(text: str) -> int:
    """An integer >= 1 (an argparse type)."""
    return _int(text, 1)


def nonneg_int(text: str) -> int:
    """An integer >= 0 (an argparse type)."""
    return _int(text, 0)


def positive_float(text: str) -> float:
    """A finite number > 0 (an argparse type)."""
    return _float(text, 0.0, True)


def nonneg_float(text: str) -> float:
    """A finite number >= 0 (an argparse type)."""
    return _float(text, 0.0, False)


def finite_float(text: str) -> float:
    """Any finite number (an argparse type)."""
    return _float(text, None, False)


def _list(text: str, item, what: str) -> list:
    parts = [t.strip() for t in text.split(",") if t.strip()]
    if not parts:
        raise argparse.ArgumentTypeError(f"expected comma-separated {what}, got {text!r}")
    try:
        return [item(t) for t in parts]
    except argparse.ArgumentTypeError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated {what} (each {exc})") from None


def seeds(text: str) -> list[int]:
    """"0,1,2" -> [0, 1, 2]: a non-empty list of integers >= 0 (an argparse type)."""
    return _list(text, nonneg_int, "seeds")


def positive_ints(text: str) -> list[int]:
    """"8,16,32" -> [8, 16, 32], each >= 1 (an argparse type)."""
    return _list(text, positive_int, "integers")


def positive_floats(text: str) -> list[float]:
    """"5e-4,2e-3" -> [0.0005, 0.002], each finite and > 0 (an argparse type)."""
    return _list(text, positive_float, "numbers")


def device(text: str) -> str:
    """cpu, cuda, cuda:N or auto, checked against this machine (an argparse type)."""
    import torch

    if text in ("auto", ""):
        return text
    try:
        dev = torch.device(text)
    except (RuntimeError, ValueError):
        raise argparse.ArgumentTypeError(f"expected cpu, cuda, cuda:N or auto, got {text!r}") from None
    if dev.type not in ("cpu", "cuda"):
        raise argparse.ArgumentTypeError(f"expected cpu, cuda, cuda:N or auto, got {text!r}")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise argparse.ArgumentTypeError(f"{text!r}: CUDA is not available on this machine")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise argparse.ArgumentTypeError(
                f"{text!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    return text


def port(text: str) -> int:
    """A TCP port, 0 (any free one) to 65535 (an argparse type)."""
    return _int(text, 0, 65535)


def new_file(text: str) -> str:
    """A file path whose folder exists and is writable (an argparse type): checked before the
    work starts, so a long fit or run never ends in a failed save."""
    parent = Path(text).expanduser().resolve().parent
    if not parent.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise argparse.ArgumentTypeError(f"{text!r}: folder {parent} is not writable")
    if Path(text).is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is a folder, not a file name")
    return text


def ints(text: str) -> list[int]:
    """"0,1,2" -> [0, 1, 2] (an argparse type)."""
    try:
        return [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def floats(text: str) -> list[float]:
    """"5e-4,2e-3" -> [0.0005, 0.002] (an argparse type)."""
    try:
        return [float(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def limit(text: str) -> int | None:
    """A data-set size: an integer >= 1, or none/all/0 for everything (an argparse type)."""
    return None if text.lower() in ("none", "all", "0") else positive_int(text)


def split_specs(text: str) -> list[str]:
    """Split a comma list of registry specs; ``;`` separates specs that contain commas."""
    if ";" in text:
        return [t.strip() for t in text.split(";") if t.strip()]
    out: list[str] = []
    for tok in (t.strip() for t in text.split(",")):
        if not tok:
            continue
        if "=" in tok and ":" not in tok and out:
            out[-1] += "," + tok  # continuation: key=value of the previous spec
        else:
            out.append(tok)
    return out


def add_prior_flag(p: argparse.ArgumentParser) -> None:
    """--no-prior: train without learnact.regularization(model) in the loss (DiTAC's prior)."""
    p.add_argument("--no-prior", action="store_true",
                   help="leave learnact.regularization(model) (DiTAC's smoothness prior) out of "
                        "the training loss (default: in it)")
