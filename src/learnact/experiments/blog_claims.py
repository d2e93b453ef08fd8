"""The blog's autoencoder claims, each given a verdict from a finished comparison's table.

The reference blog post trained its convolutional autoencoder (the one of
:mod:`learnact.experiments.autoencoder`) for 200 epochs and wrote four comparative sentences.
:func:`blog_claim_lines` states each beside the paired 95% intervals of the runs at hand and
gives it a verdict that the numbers decide, never the prose:

* **holds**: the interval of the difference the claim needs excludes 0 in its direction;
* **does not hold**: the interval excludes 0 in the other direction (or, for "close", at all);
* **not distinguishable**: the interval holds 0, so this scale cannot tell.

Each verdict sits in a paragraph with a ``<!-- claim: ... -->`` comment, so the page's
consistency test (tests/test_claims.py) re-checks it against the table printed above it.
"""

from __future__ import annotations

import math
from typing import Any

from .stats import BETTER, UNCLEAR, WORSE, paired

__all__ = ["blog_claim_lines", "LU_TYPE", "BLOG_CLAIMS"]

#: the blog's "**-LU type": the ReLU family by forward (noisy and left_right are ReLU forwards
#: with another derivative, so they count)
LU_TYPE = frozenset({"relu", "gelu", "silu", "elu", "selu", "prelu", "rrelu", "leaky_relu",
                     "celu", "mish", "noisy", "left_right"})

#: the fixed (not learnable) activations the blog compared that are not -LU type
OTHER_FIXED = frozenset({"tanh", "sigmoid", "perlin", "cantor", "cantor2", "staircase",
                         "hardtanh", "softsign"})

BLOG_CLAIMS = {
    "linear": "some non-linearities score much worse compared to a simply linear model",
    "rrelu": "RReLU ... also produces poor scores",
    "perlin": "Perlin noise activations after 200 epochs get close to the score of sigmoid",
    "lu": "the best performing activations are the **-LU type",
}


def _name(spec: str) -> str:
    return spec.split(":", 1)[0]


def _cell(p: Any) -> str:
    if not math.isfinite(p.low):
        return f"{p.verdict} (n={p.n})"
    return f"{p.verdict} ({p.mean:+.4f} [{p.low:+.4f}, {p.high:+.4f}])"


def _table(rows: list[dict[str, Any]], acts: list[str], ref: str) -> list[str]:
    by = {r["act"]: r for r in rows}
    out = [f"| activation | final test loss (mean) | × `{ref}` | vs `{ref}` |",
           "|---|---:|---:|---|"]
    for a in acts:
        p = paired(by[a]["by_seed"], by[ref]["by_seed"])
        out.append(f"| `{a}` | {by[a]['mean']:.5f} | {by[a]['mean'] / by[ref]['mean']:.2f} | "
                   f"{_cell(p)} |")
    out.append(f"| `{ref}` | {by[ref]['mean']:.5f} | 1.00 | – |")
    return out + [""]


def blog_claim_lines(rows: list[dict[str, Any]]) -> list[str]:
    """Markdown: one section per blog claim whose activations are in ``rows`` (the output of
    :func:`learnact.experiments.report.summarise_runs`, >= 2 seeds), with its table, verdict
    and checked claim comment. Empty when none of the claims can be judged."""
    by = {r["act"]: r for r in rows if math.isfinite(r["mean"])}
    if not by or min(len(r["by_seed"]) for r in by.values()) < 2:
        return []
    head = ["## The blog's claims at this scale", "",
            "Each claim in the blog's words, the paired differences it rests on (this run's "
            "seeds, 95% interval) and the verdict they give at this scale: the claim does or "
            "does not hold, or the intervals cannot tell (not distinguishable).", ""]
    out: list[str] = []

    if "identity" in by:  # 1. worse than linear
        fixed = [a for a in by if a != "identity" and _name(a) in LU_TYPE | OTHER_FIXED]
        worse = [a for a in fixed if paired(by[a]["by_seed"], by["identity"]["by_seed"]).verdict
                 == WORSE]
        worse.sort(key=lambda a: -by[a]["mean"])
        out += [f"### \"{BLOG_CLAIMS['linear']}\"", ""]
        out += _table(rows, worse or fixed, "identity")
        if worse:
            out += [f"**Holds**: {len(worse)} of {len(fixed)} classical and blog nonlinearities have a higher "
                    f"test loss than the linear network, up to "
                    f"{by[worse[0]]['mean'] / by['identity']['mean']:.1f}x (`{worse[0]}`). "
                    f"<!-- claim: {worse[0]} vs identity = worse -->", ""]
        else:
            out += [f"**Not distinguishable**: none of the {len(fixed)} classical and blog nonlinearities "
                    f"has a higher test loss than the linear network by the paired interval.",
                    ""]

    rrelu_refs = [b for b in ("relu", "identity") if b in by]
    if "rrelu" in by and rrelu_refs:  # 2. RReLU poor
        ref = rrelu_refs[0]
        p = paired(by["rrelu"]["by_seed"], by[ref]["by_seed"])
        rank = sorted(by, key=lambda a: by[a]["mean"]).index("rrelu") + 1
        out += [f"### \"{BLOG_CLAIMS['rrelu']}\"", ""]
        out += _table(rows, ["rrelu"], ref)
        word = {WORSE: "Holds", BETTER: "Does not hold", UNCLEAR: "Not distinguishable"}[p.verdict]
        out += [f"**{word}**: `rrelu` against `{ref}` is {p.verdict} "
                f"({p.mean:+.4f} [{p.low:+.4f}, {p.high:+.4f}]); it ranks {rank} of {len(by)}. "
                f"<!-- claim: rrelu vs {ref} = {p.verdict} -->", ""]

    perlins = [a for a in by if _name(a) == "perlin"]
    if perlins and "sigmoid" in by:  # 3. Perlin close to sigmoid
        out += [f"### \"{BLOG_CLAIMS['perlin']}\"", ""]
        out += _table(rows, perlins, "sigmoid")
        for a in perlins:
            p = paired(by[a]["by_seed"], by["sigmoid"]["by_seed"])
            tol = 0.1 * by["sigmoid"]["mean"]
            if p.verdict == UNCLEAR and -tol <= p.low and p.high <= tol:
                word = "Holds"
                why = "not distinguishable, and the whole interval within 10% of sigmoid's loss"
            elif p.verdict == UNCLEAR:
                word = "Not distinguishable"
                why = "the interval holds 0 but reaches beyond 10% of sigmoid's loss"
            else:
                word = "Does not hold"
                why = f"{p.verdict} than sigmoid by the paired interval"
            out += [f"**{word}** for `{a}`: {why} ({p.mean:+.4f} [{p.low:+.4f}, "
                    f"{p.high:+.4f}]). <!-- claim: {a} vs sigmoid = {p.verdict} -->", ""]

    lus = [a for a in by if _name(a) in LU_TYPE]
    others = [a for a in by if _name(a) in OTHER_FIXED]
    if lus and others:  # 4. -LU best
        best_lu = min(lus, key=lambda a: by[a]["mean"])
        best_other = min(others, key=lambda a: by[a]["mean"])
        p = paired(by[best_lu]["by_seed"], by[best_other]["by_seed"])
        word = {BETTER: "Holds", WORSE: "Does not hold", UNCLEAR: "Not distinguishable"}[p.verdict]
        out += [f"### \"{BLOG_CLAIMS['lu']}\"", "",
                f"-LU type here: {', '.join(f'`{a}`' for a in lus)}; the other fixed ones: "
                f"{', '.join(f'`{a}`' for a in others)} (the learnable families are not in the "
                f"blog's comparison).", ""]
        out += _table(rows, [best_lu], best_other)
        out += [f"**{word}**: the best -LU activation, `{best_lu}`, against the best other fixed "
                f"one, `{best_other}`: {p.verdict} ({p.mean:+.4f} [{p.low:+.4f}, "
                f"{p.high:+.4f}]). <!-- claim: {best_lu} vs {best_other} = {p.verdict} -->", ""]
    return head + out if out else []
