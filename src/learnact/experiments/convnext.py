"""ConvNeXt-style classifier on Fashion-MNIST: ``learnact train convnext``.

A small ConvNeXt (Liu et al. 2022): patchify stem, blocks of depthwise 7x7 conv -> LayerNorm ->
Linear(d, 4d) -> activation under test -> Linear(4d, d) -> layer scale (1e-6) -> residual,
LayerNorm + 2x2 stride-2 downsampling between stages, global average pool, LayerNorm, linear
head. Test accuracy after every epoch, per activation and seed.

Run manual
----------
One CPU (``cpu`` preset: 5 activations x 2 seeds, 20k training images, 3 epochs)::

    learnact train convnext --preset cpu

One GPU / N GPUs / several nodes (DDP; rank-offset batches; rank 0 writes)::

    learnact train convnext --preset gpu --device cuda --compile
    learnact train convnext --device cuda --compile --train-limit 0
    torchrun --nproc_per_node=8 -m learnact train convnext --train-limit 0 --steps 20000
    torchrun --nnodes=2 --nproc_per_node=8 --rdzv-backend=c10d --rdzv-endpoint=HOST:29500 \\
        -m learnact train convnext --train-limit 0

Data: Debian ``dataset-fashion-mnist`` (or ``--data-dir`` with the IDX files).
``--resume RUN_DIR`` finishes an interrupted run from its checkpoints.
"""

from __future__ import annotations

import argparse
import logging
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .charlm import make_activation
from .args import (add_prior_flag, device, limit, positive_float, positive_int, seeds,
                   split_specs)
from .common import Dist, RunDir, require_plots
from .trainer import (TRAINER_ACTS, OptimConfig, RunOptions, Task, configure, launch,
                      print_summary, run_comparison)
from .._text import plain

log = logging.getLogger(__name__)

__all__ = ["ConvNeXt", "ConvNeXtConfig", "PRESETS", "build_model", "run_convnext"]

MEAN, STD = 0.2860, 0.3530  # Fashion-MNIST pixel statistics (train set)


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of an NCHW tensor."""

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class Block(nn.Module):
    def __init__(self, dim: int, act: str, layer_scale: float = 1e-6) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, 7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.act = make_activation(act)  # the activation under test (channels-last input)
        self.pwconv2 = nn.Linear(4 * dim, dim)
        self.gamma = nn.Parameter(torch.full((dim,), layer_scale))

    def forward(self, x: Tensor) -> Tensor:
        h = self.dwconv(x).permute(0, 2, 3, 1)
        h = self.pwconv2(self.act(self.pwconv1(self.norm(h))))
        return x + (self.gamma * h).permute(0, 3, 1, 2)


class ConvNeXt(nn.Module):
    def __init__(self, act: str = "gelu", dims: tuple[int, ...] = (32, 64, 128),
                 depths: tuple[int, ...] = (1, 1, 2), classes: int = 10) -> None:
        super().__init__()
        if len(dims) != len(depths) or not dims:
            raise ValueError(f"dims and depths need the same non-zero length, got {dims}, {depths}")
        layers: list[nn.Module] = [nn.Conv2d(1, dims[0], 2, stride=2), LayerNorm2d(dims[0])]
        for i, (d, n) in enumerate(zip(dims, depths)):
            if i > 0:
                layers += [LayerNorm2d(dims[i - 1]), nn.Conv2d(dims[i - 1], d, 2, stride=2)]
            layers += [Block(d, act) for _ in range(n)]
        self.features = nn.Sequential(*layers)
        self.norm = nn.LayerNorm(dims[-1])
        self.head = nn.Linear(dims[-1], classes)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        h = self.features((x - MEAN) / STD)
        return self.head(self.norm(h.mean((2, 3))))


def build_model(spec: str, dims: tuple[int, ...] | list[int] = (32, 64, 128),
                depths: tuple[int, ...] | list[int] = (1, 1, 2)) -> ConvNeXt:
    return ConvNeXt(spec, tuple(dims), tuple(depths))


@dataclass
class ConvNeXtConfig(RunOptions):
    preset: str = "cpu"
    acts: list[str] = field(default_factory=lambda: list(TRAINER_ACTS))
    seeds: list[int] = field(default_factory=lambda: [0, 1])
    dims: list[int] = field(default_factory=lambda: [32, 64, 128])
    depths: list[int] = field(default_factory=lambda: [1, 1, 2])
    batch_size: int = 64
    epochs: int = 3
    train_limit: int | None = 20000
    test_limit: int | None = None
    data_dir: str | None = None
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(
        lr=4e-3, min_lr=1e-4, warmup=50, weight_decay=0.05))


PRESETS: dict[str, dict[str, Any]] = {
    "cpu": {},
    # one GPU (learnact train convnext --preset gpu --device cuda --compile): a ConvNeXt-T-like
    # shape at 28x28, all 60k images, 10 epochs, 3 seeds; not yet timed on a GPU
    "gpu": {"seeds": [0, 1, 2], "dims": [64, 128, 256], "depths": [2, 2, 6], "batch_size": 256,
            "epochs": 10, "train_limit": None},
    "tiny": {"acts": ["gelu", "hermite:degree=4"], "seeds": [0], "dims": [8, 16],
             "depths": [1, 1], "batch_size": 16, "epochs": 2, "train_limit": 160,
             "test_limit": 64},
}


def make_config(preset: str = "cpu", **overrides: Any) -> ConvNeXtConfig:
    """Preset values, then the non-None overrides (optimiser keys go to ``cfg.optim``)."""
    return configure(ConvNeXtConfig, PRESETS, preset, **overrides)


def make_task(cfg: ConvNeXtConfig, d: Dist) -> Task:
    from ..data import load_fashion_mnist

    xtr, ytr = load_fashion_mnist("train", cfg.data_dir, cfg.train_limit)
    xte, yte = load_fashion_mnist("test", cfg.data_dir, cfg.test_limit)
    # data-parallel groups: the ranks of one tensor-parallel group (--tp) share their batches
    dp_world = d.world // max(1, cfg.tp)
    steps_per_epoch = max(1, math.ceil(xtr.shape[0] / (cfg.batch_size * dp_world)))
    cfg.optim.steps = steps_per_epoch * cfg.epochs
    cfg.optim.eval_every = steps_per_epoch

    def batch(micro: int, gen: torch.Generator):
        idx = torch.randint(0, xtr.shape[0], (cfg.batch_size,), generator=gen)
        return xtr[idx], ytr[idx].long()

    def loss(net: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        return F.cross_entropy(net(x).float(), y)

    def evaluate(model: nn.Module, dd: Dist) -> dict[str, float]:
        tot = torch.zeros(3, dtype=torch.float64, device=dd.device)
        n = xte.shape[0]
        batches = math.ceil(n / 512)
        for i in dd.dp_share(batches):  # i >= batches: run, not counted
            s = 512 * (i % batches)
            x, y = xte[s:s + 512].to(dd.device), yte[s:s + 512].long().to(dd.device)
            logits = model(x).float()
            if i < batches:
                tot[0] += float(F.cross_entropy(logits, y, reduction="sum"))
                tot[1] += float((logits.argmax(1) == y).sum())
                tot[2] += y.numel()
        dd.all_reduce_sum(tot)
        return {"test_loss": float(tot[0] / tot[2]), "test_accuracy": float(tot[1] / tot[2])}

    task_cfg = {"dims": list(cfg.dims), "depths": list(cfg.depths), "batch_size": cfg.batch_size,
                "train_limit": cfg.train_limit, "test_limit": cfg.test_limit,
                "epochs": cfg.epochs}
    return Task("convnext", task_cfg, lambda spec: build_model(spec, cfg.dims, cfg.depths),
                batch, loss, evaluate, tp_plan=tp_plan, blocks=blocks)


def blocks(model: nn.Module) -> list[nn.Module]:
    """The ConvNeXt blocks (one FSDP2 unit each under ``--tp`` with several data-parallel
    groups)."""
    return [m for m in model.modules() if isinstance(m, Block)]


def tp_plan(model: nn.Module) -> dict[str, Any]:
    """``--tp``: every block's MLP split over its 4 dim hidden channels (channels-last
    ``pwconv1`` column-wise, the activation on its rank's channels via ``ChannelParallel``, a
    non-learnact activation on the local slice as it is, ``pwconv2`` row-wise); the stems,
    depthwise convolutions, norms and head stay replicated."""
    from torch.distributed.tensor.parallel import ColwiseParallel, RowwiseParallel

    from ..distributed import ChannelParallel

    plan: dict[str, Any] = {}
    for name, m in model.named_modules():
        if isinstance(m, Block):
            plan[f"{name}.pwconv1"] = ColwiseParallel()
            if hasattr(m.act, "family"):
                plan[f"{name}.act"] = ChannelParallel()
            plan[f"{name}.pwconv2"] = RowwiseParallel()
    return plan


def run_convnext(cfg: ConvNeXtConfig, resume: str | None = None) -> Path | None:
    """Train every (activation, seed); rank 0 writes the run directory. Returns its path."""
    require_plots("learnact bench convnext")
    return launch(cfg.device, lambda d: _run(cfg, d, resume))


def _run(cfg: ConvNeXtConfig, d: Dist, resume: str | None) -> Path | None:
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    task = make_task(cfg, d)
    results: dict[str, Any] = {"task": "convnext", "config": asdict(cfg), "runs": [],
                               "world_size": d.world}
    return run_comparison(task, cfg, d, resume, results,
                          lambda spec: {"dims": list(cfg.dims), "depths": list(cfg.depths)},
                          write_report)


def write_report(run: RunDir, results: dict[str, Any]) -> None:
    from ..viz.curves import plot_loss_curves

    acc: dict[str, list[list[float]]] = {}
    for r in results["runs"]:
        acc.setdefault(r["act"], []).append([1 - e["test_accuracy"] for e in r["evals"]])
    plot_loss_curves(acc, run.path / "test_error.png", ylabel="test error (1 - accuracy)",
                     title="ConvNeXt on Fashion-MNIST: test error per epoch", log=True)
    cfg = results["config"]
    by = {a: [r["evals"][-1]["test_accuracy"] if r["evals"] else float("nan")
              for r in results["runs"] if r["act"] == a] for a in acc}
    lines = [f"# ConvNeXt-style classifier on Fashion-MNIST ({cfg['preset']} preset)", "",
             f"dims {cfg['dims']}, depths {cfg['depths']}, batch {cfg['batch_size']} x world "
             f"{results['world_size']}, {cfg['epochs']} epochs over "
             f"{cfg['train_limit'] or 60000} training images, AdamW lr {cfg['optim']['lr']:g} "
             f"(cosine), wd {cfg['optim']['weight_decay']:g}; test on "
             f"{cfg['test_limit'] or 10000} images.", "",
             "| rank | activation | final test accuracy (mean) | per seed | per epoch (seed "
             "of the first run) |", "|---:|---|---:|---|---|"]
    order = sorted(by, key=lambda a: -np.nanmean(by[a]))
    for i, a in enumerate(order, 1):
        first = next(r for r in results["runs"] if r["act"] == a)
        per_epoch = ", ".join(f"{e['test_accuracy']:.4f}" for e in first["evals"])
        lines.append(f"| {i} | `{a}` | {np.nanmean(by[a]):.4f} | "
                     f"{', '.join(f'{v:.4f}' for v in by[a])} | {per_epoch} |")
    lines += ["", "![test error](test_error.png)"]
    run.write_text("summary.md", "\n".join(lines) + "\n")


def _cmd(args: argparse.Namespace) -> int:
    cfg = make_config(args.preset, acts=split_specs(args.acts) if args.acts else None,
                      seeds=args.seeds, epochs=args.epochs,
                      batch_size=args.batch_size, lr=args.lr,
                      train_limit=limit(args.train_limit) if args.train_limit else None,
                      data_dir=args.data_dir, compile=args.compile or None,
                      stop_after=args.stop_after, device=args.device, threads=args.threads,
                      out=args.out, check_sync=args.check_sync or None, record=args.record or None,
                      tp=args.tp, prior=False if args.no_prior else None,
                      quiet=args.quiet or None)
    if args.train_limit and limit(args.train_limit) is None:
        cfg.train_limit = None
    path = run_convnext(cfg, resume=args.resume)
    print_summary(path)
    return 0


def add_subcommand(train: argparse._SubParsersAction) -> None:
    p = train.add_parser("convnext", help="small ConvNeXt on Fashion-MNIST, activation by spec",
                         description=plain(__doc__), formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="cpu", choices=sorted(PRESETS))
    p.add_argument("--acts", help="comma list of specs; SPEC@TARGET fits SPEC to TARGET first")
    p.add_argument("--seeds", type=seeds)
    p.add_argument("--epochs", type=positive_int)
    p.add_argument("--batch-size", type=positive_int)
    p.add_argument("--lr", type=positive_float)
    p.add_argument("--train-limit", help="number of training images (0 or 'all': 60000)")
    p.add_argument("--data-dir")
    p.add_argument("--compile", action="store_true")
    p.add_argument("--stop-after", type=positive_int, help="stop after N steps (as if interrupted)")
    p.add_argument("--device", type=device)
    p.add_argument("--threads", type=positive_int)
    p.add_argument("--out")
    p.add_argument("--resume")
    p.add_argument("--tp", type=positive_int, default=None,
                   help="tensor parallel: split every block's MLP (and its activation) over N "
                        "ranks (torchrun with a multiple of N processes; the rest: FSDP2)")
    p.add_argument("--check-sync", action="store_true")
    p.add_argument("--record", action="store_true",
                   help="histograms of activation inputs and loss derivatives per evaluation "
                        "interval (learnact plot sampling RUN_DIR)")
    p.add_argument("--quiet", action="store_true")
    add_prior_flag(p)
    p.set_defaults(func=_cmd)
