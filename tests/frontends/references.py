"""Independent float64 references (plain numpy, written from the formulas, not from learnact's
code) for the frontends' tests."""

from __future__ import annotations

import math

import numpy as np


def _bc(p, ch, x):
    """Parameter row for the per-channel axis (-1) or the shared value."""
    p = np.asarray(p, dtype=np.float64)
    return p if ch is None else p[ch]


def evaluate(family: str, x: np.ndarray, p: dict[str, np.ndarray], per_channel: bool) -> np.ndarray:
    """f(x) with channels on the last axis of x when per_channel."""
    x = np.asarray(x, dtype=np.float64)
    if per_channel:
        return np.stack([_one(family, x[..., c], p, c) for c in range(x.shape[-1])], -1)
    return _one(family, x, p, None)


def _one(family, x, p, ch):
    g = {k: _bc(v, ch, x) for k, v in p.items()}
    if family == "hermite":
        c = g["coeffs"]
        fact = np.array([math.factorial(k) for k in range(len(c))], dtype=np.float64)
        he = np.polynomial.hermite_e
        if "lo" in g:
            xb = np.clip(x, g["lo"], g["hi"])
            dc = he.hermeder(c / fact)
            return he.hermeval(xb, c / fact) + he.hermeval(xb, dc) * (x - xb)
        return he.hermeval(x, c / fact)
    if family == "fourier":
        return g["bias"] + sum(a * np.cos(w * x - ph) for a, w, ph in
                               zip(g["amplitude"], g["frequency"], g["phase"]))
    if family == "tropical":
        s = np.asarray(p["slopes"], dtype=np.float64)  # shared
        return g["scale"] * np.max(x[..., None] * s + g["coeffs"], -1) + g["offset"]
    if family == "tropical_rational":
        num = np.max(x[..., None] * g["num_slopes"] + g["num_coeffs"], -1)
        den = np.max(x[..., None] * g["den_slopes"] + g["den_coeffs"], -1)
        return g["scale"] * (num - den) + g["offset"]
    if family == "rational":
        pv = np.polynomial.polynomial.polyval(x, g["num"])
        av = np.polynomial.polynomial.polyval(x, np.concatenate([[0.0], g["den"]]))
        return g["scale"] * pv / (1 + np.abs(av)) + g["offset"]
    if family == "selu_variation":
        xn = np.minimum(x, 0)
        neg = g["alpha"] * np.expm1(g["beta"] * xn) + g["gamma"] * np.sin(g["omega"] * xn)
        return g["scale"] * g["lam"] * np.where(x > 0, x, neg) + g["offset"]
    raise KeyError(family)
