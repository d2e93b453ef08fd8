"""The atlas page's model: a URL's parameters -> a network, its training run and its images.

Everything the page shows is a pure function of the query string. A query names

* the network: hidden widths ``w=2,3,4`` (1 to 6 layers, each 2 to 8 units), each layer's
  activation ``act0 .. act5`` (a registry name or spec string), ``pc=1`` for per-channel
  activation parameters, the init ``seed`` (layer k is drawn from its own seed, so changing
  one layer never redraws the others), and explicit values for any parameter entry,
  ``<parameter>@<flat index>=<value>`` (``0.weight@1=0.5``, ``1.coeffs@3=-0.2``);
* a training run: ``data=gmm`` (the toy Gaussian mixture, 3 classes) or ``data=sines`` (the
  DiTAC paper's 2-D sine-mixture regression) adds a readout layer; ``steps`` full-batch Adam
  steps at learning rate ``lr`` from the init above (step t's randomness, for stochastic
  activations, is drawn from seed (seed, t): the same URL is the same run however it is
  chunked);
* the view: ``zoom``, ``res`` and, per route, the layer / unit / parameter to draw.

The legacy 2-2-2 keys of the first page (``A0_00 .. b1_1``, ``sigma0``, ``sigma1``) still
work: they become ``0.weight@..``, ``act0`` and so on.

Training runs are cached (least recently used, a few runs): a request for ``steps=N`` resumes
the cached run that is nearest below N, so the page's "train" loop, which asks for 10 more
steps at a time, costs O(N) overall and the same URL still gives byte-identical images.
Work is bounded: network size by the limits above, one request trains for at most
``TIME_LIMIT`` seconds (the run is kept and the next request continues it).
"""

from __future__ import annotations

import copy
import io
import math
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["AtlasConfig", "BadRequest", "Busy", "LEGACY_KEYS", "DEFAULTS", "LIMITS",
           "parse_query", "build_network", "dataset", "Runs", "colorize", "tile_mosaic",
           "render_rows", "render_derivative", "render_activation", "render_data", "state"]

LEGACY_KEYS = ("A0_00", "A0_01", "A0_10", "A0_11", "b0_0", "b0_1",
               "A1_00", "A1_01", "A1_10", "A1_11", "b1_0", "b1_1")
MAX_LAYERS = 6
MAX_ACTS = tuple(f"act{k}" for k in range(MAX_LAYERS))
DEFAULTS: dict[str, Any] = {"w": "2,2", "act0": "relu", "act1": "gelu", "seed": 0, "pc": 0,
                            "data": "none", "lr": 0.01, "steps": 0, "zoom": 1.0, "res": 80}
DEFAULT_ACT = "relu"
LIMITS = {"width": (2, 8), "value": 100.0, "legacy_value": 10.0, "steps": 5000, "lr": (1e-4, 1.0), "res": (8, 256),
          "zoom": (0.05, 20.0), "seed": (0, 2**31 - 1), "spec_chars": 80, "sets": 2048,
          "params": 20000}
VIEW_KEYS = ("layer", "dparam", "dlayer", "dunit", "ui")
DATASETS = {"none": 0, "gmm": 3, "sines": 1}  # name -> readout width
TIME_LIMIT = 20.0  # seconds of training per request


class BadRequest(ValueError):
    """A parameter the page may not send; becomes a 400."""


class Busy(RuntimeError):
    """Training did not reach the requested step within the time limit (the run is kept: ask
    again); becomes a 503."""


@dataclass(frozen=True)
class AtlasConfig:
    """A validated query: the network, its training run and the view."""

    widths: tuple[int, ...] = (2, 2)
    acts: tuple[str, ...] = ("relu", "gelu")
    per_channel: bool = False
    seed: int = 0
    sets: tuple[tuple[str, int, float], ...] = ()   # (parameter, flat index, value), sorted
    data: str = "none"
    lr: float = 0.01
    steps: int = 0
    zoom: float = 1.0
    res: int = 80
    view: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def init_key(self) -> tuple:
        return (self.widths, self.acts, self.per_channel, self.seed, self.sets, self.data)

    @property
    def run_key(self) -> tuple:
        return (*self.init_key, self.lr)

    @property
    def half(self) -> float:
        return 2.0 / self.zoom


def _number(key: str, raw: str) -> float:
    try:
        v = float(raw)
    except ValueError:
        raise BadRequest(f"{key} must be a number, got {raw!r}") from None
    if not math.isfinite(v):
        raise BadRequest(f"{key} must be finite, got {raw!r}")
    return v


def _integer(key: str, raw: str, lo: int, hi: int) -> int:
    v = _number(key, raw)
    if not (v == int(v) and lo <= v <= hi):
        raise BadRequest(f"{key} must be an integer in [{lo}, {hi}], got {raw!r}")
    return int(v)


def _spec(key: str, raw: str) -> str:
    from ..registry import available, spec_kwargs

    if len(raw) > LIMITS["spec_chars"]:
        raise BadRequest(f"{key} must be at most {LIMITS['spec_chars']} characters")
    try:
        name, kwargs = spec_kwargs(raw)
    except (ValueError, KeyError, TypeError) as exc:
        raise BadRequest(f"{key} must be a registered activation name or spec "
                         f"({', '.join(available())}): {exc}") from None
    if "channels" in kwargs or "channel_dim" in kwargs:
        raise BadRequest(f"{key}: give per-channel parameters with pc=1, not channels=")
    return raw


def parse_query(query: dict[str, list[str]]) -> AtlasConfig:
    """A validated :class:`AtlasConfig` from ``parse_qs`` output; raises BadRequest."""
    allowed = set(DEFAULTS) | set(MAX_ACTS) | set(LEGACY_KEYS) | {"sigma0", "sigma1"} \
        | set(VIEW_KEYS)
    unknown = sorted(k for k in query if k not in allowed and "@" not in k)
    if unknown:
        raise BadRequest(f"unknown parameter(s) {unknown}; allowed: {sorted(allowed)} and "
                         "<parameter>@<index>")
    raw = {k: v[-1] for k, v in query.items()}
    widths_raw = raw.get("w", DEFAULTS["w"])
    parts = widths_raw.split(",")
    if not 1 <= len(parts) <= MAX_LAYERS:
        raise BadRequest(f"w must list 1 to {MAX_LAYERS} hidden widths, got {widths_raw!r}")
    lo_w, hi_w = LIMITS["width"]
    widths = tuple(_integer("w", p, lo_w, hi_w) for p in parts)
    acts = []
    for k in range(len(widths)):
        key = f"act{k}"
        legacy = f"sigma{k}"
        spec = raw.get(key, raw.get(legacy, DEFAULTS.get(key, DEFAULT_ACT)))
        acts.append(_spec(key if key in raw or legacy not in raw else legacy, spec))
    for k in range(len(widths), MAX_LAYERS):
        if f"act{k}" in raw:
            raise BadRequest(f"act{k} given but the network has {len(widths)} hidden layers")
    per_channel = bool(_integer("pc", raw.get("pc", "0"), 0, 1))
    seed = _integer("seed", raw.get("seed", "0"), *LIMITS["seed"])
    data = raw.get("data", "none")
    if data not in DATASETS:
        raise BadRequest(f"data must be one of {sorted(DATASETS)}, got {data!r}")
    lr = _number("lr", raw.get("lr", str(DEFAULTS["lr"])))
    if not LIMITS["lr"][0] <= lr <= LIMITS["lr"][1]:
        raise BadRequest(f"lr must be in [{LIMITS['lr'][0]:g}, {LIMITS['lr'][1]:g}], got {lr}")
    steps = _integer("steps", raw.get("steps", "0"), 0, LIMITS["steps"])
    if steps and data == "none":
        raise BadRequest("steps > 0 needs a dataset: data=gmm or data=sines")
    zoom = _number("zoom", raw.get("zoom", "1"))
    if not LIMITS["zoom"][0] <= zoom <= LIMITS["zoom"][1]:
        raise BadRequest(f"zoom must be in [{LIMITS['zoom'][0]:g}, {LIMITS['zoom'][1]:g}], "
                         f"got {zoom}")
    res = _integer("res", raw.get("res", str(DEFAULTS["res"])), *LIMITS["res"])
    sets: dict[tuple[str, int], float] = {}
    for key in LEGACY_KEYS:  # A{k}_{ij} -> {2k}.weight@(2i+j), b{k}_i -> {2k}.bias@i
        if key in raw:
            k = int(key[1])
            name, flat = ((f"{2 * k}.weight", 2 * int(key[3]) + int(key[4])) if key[0] == "A"
                          else (f"{2 * k}.bias", int(key[3])))
            sets[(name, flat)] = _value(key, raw[key], LIMITS["legacy_value"])
    n_sets = sum(1 for k in raw if "@" in k)
    if n_sets > LIMITS["sets"]:
        raise BadRequest(f"at most {LIMITS['sets']} parameter values per request, got {n_sets}")
    for key, value in raw.items():
        if "@" not in key:
            continue
        name, _, index = key.rpartition("@")
        if not name or not index.isdigit() or len(index) > 6:
            raise BadRequest(f"{key!r}: parameter values are <parameter>@<flat index>")
        sets[(name, int(index))] = _value(key, value)
    view = {k: raw[k] for k in VIEW_KEYS if k in raw}
    if view.get("ui", "full") not in ("full", "compact"):
        raise BadRequest(f"ui must be full or compact, got {view['ui']!r}")
    return AtlasConfig(widths, tuple(acts), per_channel, seed,
                       tuple(sorted((n, i, v) for (n, i), v in sets.items())),
                       data, lr, steps, zoom, res, view)


def _value(key: str, raw: str, lim: float = LIMITS["value"]) -> float:
    v = _number(key, raw)
    if abs(v) > lim:
        raise BadRequest(f"{key} must be in [-{lim:g}, {lim:g}], got {v}")
    return v


def _layer_seed(seed: int, k: int) -> int:
    return (seed * 1_000_003 + 7919 * (k + 1)) % (2**63 - 1)


def build_network(cfg: AtlasConfig) -> nn.Sequential:
    """The network at initialisation: Linear(2, w0) act0 ... Linear(w_{L-2}, w_{L-1}) act_{L-1}
    [+ Linear(w_{L-1}, readout) with a dataset], each layer drawn from its own seed, then the
    explicit parameter values. Deterministic: the global RNG is restored afterwards."""
    from ..registry import create

    mods: list[nn.Module] = []
    prev = 2
    with torch.random.fork_rng(devices=[]):
        for k, (w, spec) in enumerate(zip(cfg.widths, cfg.acts)):
            torch.manual_seed(_layer_seed(cfg.seed, k))
            mods.append(nn.Linear(prev, w))
            try:
                act = create(spec, channels=w, channel_dim=1) if cfg.per_channel else create(spec)
            except (ValueError, TypeError, KeyError) as exc:
                raise BadRequest(f"act{k}={spec!r}: {exc}") from None
            mods.append(act)
            prev = w
        if DATASETS[cfg.data]:
            torch.manual_seed(_layer_seed(cfg.seed, MAX_LAYERS))
            mods.append(nn.Linear(prev, DATASETS[cfg.data]))
    net = nn.Sequential(*mods)
    total = sum(p.numel() for p in net.parameters())
    if total > LIMITS["params"]:
        raise BadRequest(f"the network has {total} parameters; at most {LIMITS['params']}")
    params = dict(net.named_parameters())
    with torch.no_grad():
        for name, flat, value in cfg.sets:
            if name not in params:
                raise BadRequest(f"{name}@{flat}: no parameter {name!r}; have {sorted(params)}")
            p = params[name]
            if flat >= p.numel():
                raise BadRequest(f"{name}@{flat}: index must be in [0, {p.numel() - 1}]")
            p.view(-1)[flat] = value
    return net.eval()


@lru_cache(maxsize=4)
def dataset(name: str, n: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """The page's training set: ``gmm`` (8 components, 3 classes, std 0.5; labels) or ``sines``
    (x ~ U[-1, 1]^2, y = the sine mixture); n points from a fixed seed."""
    from ..experiments.toy2d import make_gmm, sine_mixture

    if name == "gmm":
        gmm = make_gmm(8, 3, 0.5, 1234)
        x, y = gmm.sample(n, np.random.default_rng(1234))
        return torch.from_numpy(x), torch.from_numpy(np.asarray(y, dtype=np.int64))
    if name == "sines":
        g = torch.Generator().manual_seed(1234)
        x = torch.rand(n, 2, generator=g) * 2 - 1
        return x, sine_mixture(x)
    raise BadRequest(f"data must be gmm or sines to train, got {name!r}")


def loss_fn(data: str, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(out, y) if data == "gmm" else F.mse_loss(out, y)


@dataclass
class _Run:
    model: nn.Sequential
    opt: torch.optim.Optimizer | None
    step: int = 0
    losses: list[float] = field(default_factory=list)


class Runs:
    """Training runs by configuration, least recently used first out; thread-safe (one lock:
    model work is serialised, which also bounds the server's CPU use)."""

    def __init__(self, capacity: int = 6, time_limit: float = TIME_LIMIT) -> None:
        self.capacity = capacity
        self.time_limit = time_limit
        self.lock = threading.RLock()
        self._runs: OrderedDict[tuple, dict[str, _Run | None]] = OrderedDict()

    def get(self, cfg: AtlasConfig) -> _Run:
        """The network after ``cfg.steps`` steps (the caller holds ``self.lock`` while using
        it); raises Busy if the time limit ran out first (the run is kept: ask again)."""
        with self.lock:
            slot = self._runs.get(cfg.run_key)
            if slot is None:
                slot = {"init": _Run(build_network(cfg), None), "live": None}
                self._runs[cfg.run_key] = slot
                while len(self._runs) > self.capacity:
                    self._runs.popitem(last=False)
            self._runs.move_to_end(cfg.run_key)
            if cfg.steps == 0:
                return slot["init"]
            live = slot["live"]
            if live is None or live.step > cfg.steps:  # going back in time: start again
                model = copy.deepcopy(slot["init"].model)
                live = slot["live"] = _Run(model, torch.optim.Adam(model.parameters(),
                                                                   lr=cfg.lr))
            if live.step < cfg.steps:
                self._train(cfg, live)
            if live.step < cfg.steps:
                raise Busy(f"training reached step {live.step} of {cfg.steps} in "
                           f"{self.time_limit:g} s; request again to continue")
            return live

    def _train(self, cfg: AtlasConfig, run: _Run) -> None:
        x, y = dataset(cfg.data)
        start = time.monotonic()
        model = run.model.train()
        try:
            with torch.random.fork_rng(devices=[]):
                while run.step < cfg.steps:
                    torch.manual_seed(_layer_seed(cfg.seed, 1000 + run.step))
                    run.opt.zero_grad(set_to_none=True)
                    loss = loss_fn(cfg.data, model(x), y)
                    if not torch.isfinite(loss):
                        raise BadRequest(f"training diverged at step {run.step} (loss {loss:.3g})"
                                         "; lower lr")
                    loss.backward()
                    run.opt.step()
                    run.losses.append(loss.item())
                    run.step += 1
                    if time.monotonic() - start > self.time_limit:
                        break
        finally:
            model.eval()


def colorize(values: np.ndarray, vmax: float) -> np.ndarray:
    """RdBu_r colours (uint8 RGBA) for values on the symmetric scale [-vmax, vmax]; NaN and
    infinities are grey."""
    from matplotlib import colormaps

    v = np.asarray(values, dtype=np.float64)
    bad = ~np.isfinite(v)
    rgba = colormaps["RdBu_r"](0.5 + 0.5 * np.clip(np.where(bad, 0.0, v) / vmax, -1, 1),
                               bytes=True)
    rgba[bad] = (128, 128, 128, 255)
    return rgba


def symmetric_scale(values: np.ndarray) -> float:
    finite = np.abs(values[np.isfinite(values)])
    return float(finite.max()) if finite.size and finite.max() > 0 else 1.0


TILE = 128  # pixels per unit image (about: upsampled by the integer factor TILE // res)
GAP = 4


def tile_mosaic(rows: list[list[np.ndarray]], scales: list[float], res: int) -> np.ndarray:
    """uint8 RGBA mosaic: one row per entry of ``rows`` (its tiles side by side, coloured on
    that row's scale), white gaps between tiles and rows; each grid point becomes a
    max(1, TILE // res)-pixel square (nearest upsampling)."""
    k = max(1, TILE // res)
    size = res * k
    cols = max(len(r) for r in rows)
    width = cols * size + (cols - 1) * GAP
    height = len(rows) * size + (len(rows) - 1) * GAP
    out = np.full((height, width, 4), 255, dtype=np.uint8)
    for r, (tiles, vmax) in enumerate(zip(rows, scales)):
        for c, v in enumerate(tiles):
            rgba = colorize(v, vmax)
            big = np.repeat(np.repeat(rgba, k, 0), k, 1)
            y0, x0 = r * (size + GAP), c * (size + GAP)
            out[y0:y0 + size, x0:x0 + size] = big
    return out


def png_bytes(image: np.ndarray) -> bytes:
    """PNG bytes of a uint8 RGBA image (deterministic: no time stamp)."""
    from matplotlib.image import imsave

    buf = io.BytesIO()
    imsave(buf, image, format="png", metadata={"Software": None})
    return buf.getvalue()


def row_labels(cfg: AtlasConfig) -> list[str]:
    """One label per module: pre0, post0, pre1, post1, ..., out."""
    labels = [f"{kind}{k}" for k in range(len(cfg.widths)) for kind in ("pre", "post")]
    return labels + (["out"] if DATASETS[cfg.data] else [])


def _layer_view(cfg: AtlasConfig) -> tuple[int, int]:
    """The modules [start, stop) the ``layer`` view key selects (default: all)."""
    n = 2 * len(cfg.widths) + (1 if DATASETS[cfg.data] else 0)
    key = cfg.view.get("layer", "all")
    if key == "all":
        return 0, n
    if key == "out":
        if not DATASETS[cfg.data]:
            raise BadRequest("layer=out needs a dataset (data=gmm or data=sines)")
        return n - 1, n
    k = _integer("layer", key, 0, len(cfg.widths) - 1)
    return 2 * k, 2 * k + 2


def render_rows(cfg: AtlasConfig, model: nn.Sequential) -> bytes:
    """PNG of the selected rows (``layer``: all, k for pre_k/post_k, or out): one row per
    module output, one tile per unit, one symmetric RdBu_r scale per row."""
    from .atlas import atlas

    start, stop = _layer_view(cfg)
    layers = atlas(model[:stop], -cfg.half, cfg.half, cfg.res)[start:]
    rows = [list(layer.values) for layer in layers]
    return png_bytes(tile_mosaic(rows, [symmetric_scale(layer.values) for layer in layers],
                                 cfg.res))


def parse_parameter(model: nn.Sequential, key: str) -> tuple[str, tuple]:
    """``name@flat`` -> (name, index tuple), checked against the model."""
    name, _, flat = key.rpartition("@")
    params = dict(model.named_parameters())
    if name not in params or not flat.isdigit():
        raise BadRequest(f"dparam must be <parameter>@<flat index> with a parameter among "
                         f"{sorted(params)}, got {key!r}")
    p = params[name]
    if int(flat) >= p.numel():
        raise BadRequest(f"dparam {key!r}: index must be in [0, {p.numel() - 1}]")
    return name, tuple(int(i) for i in np.unravel_index(int(flat), tuple(p.shape)))


def derivative_target(cfg: AtlasConfig, model: nn.Sequential) -> tuple[str, tuple, int, int]:
    """(parameter, index, module, unit) of the derivative view; module defaults to the last
    module, unit to 0."""
    if "dparam" not in cfg.view:
        raise BadRequest("the derivative view needs dparam=<parameter>@<flat index>")
    name, index = parse_parameter(model, cfg.view["dparam"])
    layer = _integer("dlayer", cfg.view.get("dlayer", str(len(model) - 1)), 0, len(model) - 1)
    width = _module_width(model, layer)
    unit = _integer("dunit", cfg.view.get("dunit", "0"), 0, width - 1)
    owner = int(name.split(".", 1)[0])
    if owner > layer:
        raise BadRequest(f"dparam {name!r} belongs to module {owner}, after dlayer={layer}: "
                         "its derivative is zero")
    return name, index, layer, unit


def _module_width(model: nn.Sequential, layer: int) -> int:
    for m in reversed(list(model)[: layer + 1]):
        if isinstance(m, nn.Linear):
            return m.out_features
    raise AssertionError("the first module is Linear")


def render_derivative(cfg: AtlasConfig, model: nn.Sequential) -> bytes:
    """PNG: the unit (left) and d unit / d parameter (right) over the plane, each on its own
    symmetric scale."""
    from .atlas import atlas, parameter_derivative

    name, index, layer, unit = derivative_target(cfg, model)
    values = atlas(model[: layer + 1], -cfg.half, cfg.half, cfg.res)[layer].values[unit]
    try:
        d = parameter_derivative(model, layer, unit, name, index, -cfg.half, cfg.half, cfg.res)
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    left = tile_mosaic([[values]], [symmetric_scale(values)], cfg.res)
    right = tile_mosaic([[d]], [symmetric_scale(d)], cfg.res)
    gap = np.full((left.shape[0], 4 * GAP, 4), 255, dtype=np.uint8)
    return png_bytes(np.concatenate([left, gap, right], 1))


def render_activation(cfg: AtlasConfig, model: nn.Sequential) -> bytes:
    """PNG: hidden layer ``layer``'s activation f and f' on [-4, 4] (one curve per channel,
    at most 8) and, for DiTAC, its velocity field on [a, b]."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from .shapes import activation_curves

    key = cfg.view.get("layer", "0")
    k = _integer("layer", key, 0, len(cfg.widths) - 1)
    act = model[2 * k + 1]
    z = torch.linspace(-4, 4, 401, dtype=torch.float64)
    f, d, idx = activation_curves(act, z)
    field = getattr(act, "velocity", None)
    panels = 3 if field is not None else 2
    fig = Figure(figsize=(1.9 * panels, 1.6), dpi=100)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, panels)
    zz = z.numpy()
    for ax, ys, title in ((axes[0], f, "f"), (axes[1], d, "f'")):
        for c, y in zip(idx, ys):
            ax.plot(zz, y, lw=1, label=str(c))
        ax.set_title(f"{title}  (act{k})", fontsize=7)
        ax.tick_params(labelsize=6)
        ax.axhline(0, color="#999", lw=0.5)
    if field is not None:
        a, b = float(act.a), float(act.b)
        u = torch.linspace(a, b, 201, dtype=torch.float64)
        with torch.no_grad():
            v = field(u[:, None].expand(-1, cfg.widths[k]).contiguous() if cfg.per_channel
                      else u)
        v = v.reshape(len(u), -1).numpy()
        for c in (idx if cfg.per_channel else [0]):
            axes[2].plot(u.numpy(), v[:, c], lw=1)
        axes[2].axhline(0, color="#999", lw=0.5)
        axes[2].set_title("velocity v (DiTAC)", fontsize=7)
        axes[2].tick_params(labelsize=6)
    fig.tight_layout(pad=0.4)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()


CLASS_COLORS = np.array([[31, 119, 180], [255, 127, 14], [44, 160, 44]], dtype=np.uint8)


def render_data(cfg: AtlasConfig, model: nn.Sequential) -> bytes:
    """PNG of what the network does with the dataset. GMM: the decision regions (argmax of
    the readout, light class colours) with the training points (dark, 3 x 3 grid cells);
    sines: the prediction and the target side by side on one symmetric scale."""
    from .atlas import atlas_grid

    if not DATASETS[cfg.data]:
        raise BadRequest("the data view needs a dataset (data=gmm or data=sines)")
    grid = atlas_grid(-cfg.half, cfg.half, cfg.res)
    with torch.no_grad():
        out = model(grid)
    k = max(1, TILE // cfg.res)
    if cfg.data == "sines":
        from ..experiments.toy2d import sine_mixture

        pred = out[:, 0].reshape(cfg.res, cfg.res).numpy()
        target = sine_mixture(grid.double())[:, 0].reshape(cfg.res, cfg.res).float().numpy()
        return png_bytes(tile_mosaic([[pred, target]], [symmetric_scale(target)], cfg.res))
    cls = out.argmax(1).reshape(cfg.res, cfg.res).numpy()
    light = (255 - (255 - CLASS_COLORS.astype(np.int32)) * 0.45).astype(np.uint8)
    rgb = light[cls]
    x, y = dataset(cfg.data)
    col = np.round((x[:, 0].numpy() + cfg.half) / (2 * cfg.half) * (cfg.res - 1)).astype(int)
    row = np.round((cfg.half - x[:, 1].numpy()) / (2 * cfg.half) * (cfg.res - 1)).astype(int)
    img = np.repeat(np.repeat(rgb, k, 0), k, 1)
    size = cfg.res * k
    for c, rr, lab in zip(col, row, y.numpy()):
        if 0 <= c < cfg.res and 0 <= rr < cfg.res:
            img[max(0, (rr - 1) * k): min(size, (rr + 2) * k),  # 3 x 3 grid cells
                max(0, (c - 1) * k): min(size, (c + 2) * k)] = CLASS_COLORS[lab] // 2 + 20
    alpha = np.full(img.shape[:2] + (1,), 255, dtype=np.uint8)
    return png_bytes(np.concatenate([img, alpha], -1))


def _finite(values: list[float]) -> list[float | None]:
    return [v if math.isfinite(v) else None for v in values]


def state(cfg: AtlasConfig, run: _Run) -> dict[str, Any]:
    """What the page needs: steps, losses, every module's parameters (exact float32 values:
    sending them back reproduces the network bit for bit) and the row labels."""
    modules = []
    labels = row_labels(cfg)
    for i, m in enumerate(run.model):
        kind = "linear" if isinstance(m, nn.Linear) else "activation"
        entry: dict[str, Any] = {"index": i, "label": labels[i], "kind": kind,
                                 "type": type(m).__name__, "layer": i // 2,
                                 "velocity": hasattr(m, "velocity"), "params": []}
        if kind == "activation":
            entry["spec"] = cfg.acts[i // 2]
        for name, p in m.named_parameters():
            entry["params"].append({"name": f"{i}.{name}", "shape": list(p.shape),
                                    "values": _finite(p.detach().reshape(-1).tolist())})
        modules.append(entry)
    return {"steps": run.step, "loss": _finite(run.losses), "data": cfg.data,
            "widths": list(cfg.widths), "acts": list(cfg.acts), "modules": modules,
            "limit": LIMITS["value"], "max_steps": LIMITS["steps"]}
