"""Image generation, the DiTAC paper's third task family, at CPU scale: ``learnact bench generate``.

A small convolutional VAE on Fashion-MNIST per activation and seed, scored by the test-set
negative ELBO in bits per dimension (lower is better). Why a VAE and this number: the ELBO is
a bound on the model's own log-likelihood of held-out images, computed exactly from the model
(no auxiliary network, unlike a Frechet distance, whose value depends on the feature network
and on the sample size); pixels are binarised (training: resampled every batch from the grey
levels; test: one fixed draw), so the likelihood is a proper discrete one and bits/dim are
comparable between runs. One sample of z per test image with a fixed noise seed (the same for
every activation) makes the score deterministic.

Run manual::

    learnact bench generate                         # every family + gelu, relu, silu; 3 seeds
    learnact bench generate --acts gelu,tropical --seeds 0,1,2 --epochs 6

Architecture: encoder Conv(1, w, 4, s2) -> act -> BN -> Conv(w, 2w, 4, s2) -> act -> BN ->
Linear(2w 7 7, 2 L) (mean and log-variance of z); decoder Linear(L, 2w 7 7) -> act -> BN ->
ConvT(2w, w, 4, s2) -> act -> BN -> ConvT(w, 1, 4, s2) (Bernoulli logits); w = 16, L = 16;
four activations, one fresh ``create(spec)`` each (shared parameters). Adam, constant
learning rate, DiTAC's prior in the loss (``--no-prior`` leaves it out).

Writes results.json, summary.md (the rank table with 95% intervals and paired verdicts against
GELU, ReLU and SiLU), curves.png (test bits/dim per epoch) and samples-<act>.png (64 decoded
draws z ~ N(0, I), the first seed's model, the same z for every activation) plus samples.png
(8 per activation, one row each).
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
from .common import (Dist, RunDir, progress, require_plots, setup_distributed, spec_slug,
                     teardown_distributed)
from .trainer import OptimConfig, Task

__all__ = ["GenerateConfig", "VAE", "default_acts", "make_config", "run_generate", "nelbo"]

LN2 = math.log(2.0)
DIMS = 28 * 28


def default_acts() -> list[str]:
    """GELU, ReLU, SiLU and every learnable family's main-job spec (the autoencoder's list)."""
    return ["gelu", "relu", "silu"] + [spec for cls in FAMILIES for spec in cls.main_job_specs]


@dataclass
class GenerateConfig:
    """Resolved configuration (saved as config.json)."""

    preset: str = "main"
    acts: list[str] = field(default_factory=default_acts)
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    width: int = 16
    latent: int = 16
    train_limit: int | None = 4000
    test_limit: int | None = 1000
    epochs: int = 3
    batch_size: int = 64
    lr: float = 2e-3
    prior: bool = True
    data_dir: str | None = None
    threads: int | None = None
    out: str | None = None
    quiet: bool = False


PRESETS: dict[str, dict[str, Any]] = {
    # every family x 3 seeds in <= 10 minutes on 2 cores
    "main": {},
    # seconds: tests and smoke runs
    "tiny": dict(width=8, latent=8, train_limit=512, test_limit=256, epochs=2, batch_size=64,
                 seeds=[0, 1]),
}


def make_config(preset: str = "main", **overrides: Any) -> GenerateConfig:
    """Preset values, then explicit overrides (None keeps the preset's value); every value is
    checked before anything runs."""
    cfg = trainer.configure(GenerateConfig, PRESETS, preset, **overrides)
    for k in ("width", "latent", "epochs", "batch_size"):
        if getattr(cfg, k) < 1:
            raise ValueError(f"--{k.replace('_', '-')} must be >= 1, got {getattr(cfg, k)}")
    if not cfg.lr > 0:
        raise ValueError(f"--lr must be > 0, got {cfg.lr}")
    if not cfg.acts or not cfg.seeds:
        raise ValueError("--acts and --seeds must not be empty")
    for spec in cfg.acts:
        parse_spec(spec)
        create(spec)  # an unknown name or a bad argument fails here, before any training
    return cfg


class VAE(nn.Module):
    """The convolutional VAE of the module docstring; ``act(channels)`` makes each activation."""

    def __init__(self, act: Any, width: int = 16, latent: int = 16) -> None:
        super().__init__()
        w = width
        self.latent = latent
        self.encoder = nn.Sequential(
            nn.Conv2d(1, w, 4, 2, 1), act(w), nn.BatchNorm2d(w),
            nn.Conv2d(w, 2 * w, 4, 2, 1), act(2 * w), nn.BatchNorm2d(2 * w),
            nn.Flatten(), nn.Linear(2 * w * 49, 2 * latent))
        self.decoder = nn.Sequential(
            nn.Linear(latent, 2 * w * 49), act(0), nn.BatchNorm1d(2 * w * 49),
            nn.Unflatten(1, (2 * w, 7, 7)),
            nn.ConvTranspose2d(2 * w, w, 4, 2, 1), act(w), nn.BatchNorm2d(w),
            nn.ConvTranspose2d(w, 1, 4, 2, 1))

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        h = self.encoder(x)
        mu, logvar = h[:, :self.latent], h[:, self.latent:].clamp(-12.0, 8.0)
        return mu, logvar

    def forward(self, x: Tensor, eps: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """(Bernoulli logits of x given a sampled z, mu, logvar)."""
        mu, logvar = self.encode(x)
        if eps is None:
            eps = torch.randn_like(mu)
        z = mu + torch.exp(0.5 * logvar) * eps
        return self.decoder(z), mu, logvar


def build_vae(spec: str, width: int = 16, latent: int = 16) -> VAE:
    return VAE(lambda c: create(spec), width, latent)


def nelbo(model: VAE, x: Tensor, eps: Tensor | None = None) -> Tensor:
    """Per-image negative ELBO in nats: -E_q[log p(x|z)] + KL(q(z|x) || N(0, I)), one z."""
    logits, mu, logvar = model(x, eps)
    rec = F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)
    kl = 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(1)
    return rec + kl


def _binarised_test(x: Tensor) -> Tensor:
    return torch.bernoulli(x, generator=torch.Generator().manual_seed(12345))


@torch.no_grad()
def test_bits_per_dim(model: VAE, x: Tensor, batch: int = 500) -> float:
    """Mean negative ELBO of the (binarised) test images in bits/dim, with a fixed z noise."""
    gen = torch.Generator().manual_seed(777)
    eps_all = torch.randn(x.shape[0], model.latent, generator=gen)
    total = 0.0
    for i in range(0, x.shape[0], batch):
        total += float(nelbo(model, x[i:i + batch], eps_all[i:i + batch]).double().sum())
    return total / (x.shape[0] * DIMS * LN2)


def pixel_baseline_bits(xtr: Tensor, xte_bin: Tensor) -> float:
    """Bits/dim of independent Bernoulli pixels with the training frequencies (no model)."""
    p = xtr.mean(0, keepdim=True).clamp(1e-4, 1 - 1e-4)
    nll = -(xte_bin * torch.log(p) + (1 - xte_bin) * torch.log1p(-p)).sum() / xte_bin.numel()
    return float(nll) / LN2


def make_task(cfg: GenerateConfig, xtr: Tensor, xte_bin: Tensor) -> Task:
    def stream(seed: int, d: Dist):
        gen = torch.Generator().manual_seed(seed)
        while True:  # shuffled epochs (this rank's share), each image binarised afresh
            for b in _batches(xtr.shape[0], cfg.batch_size, gen, d):
                xb = torch.bernoulli(xtr[b], generator=gen)
                yield xb, xb

    def evaluate(model: nn.Module, d: Dist) -> dict[str, float]:
        return {"test_bpd": test_bits_per_dim(model, xte_bin)}

    def loss(net: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        return nelbo(net, x).mean() / DIMS  # nats per dimension (the optimiser's scale)

    return Task("generate", {"width": cfg.width, "latent": cfg.latent},
                lambda spec: build_vae(spec, cfg.width, cfg.latent), None, loss, evaluate, stream)


@torch.no_grad()
def samples(model: VAE, n: int = 64) -> Tensor:
    """Bernoulli means of n decoded draws z ~ N(0, I) (a fixed seed: the same z everywhere)."""
    model.eval()
    z = torch.randn(n, model.latent, generator=torch.Generator().manual_seed(2024))
    return torch.sigmoid(model.decoder(z)).squeeze(1)


def _save_grid(images: Tensor, path: Path, cols: int = 8, title: str = "") -> None:
    from ..viz.curves import _plt, save_figure

    plt = _plt()
    rows = math.ceil(images.shape[0] / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 0.9, rows * 0.9 + 0.4), dpi=100,
                             squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < images.shape[0]:
            ax.imshow(images[i].numpy(), cmap="gray", vmin=0, vmax=1)
    if title:
        fig.suptitle(title, fontsize=9)
    save_figure(fig, path)


def _save_rows(rows: dict[str, Tensor], path: Path, per_row: int = 8) -> None:
    from ..viz.curves import _plt, save_figure

    plt = _plt()
    fig, axes = plt.subplots(len(rows), per_row, figsize=(per_row * 0.8 + 2.2, len(rows) * 0.8),
                             dpi=100, squeeze=False)
    for r, (name, imgs) in enumerate(rows.items()):
        for c in range(per_row):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            ax.imshow(imgs[c].numpy(), cmap="gray", vmin=0, vmax=1)
        axes[r, 0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=7)
    fig.subplots_adjust(left=0.25, wspace=0.05, hspace=0.05)
    save_figure(fig, path)


def run_generate(cfg: GenerateConfig) -> Path:
    """Train every (activation, seed), write the records, figures and summary; returns the
    run directory. One process (the model is small); the data must be installed."""
    require_plots("learnact bench generate")
    d = setup_distributed("cpu")
    try:
        if d.world > 1:
            raise ValueError("learnact bench generate runs in one process (no torchrun)")
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        run = RunDir(cfg.out or str(RunDir.default("generate")), "generate")
        xtr, _ = load_fashion_mnist("train", cfg.data_dir, cfg.train_limit)
        xte, _ = load_fashion_mnist("test", cfg.data_dir, cfg.test_limit)
        xte_bin = _binarised_test(xte)
        run.write_json("config.json", asdict(cfg))
        base = pixel_baseline_bits(xtr, xte_bin)
        results: dict[str, Any] = {"task": "generate", "config": asdict(cfg), "runs": [],
                                   "baselines": {"independent_pixels_bpd": base}}
        task = make_task(cfg, xtr, xte_bin)
        every = math.ceil(xtr.shape[0] / cfg.batch_size)
        o = OptimConfig.plain(cfg.epochs * every, cfg.lr, every, "adam")
        grids: dict[str, Tensor] = {}
        with progress(len(cfg.acts) * len(cfg.seeds) * o.steps, "generate",
                      enabled=not cfg.quiet) as bar:
            for spec in cfg.acts:
                for seed in cfg.seeds:
                    rec = trainer.train_one(task, spec, seed, o, d, bar=bar, prior=cfg.prior)
                    model = rec.pop("_model")
                    evals = rec["evals"]
                    results["runs"].append({
                        "act": spec, "seed": seed, "params": rec["params"],
                        "act_params": sum(p.numel() for p in activation_parameters(model)),
                        "diverged": rec["diverged"] or not all(math.isfinite(e["test_bpd"]) for e in evals),
                        "epochs": [{"epoch": i + 1, "train_loss": e["train_loss"],
                                    "test_bpd": e["test_bpd"], "seconds": e["seconds"]}
                                   for i, e in enumerate(evals)]})
                    run.write_json("results.json", results)
                    if seed == cfg.seeds[0] and not results["runs"][-1]["diverged"]:
                        imgs = samples(model)
                        grids[spec] = imgs
                        _save_grid(imgs, run.path / f"samples-{spec_slug(spec)}.png", title=spec)
        if grids:
            _save_rows(grids, run.path / "samples.png")
        _write_report(run, results)
        return run.path
    finally:
        teardown_distributed(d)


def _write_report(run: RunDir, results: dict[str, Any]) -> None:
    from ..viz.curves import plot_loss_curves
    from .report import markdown_rank_table, summarise_runs, verdict_lines

    cfg = results["config"]
    rows = summarise_runs(results["runs"], metric="test_bpd")
    curves: dict[str, list[list[float]]] = {}
    for r in results["runs"]:
        curves.setdefault(r["act"], []).append([e["test_bpd"] for e in r["epochs"]])
    plot_loss_curves(curves, run.path / "curves.png", ylabel="test negative ELBO (bits/dim)",
                     log=False, title="VAE on binarised Fashion-MNIST",
                     baseline=("independent pixels", results["baselines"]["independent_pixels_bpd"]))
    base = [b for b in ("gelu", "relu", "silu") if any(r["act"] == b for r in rows)]
    lines = ["# Image generation: a VAE on Fashion-MNIST", "",
             f"`learnact bench generate` (preset {cfg['preset']}): test negative ELBO in bits/dim "
             f"(lower is better) of a convolutional VAE (width {cfg['width']}, latent "
             f"{cfg['latent']}), {cfg['train_limit'] or 60000} binarised training images, "
             f"{cfg['epochs']} epochs, Adam {cfg['lr']:g}, batch {cfg['batch_size']}, seeds "
             f"{cfg['seeds']}, DiTAC's prior {'on' if cfg['prior'] else 'off'}; "
             f"{cfg['test_limit'] or 10000} test images (one fixed binarisation, one fixed z "
             "noise).", "",
             f"Independent Bernoulli pixels at the training frequencies (no model): "
             f"**{results['baselines']['independent_pixels_bpd']:.4f}** bits/dim.", "",
             markdown_rank_table(rows, "test bits/dim", "–", baselines=tuple(base)), ""]
    for b in base:
        lines += verdict_lines(rows, b, {"gelu": "GELU", "relu": "ReLU", "silu": "SiLU"}[b])
    lines += ["![test bits/dim per epoch](curves.png)", "",
              "Samples (decoded z ~ N(0, I), the same z for every activation; first seed):", "",
              "![samples](samples.png)", ""]
    (run.path / "summary.md").write_text("\n".join(lines))


def add_subcommand(bench: argparse._SubParsersAction) -> None:
    from .args import add_prior_flag, limit, positive_float, positive_int, seeds, split_specs

    p = bench.add_parser("generate", help="image generation: a VAE on Fashion-MNIST, test "
                         "bits/dim per activation (the DiTAC paper's third task family)")
    p.add_argument("--acts", type=split_specs, help="comma list of specs (default: gelu, relu, "
                   "silu and every learnable family)")
    p.add_argument("--preset", default="main", choices=sorted(PRESETS),
                   help="main (default: <= 10 min on 2 cores) or tiny")
    p.add_argument("--seeds", type=seeds, help="e.g. 0,1,2 (default)")
    p.add_argument("--epochs", type=positive_int, help="epochs (default 3)")
    p.add_argument("--width", type=positive_int, help="conv width w (default 16)")
    p.add_argument("--latent", type=positive_int, help="latent dimension (default 16)")
    p.add_argument("--lr", type=positive_float, help="Adam learning rate (default 2e-3)")
    p.add_argument("--batch-size", type=positive_int, help="batch size (default 64)")
    p.add_argument("--train-limit", type=limit, help="training images (default 4000; all: none)")
    p.add_argument("--test-limit", type=limit, help="test images (default 1000; all: none)")
    p.add_argument("--data-dir", help="directory with the Fashion-MNIST IDX files")
    p.add_argument("--threads", type=positive_int, help="torch intra-op threads")
    p.add_argument("--out", help="run directory (default runs/generate-<timestamp>)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_prior_flag(p)

    def _cmd(args: argparse.Namespace) -> int:
        cfg = make_config(args.preset, acts=args.acts, seeds=args.seeds, epochs=args.epochs,
                          width=args.width, latent=args.latent, lr=args.lr,
                          batch_size=args.batch_size, train_limit=args.train_limit,
                          test_limit=args.test_limit, data_dir=args.data_dir, threads=args.threads,
                          out=args.out, quiet=args.quiet or None,
                          prior=False if args.no_prior else None)
        path = run_generate(cfg)
        print(f"results: {path}/results.json\nsummary: {path}/summary.md\nsamples: {path}/samples.png")
        print("\n".join(ln for ln in (path / "summary.md").read_text().splitlines() if ln.startswith("|")))
        return 0

    p.set_defaults(func=_cmd)
