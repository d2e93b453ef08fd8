"""Semantic segmentation, the DiTAC paper's segmentation task at CPU scale: ``learnact bench segment``.

Data shipped by a package (Fashion-MNIST, Debian's ``dataset-fashion-mnist``): each canvas is
``size`` x ``size`` pixels holding ``items`` Fashion-MNIST images pasted at random places (a
later item covers an earlier one); a pixel's label is the class of the item whose ink
(intensity > 0.2) covers it, or background (class 10): 11 classes. Canvases are drawn once from
``data_seed`` (the same for every activation and seed): training canvases from the training
images, test canvases from the test images.

Model: a small U-Net: blocks of Conv 3x3 -> act -> BN; stem (w) at full size, down to w2 = 2w
at 1/2 and 4w at 1/4 (two blocks), up by ConvT 2x2 -> act -> BN to 2w (with the 1/2 block's
output concatenated, one block) and to w (with the stem's output concatenated, one block), a
1x1 Conv to the 11 classes; nine activations, one fresh ``create(spec)`` each (shared
parameters), pixel-wise cross entropy, Adam, DiTAC's prior in the loss (``--no-prior`` leaves
it out).

Scores on the test canvases after the last epoch: mean IoU over the 11 classes (a class absent
from both the labels and the prediction of the whole test set is left out) and pixel accuracy;
per activation the mean over seeds with its 95% t interval and, against ReLU and GELU, the
paired difference of mean IoU seed by seed with its 95% interval and verdict.

    learnact bench segment                          # the default list, 3 seeds, ~10 min
    learnact bench segment --acts relu,ditac --seeds 0,1,2 --epochs 8

Writes results.json, summary.md and predictions.png (test canvases, labels and each
activation's prediction, first seed).
"""

from __future__ import annotations

import argparse
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data.fashion_mnist import load_fashion_mnist
from ..modules import FAMILIES
from ..params import activation_parameters
from ..registry import create, parse_spec
from . import trainer
from .autoencoder import _batches
from .common import Dist, RunDir, progress, require_plots, setup_distributed, teardown_distributed
from .stats import interval, paired
from .trainer import OptimConfig, Task

__all__ = ["SegmentConfig", "SegNet", "canvases", "confusion", "scores", "make_config",
           "run_segment"]

CLASSES = 11  # ten Fashion-MNIST classes and the background
BACKGROUND = 10


def default_acts() -> list[str]:
    """ReLU, GELU, PReLU, SiLU, DiTAC exact and every learnable family's main-job spec (DiTAC's
    is the lookup table)."""
    return ["relu", "gelu", "prelu", "silu", "ditac"] + [
        spec for cls in FAMILIES for spec in cls.main_job_specs]


@dataclass
class SegmentConfig:
    """Resolved configuration (saved as config.json)."""

    preset: str = "main"
    acts: list[str] = field(default_factory=default_acts)
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    size: int = 48
    items: int = 3
    n_train: int = 1200
    n_test: int = 300
    width: int = 12
    epochs: int = 6
    batch_size: int = 32
    lr: float = 5e-3
    prior: bool = True
    data_seed: int = 4321
    data_dir: str | None = None
    threads: int | None = None
    out: str | None = None
    quiet: bool = False


PRESETS: dict[str, dict[str, Any]] = {
    "main": {},  # the default list x 3 seeds in about 10 minutes on 2 cores
    "tiny": dict(size=32, items=2, n_train=96, n_test=48, width=4, epochs=1, batch_size=32,
                 seeds=[0, 1]),  # seconds: tests and smoke runs
}


def make_config(preset: str = "main", **overrides: Any) -> SegmentConfig:
    """Preset values, then explicit overrides (None keeps the preset's value); every value is
    checked before anything runs."""
    cfg = trainer.configure(SegmentConfig, PRESETS, preset, **overrides)
    for k in ("items", "n_train", "n_test", "width", "epochs", "batch_size"):
        if getattr(cfg, k) < 1:
            raise ValueError(f"--{k.replace('_', '-')} must be >= 1, got {getattr(cfg, k)}")
    if cfg.size < 28 or cfg.size % 4:
        raise ValueError(f"--size must be a multiple of 4 and >= 28 (an item is 28x28), "
                         f"got {cfg.size}")
    if not cfg.lr > 0:
        raise ValueError(f"--lr must be > 0, got {cfg.lr}")
    if not cfg.acts or not cfg.seeds:
        raise ValueError("--acts and --seeds must not be empty")
    for spec in cfg.acts:
        parse_spec(spec)
        create(spec)  # an unknown name or a bad argument fails here, before any training
    return cfg


def canvases(images: Tensor, labels: Tensor, n: int, size: int, items: int,
             gen: torch.Generator) -> tuple[Tensor, Tensor]:
    """``n`` canvases (n, 1, size, size) in [0, 1] and their pixel labels (n, size, size) int64:
    ``items`` random images each at random offsets, later ones on top; ink > 0.2 takes the
    item's class, the rest is BACKGROUND."""
    x = torch.zeros(n, 1, size, size)
    y = torch.full((n, size, size), BACKGROUND, dtype=torch.long)
    pick = torch.randint(images.shape[0], (n, items), generator=gen)
    off = torch.randint(size - 28 + 1, (n, items, 2), generator=gen)
    for i in range(n):
        for k in range(items):
            img, cls = images[pick[i, k], 0], int(labels[pick[i, k]])
            r, c = int(off[i, k, 0]), int(off[i, k, 1])
            ink = img > 0.2
            xs, ys = x[i, 0, r:r + 28, c:c + 28], y[i, r:r + 28, c:c + 28]
            xs[ink] = img[ink]
            ys[ink] = cls
    return x, y


class SegNet(nn.Module):
    """The U-shaped encoder-decoder of the module docstring; ``act(channels)`` makes each
    activation."""

    def __init__(self, act: Any, width: int = 12) -> None:
        super().__init__()
        w = width

        def block(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1), act(cout),
                                 nn.BatchNorm2d(cout))

        self.stem = block(1, w)                   # size
        self.down1 = block(w, 2 * w, 2)           # size / 2
        self.down2 = nn.Sequential(block(2 * w, 4 * w, 2), block(4 * w, 4 * w))  # size / 4
        self.up2 = nn.Sequential(nn.ConvTranspose2d(4 * w, 2 * w, 2, 2), act(2 * w),
                                 nn.BatchNorm2d(2 * w))
        self.up1 = nn.Sequential(block(4 * w, 2 * w), nn.ConvTranspose2d(2 * w, w, 2, 2),
                                 act(w), nn.BatchNorm2d(w))
        self.head = nn.Sequential(block(2 * w, w), nn.Conv2d(w, CLASSES, 1))

    def forward(self, x: Tensor) -> Tensor:
        s = self.stem(x)
        d1 = self.down1(s)
        u2 = self.up2(self.down2(d1))
        u1 = self.up1(torch.cat([d1, u2], 1))
        return self.head(torch.cat([s, u1], 1))


def build_segnet(spec: str, width: int = 12) -> SegNet:
    return SegNet(lambda c: create(spec), width)


@torch.no_grad()
def confusion(model: nn.Module, x: Tensor, y: Tensor, batch: int = 100) -> Tensor:
    """The (CLASSES, CLASSES) confusion matrix (rows: labels, columns: predictions), int64."""
    model.eval()
    cm = torch.zeros(CLASSES, CLASSES, dtype=torch.long)
    for i in range(0, x.shape[0], batch):
        pred = model(x[i:i + batch]).argmax(1)
        cm += torch.bincount(y[i:i + batch].flatten() * CLASSES + pred.flatten(),
                             minlength=CLASSES * CLASSES).reshape(CLASSES, CLASSES)
    return cm


def scores(cm: Tensor) -> dict[str, float]:
    """Mean IoU over the classes present in the labels or the predictions, and pixel
    accuracy, from a confusion matrix."""
    cm = cm.double()
    tp = cm.diag()
    union = cm.sum(0) + cm.sum(1) - tp
    seen = union > 0
    return {"miou": float((tp[seen] / union[seen]).mean()),
            "pixel_accuracy": float(tp.sum() / cm.sum())}


def make_task(cfg: SegmentConfig, xtr: Tensor, ytr: Tensor, xte: Tensor, yte: Tensor) -> Task:
    def stream(seed: int, d: Dist):
        gen = torch.Generator().manual_seed(seed)
        while True:
            for b in _batches(xtr.shape[0], cfg.batch_size, gen, d):
                yield xtr[b], ytr[b]

    def evaluate(model: nn.Module, d: Dist) -> dict[str, float]:
        s = scores(confusion(model, xte, yte))
        return {"test_miou": s["miou"], "test_pixel_accuracy": s["pixel_accuracy"],
                "test_miou_error": 1.0 - s["miou"]}

    def loss(net: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        return F.cross_entropy(net(x), y)

    return Task("segment", {"width": cfg.width}, lambda spec: build_segnet(spec, cfg.width),
                None, loss, evaluate, stream)


def run_segment(cfg: SegmentConfig) -> Path:
    """Train every (activation, seed), write the records, figure and summary; returns the run
    directory. One process (the model is small); the data must be installed."""
    require_plots("learnact bench segment")
    d = setup_distributed("cpu")
    try:
        if d.world > 1:
            raise ValueError("learnact bench segment runs in one process (no torchrun)")
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        run = RunDir(cfg.out or str(RunDir.default("segment")), "segment")
        gen = torch.Generator().manual_seed(cfg.data_seed)
        imtr, lbtr = load_fashion_mnist("train", cfg.data_dir, None)
        imte, lbte = load_fashion_mnist("test", cfg.data_dir, None)
        xtr, ytr = canvases(imtr, lbtr, cfg.n_train, cfg.size, cfg.items, gen)
        xte, yte = canvases(imte, lbte, cfg.n_test, cfg.size, cfg.items, gen)
        run.write_json("config.json", asdict(cfg))
        background = float((yte == BACKGROUND).double().mean())
        results: dict[str, Any] = {"task": "segment", "config": asdict(cfg), "runs": [],
                                   "baselines": {"all_background_pixel_accuracy": background}}
        task = make_task(cfg, xtr, ytr, xte, yte)
        every = math.ceil(xtr.shape[0] / cfg.batch_size)
        o = OptimConfig.plain(cfg.epochs * every, cfg.lr, every, "adam")
        shown: dict[str, Tensor] = {}
        with progress(len(cfg.acts) * len(cfg.seeds) * o.steps, "segment",
                      enabled=not cfg.quiet) as bar:
            for spec in cfg.acts:
                for seed in cfg.seeds:
                    rec = trainer.train_one(task, spec, seed, o, d, bar=bar, prior=cfg.prior)
                    model = rec.pop("_model")
                    evals = rec["evals"]
                    results["runs"].append({
                        "act": spec, "seed": seed, "params": rec["params"],
                        "act_params": sum(p.numel() for p in activation_parameters(model)),
                        "diverged": rec["diverged"] or not all(
                            math.isfinite(e["test_miou"]) for e in evals),
                        "epochs": [{"epoch": i + 1, "train_loss": e["train_loss"],
                                    "test_miou": e["test_miou"],
                                    "test_pixel_accuracy": e["test_pixel_accuracy"],
                                    "seconds": e["seconds"]} for i, e in enumerate(evals)]})
                    run.write_json("results.json", results)
                    if seed == cfg.seeds[0]:
                        with torch.no_grad():
                            model.eval()
                            shown[spec] = model(xte[:6]).argmax(1)
        results["summary"] = summarise(results["runs"], cfg.acts)
        run.write_json("results.json", results)
        _plot(xte[:6], yte[:6], shown, run.path / "predictions.png")
        (run.path / "summary.md").write_text(summary_markdown(results))
        return run.path
    finally:
        teardown_distributed(d)


def summarise(runs: list[dict[str, Any]], acts: list[str]) -> list[dict[str, Any]]:
    """Per activation: mean IoU and pixel accuracy (mean, 95% interval), and the paired
    mean-IoU difference to ReLU and GELU (positive: higher IoU than the baseline)."""
    final = {a: {r["seed"]: r["epochs"][-1] for r in runs if r["act"] == a and r["epochs"]}
             for a in acts}
    rows = []
    for a in acts:
        miou = {s: e["test_miou"] for s, e in final[a].items()}
        acc = [e["test_pixel_accuracy"] for e in final[a].values()]
        row: dict[str, Any] = {"act": a, "miou": interval(list(miou.values())),
                               "pixel_accuracy": interval(acc), "per_seed": miou,
                               "params": next(r["act_params"] for r in runs if r["act"] == a)}
        for base in ("relu", "gelu"):
            if base in final and base != a:
                # paired() calls lower better: compare the IoU errors 1 - IoU
                p = paired({s: 1 - v for s, v in miou.items()},
                           {s: 1 - e["test_miou"] for s, e in final[base].items()})
                row[f"vs_{base}"] = {"diff": -p.mean, "low": -p.high, "high": -p.low,
                                     "verdict": p.verdict, "n": p.n}
        rows.append(row)
    return sorted(rows, key=lambda r: -r["miou"][0] if math.isfinite(r["miou"][0]) else math.inf)


def _ci(v: tuple[float, float, float]) -> str:
    m, lo, hi = v
    return f"{m:.4f} [{lo:.4f}, {hi:.4f}]" if math.isfinite(lo) else f"{m:.4f}"


def _vs(row: dict[str, Any], base: str) -> str:
    v = row.get(f"vs_{base}")
    if v is None:
        return "–"
    if not math.isfinite(v["low"]):
        return f"{v['verdict']} (n={v['n']})"
    return f"{v['verdict']} ({v['diff']:+.4f} [{v['low']:+.4f}, {v['high']:+.4f}])"


def summary_markdown(results: dict[str, Any]) -> str:
    cfg, rows = results["config"], results["summary"]
    bases = [b for b in ("relu", "gelu") if b in cfg["acts"]]
    lines = ["# Semantic segmentation: Fashion-MNIST canvases", "",
             f"`learnact bench segment` (preset {cfg['preset']}): {cfg['size']}x{cfg['size']} "
             f"canvases of {cfg['items']} Fashion-MNIST items, 11 classes (ten and the "
             f"background), {cfg['n_train']} training and {cfg['n_test']} test canvases; an "
             f"encoder-decoder of width {cfg['width']}, {cfg['epochs']} epochs, Adam "
             f"{cfg['lr']:g}, batch {cfg['batch_size']}, seeds {cfg['seeds']}, DiTAC's prior "
             f"{'on' if cfg['prior'] else 'off'}. Labelling every pixel background scores "
             f"pixel accuracy {results['baselines']['all_background_pixel_accuracy']:.4f}.", "",
             "| rank | activation | mean IoU: mean [95% interval] | per seed | pixel accuracy: "
             "mean [95% interval] | " + "".join(f"vs `{b}` (IoU) | " for b in bases)
             + "act. params |",
             "|---:|---|---:|---|---:|" + "---|" * len(bases) + "---:|"]
    for i, r in enumerate(rows, 1):
        seeds = ", ".join(f"{v:.4f}" for _, v in sorted(r["per_seed"].items()))
        lines.append(f"| {i} | `{r['act']}` | {_ci(r['miou'])} | {seeds} | "
                     f"{_ci(r['pixel_accuracy'])} | "
                     + "".join(f"{_vs(r, b)} | " for b in bases) + f"{r['params']} |")
    lines += ["", "Verdicts compare the mean IoU seed by seed (better: a higher IoU, the whole "
              "95% interval of the difference above zero).", "",
              "![test canvases, labels and predictions](predictions.png)", ""]
    return "\n".join(lines)


def _plot(x: Tensor, y: Tensor, preds: dict[str, Tensor], path: Path) -> None:
    from ..viz.curves import _plt, save_figure

    plt = _plt()
    rows = 2 + len(preds)
    fig, axes = plt.subplots(rows, x.shape[0], figsize=(x.shape[0] * 1.1 + 1.6, rows * 1.1),
                             dpi=100, squeeze=False)
    panels = [("canvas", x[:, 0], "gray"), ("labels", y, "tab20")] + [
        (a, p, "tab20") for a, p in preds.items()]
    for r, (name, imgs, cmap) in enumerate(panels):
        for c in range(x.shape[0]):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            ax.imshow(imgs[c].numpy(), cmap=cmap, vmin=0, vmax=1 if cmap == "gray" else 19,
                      interpolation="nearest")
        axes[r, 0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=7)
    fig.subplots_adjust(left=0.22, wspace=0.05, hspace=0.05)
    save_figure(fig, path)


def add_subcommand(bench: argparse._SubParsersAction) -> None:
    from .args import add_prior_flag, positive_float, positive_int, seeds, split_specs

    p = bench.add_parser("segment", help="semantic segmentation of Fashion-MNIST canvases: "
                         "mean IoU and pixel accuracy per activation (the DiTAC paper's task)")
    p.add_argument("--acts", type=split_specs, help="comma list of specs (default: relu, gelu, "
                   "prelu, silu, ditac and every learnable family)")
    p.add_argument("--preset", default="main", choices=sorted(PRESETS),
                   help="main (default: about 10 min on 2 cores) or tiny")
    p.add_argument("--seeds", type=seeds, help="e.g. 0,1,2 (default)")
    p.add_argument("--epochs", type=positive_int, help="epochs (default 6)")
    p.add_argument("--width", type=positive_int, help="network width w (default 12)")
    p.add_argument("--size", type=positive_int, help="canvas side (default 48)")
    p.add_argument("--items", type=positive_int, help="items per canvas (default 3)")
    p.add_argument("--n-train", type=positive_int, help="training canvases (default 1200)")
    p.add_argument("--n-test", type=positive_int, help="test canvases (default 300)")
    p.add_argument("--lr", type=positive_float, help="Adam learning rate (default 5e-3)")
    p.add_argument("--batch-size", type=positive_int, help="batch size (default 32)")
    p.add_argument("--data-dir", help="directory with the Fashion-MNIST IDX files")
    p.add_argument("--threads", type=positive_int, help="torch intra-op threads")
    p.add_argument("--out", help="run directory (default runs/segment-<timestamp>)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_prior_flag(p)

    def _cmd(args: argparse.Namespace) -> int:
        cfg = make_config(args.preset, acts=args.acts, seeds=args.seeds, epochs=args.epochs,
                          width=args.width, size=args.size, items=args.items,
                          n_train=args.n_train, n_test=args.n_test, lr=args.lr,
                          batch_size=args.batch_size, data_dir=args.data_dir,
                          threads=args.threads, out=args.out, quiet=args.quiet or None,
                          prior=False if args.no_prior else None)
        path = run_segment(cfg)
        print(f"results: {path}/results.json\nsummary: {path}/summary.md")
        print("\n".join(ln for ln in (path / "summary.md").read_text().splitlines()
                        if ln.startswith("|")))
        return 0

    p.set_defaults(func=_cmd)
