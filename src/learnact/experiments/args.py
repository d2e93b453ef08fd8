"""Argument helpers shared by every experiment's command line (imports nothing back from the
experiments, so any of them can use it)."""

from __future__ import annotations

import argparse

__all__ = ["ints", "floats", "limit", "split_specs", "add_prior_flag"]


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
    """A data-set size: an integer, or none/all/0 for everything."""
    return None if text.lower() in ("none", "all", "0") else int(text)


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
