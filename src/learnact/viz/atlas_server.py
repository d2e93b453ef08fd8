"""Interactive atlas: ``learnact atlas serve`` (standard-library HTTP server, no framework).

The page builds networks of 1 to 6 hidden layers (width 2 to 8, each layer's activation from
learnact's registry or a spec string) and draws, over the input plane: every unit before and
after its activation (one row each per layer, one symmetric scale per row), each activation's
f and f' (and DiTAC's velocity field) with its parameters as sliders or a compact editor, the
derivative of any unit with respect to any parameter (forward-mode AD,
:func:`learnact.viz.atlas.parameter_derivative`), and live training on the toy GMM or the
sine-mixture regression (the page asks for 10 more steps at a time; stop and reset).

Routes (all GET; the query is described in :mod:`learnact.viz.atlas_state`): ``/`` the page,
``/render`` rows (``layer=all|k|out``), ``/deriv`` unit and derivative, ``/act`` activation
curves (``layer=k``), ``/data`` the dataset view (GMM decision regions and points; sines
prediction and target), ``/state`` JSON (steps, losses, every parameter's exact value). The
same URL gives byte-identical images: every network is drawn from the URL's seed, and
training is a pure function of the URL.

Security: the server binds 127.0.0.1 and answers only loopback clients whose Host header names
the loopback server (localhost, 127.0.0.1, [::1]: a DNS-rebinding page is refused) unless a host
is given explicitly (``--host 0.0.0.0``); it never touches the file system. Bad parameters get
a 400 with the reason, work over the time limit a 503 (ask again: the run resumes), never a
crash; model work is serialised by one lock.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from .._lru import ByteLRU
from .atlas_state import (DEFAULTS, LEGACY_KEYS, AtlasConfig, BadRequest, Busy, Runs,
                          parse_query)

log = logging.getLogger(__name__)

__all__ = ["NETWORK_PARAMS", "DEFAULTS", "parse_params", "render_png", "make_server",
           "client_allowed", "serve", "screenshot", "AtlasConfig"]

NETWORK_PARAMS = LEGACY_KEYS  # the first page's A0, b0, A1, b1 keys (still accepted)


def parse_params(query: dict[str, list[str]]) -> AtlasConfig:
    """Validated parameters from ``parse_qs`` output (see :mod:`.atlas_state`); raises
    BadRequest (a ValueError) naming the parameter and its allowed range."""
    return parse_query(query)


def render_png(cfg: AtlasConfig, runs: Runs | None = None) -> bytes:
    """The rows the configuration's ``layer`` view selects (default: every module) as PNG."""
    from .atlas_state import render_rows

    runs = runs or Runs(capacity=1)
    with runs.lock:
        return render_rows(cfg, runs.get(cfg).model)


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


class _Handler(BaseHTTPRequestHandler):
    server_version = "learnact-atlas"
    allow_remote = False
    runs: Runs

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
            from .atlas_page import page

            self._send(HTTPStatus.OK, page().encode(), "text/html; charset=utf-8")
            return
        if url.path == "/favicon.ico":
            self._send(HTTPStatus.NO_CONTENT, b"", "image/x-icon")
            return
        route = _ROUTES.get(url.path)
        if route is None:
            self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain")
            return
        try:
            cfg = parse_params(parse_qs(url.query, keep_blank_values=True))
            # an image is a pure function of its address (/state also reports progress)
            key = (url.path, repr(cfg)) if url.path != "/state" else None
            hit = self.rendered.get(key) if key else None
            if hit is not None:
                self._send(HTTPStatus.OK, *hit)
                return
            with self.runs.lock:
                body, ctype = route(cfg, self.runs.get(cfg))
            if key:
                self.rendered.put(key, (body, ctype))
        except BadRequest as e:
            self._send(HTTPStatus.BAD_REQUEST, f"bad request: {e}\n".encode(), "text/plain")
            return
        except Busy as e:
            self._send(HTTPStatus.SERVICE_UNAVAILABLE, f"busy: {e}\n".encode(), "text/plain")
            return
        except Exception as e:  # a model error must not kill the server
            log.exception("render failed")
            self._send(HTTPStatus.INTERNAL_SERVER_ERROR, f"render failed: {e}\n".encode(),
                       "text/plain")
            return
        self._send(HTTPStatus.OK, body, ctype)


def _route_render(cfg: AtlasConfig, run: Any) -> tuple[bytes, str]:
    from .atlas_state import render_rows

    return render_rows(cfg, run.model), "image/png"


def _route_deriv(cfg: AtlasConfig, run: Any) -> tuple[bytes, str]:
    from .atlas_state import render_derivative

    return render_derivative(cfg, run.model), "image/png"


def _route_data(cfg: AtlasConfig, run: Any) -> tuple[bytes, str]:
    from .atlas_state import render_data

    return render_data(cfg, run.model), "image/png"


def _route_act(cfg: AtlasConfig, run: Any) -> tuple[bytes, str]:
    from .atlas_state import render_activation

    return render_activation(cfg, run.model), "image/png"


def _route_state(cfg: AtlasConfig, run: Any) -> tuple[bytes, str]:
    from .atlas_state import state

    return json.dumps(state(cfg, run)).encode(), "application/json"


_ROUTES = {"/render": _route_render, "/deriv": _route_deriv, "/act": _route_act,
           "/data": _route_data,
           "/state": _route_state}


def _responses(max_bytes: int = 64 << 20) -> ByteLRU[tuple[bytes, str]]:
    """The last responses (body, content type), by address, bounded in bytes (LRU): a page load
    asks for the same images again, and many clients ask at once; a cached answer needs no
    model lock."""
    return ByteLRU(max_bytes, lambda value: len(value[0]))


class _Server(ThreadingHTTPServer):
    """ThreadingHTTPServer with a listen backlog for many clients at once (the default of 5
    left connections waiting for SYN retries: 40 s timeouts under 100 concurrent requests)."""

    request_queue_size = 128
    daemon_threads = True


def make_server(host: str | None = None, port: int = 8765) -> ThreadingHTTPServer:
    """A server on ``host`` (default 127.0.0.1, loopback clients only) and ``port`` (0: any)."""
    handler = type("AtlasHandler", (_Handler,), {"allow_remote": host is not None,
                                                 "runs": Runs(), "rendered": _responses()})
    try:
        return _Server((host or "127.0.0.1", port), handler)
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


def screenshot(path: str, width: int = 900, height: int = 1080, timeout: float = 120.0,
               query: str = "", element: str | None = None) -> str:
    """Start a server on a free port, open the page in headless Chromium (Debian ``chromium``
    and ``chromium-driver``, driven by selenium) at ``/?query`` (the page's state, as its
    address bar shows it; validated first), wait until every image has loaded, save a
    screenshot of the window or of the page element with id ``element``."""
    query = query.lstrip("?")
    if query:
        parse_params(parse_qs(query, keep_blank_values=True))  # BadRequest before any browser
    server = make_server(None, 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with headless_chromium(width, height) as drv:
            drv.get(f"http://127.0.0.1:{server.server_address[1]}/" + (f"?{query}" if query
                                                                       else ""))
            wait_image(drv, timeout)
            if element:
                from selenium.webdriver.common.by import By

                found = drv.find_elements(By.ID, element)
                if not found:
                    raise ValueError(f"--element: the page has no element {element!r}")
                found[0].screenshot(str(path))
            else:
                drv.save_screenshot(str(path))
    finally:
        server.shutdown()
        server.server_close()
    return str(path)


def require_browser() -> tuple[str, str]:
    """The system chromium and chromedriver (their paths); an ImportError naming every missing
    piece of the headless browser (selenium too) and how to install it. Nothing is started."""
    import importlib.util
    import shutil

    browser = shutil.which("chromium") or "/usr/bin/chromium"
    driver = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    missing = []
    if importlib.util.find_spec("selenium") is None:
        missing.append("selenium (pip install 'learnact[browser]')")
    if not Path(browser).exists():
        missing.append("chromium (Debian: sudo apt-get install chromium)")
    if not Path(driver).exists():
        missing.append("chromedriver (Debian: sudo apt-get install chromium-driver)")
    if missing:
        raise ImportError("screenshots drive the system Chromium in headless mode with "
                          "selenium; missing: " + "; ".join(missing))
    return browser, driver


class headless_chromium:
    """Context manager: a selenium Chrome driver on the system chromium (no downloads)."""

    def __init__(self, width: int = 1100, height: int = 1000) -> None:
        self.size = (width, height)

    def __enter__(self):
        browser, driver = require_browser()
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        opts = webdriver.ChromeOptions()
        opts.binary_location = browser
        for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    f"--window-size={self.size[0]},{self.size[1]}"):
            opts.add_argument(arg)
        self.driver = webdriver.Chrome(service=Service(driver), options=opts)
        return self.driver

    def __exit__(self, *exc: Any) -> None:
        self.driver.quit()


def wait_image(driver, timeout: float = 60.0, image: str = "img0") -> str:
    """Wait until the page is idle (no request in flight, every image loaded); returns the
    src of the image with id ``image``."""
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, timeout).until(lambda d: d.execute_script(
        "return window.atlasIdle !== undefined && window.atlasIdle();"))
    return driver.execute_script(f"return document.getElementById({image!r}).src;")
