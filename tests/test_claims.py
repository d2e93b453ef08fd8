"""No page claims more than its numbers (issue #38): every comparative statement in the result
pages and the experiments guide carries a machine-checked claim, evaluated here against the
tables it is about.

A claim is an HTML comment (invisible on the site) in the paragraph that makes the statement:

    <!-- claim: PAGE: A < B on every seed -->        the "per seed" column, seed by seed
    <!-- claim: PAGE: A > B on 1 of 2 seeds -->      exactly K seeds of N
    <!-- claim: PAGE: A < B by mean -->              the number after the activation's cell
    <!-- claim: PAGE: A vs B = better -->            the "vs `B`" column's verdict for row A

PAGE (a docs/ path) may be left out for the page itself; A and B are activation specs as the
tables print them (the first `code` span of a row's cell). A paragraph of those pages that
uses a comparative phrase ("on both seeds", "holds", "better than GELU", "beats it", ...)
without a claim fails the test, so new prose cannot slip past it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.glob("*-summary.md")) + [DOCS / "guides" / "experiments.md",
                                             DOCS / "guides" / "choosing.md"]
PHRASES = re.compile(r"on (both|every|all|one of the two) seeds?|\bholds\b|better than (GELU|"
                     r"ReLU|SiLU|it|the)|\bbeats? (it|the|GELU|ReLU)|ahead of|outperform", re.I)
FENCE = re.compile(r"```.*?```", re.S)  # code blocks (generated text samples) say nothing
CLAIM = re.compile(r"<!-- claim: (?:(?P<page>[\w/.-]+\.md): )?(?P<body>.*?) -->")
NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?")


def _tables(text: str) -> list[list[list[str]]]:
    """The markdown tables of ``text``, each a list of rows of cells (separator rows out)."""
    out, cur = [], []
    for line in text.splitlines() + [""]:
        if line.startswith("|"):
            if "---" not in line:
                cur.append([c.strip() for c in line.strip().strip("|").split("|")])
        elif cur:
            out.append(cur)
            cur = []
    return out


def _name(cell: str) -> str | None:
    m = re.match(r"`([^`]+)`", cell)
    return m.group(1) if m else None


def _per_seed(tables, act: str) -> list[float]:
    """The "per seed" cells of ``act``'s row, in the table whose header has that column."""
    for rows in tables:
        if rows and "per seed" in rows[0]:
            col = rows[0].index("per seed")
            for cells in rows[1:]:
                if act in (_name(c) for c in cells[:2]):
                    return [float(v) for v in NUMBER.findall(cells[col])]
    raise AssertionError(f"no per-seed row for {act!r}")


def _mean(tables, act: str) -> float:
    """The first number of the cell after ``act``'s (side-by-side tables included)."""
    for rows in tables:
        for cells in rows:
            for i, c in enumerate(cells[:-1]):
                if _name(c) == act and NUMBER.search(cells[i + 1]):
                    return float(NUMBER.search(cells[i + 1]).group())
    raise AssertionError(f"no row for {act!r}")


def _verdict(tables, act: str, other: str) -> str:
    col_name = f"vs `{other}`"
    for rows in tables:
        cols = [i for i, c in enumerate(rows[0]) if c.startswith(col_name)] if rows else []
        for cells in rows[1:] if cols else ():
            if act in (_name(c) for c in cells[:2]):
                return cells[cols[0]]
    raise AssertionError(f"no '{col_name}' verdict for {act!r}")


def check(text: str, body: str, at: int | None = None) -> None:
    """Raise AssertionError when the claim ``body`` does not hold in ``text``'s tables: the
    first table holding the activations; with ``at`` (a claim about its own page, at that
    offset) the tables above it first, nearest first, then those below."""
    tables = _tables(text)
    if at is not None:
        tables = _tables(text[:at])[::-1] + _tables(text[at:])
    m = re.fullmatch(r"`?(\S+?)`? (<|>) `?(\S+?)`? on (every seed|(\d+) of (\d+) seeds)", body)
    if m:
        a, op, b = m.group(1), m.group(2), m.group(3)
        va, vb = _per_seed(tables, a), _per_seed(tables, b)
        assert len(va) == len(vb), (a, b, va, vb)
        wins = sum((x < y) if op == "<" else (x > y) for x, y in zip(va, vb))
        if m.group(5) is None:  # "every seed"
            assert wins == len(va), f"{body}: {va} vs {vb}"
        else:
            assert (wins, len(va)) == (int(m.group(5)), int(m.group(6))), f"{body}: {va} vs {vb}"
        return
    m = re.fullmatch(r"`?(\S+?)`? (<|>) `?(\S+?)`? by mean", body)
    if m:
        a, op, b = m.groups()
        va, vb = _mean(tables, a), _mean(tables, b)
        assert (va < vb) if op == "<" else (va > vb), f"{body}: {va} vs {vb}"
        return
    m = re.fullmatch(r"`?(\S+?)`? vs `?(\S+?)`? = (better|worse|not distinguishable)", body)
    if m:
        a, b, want = m.groups()
        got = _verdict(tables, a, b)
        assert got.startswith(want), f"{body}: the table says {got!r}"
        return
    raise AssertionError(f"unreadable claim {body!r}")


def _claims() -> list[tuple[str, str, str, int]]:
    """(page, the page the claim is about, claim, where it sits in its page)."""
    out = []
    for page in PAGES:
        for m in CLAIM.finditer(page.read_text()):
            target = DOCS / m.group("page") if m.group("page") else page
            out.append((str(page.relative_to(ROOT)), str(target.relative_to(ROOT)),
                        m.group("body"), m.start()))
    return out


CLAIMS = _claims()


@pytest.mark.parametrize("page,target,body,at", CLAIMS,
                         ids=[f"{p}: {b}" for p, _, b, _ in CLAIMS])
def test_claim_holds(page: str, target: str, body: str, at: int) -> None:
    text = (ROOT / target).read_text()
    check(text, body, at if target == page else None)


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_comparative_prose_carries_claims(page: Path) -> None:
    for para in re.split(r"\n\s*\n", FENCE.sub("", page.read_text())):
        prose = CLAIM.sub("", para)
        if PHRASES.search(prose) and not CLAIM.search(para):
            raise AssertionError(f"{page.name}: a comparative statement without a checked "
                                 f"claim:\n{para[:600]}")


def test_the_checker_refuses_false_claims() -> None:
    table = ("| rank | activation | loss | per seed | vs `gelu` |\n|---|---|---|---|---|\n"
             "| 1 | `a` | 1.0 | 0.9, 1.1 | better (-0.1) |\n"
             "| 2 | `gelu` | 1.05 | 1.0, 1.1 | – |\n")
    check(table, "a < gelu by mean")
    check(table, "a < gelu on 1 of 2 seeds")
    check(table, "a vs gelu = better")
    for false in ("a < gelu on every seed", "a > gelu by mean", "a < gelu on 2 of 2 seeds",
                  "a vs gelu = worse"):
        with pytest.raises(AssertionError):
            check(table, false)
    with pytest.raises(AssertionError, match="unreadable"):
        check(table, "a is nicer than gelu")
