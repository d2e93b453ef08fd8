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

# two-sided 95% quantiles t_{0.975, df} of Student's t, df = 1..30
_T975 = (12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.3060, 2.2622, 2.2281,
         2.2010, 2.1788, 2.1604, 2.1448, 2.1314, 2.1199, 2.1098, 2.1009, 2.0930, 2.0860,
         2.0796, 2.0739, 2.0687, 2.0639, 2.0595, 2.0555, 2.0518, 2.0484, 2.0452, 2.0423)


def t_quantile(df: int) -> float:
    """t_{0.975, df} (df >= 1); the normal 1.96 beyond 30 is within 2% of the exact value."""
    if df < 1:
        raise ValueError(f"df must be >= 1, got {df}")
    return _T975[df - 1] if df <= len(_T975) else 1.959964


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
