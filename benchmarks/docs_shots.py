#!/usr/bin/env python3
"""Screenshots of the built documentation site for docs/gallery.md (group ``docs-site`` of
benchmarks/gallery.py, after ``make docs``):

    python benchmarks/docs_shots.py [--site build/site] [--out docs]

Serves the built site on a free local port and saves, with headless Chromium (Debian's
chromium + chromium-driver, ``make browser``; the atlas page's driver), the front page as
docs-site.png, the family-choice guide's table as docs-choosing.png, the PyTorch API page at
Hermite (its formula rendered by KaTeX) as docs-api-hermite.png and the "Save and load" guide
as docs-save-load.png.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# (address under the site, file name, window size, element id to cut out or None)
SHOTS = [("index.html", "docs-site.png", (1280, 900), None),
         ("guides/choosing/index.html", "docs-choosing.png", (1280, 1300), None),
         ("api/torch/index.html#learnact.modules.Hermite", "docs-api-hermite.png", (1280, 1000), None),
         ("guides/save-load/index.html", "docs-save-load.png", (1280, 1100), None)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--site", default=str(ROOT / "build" / "site"),
                    help="the built site (make docs writes build/site)")
    ap.add_argument("--out", default=str(ROOT / "docs"), help="folder for the PNGs")
    args = ap.parse_args(argv)
    site, out = Path(args.site), Path(args.out)
    missing = [page for page, *_ in SHOTS if not (site / page.split("#")[0]).is_file()]
    if missing:
        ap.error(f"--site {site}: no {', '.join(missing)}; build the site first (make docs)")
    from selenium.webdriver.support.ui import WebDriverWait

    from learnact.viz.atlas_server import headless_chromium

    handler = functools.partial(_Quiet, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        for page, name, size, _ in SHOTS:
            with headless_chromium(*size) as drv:
                drv.get(f"http://127.0.0.1:{server.server_address[1]}/{page}")
                WebDriverWait(drv, 60).until(lambda d: d.execute_script(  # KaTeX done
                    "return document.querySelectorAll('div.math').length === "
                    "document.querySelectorAll('div.math .katex-display').length;"))
                drv.execute_script("return document.fonts ? document.fonts.ready : null;")
                drv.save_screenshot(str(out / name))
            print(f"-> {out / name}")
    finally:
        server.shutdown()
        server.server_close()
    return 0


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # noqa: D401 - no request log on the console
        pass


if __name__ == "__main__":
    raise SystemExit(main())
