"""experiments/stats.py: intervals and paired verdicts over seeds."""

from __future__ import annotations

import math

import numpy as np
import pytest

from learnact.experiments.stats import BETTER, UNCLEAR, WORSE, interval, paired, t_quantile


def test_t_quantiles_match_the_printed_table():
    """Against a printed table of t_{0.975, df} (4 decimals), not the code's own source."""
    table = {1: 12.7062, 2: 4.3027, 3: 3.1824, 5: 2.5706, 10: 2.2281, 30: 2.0423, 60: 2.0003,
             120: 1.9799}
    for df, want in table.items():
        assert t_quantile(df) == pytest.approx(want, abs=6e-5)
    assert t_quantile(10**7) == pytest.approx(1.959964, abs=1e-6)  # the normal's
    for bad in (0, -3, 2.5):
        with pytest.raises(ValueError, match="df must be an integer >= 1"):
            t_quantile(bad)


def test_interval_values_and_coverage():
    m, lo, hi = interval([1.0, 2.0, 3.0])
    assert m == 2.0 and hi - m == pytest.approx(4.302653 * 1.0 / math.sqrt(3), rel=1e-6)
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
