"""The atlas page: deeper networks, parameter derivatives, activation parameters, live training.

The server-side views are checked against the library's own ``atlas`` / ``parameter_derivative``
on networks rebuilt independently from the page's ``/state`` JSON (exact float32 values); the
page itself runs in Debian's headless chromium (selenium), as a user would drive it.
"""

from __future__ import annotations

import io
import json
import shutil
import threading
import urllib.error
import urllib.parse
import urllib.request

import numpy as np
import pytest
import torch
from matplotlib import colormaps
from matplotlib.image import imread
from torch import nn

import learnact
from learnact.viz.atlas import atlas, atlas_grid, parameter_derivative
from learnact.viz.atlas_server import make_server
from learnact.viz.atlas_state import (TILE, BadRequest, Busy, Runs, build_network, parse_query,
                                      render_derivative, render_rows, state)


def _cfg(q: str):
    return parse_query(urllib.parse.parse_qs(q, keep_blank_values=True))


def _rebuild(st: dict) -> nn.Sequential:
    """The page's network from its /state JSON, built without the page's code."""
    mods: list[nn.Module] = []
    for m in st["modules"]:
        if m["kind"] == "linear":
            out_f, in_f = m["params"][0]["shape"]
            mods.append(nn.Linear(in_f, out_f))
        else:
            w = st["widths"][m["layer"]]
            pc = any(p["shape"] and p["shape"][0] == w and len(p["shape"]) >= 1
                     for p in m["params"]) and st.get("pc", False)
            mods.append(learnact.create(m["spec"], channels=w, channel_dim=1) if pc
                        else learnact.create(m["spec"]))
    net = nn.Sequential(*mods)
    params = dict(net.named_parameters())
    with torch.no_grad():
        for m in st["modules"]:
            for p in m["params"]:
                params[p["name"]].copy_(torch.tensor(p["values"]).reshape(p["shape"]))
    return net.eval()


def _tiles(png: bytes, rows: int, cols: int, res: int) -> list[list[np.ndarray]]:
    """Cut the mosaic into (rows x cols) tiles of res x res (undoing the nearest upsampling)."""
    img = np.round(imread(io.BytesIO(png)) * 255).astype(np.uint8)
    k = max(1, TILE // res)
    size = res * k
    assert img.shape[0] == rows * size + (rows - 1) * 4, img.shape
    return [[img[r * (size + 4): r * (size + 4) + size: k, c * (size + 4): c * (size + 4) + size: k]
             for c in range(cols)] for r in range(rows)]


def _colors(v: np.ndarray, vmax: float) -> np.ndarray:
    return colormaps["RdBu_r"](0.5 + 0.5 * np.clip(v / vmax, -1, 1), bytes=True)


#: how far (relative to the tile's vmax) a value recomputed here may differ from the one the
#: server drew: a float32 sum in another order or thread count moves it ~1e-6; a colour bin
#: is 2/256 wide, so 1e-4 never hides a wrong image but absorbs a bin edge crossed by rounding
VALUE_TOL = 1e-4


def _color_diff(pixels: np.ndarray, v: np.ndarray, vmax: float) -> int:
    """Largest colour distance of ``pixels`` outside the colours of [v - d, v + d] (d =
    VALUE_TOL * vmax): 0 where the pixel is the colour of a value within rounding of v."""
    d = VALUE_TOL * vmax
    lo, hi = (_colors(v - d, vmax).astype(int), _colors(v + d, vmax).astype(int))
    low, high = np.minimum(lo, hi), np.maximum(lo, hi)
    px = pixels.astype(int)
    return int(np.maximum(np.maximum(low - px, px - high), 0).max())


def _check_rows(png: bytes, layers, res: int) -> None:
    cols = max(layer.values.shape[0] for layer in layers)
    tiles = _tiles(png, len(layers), cols, res)
    for r, layer in enumerate(layers):
        vmax = float(np.abs(layer.values).max()) or 1.0
        for u in range(layer.values.shape[0]):
            diff = _color_diff(tiles[r][u], layer.values[u], vmax)
            assert diff <= 1, (layer.name, u, diff)


@pytest.mark.parametrize("query,pattern", [
    ("w=1", r"w must be an integer in \[2, 8\]"), ("w=2,9", r"\[2, 8\]"),
    ("w=2,2,2,2,2,2,2", "1 to 6"), ("act0=swish!", "registered activation"),
    ("act0=hermite:channels=3", "pc=1"), ("w=2&act3=relu", "act3 given"),
    ("steps=5", "needs a dataset"), ("data=mnist", "data must be"),
    ("data=gmm&lr=0", r"lr must be in"), ("0.weight@x=1", "flat index"),
    ("0.weight@0=1e9", r"\[-100, 100\]"), ("b1_1=11", r"\[-10, 10\]"), ("evil=1", "unknown"),
    ("seed=-1", "seed"), ("res=300", "res"), ("zoom=0", "zoom"), ("A0_00=nan", "finite")])
def test_bad_queries_are_named(query, pattern) -> None:
    with pytest.raises(BadRequest, match=pattern):
        _cfg(query)


@pytest.mark.parametrize("query,pattern", [
    ("9.weight@0=1", "no parameter '9.weight'"), ("0.bias@5=1", r"index must be in \[0, 1\]"),
    ("act0=hermite:degree=4000", r"act0='hermite:degree=4000': degree must be an integer in"),
    ("w=8,8&act0=hermite&act1=fourier&pc=1", "at most 100")])
def test_bad_parameters_are_named_when_built(query, pattern, monkeypatch) -> None:
    from learnact.viz import atlas_state

    monkeypatch.setitem(atlas_state.LIMITS, "params", 100)
    with pytest.raises(BadRequest, match=pattern):
        build_network(_cfg(query))


def test_legacy_keys_are_the_first_pages_network() -> None:
    net = build_network(_cfg("A0_01=0.25&b1_1=-2&sigma1=tanh"))
    assert net[0].weight[0, 1].item() == 0.25 and net[2].bias[1].item() == -2
    assert type(net[3]).__name__ == "Tanh" and len(net) == 4


def test_layers_are_seeded_one_by_one_and_ignore_the_global_rng() -> None:
    """A DiTAC layer's init used to be redrawn from the global RNG on every request: now each
    layer has its own seed, so the picture does not move unless the URL does."""
    torch.manual_seed(1)
    a = build_network(_cfg("w=3,4&act0=ditac&act1=hermite&seed=5"))
    torch.manual_seed(2)
    b = build_network(_cfg("w=3,4&act0=ditac&act1=hermite&seed=5"))
    c = build_network(_cfg("w=3,4&act0=ditac&act1=tropical&seed=5"))  # only layer 1 changes
    for (name, p), q in zip(a.named_parameters(), b.parameters()):
        assert torch.equal(p, q), name
    assert torch.equal(a[1].theta, c[1].theta) and torch.equal(a[0].weight, c[0].weight)
    assert not torch.equal(a[0].weight, build_network(_cfg("w=3,4&act0=ditac&seed=6"))[0].weight)


def test_rows_are_the_librarys_atlas() -> None:
    cfg = _cfg("w=3,4,2&act0=hermite&act1=ditac&act2=tropical&pc=1&seed=2&res=24&zoom=0.8"
               "&1.coeffs@4=0.3")
    runs = Runs()
    run = runs.get(cfg)
    net = _rebuild({**state(cfg, run), "pc": True})
    layers = atlas(net, -cfg.half, cfg.half, cfg.res)
    _check_rows(render_rows(cfg, run.model), layers, cfg.res)
    for k in range(3):
        one = _cfg(f"w=3,4,2&act0=hermite&act1=ditac&act2=tropical&pc=1&seed=2&res=24&zoom=0.8"
                   f"&1.coeffs@4=0.3&layer={k}")
        _check_rows(render_rows(one, run.model), layers[2 * k: 2 * k + 2], cfg.res)


@pytest.mark.parametrize("spec,param", [("gelu", "0.weight@3"), ("hermite", "1.coeffs@2"),
                                        ("ditac", "1.theta@1"), ("staircase", "0.bias@1")])
def test_derivative_view_is_parameter_derivative(spec, param) -> None:
    q = f"w=3,2&act0={spec}&act1=tanh&seed=1&res=16&dparam={param}&dlayer=3&dunit=1"
    cfg = _cfg(q)
    run = Runs().get(cfg)
    net = _rebuild(state(cfg, run))
    name, flat = param.split("@")
    index = tuple(int(i) for i in np.unravel_index(int(flat), net.get_parameter(name).shape))
    d = parameter_derivative(net, 3, 1, name, index, -2, 2, 16)
    unit = atlas(net, -2, 2, 16)[3].values[1]
    png = render_derivative(cfg, run.model)
    img = np.round(imread(io.BytesIO(png)) * 255).astype(np.uint8)
    k = TILE // 16
    left, right = img[:, : 16 * k: k][::k], img[:, 16 * k + 16: 32 * k + 16: k][::k]
    for tile, v in ((left, unit), (right, d)):
        vmax = float(np.abs(v).max()) or 1.0
        assert _color_diff(tile, v, vmax) <= 1
    assert np.abs(d).max() > 0  # the parameter moves the unit


def _grid_jacobian(model, layer, unit, name, index, res):
    """Reverse mode, one grid point at a time: an independent route to d unit / d parameter."""
    x = atlas_grid(-2, 2, res, torch.float64)
    p = model.get_parameter(name)
    out = []
    for i in range(len(x)):
        (g,) = torch.autograd.grad(model[: layer + 1](x[i: i + 1])[0, unit], p)
        out.append(g[index].item())
    return np.array(out).reshape(res, res)


@pytest.mark.parametrize("spec", ["ditac", "leaky_ditac", "ge_ditac", "staircase", "cantor"])
def test_parameter_derivative_without_forward_mode(spec) -> None:
    """DiTAC and the surrogate activations have no forward-mode rule: the double-vjp route
    gives the derivative that training uses (checked point by point by reverse mode)."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(2, 3), learnact.create(spec), nn.Linear(3, 2)).double().eval()
    for name, index in (("0.weight", (1, 0)), ("0.bias", (2,))) + (
            (("1.theta", (1,)),) if "ditac" in spec else ()):
        d = parameter_derivative(net, 2, 1, name, index, res=5)
        want = _grid_jacobian(net, 2, 1, name, index, 5)
        np.testing.assert_allclose(d, want, rtol=1e-5, atol=1e-7)
    if spec == "ditac":  # and for the smooth one, finite differences agree as well
        eps = 1e-6
        d = parameter_derivative(net, 2, 0, "1.theta", (2,), res=5)
        x = atlas_grid(-2, 2, 5, torch.float64)
        with torch.no_grad():
            base = net(x)[:, 0]
            net[1].theta[2] += eps
            fd = (net(x)[:, 0] - base) / eps
        np.testing.assert_allclose(d.reshape(-1), fd.numpy(), atol=1e-4)


def test_parameter_derivative_refuses_what_it_cannot_differentiate() -> None:
    net = nn.Sequential(nn.Linear(2, 3), learnact.create("noisy"), nn.Linear(3, 2))
    with pytest.raises(ValueError, match="neither forward-mode AD nor double backward"):
        parameter_derivative(net, 2, 0, "0.weight", (0, 0), res=4)
    lr = nn.Sequential(nn.Linear(2, 3), learnact.create("left_right"), nn.Linear(3, 2))
    with pytest.raises(ValueError, match="not linear in the upstream gradient"):
        parameter_derivative(lr, 2, 0, "0.weight", (0, 0), res=4)
    with pytest.raises(ValueError, match=r"unit must be in \[0, 1\]"):
        parameter_derivative(net, 2, 2, "0.weight", (0, 0), res=4)
    cfg = _cfg("w=3,2&act0=relu&dparam=2.weight@0&dlayer=1")
    with pytest.raises(BadRequest, match="after dlayer=1"):
        render_derivative(cfg, build_network(cfg))


def test_training_is_a_pure_function_of_the_url() -> None:
    """10 + 10 steps (the page's chunks) and 20 at once: the same losses, the same bytes; a
    fresh cache too; the loss falls; a lower step count rewinds to the same images."""
    q = "w=4,4&act0=hermite&act1=noisy&data=gmm&lr=0.02&seed=3&res=16"
    runs = Runs()
    runs.get(_cfg(q + "&steps=10"))
    a = runs.get(_cfg(q + "&steps=20"))
    losses, png = list(a.losses), render_rows(_cfg(q + "&steps=20"), a.model)
    fresh = Runs().get(_cfg(q + "&steps=20"))
    assert fresh.losses == losses and render_rows(_cfg(q + "&steps=20"), fresh.model) == png
    assert losses[-1] < losses[0] and len(losses) == 20
    b = runs.get(_cfg(q + "&steps=5"))  # back in time: a new run from the init
    assert b.losses == losses[:5]
    sines = Runs().get(_cfg("w=8&act0=fourier&data=sines&steps=30&seed=1"))
    assert sines.losses[-1] < sines.losses[0]


def test_time_limit_answers_busy_and_resumes() -> None:
    q = "w=3&act0=tropical&data=sines&seed=0&steps=4"
    slow = Runs(time_limit=0.0)  # one step per request
    for _ in range(3):
        with pytest.raises(Busy, match=r"reached step \d of 4"):
            slow.get(_cfg(q))
    assert slow.get(_cfg(q)).losses == Runs().get(_cfg(q)).losses


def _server():
    server = make_server(None, 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def _get(url: str) -> bytes:
    return urllib.request.urlopen(url, timeout=120).read()


def test_same_url_byte_identical_images_and_http_errors() -> None:
    q = ("w=3,2,4&act0=ditac&act1=perlin&act2=rational&pc=1&data=gmm&steps=12&seed=7&res=24"
         "&0.weight@1=0.5")
    server, base = _server()
    other, base2 = _server()
    try:
        routes = [f"/render?{q}", f"/render?{q}&layer=1", f"/render?{q}&layer=out",
                  f"/act?{q}&layer=0", f"/deriv?{q}&dparam=1.theta@2&dlayer=6&dunit=2",
                  f"/data?{q}", f"/state?{q}"]
        first = [_get(base + r) for r in routes]
        torch.manual_seed(123)  # the global RNG does not matter
        _get(base + "/render?w=2&act0=ditac&data=sines&steps=3")  # nor other runs in between
        assert [_get(base + r) for r in routes] == first
        assert [_get(base2 + r) for r in routes] == first  # nor the server process state
        st = json.loads(first[-1])
        assert st["steps"] == 12 and len(st["loss"]) == 12
        for bad, code, text in ((f"/render?{q}&layer=7", 400, b"layer"),
                                ("/deriv?w=2", 400, b"dparam"), ("/nope", 404, b"not found"),
                                ("/render?w=2,2&act0=hermite&act1=hermite&data=sines"
                                 "&steps=3&0.weight@0=100&0.bias@0=100&2.weight@0=100",
                                 400, b"diverged at step 0")):
            with pytest.raises(urllib.error.HTTPError) as e:
                _get(base + bad)
            assert e.value.code == code and text in e.value.read(), bad
        assert b"atlasQuery" in _get(base + "/")
    finally:
        for s in (server, other):
            s.shutdown()
            s.server_close()


def _png(url: str) -> bytes:
    return _get(url)


@pytest.mark.slow
def test_atlas_page_in_headless_chromium(tmp_path) -> None:
    """The real page in Debian's chromium via selenium, as a user drives it: move a weight,
    add a layer, choose its activation, pick an activation parameter for the derivative view,
    move that parameter, train 20 steps on the GMM and see the loss fall; the images are the
    library's atlas / parameter_derivative of the network the page's /state describes, and
    reloading the page's address reproduces the view byte for byte."""
    if shutil.which("chromedriver") is None or shutil.which("chromium") is None:
        pytest.fail("chromium and chromium-driver must be installed (make browser)")
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select, WebDriverWait

    from learnact.viz.atlas_server import headless_chromium, screenshot, wait_image

    server, base = _server()

    def query(drv) -> str:
        return drv.execute_script("return window.atlasQuery();")

    def src(drv, image: str) -> str:
        return drv.execute_script(f"return document.getElementById({image!r}).src;")

    def changed(drv, image: str, before: str) -> str:
        WebDriverWait(drv, 120).until(lambda d: src(d, image) != before)
        return wait_image(drv, 120, image)

    try:
        with headless_chromium(1200, 1600) as drv:
            drv.get(base + "/")
            src0 = wait_image(drv)
            png0 = _png(src0)
            # 1. the first page's sliders: A0_00 is 0.weight@0
            slider = drv.find_element(By.ID, "0.weight@0")
            for _ in range(10):
                slider.send_keys(Keys.ARROW_LEFT)
            src1 = changed(drv, "img0", src0)
            assert "0.weight%400=0.5" in src1 and _png(src1) != png0
            assert drv.find_element(By.ID, "0.weight@0_v").text == "0.500"
            # 2. add a layer (3 hidden layers), choose its activation
            drv.find_element(By.ID, "add").click()
            WebDriverWait(drv, 120).until(lambda d: d.find_elements(By.ID, "act2"))
            wait_image(drv, 120, "img2")
            act_before = src(drv, "actimg2")
            Select(drv.find_element(By.ID, "act2")).select_by_visible_text("hermite")
            changed(drv, "actimg2", act_before)
            assert "act2=hermite" in query(drv) and "w=2%2C2%2C2" in query(drv)
            assert len(drv.find_elements(By.CSS_SELECTOR, "#net .layer")) == 3
            # 3. pick hermite's coefficient 2 for the derivative view
            WebDriverWait(drv, 120).until(lambda d: d.find_elements(By.ID, "5.coeffs@2"))
            deriv_before = src(drv, "img_deriv")
            drv.find_element(By.CSS_SELECTOR, '.d[data-key="5.coeffs@2"]').click()
            deriv = changed(drv, "img_deriv", deriv_before)
            assert "dparam=5.coeffs%402" in deriv
            st = json.loads(_get(base + "/state?" + query(drv)))
            net = _rebuild(st)
            cfg = _cfg(query(drv))
            layer = len(net) - 1
            d = parameter_derivative(net, layer, 0, "5.coeffs", (2,), -cfg.half, cfg.half,
                                     cfg.res)
            assert np.abs(d).max() > 0
            img = np.round(imread(io.BytesIO(_png(deriv))) * 255).astype(np.uint8)
            k = max(1, TILE // cfg.res)
            size = cfg.res * k
            right = img[:, size + 16: 2 * size + 16][::k, ::k]
            assert _color_diff(right, d, float(np.abs(d).max())) <= 1
            # 4. move that activation parameter: f changes, the URL carries the value
            act_before = src(drv, "actimg2")
            coeff = drv.find_element(By.ID, "5.coeffs@2")
            for _ in range(4):
                coeff.send_keys(Keys.ARROW_RIGHT)
            changed(drv, "actimg2", act_before)
            assert "5.coeffs%402=" in query(drv)
            moved = float(urllib.parse.parse_qs(query(drv))["5.coeffs@2"][0])
            assert abs(moved - (st["modules"][5]["params"][0]["values"][2] + 0.2)) < 0.051
            # 5. train on the GMM: 20 steps, the loss falls, stop
            Select(drv.find_element(By.ID, "data")).select_by_value("gmm")
            WebDriverWait(drv, 120).until(lambda d: d.find_element(By.ID, "outsec")
                                          .is_displayed())
            wait_image(drv, 120, "img_out")
            drv.find_element(By.ID, "train").click()
            WebDriverWait(drv, 300).until(
                lambda d: int(d.find_element(By.ID, "steps").text) >= 20)
            drv.find_element(By.ID, "stop").click()
            wait_image(drv, 300, "img_out")
            st = json.loads(_get(base + "/state?" + query(drv)))
            assert st["steps"] >= 20 and st["loss"][19] < st["loss"][0]
            assert "\u2192" in drv.find_element(By.ID, "loss").text
            cfg = _cfg(query(drv))
            fresh = Runs().get(cfg)  # the same URL, trained again from scratch: the same run
            assert fresh.losses == st["loss"]
            net = _rebuild(st)
            for k in range(3):
                _check_rows(_png(src(drv, f"img{k}")),
                            atlas(net, -cfg.half, cfg.half, cfg.res)[2 * k: 2 * k + 2], cfg.res)
            drv.save_screenshot(str(tmp_path / "page.png"))
            # 6. the address bar holds the view: reopening it gives the same images
            address = drv.current_url
            images = {i: _png(src(drv, i)) for i in ("img0", "img2", "img_out", "img_data",
                                                      "img_deriv")}
            drv.get(address)
            wait_image(drv, 300)
            assert {i: _png(src(drv, i)) for i in images} == images
            # 7. the compact editor (per-channel DiTAC theta, a line per channel)
            drv.get(base + "/?w=3&act0=ditac&pc=1&seed=4")
            wait_image(drv, 120)
            row = drv.find_element(By.ID, "1.theta@text1")
            values = [float(v) for v in row.get_attribute("value").split(",")]
            values[2] = 0.75
            act_before = src(drv, "actimg0")
            row.clear()
            row.send_keys(", ".join(str(v) for v in values) + Keys.ENTER)
            changed(drv, "actimg0", act_before)
            sets = {k: v for k, v in urllib.parse.parse_qs(query(drv)).items() if "@" in k}
            assert sets == {"1.theta@11": ["0.75"]}  # row 1 starts at 9; nothing else moved
        data = open(tmp_path / "page.png", "rb").read()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 2000
    finally:
        server.shutdown()
        server.server_close()
    shot = screenshot(str(tmp_path / "shot.png"), query="w=3&act0=ditac")
    assert open(shot, "rb").read()[:4] == b"\x89PNG"
    with pytest.raises(BadRequest, match="w must"):
        screenshot(str(tmp_path / "bad.png"), query="w=9")


def test_data_view_is_the_decision_regions_and_the_points() -> None:
    """GMM: every pixel is the light colour of the readout's argmax class, except the 3 x 3
    cells around a training point, drawn dark in the point's class colour; sines: the
    prediction and the target on one scale."""
    from learnact.experiments.toy2d import sine_mixture
    from learnact.viz.atlas_state import CLASS_COLORS, dataset, render_data

    cfg = _cfg("w=6,6&act0=hermite&act1=relu&data=gmm&steps=40&lr=0.03&zoom=0.6&res=40")
    run = Runs().get(cfg)
    net = _rebuild(state(cfg, run))
    img = np.round(imread(io.BytesIO(render_data(cfg, run.model))) * 255).astype(np.uint8)
    k = TILE // 40
    cells = img[::k, ::k, :3]
    with torch.no_grad():
        cls = net(atlas_grid(-cfg.half, cfg.half, 40)).argmax(1).reshape(40, 40).numpy()
    light = (255 - (255 - CLASS_COLORS.astype(np.int32)) * 0.45).astype(np.uint8)
    region = (cells == light[cls]).all(-1)
    x, y = dataset("gmm")
    near = np.zeros((40, 40), dtype=bool)
    col = np.round((x[:, 0].numpy() + cfg.half) / (2 * cfg.half) * 39).astype(int)
    row = np.round((cfg.half - x[:, 1].numpy()) / (2 * cfg.half) * 39).astype(int)
    dark = CLASS_COLORS // 2 + 20
    drawn = np.zeros((40, 40, 3), dtype=np.uint8)
    for c, r, lab in zip(col, row, y.numpy()):  # in drawing order: later points on top
        if 0 <= c < 40 and 0 <= r < 40:
            near[max(0, r - 1): r + 2, max(0, c - 1): c + 2] = True
            drawn[max(0, r - 1): r + 2, max(0, c - 1): c + 2] = dark[lab]
    assert (cells[near] == drawn[near]).all()
    assert (region | near).all() and region.mean() > 0.5
    assert len(np.unique(cls)) >= 2  # 40 steps: the regions have started to form
    cfg = _cfg("w=4&act0=sin&data=sines&steps=5&res=20")
    run = Runs().get(cfg)
    png = render_data(cfg, run.model)
    grid = atlas_grid(-2, 2, 20)
    with torch.no_grad():
        pred = run.model(grid)[:, 0].reshape(20, 20).numpy()
    target = sine_mixture(grid.double())[:, 0].reshape(20, 20).float().numpy()
    tiles = _tiles(png, 1, 2, 20)
    vmax = float(np.abs(target).max())
    for t, v in zip(tiles[0], (pred, target)):
        assert _color_diff(t, v, vmax) <= 1
    with pytest.raises(BadRequest, match="needs a dataset"):
        render_data(_cfg("w=2"), build_network(_cfg("w=2")))


def test_screenshot_without_selenium_names_what_to_install(monkeypatch, capsys) -> None:
    """`learnact atlas serve --screenshot` without selenium: one ImportError naming the extra,
    before any server starts."""
    import sys

    from learnact.cli import main

    monkeypatch.setitem(sys.modules, "selenium", None)
    monkeypatch.setattr("importlib.util.find_spec",
                        lambda name, *a: None if name == "selenium" else _real_find_spec(name))
    assert main(["atlas", "serve", "--screenshot", "out.png"]) == 2
    out = capsys.readouterr()
    assert out.out == ""  # no server started, no page address printed
    assert "missing: selenium (pip install 'learnact[browser]')" in out.err
    assert out.err.count("\n") == 1


def _real_find_spec(name):
    import importlib.machinery

    return importlib.machinery.PathFinder.find_spec(name)
