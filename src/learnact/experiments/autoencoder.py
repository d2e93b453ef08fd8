"""The main job: compare activations in a convolutional autoencoder on Fashion-MNIST.

One CPU::

    learnact bench autoencoder                          # preset main: 3 seeds, <= 15 min on 2 cores
    learnact bench autoencoder --preset quick --seeds 0,1,2   # longer runs (~1 h for 3 seeds)
    learnact bench autoencoder --preset blog --seeds 0,1,2
    learnact bench autoencoder --preset gpu --device cuda     # the blog's setting, 3 epochs
    learnact bench autoencoder --acts identity,gelu,hermite:degree=8 --epochs 5

Many GPUs (or CPU processes, gloo)::

    torchrun --nproc_per_node=4 -m learnact bench autoencoder --preset blog --device cuda

The network has no pooling, so every layer's nonlinearity matters and ``identity`` gives a
fully linear baseline (28x28 -> 16x1x1 -> 28x28). Every activation is a separate module
instance, so learnable ones learn per layer. Outputs (rank 0): ``config.json``,
``results.json`` (per activation, seed, epoch: train/test loss, seconds, parameter counts,
divergence), ``loss.png`` and ``summary.md``.
"""

from __future__ import annotations

import logging
import math
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
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
from .common import (Dist, RunDir, model_filename, progress, require_plots, save_model,
                     setup_distributed, teardown_distributed)
from .trainer import OptimConfig, Task
from .schema import read_autoencoder_results

log = logging.getLogger(__name__)

__all__ = ["AutoencoderConfig", "PRESETS", "build_autoencoder", "run_autoencoder",
           "default_acts", "layer_list", "merge_runs"]

CLASSICAL_DEFAULT = ("identity", "relu", "gelu", "silu", "tanh", "sigmoid", "rrelu")


def default_acts() -> list[str]:
    """The classical baselines plus the main-job specs of every registered learnable family
    (each family declares its own: ``main_job_specs``, e.g. Hermite with linear tails, since
    this network feeds its activations un-normalised, heavy-tailed inputs)."""
    learnable = [spec for cls in FAMILIES for spec in cls.main_job_specs]
    return list(CLASSICAL_DEFAULT) + ["prelu"] + learnable


@dataclass
class AutoencoderConfig:
    """Resolved configuration of one comparison (saved as config.json)."""

    preset: str = "main"
    acts: list[str] = field(default_factory=default_acts)
    channels: int = 16            # C: width of every hidden conv layer
    latent: int = 16              # L: latent channels at 1x1
    train_limit: int | None = 5000    # None: all 60k training images
    test_limit: int | None = 2000     # None: all 10k test images
    epochs: int = 4
    batch_size: int = 64
    lr: float = 2e-3
    optimizer: str = "adam"       # adam | adamw | sgd
    weight_decay: float = 0.0     # on the network weights; activation parameters never decay
    loss: str = "mse"             # mse | bce
    prior: bool = True            # add learnact.regularization(model) (DiTAC's prior) to the loss
    seeds: list[int] = field(default_factory=lambda: [0])
    per_channel: bool = False     # learnable activations with one parameter set per channel
    widths: list[int] | None = None   # sweep C (loss vs parameter count)
    lrs: list[float] | None = None    # sweep the learning rate (does the ranking change?)
    target_loss: float | None = None  # epochs-to-target column (default: identity's final loss)
    data_dir: str | None = None
    device: str = "cpu"
    threads: int | None = None
    out: str | None = None
    quiet: bool = False
    record: bool = False          # keep activation-input histograms (learnact.viz.Recorder)
    record_every: int = 8         # ... of one training batch in this many (overhead <= 15%)


#: preset ``long``: the blog's list (the -LU family, the saturating ones, Perlin noise at two
#: resolutions, the surrogate-derivative activations) and every learnable family's main-job spec
LONG_ACTS = ("identity", "relu", "gelu", "silu", "elu", "selu", "prelu", "rrelu", "sigmoid",
             "tanh", "perlin", "perlin:resolution=32", "cantor2", "staircase", "noisy",
             "left_right")


PRESETS: dict[str, dict[str, Any]] = {
    # the architecture of the reference experiment at full width and data
    "blog": dict(channels=128, latent=16, train_limit=None, test_limit=None, epochs=10,
                 batch_size=128, lr=1e-3),
    # the default (make main): 3 seeds, so that the summary's verdicts rest on intervals; every
    # activation of the default list in <= 15 min on 2 cores (measured 2026-11-30: one seed of
    # "quick" costs ~21 min on such a machine, so: fewer images and epochs, not fewer families)
    "main": dict(channels=16, latent=16, train_limit=2000, test_limit=1000, epochs=2,
                 batch_size=64, lr=2e-3, seeds=[0, 1, 2]),
    # same architecture, narrower and shorter than blog; one seed by default (~21 min)
    "quick": dict(channels=16, latent=16, train_limit=5000, test_limit=2000, epochs=4,
                  batch_size=64, lr=2e-3),
    # one GPU (learnact bench autoencoder --preset gpu --device cuda): the blog's architecture
    # and all 60k images, 3 epochs, 3 seeds. Sized by estimate, not yet timed on a GPU: time
    # one run first (--acts gelu --seeds 0) and set --epochs for the ~5 minutes the issue asks
    "gpu": dict(channels=128, latent=16, train_limit=None, test_limit=None, epochs=3,
                batch_size=256, lr=2e-3, seeds=[0, 1, 2]),
    # the blog's claims after long training, at the largest scale one CPU session allows (#38):
    # main's network and data, 10x its epochs, the blog's activations (its Perlin noise at two
    # resolutions, the surrogate-derivative ones) beside every learnable family; ~2 min per
    # activation-seed on one thread (Perlin ~6 min). Run seeds in parallel processes and join
    # them with --merge (docs/autoencoder-long-summary.md)
    "long": dict(channels=16, latent=16, train_limit=2000, test_limit=1000, epochs=20,
                 batch_size=64, lr=2e-3, seeds=[0, 1, 2], acts=LONG_ACTS),
    # seconds: for tests and smoke runs
    "tiny": dict(channels=8, latent=8, train_limit=1536, test_limit=256, epochs=2, batch_size=32,
                 lr=3e-3),
}


#: one line per preset, for --help
PRESET_NOTES: dict[str, str] = {
    "main": "the default (make main): C=16, 2000 images, 2 epochs, 3 seeds; <= 15 min on 2 "
            "cores",
    "quick": "C=16, 5000 images, 4 epochs, 1 seed; ~21 min on 2 cores",
    "blog": "the reference experiment: C=128, all 60k images, 10 epochs (hours on a CPU)",
    "gpu": "blog's architecture, all 60k images, 3 epochs, 3 seeds, on one GPU (--device cuda)",
    "long": "C=16, 2000 images, 20 epochs, 3 seeds, the blog's activations and every "
            "learnable family; ~2 min per activation-seed on one thread (join parallel runs "
            "with --merge)",
    "tiny": "C=8, 1536 images, 2 epochs: seconds, for tests and smoke runs",
}


def layer_list(channels: int = 128, latent: int = 16) -> list[tuple[str, dict[str, int]]]:
    """The exact layer list of preset ``blog`` (without activations/norms), for tests and docs."""
    c, l = channels, latent
    enc = [("Conv2d", dict(i=1, o=c, k=3, s=1))]
    enc += [("Conv2d", dict(i=c, o=c, k=3, s=1))] * 4
    enc += [("Conv2d", dict(i=c, o=c, k=3, s=3))] * 2
    enc += [("Conv2d", dict(i=c, o=l, k=2, s=1))]
    dec = [("ConvTranspose2d", dict(i=l, o=c, k=2, s=1))]
    dec += [("ConvTranspose2d", dict(i=c, o=c, k=3, s=3))] * 2
    dec += [("ConvTranspose2d", dict(i=c, o=c, k=3, s=1))] * 4
    dec += [("ConvTranspose2d", dict(i=c, o=1, k=3, s=1))]
    return enc + dec


class Autoencoder(nn.Module):
    """Conv autoencoder, no pooling and no padding: 28x28 -> latent x 1 x 1 -> 28x28."""

    def __init__(self, act: Callable[[int], nn.Module], channels: int = 128, latent: int = 16) -> None:
        super().__init__()
        enc: list[nn.Module] = []
        dec: list[nn.Module] = []
        specs = layer_list(channels, latent)
        for kind, p in specs[:8]:
            enc += [nn.Conv2d(p["i"], p["o"], p["k"], stride=p["s"]), act(p["o"]),
                    nn.BatchNorm2d(p["o"])]
        for kind, p in specs[8:-1]:
            dec += [nn.ConvTranspose2d(p["i"], p["o"], p["k"], stride=p["s"]), act(p["o"]),
                    nn.BatchNorm2d(p["o"])]
        last = specs[-1][1]
        dec += [nn.ConvTranspose2d(last["i"], last["o"], last["k"], stride=last["s"]), nn.Sigmoid()]
        self.encoder = nn.Sequential(*enc)
        self.decoder = nn.Sequential(*dec)

    def forward(self, x: Tensor) -> Tensor:
        return self.decoder(self.encoder(x))


def build_autoencoder(spec: str, channels: int = 128, latent: int = 16,
                      per_channel: bool = False) -> Autoencoder:
    """The autoencoder with a fresh ``create(spec)`` after every conv layer."""
    name, _ = parse_spec(spec)

    def act(c: int) -> nn.Module:
        if per_channel:
            return create(spec, channels=c, channel_dim=1)
        return create(spec)

    return Autoencoder(act, channels, latent)


def _loss_fn(kind: str) -> Callable[[Tensor, Tensor], Tensor]:
    if kind == "mse":
        return F.mse_loss
    if kind == "bce":
        return F.binary_cross_entropy
    raise ValueError(f"loss must be 'mse' or 'bce', got {kind!r}")


def validate(cfg: AutoencoderConfig) -> AutoencoderConfig:
    """Every check that can fail, before any data is read or any training starts."""
    if cfg.preset not in PRESETS:
        raise ValueError(f"--preset must be one of {sorted(PRESETS)}, got {cfg.preset!r}")
    if not cfg.acts:
        raise ValueError("--acts is empty: give at least one activation spec")
    for spec in cfg.acts:
        create(spec)  # unknown names and bad parameters fail here, with suggestions
    for name, lo in (("epochs", 1), ("channels", 1), ("latent", 1), ("batch_size", 1)):
        v = getattr(cfg, name)
        if not isinstance(v, int) or isinstance(v, bool) or v < lo:
            raise ValueError(f"--{name.replace('_', '-')} must be an integer >= {lo}, got {v!r}")
    for name in ("train_limit", "test_limit"):
        v = getattr(cfg, name)
        if v is not None and (not isinstance(v, int) or v < 1):
            raise ValueError(f"--{name.replace('_', '-')} must be a positive integer or None")
    if not (isinstance(cfg.lr, (int, float)) and cfg.lr > 0 and math.isfinite(cfg.lr)):
        raise ValueError(f"--lr must be a positive number, got {cfg.lr!r}")
    if not cfg.seeds:
        raise ValueError("--seeds is empty")
    _loss_fn(cfg.loss)
    if cfg.optimizer not in ("adam", "adamw", "sgd"):
        raise ValueError(f"--optimizer must be adam, adamw or sgd, got {cfg.optimizer!r}")
    for w in cfg.widths or []:
        if w < 1:
            raise ValueError(f"--widths must be positive integers, got {w}")
    for lr in cfg.lrs or []:
        if not lr > 0:
            raise ValueError(f"--lrs must be positive, got {lr}")
    return cfg


def make_config(preset: str = "main", **overrides: Any) -> AutoencoderConfig:
    """Preset values, then explicit overrides (``None`` means: keep the preset's value).

    Unknown keys are errors (nanoGPT's configurator habit, without the exec).
    """
    if preset not in PRESETS:
        raise ValueError(f"--preset must be one of {sorted(PRESETS)}, got {preset!r}")
    known = {f.name for f in fields(AutoencoderConfig)}
    bad = set(overrides) - known
    if bad:
        raise ValueError(f"unknown config key(s) {sorted(bad)}; known: {sorted(known)}")
    values = dict(PRESETS[preset])
    if values.get("acts") is LONG_ACTS:  # the learnable families are known only at run time
        values["acts"] = list(LONG_ACTS) + [a for a in default_acts() if a not in LONG_ACTS]
    base = replace(AutoencoderConfig(), preset=preset,
                   **{k: list(v) if isinstance(v, list) else v for k, v in values.items()})
    return validate(replace(base, **{k: v for k, v in overrides.items() if v is not None}))


def _batches(n: int, batch: int, generator: torch.Generator, d: Dist) -> list[Tensor]:
    """This rank's share of each global batch of a shuffled epoch.

    The global batches are those of a single-process run (same seed, same order); rank r takes
    the r-th 1/world slice of each, so DDP's averaged gradient is the single-process gradient
    (up to BatchNorm statistics, which are per rank). Every rank gets the same number of batches.
    """
    perm = torch.randperm(n, generator=generator)
    out = []
    for i in range(0, n, batch):
        b = perm[i:i + batch]
        m = b.numel()
        if m < d.world:
            continue
        out.append(b[d.rank * m // d.world:(d.rank + 1) * m // d.world])
    return out


@torch.no_grad()
def evaluate(model: nn.Module, x: Tensor, loss_kind: str, d: Dist, batch: int = 512) -> float:
    """Mean per-pixel test loss over the full set (each rank a shard; sums all-reduced)."""
    model.eval()
    idx = torch.arange(d.rank, x.shape[0], d.world)
    total = torch.zeros(2, dtype=torch.float64, device=d.device)
    for i in range(0, idx.numel(), batch):
        xb = x[idx[i:i + batch]].to(d.device)
        y = model(xb)
        if loss_kind == "mse":
            s = F.mse_loss(y, xb, reduction="sum")
        else:
            s = F.binary_cross_entropy(y.clamp(1e-7, 1 - 1e-7), xb, reduction="sum")
        total[0] += s.double()
        total[1] += xb.numel()
    d.all_reduce_sum(total)
    model.train()
    return float(total[0] / total[1])


def steps_per_epoch(n: int, batch: int, world: int) -> int:
    """Batches in one epoch of :func:`_batches` (the same on every rank)."""
    return sum(1 for i in range(0, n, batch) if min(batch, n - i) >= world)


def make_task(cfg: AutoencoderConfig, width: int, xtr: Tensor, xte: Tensor,
              init_states: list | None = None) -> Task:
    """The autoencoder as a task of the shared training loop (experiments/trainer.py): the
    batches of shuffled epochs (one generator per run, seeded by the run's seed), the
    reconstruction loss, and the test loss as the evaluation. ``init_states``, if given,
    receives the state dict of every model built (the saved models keep their init)."""
    loss_fn = _loss_fn(cfg.loss)

    def build(spec: str) -> nn.Module:
        model = build_autoencoder(spec, width, cfg.latent, cfg.per_channel)
        if init_states is not None:
            init_states.append({k: v.detach().cpu().clone() for k, v in model.state_dict().items()})
        return model

    def stream(seed: int, d: Dist):
        gen = torch.Generator().manual_seed(seed)
        while True:  # epochs
            for b in _batches(xtr.shape[0], cfg.batch_size, gen, d):
                xb = xtr[b]
                yield xb, xb

    def evaluate_task(model: nn.Module, d: Dist) -> dict[str, float]:
        d.broadcast_buffers(model)
        return {"test_loss": evaluate(model, xte, cfg.loss, d)}

    return Task("autoencoder", {"width": width}, build, None,
                lambda net, x, y: loss_fn(net(x), y), evaluate_task, stream)


def train_one(cfg: AutoencoderConfig, spec: str, seed: int, width: int, lr: float,
              xtr: Tensor, xte: Tensor, d: Dist, bar: Any = None, record_every: int = 0,
              save_to: Path | None = None) -> dict[str, Any]:
    """Train one (activation, seed, width, lr) by the shared loop (an epoch is an evaluation
    interval) and return its record in results.json's form (and save the model, with its init
    state, to ``save_to`` if given)."""
    every = steps_per_epoch(xtr.shape[0], cfg.batch_size, d.world)
    inits: list = []
    run = trainer.train_one(make_task(cfg, width, xtr, xte, inits), spec, seed,
                            OptimConfig.plain(cfg.epochs * every, lr, every, cfg.optimizer,
                                              cfg.weight_decay), d, bar=bar,
                            record_every=record_every, prior=cfg.prior)
    model = run.pop("_model")
    record: dict[str, Any] = {
        "act": spec, "seed": seed, "width": width, "lr": lr, "params": run["params"],
        "act_params": sum(p.numel() for p in activation_parameters(model)),
        "diverged": run["diverged"] or not all(math.isfinite(e["test_loss"]) for e in run["evals"]),
        "epochs": [{"epoch": i + 1, "train_loss": e["train_loss"], "test_loss": e["test_loss"],
                    "seconds": e["seconds"]} for i, e in enumerate(run["evals"])]}
    if "diverged_step" in run:  # the loop stops at the first non-finite loss, mid-epoch
        record["diverged_epoch"] = run["diverged_step"] // every + 1
    if "recorder" in run:
        record["recorder"] = run["recorder"]
    if save_to is not None:
        save_model(save_to, model, "autoencoder",
                   {"spec": spec, "channels": width, "latent": cfg.latent,
                    "per_channel": cfg.per_channel}, inits[0], {"record": record["act"]})
    return record


def mean_image_baseline(xtr: Tensor, xte: Tensor, loss_kind: str) -> float:
    """Test loss of predicting the mean training image for every test image."""
    mean = xtr.mean(0, keepdim=True).expand_as(xte)
    if loss_kind == "mse":
        return float(F.mse_loss(mean, xte))
    return float(F.binary_cross_entropy(mean.clamp(1e-7, 1 - 1e-7), xte))


def run_autoencoder(cfg: AutoencoderConfig, resume: str | None = None) -> Path | None:
    """Run the whole comparison; returns the run directory on rank 0 (None elsewhere)."""
    validate(cfg)
    require_plots("learnact bench autoencoder")
    d = setup_distributed(cfg.device)
    try:
        path = _run(cfg, d, resume)
        d.barrier()  # leave together (a rank tearing gloo down early aborts at exit)
        return path
    finally:
        teardown_distributed(d)


def _run(cfg: AutoencoderConfig, d: Dist, resume: str | None) -> Path | None:
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    run: RunDir | None = None
    out = resume or cfg.out or str(RunDir.default("autoencoder"))
    if d.main:
        run = RunDir(out, "autoencoder", resume=bool(resume))  # fails now if unusable
    # data (fails with the install command if missing)
    xtr, _ = load_fashion_mnist("train", cfg.data_dir, cfg.train_limit)
    xte, _ = load_fashion_mnist("test", cfg.data_dir, cfg.test_limit)
    results: dict[str, Any] = {"task": "autoencoder", "config": asdict(cfg), "runs": [],
                               "baselines": {"mean_image_test_loss": mean_image_baseline(
                                   xtr, xte, cfg.loss)}, "world_size": d.world}
    if resume and run is not None:
        prev = run.read_json("results.json")
        if prev:
            read_autoencoder_results(prev, str(run.path / "results.json"))  # checked, or a clear error
            results["runs"] = list(prev["runs"])
            log.info("resuming %s: %d finished runs kept", out, len(results["runs"]))
    results["runs"] = d.broadcast_object(results["runs"])
    done = {(r["act"], r["seed"], r["width"], r["lr"]) for r in results["runs"]}
    if run is not None:
        run.write_json("config.json", asdict(cfg))
    widths = cfg.widths or [cfg.channels]
    lrs = cfg.lrs or [cfg.lr]
    # seed-major: an interrupted run has every activation at its first seeds
    todo = [(a, s, w, lr) for w in widths for lr in lrs for s in cfg.seeds for a in cfg.acts
            if (a, s, w, lr) not in done]
    record_every = cfg.record_every if cfg.record else 0
    steps = cfg.epochs * steps_per_epoch(xtr.shape[0], cfg.batch_size, d.world)
    with progress(len(todo) * steps, "autoencoder", enabled=d.main and not cfg.quiet) as bar:
        for spec, seed, width, lr in todo:
            save_to = None
            if run is not None and seed == cfg.seeds[0]:
                save_to = run.path / "models" / model_filename(spec, s=seed, w=width, lr=lr)
            rec = train_one(cfg, spec, seed, width, lr, xtr, xte, d, bar, record_every, save_to)
            results["runs"].append(rec)
            if run is not None:
                run.write_json("results.json", results)
    if run is None:
        return None
    from .report import write_autoencoder_report

    write_autoencoder_report(run, results)
    log.info("wrote %s", run.path)
    return run.path





#: config keys that may differ between runs joined by :func:`merge_runs` (how a run was split
#: or where it ran, not what it measured)
MERGE_FREE = ("acts", "seeds", "out", "threads", "quiet", "device")


def merge_runs(dirs: list[str], out: str) -> Path:
    """Join finished (or interrupted) comparisons of one setting into one run directory.

    A long comparison split across processes or machines (``--seeds 0`` here, ``--seeds 1``
    there, or halves of ``--acts``) becomes one ``results.json`` with one report, as if one
    process had run it. The configs must agree on everything but :data:`MERGE_FREE` (a
    ``ValueError`` names the key and both folders); a run (activation, seed, width, lr) found in
    two folders is an error too. The activations keep the first folder's order, then the new ones
    of the next; the seeds are sorted. Saved models are copied.
    """
    if len(dirs) < 2:
        raise ValueError(f"--merge needs at least two run directories, got {len(dirs)}")
    loaded = []
    for d in dirs:
        rd = RunDir(d, "autoencoder", resume=True)  # a marked autoencoder run, or a clear error
        res = rd.read_json("results.json")
        if res is None:
            raise ValueError(f"--merge {d}: no results.json (has the run finished one model?)")
        read_autoencoder_results(res, str(rd.path / "results.json"))
        loaded.append((d, rd, res))
    first_dir, _, first = loaded[0]
    cfg = dict(first["config"])
    acts = list(cfg["acts"])
    seeds = set(cfg["seeds"])
    runs: dict[tuple, dict[str, Any]] = {}
    where: dict[tuple, str] = {}
    for d, _, res in loaded:
        other = res["config"]
        for k in sorted(set(cfg) | set(other)):
            if k not in MERGE_FREE and cfg.get(k) != other.get(k):
                raise ValueError(f"--merge: {first_dir} and {d} differ in {k!r} "
                                 f"({cfg.get(k)!r} vs {other.get(k)!r}): not one setting")
        if res.get("baselines") != first.get("baselines"):
            raise ValueError(f"--merge: {first_dir} and {d} read different data (the mean-image "
                             f"baselines differ)")
        acts += [a for a in other["acts"] if a not in acts]
        seeds |= set(other["seeds"])
        for r in res["runs"]:
            key = (r["act"], r["seed"], r["width"], r["lr"])
            if key in runs:
                raise ValueError(f"--merge: run {key} is in both {where[key]} and {d}")
            runs[key], where[key] = r, d
    cfg.update(acts=acts, seeds=sorted(seeds), out=out)
    order = {a: i for i, a in enumerate(acts)}
    merged = {**first, "config": cfg,
              "runs": sorted(runs.values(), key=lambda r: (r["width"], r["lr"], r["seed"],
                                                          order[r["act"]])),
              "merged_from": [str(d) for d in dirs]}
    run = RunDir(out, "autoencoder")
    run.write_json("config.json", cfg)
    run.write_json("results.json", merged)
    for _, rd, _ in loaded:
        for f in sorted((rd.path / "models").glob("*")) if (rd.path / "models").is_dir() else []:
            (run.path / "models").mkdir(exist_ok=True)
            shutil.copy2(f, run.path / "models" / f.name)
    from .report import write_autoencoder_report

    write_autoencoder_report(run, merged)
    log.info("merged %d run directories (%d runs) into %s", len(dirs), len(runs), run.path)
    return run.path
