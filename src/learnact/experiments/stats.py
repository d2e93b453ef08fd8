"""Intervals and paired comparisons over seeds (standard library only).

With a handful of seeds a ranking by the mean is mostly noise; what a table may claim is what
these intervals support:

* ``interval(values)``: mean and the 95% Student-t interval of the mean;
* ``paired(a, b)``: the seed-by-seed difference a - b (same seed: same data order, same
  initial weights outside the activation), its mean and 95% t interval, and a verdict:
  "better" (the interval lies below 0: a has the lower loss), "worse" (above 0) or
  "not distinguishable" (it contains 0; also with fewer than 2 common seeds).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

__all__ = ["t_quantile", "interval", "paired", "Paired", "BETTER", "WORSE", "UNCLEAR"]

BETTER, WORSE, UNCLEAR = "better", "worse", "not distinguishable"

def t_quantile(df: int) -> float:
    """t_{0.975, df}, the two-sided 95% quantile of Student's t with ``df >= 1`` degrees of
    freedom (``scipy.stats.t.ppf``)."""
    if not isinstance(df, int) or df < 1:
        raise ValueError(f"df must be an integer >= 1, got {df!r}")
    try:
        from scipy.stats import t
    except ImportError:
        raise ImportError("learnact's experiment statistics need scipy: "
                          "pip install 'learnact[exp]'") from None
    return float(t.ppf(0.975, df))


def interval(values: list[float]) -> tuple[float, float, float]:
    """(mean, low, high) of the 95% t interval of the mean; (mean, nan, nan) for one value."""
    vals = [float(v) for v in values if math.isfinite(v)]
    if not vals:
        return math.nan, math.nan, math.nan
    m = statistics.fmean(vals)
    if len(vals) < 2:
        return m, math.nan, math.nan
    h = t_quantile(len(vals) - 1) * statistics.stdev(vals) / math.sqrt(len(vals))
    return m, m - h, m + h


@dataclass(frozen=True)
class Paired:
    """The paired difference a - b over common seeds and its verdict (lower is better)."""

    n: int
    mean: float
    low: float
    high: float
    verdict: str


def paired(a: dict[int, float], b: dict[int, float]) -> Paired:
    """Compare a with b (seed -> final loss) on their common seeds with finite values."""
    seeds = sorted(s for s in set(a) & set(b) if math.isfinite(a[s]) and math.isfinite(b[s]))
    diffs = [a[s] - b[s] for s in seeds]
    m, lo, hi = interval(diffs)
    if len(diffs) < 2 or not math.isfinite(lo):
        return Paired(len(diffs), m, lo, hi, UNCLEAR)
    verdict = BETTER if hi < 0 else WORSE if lo > 0 else UNCLEAR
    return Paired(len(diffs), m, lo, hi, verdict)
