"""Independent float64 references (plain numpy, written from the formulas, not from learnact's
code) for the frontends' tests."""

from __future__ import annotations

import math

import numpy as np


def _bc(p, ch, x):
    """Parameter row for the per-channel axis (-1) or the shared value."""
    p = np.asarray(p, dtype=np.float64)
    return p if ch is None else p[ch]


def evaluate(family: str, x: np.ndarray, p: dict[str, np.ndarray], per_channel: bool,
             config: dict | None = None) -> np.ndarray:
    """f(x) with channels on the last axis of x when per_channel; ``config``: the module's
    constructor arguments (DiTAC's interval, gate and warp, PWLU's interval)."""
    x = np.asarray(x, dtype=np.float64)
    cfg = dict(config or {})
    if per_channel:
        return np.stack([_one(family, x[..., c], p, c, cfg) for c in range(x.shape[-1])], -1)
    return _one(family, x, p, None, cfg)


def _ditac_flow(u: float, a: np.ndarray, b: np.ndarray) -> float:
    """T(u): the time-1 flow of v = a_c u + b_c, cell by cell, scalar: in a cell the ODE is
    linear, u(t) = (u0 + b/a) e^{a t} - b/a, and the edge e is reached at
    t = log(v(e)/v(u0))/a (or (e - u0)/v for a = 0) when v(e) has v(u0)'s sign."""
    n = len(a)
    c = min(max(int(math.floor(u * n)), 0), n - 1)
    t = 1.0
    while True:
        v = a[c] * u + b[c]
        if v == 0.0:
            return u
        e = (c + 1) / n if v > 0 else c / n
        nxt = c + 1 if v > 0 else c - 1
        ve = a[c] * e + b[c]
        if 0 <= nxt < n and ve * v > 0:
            hit = (e - u) / v if a[c] == 0 else math.log(ve / v) / a[c]
            if hit < t:
                t, u, c = t - hit, e, nxt
                continue
        if a[c] == 0:
            return u + b[c] * t
        return (u + b[c] / a[c]) * math.exp(a[c] * t) - b[c] / a[c]


def _gate(x: float, name: str, alpha: float) -> float:
    if name == "gelu":
        return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))
    if name == "silu":
        # the logistic function, written so that exp never overflows (|x| up to 3e38)
        return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))
    if name == "leaky_relu":
        return 1.0 if x > 0 else alpha
    return 1.0


def _ditac(x: np.ndarray, theta: np.ndarray, basis: np.ndarray, lo: float = -0.5,
           hi: float = 2.0, gate: str = "gelu", alpha: float = 0.01, warp: str = "input"
           ) -> np.ndarray:
    """DiTAC: x~ s(x) with x~ = lo + (hi - lo) T((x - lo)/(hi - lo)) on [lo, hi] (warp
    "input"), or the same warp applied to x s(x) (warp "output"); s the gate."""
    A = basis @ theta
    a, b = A[0::2], A[1::2]
    out = np.empty_like(x)
    for i, xi in np.ndenumerate(x):
        s = _gate(float(xi), gate, alpha)
        src = xi if warp == "input" else xi * s
        xt = src
        if lo <= src <= hi:
            xt = lo + (hi - lo) * _ditac_flow((src - lo) / (hi - lo), a, b)
        out[i] = xt * s if warp == "input" else xt
    return out


def _one(family, x, p, ch, cfg):
    if family.endswith("ditac"):
        theta = np.asarray(p["theta"], dtype=np.float64)
        defaults = {"ditac": (-0.5, "gelu"), "leaky_ditac": (-0.5, "leaky_relu"),
                    "ge_ditac": (0.0, "gelu")}[family]
        return _ditac(x, theta if ch is None else theta[ch], np.asarray(p["basis"]),
                      cfg.get("a", defaults[0]), cfg.get("b", 2.0),
                      cfg.get("gate", defaults[1]), cfg.get("alpha", 0.01),
                      cfg.get("warp", "input"))
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
    if family == "pwlu":  # linear interpolation of the knots, linear tails
        lo, hi = cfg.get("a", -3.0), cfg.get("b", 3.0)
        knots = np.asarray(p["knots"], dtype=np.float64)
        knots = knots if ch is None else knots[ch]
        pos = np.linspace(lo, hi, knots.shape[-1])
        return (np.interp(x, pos, knots) + np.where(x < lo, g["left_slope"] * (x - lo), 0.0)
                + np.where(x > hi, g["right_slope"] * (x - hi), 0.0))
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
