"""Seeing inside: shapes, sampling heat maps, the 2-D atlas and its web page (headless browser)."""

from __future__ import annotations

import threading
import urllib.error
import urllib.request

import numpy as np
import pytest
import torch
from torch import nn

import learnact
from learnact.experiments.common import load_model, save_model
from learnact.experiments.toy2d import build_mlp
from learnact.viz import Recorder
from learnact.viz.atlas import atlas, atlas_grid, parameter_derivative, plot_atlas
from learnact.viz.atlas_server import client_allowed, make_server, parse_params, render_png
from learnact.viz.sampling import density, plot_sampling
from learnact.viz.shapes import activation_curves, plot_shapes


def _png_ok(path) -> None:
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 2000


def test_activation_curves_match_autograd_per_channel() -> None:
    act = learnact.create("hermite", degree=4, channels=10)
    with torch.no_grad():
        act.coeffs.add_(0.1 * torch.randn_like(act.coeffs))
    z = torch.linspace(-2, 2, 51, dtype=torch.float64)
    f, d, idx = activation_curves(act, z, max_channels=4)
    assert f.shape == (4, 51) and idx == [0, 3, 6, 9]
    m = act.double()
    x = z[:, None].expand(-1, 10).clone().requires_grad_(True)
    y = m(x)  # (n, C): channel dim 1
    (g,) = torch.autograd.grad(y.sum(), x)
    assert np.allclose(f, y.detach().numpy()[:, idx].T, atol=1e-10)
    assert np.allclose(d, g.numpy()[:, idx].T, atol=1e-10)
    fp, dp, _ = activation_curves(nn.PReLU(3, init=0.2), z)  # torch module, via autograd
    assert np.allclose(fp[0], np.where(z.numpy() > 0, z.numpy(), 0.2 * z.numpy()))
    assert np.allclose(dp[0], np.where(z.numpy() > 0, 1.0, 0.2))


def test_plot_shapes_and_sampling_write_pngs(tmp_path) -> None:
    model = build_mlp("hermite:degree=4", [2, 8, 8, 1], per_channel=True)
    init = build_mlp("hermite:degree=4", [2, 8, 8, 1], per_channel=True)
    init.load_state_dict(model.state_dict())
    rec = Recorder(model, bins=20, lo=-3, hi=3)
    for _ in range(2):
        model(torch.randn(64, 2)).pow(2).mean().backward()
        rec.end_epoch()
    st = rec.state()
    centres, dens, outside = density(st["1"]["inputs"])
    assert dens.shape == (2, 20)
    width = centres[1] - centres[0]
    assert np.allclose(dens.sum(1) * width + outside, 1.0)  # a density, overflow included
    _png_ok(plot_shapes(model, tmp_path / "s.png", init=init))
    _png_ok(plot_sampling(st, tmp_path / "i.png", shapes=dict(model.named_modules())))
    _png_ok(plot_sampling(st, tmp_path / "g.png", kind="grads"))
    with pytest.raises(ValueError, match="kind"):
        plot_sampling(st, tmp_path / "x.png", kind="weights")


def test_recorder_gradient_histogram_is_symlog_and_exact() -> None:
    model = nn.Sequential(nn.Linear(2, 4), nn.GELU(), nn.Linear(4, 1))
    rec = Recorder(model, bins=24, grad_floor=1e-8, grad_decades=8)
    x = torch.randn(50, 2)
    model(x).mul(1e-3).sum().backward()
    rec.end_epoch()
    h = rec.state()["1"]["grads"]
    assert h["scale"] == "symlog" and sum(h["counts"][0]) == 200
    # the same binning computed independently
    pre = model[0](x).detach()
    with torch.enable_grad():
        p = pre.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(model[2](model[1](p)).mul(1e-3).sum(), p)
    t = np.sign(g.numpy()) * np.log10(np.maximum(np.abs(g.numpy()), 1e-8) / 1e-8)
    ref = np.histogram(t, bins=24, range=(-8, 8))[0]
    assert np.array_equal(np.array(h["counts"][0][1:-1]), ref)


def test_atlas_pixels_equal_model_outputs(tmp_path) -> None:
    model = build_mlp("tropical:degree=3", [2, 5, 4, 3], per_channel=True)
    layers = atlas(model, -1.5, 2.0, 17)
    assert [l.kind for l in layers] == ["pre", "post", "pre", "post", "out"]
    grid = atlas_grid(-1.5, 2.0, 17)
    assert torch.equal(grid[0], torch.tensor([-1.5, 2.0]))  # top-left: x1 = lo, x2 = hi
    with torch.no_grad():
        out = model(grid).numpy()
        pre1 = model[:3](grid).numpy()
    for u in range(3):
        assert np.allclose(layers[-1].values[u].reshape(-1), out[:, u], atol=1e-6)
    assert np.allclose(layers[2].values.reshape(4, -1).T, pre1, atol=1e-6)
    _png_ok(plot_atlas(layers, tmp_path / "a.png", lo=-1.5, hi=2.0))
    with pytest.raises(TypeError, match="Linear"):
        atlas(nn.Sequential(nn.Linear(3, 2)))


def test_atlas_parameter_derivative_matches_finite_difference() -> None:
    torch.manual_seed(0)
    model = build_mlp("gelu", [2, 4, 2], per_channel=False).double()
    d = parameter_derivative(model, 2, 1, "0.weight", (2, 1), res=9)
    eps = 1e-6
    grid = atlas_grid(-2, 2, 9, torch.float64)
    with torch.no_grad():
        base = model(grid)[:, 1]
        model[0].weight[2, 1] += eps
        plus = model(grid)[:, 1]
    assert np.allclose(d.reshape(-1), ((plus - base) / eps).numpy(), atol=1e-5)


def test_saved_model_round_trip(tmp_path) -> None:
    model = build_mlp("fourier:degree=3", [2, 6, 1], per_channel=True)
    init = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1)
    f = save_model(tmp_path / "m.pt", model, "toy2d_mlp",
                   {"spec": "fourier:degree=3", "sizes": [2, 6, 1], "per_channel": True}, init)
    x = torch.randn(5, 2)
    loaded, payload = load_model(f)
    assert torch.equal(loaded(x), model.eval()(x))
    at_init, _ = load_model(f, "init")
    assert all(torch.equal(at_init.state_dict()[k], v) for k, v in init.items())
    torch.save({"x": 1}, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="not a learnact saved model"):
        load_model(tmp_path / "bad.pt")


@pytest.mark.parametrize("query,pattern", [({"A0_00": ["abc"]}, "number"),
                                           ({"A0_00": ["nan"]}, "finite"),
                                           ({"b1_1": ["11"]}, r"\[-10, 10\]"),
                                           ({"zoom": ["0"]}, "zoom"),
                                           ({"sigma0": ["swish!"]}, "registered"),
                                           ({"evil": ["1"]}, "unknown")])
def test_atlas_params_rejected(query, pattern) -> None:
    with pytest.raises(ValueError, match=pattern):
        parse_params(query)


def test_atlas_server_localhost_only_and_400() -> None:
    assert client_allowed("127.0.0.1", False) and client_allowed("::1", False)
    assert not client_allowed("10.1.2.3", False) and not client_allowed("192.168.0.9", False)
    assert client_allowed("10.1.2.3", True)
    server = make_server(None, 0)
    assert server.server_address[0] == "127.0.0.1"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        page = urllib.request.urlopen(base + "/").read().decode()
        assert "atlasQuery" in page and "0.weight@0" in page  # the first page's A0_00
        png = urllib.request.urlopen(base + "/render?A0_00=2&sigma0=hermite").read()
        assert png[:4] == b"\x89PNG"
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(base + "/render?A0_00=1e9")
        assert e.value.code == 400 and b"A0_00" in e.value.read()
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(base + "/nope")
        assert e.value.code == 404
    finally:
        server.shutdown()
        server.server_close()
    p = parse_params({})
    assert render_png(p) != render_png(parse_params({"A0_00": ["-1.0"]}))


def test_atlas_server_refuses_foreign_host_headers() -> None:
    """DNS rebinding: a page at evil.example whose name resolves to 127.0.0.1 sends
    Host: evil.example; the loopback server refuses it (403) and serves localhost names."""
    from learnact.viz.atlas_server import host_allowed

    for ok in ("localhost", "localhost:8765", "127.0.0.1:1", "[::1]:8765", "LOCALHOST"):
        assert host_allowed(ok, False), ok
    for bad in (None, "", "evil.example", "evil.example:8765", "127.0.0.1.evil.example",
                "localhost.evil.example:80", "[::2]:8765"):
        assert not host_allowed(bad, False), bad
    assert host_allowed("evil.example", True)  # an explicit --host serves any name
    server = make_server(None, 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        req = urllib.request.Request(base + "/", headers={"Host": "evil.example"})
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(req)
        assert e.value.code == 403 and b"Host header" in e.value.read()
        req = urllib.request.Request(base + "/", headers={"Host": "localhost"})
        assert b"atlasQuery" in urllib.request.urlopen(req).read()
    finally:
        server.shutdown()
        server.server_close()


def test_plot_cli_over_real_run_directories(tmp_path, capsys) -> None:
    """learnact plot shapes|sampling|atlas on run directories written by the experiments."""
    from learnact.cli import main
    from learnact.experiments import autoencoder as ae
    from learnact.experiments import toy2d

    ae_dir = ae.run_autoencoder(ae.make_config("tiny", acts=["tropical"], record=True,
                                               record_every=2, out=str(tmp_path / "ae"),
                                               quiet=True))
    toy_dir = toy2d.run_toy2d(toy2d.make_config(acts=["hermite"], gmm_steps=20, reg_steps=20,
                                                out=str(tmp_path / "toy"), quiet=True))
    assert main(["plot", "shapes", str(ae_dir), "--out", str(tmp_path / "f")]) == 0
    assert main(["plot", "sampling", str(ae_dir), "--out", str(tmp_path / "f")]) == 0
    assert main(["plot", "atlas", str(toy_dir), "--match", "*taskgmm*",
                 "--out", str(tmp_path / "f")]) == 0
    made = sorted(p.name for p in (tmp_path / "f").glob("*.png"))
    assert [m.split("-")[0] for m in made] == ["atlas", "sampling", "sampling", "shapes"], made
    for p in (tmp_path / "f").glob("*.png"):
        _png_ok(p)
    assert main(["plot", "sampling", str(toy_dir)]) == 2  # no --record data: a clear error
    assert "train with --record" in capsys.readouterr().err


def test_loss_curves_tick_whole_epochs(tmp_path, monkeypatch):
    """With 3 epochs matplotlib's default locator ticked 1.5 and 2.5 (issue #19)."""
    from learnact.viz import curves

    seen = {}

    def keep(fig, path):
        seen["ticks"] = [t for t in fig.axes[0].get_xticks() if 1 <= t <= 3]
        return path

    monkeypatch.setattr(curves, "save_figure", keep)
    curves.plot_loss_curves({"gelu": [[0.3, 0.2, 0.1], [0.31, 0.21, 0.12]]}, tmp_path / "l.png")
    assert seen["ticks"] and all(float(t).is_integer() for t in seen["ticks"])
