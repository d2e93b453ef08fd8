"""Interactive atlas: ``learnact atlas serve`` (standard-library HTTP server, no framework).

The page shows the atlas of a 2-2-2 network x -> sigma0(A0 x + b0) -> sigma1(A1 h + b1) with
sliders for every entry of A0, b0, A1, b1, the choice of sigma0/sigma1 from learnact's
registry, and zoom. Every image is rendered by learnact's own activation modules
(:func:`learnact.viz.atlas.atlas`), rows pre0, post0, pre1, post1, one column per unit.

Security: the server binds 127.0.0.1 and answers only loopback clients whose Host header names
the loopback server (localhost, 127.0.0.1, [::1]: a DNS-rebinding page is refused) unless a host
is given explicitly (``--host 0.0.0.0``); it serves two routes and never touches the file system.
Bad parameters get a 400 with the reason, never a crash.
"""

from __future__ import annotations

import html
import io
import ipaddress
import json
import logging
import math
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import numpy as np
import torch
from torch import nn

log = logging.getLogger(__name__)

__all__ = ["NETWORK_PARAMS", "DEFAULTS", "parse_params", "render_png", "make_server",
           "client_allowed", "serve", "screenshot"]

NETWORK_PARAMS = ("A0_00", "A0_01", "A0_10", "A0_11", "b0_0", "b0_1",
                  "A1_00", "A1_01", "A1_10", "A1_11", "b1_0", "b1_1")
DEFAULTS: dict[str, Any] = {"A0_00": 1.0, "A0_01": -0.5, "A0_10": 0.7, "A0_11": 1.2,
                            "b0_0": 0.0, "b0_1": 0.3, "A1_00": 1.0, "A1_01": -1.0,
                            "A1_10": 0.5, "A1_11": 0.8, "b1_0": 0.0, "b1_1": -0.2,
                            "sigma0": "relu", "sigma1": "gelu", "zoom": 1.0, "res": 80}
LIMIT = 10.0  # slider range for weights and biases
TILE = 160  # pixels per unit image


class BadRequest(ValueError):
    """A parameter the page may not send; becomes a 400."""


def parse_params(query: dict[str, list[str]]) -> dict[str, Any]:
    """Validated parameters (defaults for the missing ones); raises BadRequest."""
    from ..registry import available

    out = dict(DEFAULTS)
    unknown = set(query) - set(DEFAULTS)
    if unknown:
        raise BadRequest(f"unknown parameter(s) {sorted(unknown)}; allowed: {sorted(DEFAULTS)}")
    names = set(available())
    for key, values in query.items():
        raw = values[-1]
        if key in ("sigma0", "sigma1"):
            if raw not in names:
                raise BadRequest(f"{key} must be a registered activation name, got {raw!r}")
            out[key] = raw
            continue
        try:
            v = float(raw)
        except ValueError:
            raise BadRequest(f"{key} must be a number, got {raw!r}") from None
        if not math.isfinite(v):
            raise BadRequest(f"{key} must be finite, got {raw!r}")
        if key == "zoom":
            if not 0.05 <= v <= 20:
                raise BadRequest(f"zoom must be in [0.05, 20], got {v}")
        elif key == "res":
            if not (v == int(v) and 8 <= v <= 256):
                raise BadRequest(f"res must be an integer in [8, 256], got {raw!r}")
            v = int(v)
        elif abs(v) > LIMIT:
            raise BadRequest(f"{key} must be in [-{LIMIT:g}, {LIMIT:g}], got {v}")
        out[key] = v
    return out


def build_network(p: dict[str, Any]) -> nn.Sequential:
    from ..registry import create

    net = nn.Sequential(nn.Linear(2, 2), create(p["sigma0"]), nn.Linear(2, 2), create(p["sigma1"]))
    with torch.no_grad():
        for k, lin in ((0, net[0]), (1, net[2])):
            lin.weight.copy_(torch.tensor([[p[f"A{k}_00"], p[f"A{k}_01"]],
                                           [p[f"A{k}_10"], p[f"A{k}_11"]]]))
            lin.bias.copy_(torch.tensor([p[f"b{k}_0"], p[f"b{k}_1"]]))
    return net.eval()


def render_png(p: dict[str, Any]) -> bytes:
    """The atlas mosaic (rows pre0, post0, pre1, post1; columns = units) as PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import colormaps
    from matplotlib.image import imsave

    from .atlas import atlas

    half = 2.0 / p["zoom"]
    layers = atlas(build_network(p), -half, half, p["res"])
    cmap = colormaps["RdBu_r"]
    gap = 4
    rows = []
    for layer in layers:
        v = layer.values
        vmax = float(np.nanmax(np.abs(v))) or 1.0
        tiles = []
        for u in range(v.shape[0]):
            img = np.kron(v[u], np.ones((max(1, TILE // p["res"]),) * 2))
            rgba = cmap(0.5 + 0.5 * np.clip(img / vmax, -1, 1))
            tiles.append(rgba)
            tiles.append(np.ones((rgba.shape[0], gap, 4)))
        rows.append(np.concatenate(tiles[:-1], 1))
        rows.append(np.ones((gap, rows[-1].shape[1], 4)))
    mosaic = np.concatenate(rows[:-1], 0)
    buf = io.BytesIO()
    imsave(buf, mosaic, format="png")
    return buf.getvalue()


def client_allowed(address: str, allow_remote: bool) -> bool:
    """Loopback clients always; others only when the server was started with an explicit host."""
    if allow_remote:
        return True
    try:
        return ipaddress.ip_address(address.split("%")[0]).is_loopback
    except ValueError:
        return False


_LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]", "::1")


def host_allowed(host_header: str | None, allow_remote: bool) -> bool:
    """The Host header must name the loopback server (localhost, 127.0.0.1 or [::1], any
    port) unless the server was started with an explicit host: a page on another site that
    rebinds its DNS name to 127.0.0.1 sends its own name and is refused."""
    if allow_remote:
        return True
    if not host_header:
        return False
    h = host_header.strip().lower()
    if h.startswith("["):  # [::1]:port
        name = h[: h.find("]") + 1] if "]" in h else h
    else:
        name = h.rsplit(":", 1)[0] if h.count(":") == 1 else h
    return name in _LOOPBACK_NAMES


def _page() -> str:
    from ..registry import available

    opts = "".join(f"<option>{html.escape(n)}</option>" for n in available())
    sliders = "".join(
        f'<label>{k} <input type="range" id="{k}" min="-{LIMIT:g}" max="{LIMIT:g}" '
        f'step="0.05" value="{DEFAULTS[k]}"><span id="{k}_v">{DEFAULTS[k]}</span></label>'
        for k in NETWORK_PARAMS)
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>learnact atlas</title>
<style>body{{font-family:sans-serif;margin:12px}} label{{display:inline-block;width:300px}}
input[type=range]{{width:160px;vertical-align:middle}} #img{{border:1px solid #ccc;margin-top:8px}}
.rows{{font-size:12px;color:#555}}</style></head><body>
<h3>learnact atlas: x &rarr; &sigma;1(A1 &sigma;0(A0 x + b0) + b1) over the input plane</h3>
<div>{sliders}</div>
<div><label>sigma0 <select id="sigma0">{opts}</select></label>
<label>sigma1 <select id="sigma1">{opts}</select></label>
<label>zoom <input type="range" id="zoom" min="0.25" max="4" step="0.05" value="1">
<span id="zoom_v">1</span></label></div>
<div class="rows">rows: pre0, post0, pre1, post1 &middot; columns: units &middot;
RdBu_r, symmetric scale per row</div>
<img id="img" alt="atlas"><div id="err" style="color:#b00"></div>
<script>
const keys = {json.dumps(list(NETWORK_PARAMS) + ["zoom"])};
document.getElementById("sigma0").value = {json.dumps(DEFAULTS["sigma0"])};
document.getElementById("sigma1").value = {json.dumps(DEFAULTS["sigma1"])};
function update() {{
  const q = new URLSearchParams();
  for (const k of keys) {{ const v = document.getElementById(k).value; q.set(k, v);
    document.getElementById(k + "_v").textContent = v; }}
  q.set("sigma0", document.getElementById("sigma0").value);
  q.set("sigma1", document.getElementById("sigma1").value);
  document.getElementById("img").src = "/render?" + q.toString();
}}
for (const el of document.querySelectorAll("input,select")) el.addEventListener("input", update);
document.getElementById("img").onerror = () => {{ document.getElementById("err").textContent =
  "render failed"; }};
update();
</script></body></html>"""


class _Handler(BaseHTTPRequestHandler):
    server_version = "learnact-atlas"
    allow_remote = False

    def log_message(self, fmt: str, *args: Any) -> None:  # route through logging
        log.debug("%s %s", self.address_string(), fmt % args)

    def _send(self, code: int, body: bytes, ctype: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 (http.server API)
        if not client_allowed(self.client_address[0], self.allow_remote):
            self._send(HTTPStatus.FORBIDDEN, b"atlas server: localhost only (start with --host "
                       b"to serve other machines)\n", "text/plain")
            return
        if not host_allowed(self.headers.get("Host"), self.allow_remote):
            self._send(HTTPStatus.FORBIDDEN, b"atlas server: the Host header must be localhost, "
                       b"127.0.0.1 or [::1] (start with --host to serve other names)\n",
                       "text/plain")
            return
        url = urlparse(self.path)
        if url.path == "/":
            self._send(HTTPStatus.OK, _page().encode(), "text/html; charset=utf-8")
        elif url.path == "/render":
            try:
                params = parse_params(parse_qs(url.query, keep_blank_values=True))
            except BadRequest as e:
                self._send(HTTPStatus.BAD_REQUEST, f"bad request: {e}\n".encode(), "text/plain")
                return
            try:
                png = render_png(params)
            except Exception as e:  # a model error must not kill the server
                log.exception("render failed")
                self._send(HTTPStatus.INTERNAL_SERVER_ERROR, f"render failed: {e}\n".encode(),
                           "text/plain")
                return
            self._send(HTTPStatus.OK, png, "image/png")
        else:
            self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain")


def make_server(host: str | None = None, port: int = 8765) -> ThreadingHTTPServer:
    """A server on ``host`` (default 127.0.0.1, loopback clients only) and ``port`` (0: any)."""
    handler = type("AtlasHandler", (_Handler,), {"allow_remote": host is not None})
    try:
        return ThreadingHTTPServer((host or "127.0.0.1", port), handler)
    except OSError as exc:  # busy port, unknown host name, address not on this machine
        what = f"--port {port}" if exc.errno in (98, 48, 13, 10048) else f"--host {host}"
        raise OSError(f"{what}: cannot serve on {host or '127.0.0.1'}:{port} "
                      f"({exc.strerror or exc})") from None


def serve(host: str | None = None, port: int = 8765) -> None:
    server = make_server(host, port)
    addr, prt = server.server_address[:2]
    print(f"learnact atlas: http://{addr}:{prt}/  (Ctrl-C to stop)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def screenshot(path: str, width: int = 900, height: int = 1080, timeout: float = 60.0) -> str:
    """Start a server on a free port, open the page in headless Chromium (Debian ``chromium``
    and ``chromium-driver``, driven by selenium), wait for the image, save a screenshot."""
    server = make_server(None, 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with headless_chromium(width, height) as drv:
            drv.get(f"http://127.0.0.1:{server.server_address[1]}/")
            wait_image(drv, timeout)
            drv.save_screenshot(str(path))
    finally:
        server.shutdown()
        server.server_close()
    return str(path)


class headless_chromium:
    """Context manager: a selenium Chrome driver on the system chromium (no downloads)."""

    def __init__(self, width: int = 1100, height: int = 1000) -> None:
        self.size = (width, height)

    def __enter__(self):
        import shutil

        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        driver = shutil.which("chromedriver") or "/usr/bin/chromedriver"
        browser = shutil.which("chromium") or "/usr/bin/chromium"
        opts = webdriver.ChromeOptions()
        opts.binary_location = browser
        for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    f"--window-size={self.size[0]},{self.size[1]}"):
            opts.add_argument(arg)
        self.driver = webdriver.Chrome(service=Service(driver), options=opts)
        return self.driver

    def __exit__(self, *exc: Any) -> None:
        self.driver.quit()


def wait_image(driver, timeout: float = 60.0) -> str:
    """Wait until the atlas image has loaded; returns its src."""
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, timeout).until(lambda d: d.execute_script(
        "const i = document.getElementById('img'); return i.complete && i.naturalWidth > 0;"))
    return driver.execute_script("return document.getElementById('img').src;")
