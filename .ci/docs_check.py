#!/usr/bin/env python3
"""The built documentation site as a reader sees it (run by `make docs` after mkdocs):

1. no raw reStructuredText in any page's text (``.. math::``, ``:class:`` and the other roles),
   no build-history wording (work sessions, "this turn"), no link or mention of files a pip
   user does not have (benchmarks/RESULTS.md: the tables are in the site's Benchmarks page);
2. the math renders: headless Chromium (Debian's, through selenium) opens the PyTorch API page
   and finds KaTeX's output and no KaTeX error (screenshots for the gallery:
   benchmarks/docs_shots.py).

    python .ci/docs_check.py build/site
"""

from __future__ import annotations

import html
import re
import sys
from pathlib import Path

RAW = re.compile(r"\.\. math::|:(?:class|func|meth|mod|attr|math|data|obj|exc):`|"
                 r":(?:class|func|meth|mod|attr|math):(?=\S)")
HISTORY = re.compile(r"\bsessions? \d+\b|\bthis turn\b|\bnew this session\b", re.I)
PRIVATE = re.compile(r"RESULTS\.md")


def page_text(path: Path) -> str:
    """The visible text of a built page (scripts, styles and the nav left out)."""
    s = path.read_text(encoding="utf-8")
    s = re.sub(r"<(script|style)\b.*?</\1>", " ", s, flags=re.S)
    main = re.search(r'<article\b.*?</article>', s, flags=re.S)
    s = main.group(0) if main else s
    return html.unescape(re.sub(r"<[^>]+>", " ", s))


def text_problems(site: Path) -> list[str]:
    out = []
    for page in sorted(site.rglob("*.html")):
        rel = page.relative_to(site)
        if rel.parts[0] in ("katex", "search", "assets") or rel.name == "404.html":
            continue
        text = page_text(page)
        checks = [(RAW, "raw reST"), (HISTORY, "build-history wording")]
        if rel.parts[0] != "design":  # the contributors' page describes the repository
            checks.append((PRIVATE, "a file pip users do not have"))
        for pattern, what in checks:
            for m in pattern.finditer(text):
                ctx = " ".join(text[max(0, m.start() - 50):m.end() + 30].split())
                out.append(f"{rel}: {what}: ...{ctx}...")
        raw_html = page.read_text(encoding="utf-8")
        # the site's own Benchmarks page is benchmarks/; a file under the repository's
        # benchmarks/ (a .md/.py/.csv/.json) is not in the site or the wheel
        for href in re.findall(r'href="([^"#]*benchmarks/[^"#]*\.(?:md|py|csv|json))"',
                               raw_html):
            if not href.startswith(("http://", "https://")):
                out.append(f"{rel}: a link into the repository's benchmarks/: {href}")
    return out


def math_renders(site: Path) -> list[str]:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from learnact.viz.atlas_server import headless_chromium

    api = (site / "api" / "torch" / "index.html").resolve()
    with headless_chromium(1200, 1400) as drv:
        drv.get(api.as_uri())
        try:
            WebDriverWait(drv, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR,
                                                                   ".math .katex-display"))
        except Exception:  # selenium's TimeoutException
            return [f"{api}: no math rendered by KaTeX within 60 s"]
        shown = len(drv.find_elements(By.CSS_SELECTOR, ".math .katex-display"))
        written = len(drv.find_elements(By.CSS_SELECTOR, "div.math"))
        errors = drv.find_elements(By.CSS_SELECTOR, ".katex-error")
    if errors or shown != written:
        return [f"{api}: KaTeX rendered {shown} of {written} formulas"]
    print(f"docs check: {shown} formulas rendered on the PyTorch API page; no raw reST, "
          "history wording or repository-only files in the text")
    return []


def main(argv: list[str]) -> int:
    site = Path(argv[0])
    bad = text_problems(site) or math_renders(site)
    for b in bad:
        print("docs check:", b, file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
