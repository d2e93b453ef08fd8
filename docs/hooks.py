"""MkDocs hooks (mkdocs.yml ``hooks:``): the API pages' docstrings are written for both
``help()`` and the site, so their few reStructuredText constructs are turned into HTML here,
and KaTeX (installed by ``make docs`` from npm into build/npm) is copied into the site.

- ``.. math::  TeX`` paragraphs become display math, ``:math:`TeX``` inline math (rendered by
  KaTeX's auto-render in the browser: docs/javascripts/katex-init.js);
- ``:class:`x```, ``:func:`x``` and the other Sphinx roles become plain code.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KATEX = ROOT / "build" / "npm" / "node_modules" / "katex" / "dist"
_ROLE = re.compile(r":(?:class|func|meth|mod|attr|data|obj|exc|py:\w+):(?=<code>)")
_DISPLAY = re.compile(r"<p>\.\. math::\s*(.*?)</p>", re.S)
_INLINE = re.compile(r":math:<code>(.*?)</code>", re.S)


def on_page_content(content: str, **_: object) -> str:
    content = _DISPLAY.sub(lambda m: f'<div class="math">\\[{m.group(1).strip()}\\]</div>',
                           content)
    content = _INLINE.sub(lambda m: f"\\({m.group(1)}\\)", content)
    return _ROLE.sub("", content)


def on_post_build(config: dict, **_: object) -> None:
    if not (KATEX / "katex.min.js").is_file():
        raise FileNotFoundError(f"KaTeX is not installed in {KATEX}: run `make docs` (it "
                                "installs katex from npm into build/npm)")
    out = Path(config["site_dir"]) / "katex"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    for name in ("katex.min.js", "katex.min.css"):
        shutil.copy2(KATEX / name, out / name)
    shutil.copy2(KATEX / "contrib" / "auto-render.min.js", out / "auto-render.min.js")
    shutil.copytree(KATEX / "fonts", out / "fonts")

