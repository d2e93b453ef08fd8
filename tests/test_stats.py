"""experiments/stats.py: intervals and paired verdicts over seeds."""

from __future__ import annotations

import math

import numpy as np
import pytest

from learnact.experiments.stats import BETTER, UNCLEAR, WORSE, interval, paired, t_quantile


def test_t_quantiles_match_scipy():
    scipy_stats = pytest.importorskip("scipy.stats")
    for df in (1, 2, 3, 5, 10, 30):
        assert t_quantile(df) == pytest.approx(scipy_stats.t.ppf(0.975, df), abs=1e-4)
    assert t_quantile(200) == pytest.approx(scipy_stats.t.ppf(0.975, 200), rel=0.01)
    with pytest.raises(ValueError, match="df must be >= 1"):
        t_quantile(0)


def test_interval_values_and_coverage():
    m, lo, hi = interval([1.0, 2.0, 3.0])
    assert m == 2.0 and hi - m == pytest.approx(4.3027 * 1.0 / math.sqrt(3), rel=1e-6)
    assert math.isnan(interval([1.0])[1]) and math.isnan(interval([])[0])
    rng = np.random.default_rng(0)  # ~95% of 3-sample intervals cover the true mean
    cover = sum(lo <= 0.0 <= hi for lo, hi in
                (interval(list(rng.normal(size=3)))[1:] for _ in range(4000)))
    assert 0.93 <= cover / 4000 <= 0.97


def test_paired_verdicts():
    base = {0: 1.0, 1: 2.0, 2: 3.0}
    assert paired({0: 0.9, 1: 1.9, 2: 2.89}, base).verdict == BETTER  # consistent, small gain
    assert paired({0: 1.1, 1: 2.1, 2: 3.12}, base).verdict == WORSE
    assert paired({0: 0.5, 1: 2.6, 2: 3.0}, base).verdict == UNCLEAR
    one = paired({0: 0.1}, base)
    assert one.verdict == UNCLEAR and one.n == 1
    nan = paired({0: 0.9, 1: math.nan, 2: 2.9}, base)
    assert nan.n == 2  # non-finite seeds are left out
