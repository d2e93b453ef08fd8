"""The blog's claims get verdicts from the intervals, and every verdict is a checked claim."""

from __future__ import annotations

import re

import pytest

from learnact.experiments.blog_claims import blog_claim_lines
from learnact.experiments.report import summarise_runs
from tests.test_claims import CLAIM, check


def _rows(losses: dict[str, list[float]]) -> list[dict]:
    runs = [{"act": a, "seed": s, "diverged": False, "params": 1, "act_params": 0,
             "epochs": [{"test_loss": v, "seconds": 1.0}]}
            for a, vs in losses.items() for s, v in enumerate(vs)]
    return summarise_runs(runs)


def _verdicts(text: str) -> dict[str, str]:
    """claim section title -> its verdict word(s)."""
    out, title = {}, None
    for line in text.splitlines():
        if line.startswith("### "):
            title = line
        m = re.match(r"\*\*(Holds|Does not hold|Not distinguishable)\*\*", line)
        if m and title:
            out.setdefault(title, m.group(1))
    return out


def test_each_claim_gets_the_verdict_its_interval_gives() -> None:
    rows = _rows({
        "identity": [0.0200, 0.0210, 0.0205],
        "relu": [0.0190, 0.0195, 0.0200],        # best -LU
        "rrelu": [0.0300, 0.0310, 0.0305],       # poor: worse than relu on every seed
        "tanh": [0.0400, 0.0420, 0.0410],        # worse than linear
        "sigmoid": [0.0500, 0.0520, 0.0510],
        "perlin": [0.0501, 0.0519, 0.0512],      # close to sigmoid
        "perlin:resolution=32": [0.0900, 0.0950, 0.0930],  # far from it
    })
    text = "\n".join(blog_claim_lines(rows))
    v = _verdicts(text)
    assert list(v.values()) == ["Holds", "Holds", "Holds", "Holds"], v
    assert "**Does not hold** for `perlin:resolution=32`" in text
    assert "up to 4.5x (`perlin:resolution=32`)" in text
    # every verdict carries a claim that the page test re-checks against the table above it
    claims = list(CLAIM.finditer(text))
    assert len(claims) == 5
    for m in claims:
        check(text, m.group("body"), m.start())


def test_opposite_and_unclear_results_say_so() -> None:
    rows = _rows({
        "identity": [0.030, 0.031, 0.032],
        "relu": [0.030, 0.029, 0.031],          # as linear: nothing worse than it
        "rrelu": [0.010, 0.011, 0.012],         # better than relu: the claim does not hold
        "tanh": [0.005, 0.006, 0.0055],         # a non-LU beats every -LU
        "sigmoid": [0.020, 0.021, 0.022],
    })
    text = "\n".join(blog_claim_lines(rows))
    v = list(_verdicts(text).values())
    assert v == ["Not distinguishable", "Does not hold", "Does not hold"], v
    for m in CLAIM.finditer(text):
        check(text, m.group("body"), m.start())


def test_one_seed_or_missing_baselines_give_no_verdicts() -> None:
    assert blog_claim_lines(_rows({"identity": [0.02], "relu": [0.01]})) == []
    assert blog_claim_lines(_rows({"gelu": [0.02, 0.03], "silu": [0.01, 0.02]})) == []


@pytest.mark.parametrize("false", ["rrelu vs relu = better", "rrelu vs relu = not distinguishable"])
def test_a_false_verdict_would_fail_the_page_check(false: str) -> None:
    rows = _rows({"relu": [0.019, 0.0195, 0.020], "rrelu": [0.030, 0.031, 0.0305]})
    text = "\n".join(blog_claim_lines(rows))
    with pytest.raises(AssertionError):
        check(text, false, len(text))
