"""argparse wiring of the experiment subcommands (``learnact bench autoencoder|toy2d|depth|sampling|generate|segment``)."""

from __future__ import annotations

import argparse

from .args import (add_prior_flag, device, limit, positive_float, positive_floats, positive_int,
                   positive_ints, seeds, split_specs)
from .autoencoder import PRESET_NOTES, PRESETS, make_config, merge_runs, run_autoencoder

__all__ = ["add_subcommands"]


def _cmd_autoencoder(args: argparse.Namespace) -> int:
    if args.merge:
        if not args.out:
            raise ValueError("--merge needs --out: the folder of the joined run")
        path = merge_runs(args.merge, args.out)
        print(f"results: {path}/results.json\nsummary: {path}/summary.md")
        return 0
    cfg = make_config(
        args.preset, acts=split_specs(args.acts) if args.acts else None, epochs=args.epochs,
        seeds=args.seeds, channels=args.channels, latent=args.latent, lr=args.lr,
        batch_size=args.batch_size, loss=args.loss, optimizer=args.optimizer,
        train_limit=args.train_limit, test_limit=args.test_limit,
        per_channel=args.per_channel or None, widths=args.widths, lrs=args.lrs,
        target_loss=args.target_loss, data_dir=args.data_dir, device=args.device,
        threads=args.threads, out=args.out, quiet=args.quiet or None, record=args.record or None,
        record_every=args.record_every, prior=False if args.no_prior else None)
    path = run_autoencoder(cfg, resume=args.resume)
    if path is not None:
        print(f"results: {path}/results.json\nfigure:  {path}/loss.png\nsummary: {path}/summary.md")
        table = [ln for ln in (path / "summary.md").read_text().splitlines() if ln.startswith("|")]
        print("\n".join(table))
    return 0


def add_subcommands(bench: argparse._SubParsersAction) -> None:
    p = bench.add_parser("autoencoder", help="the main job: conv autoencoder on Fashion-MNIST")
    p.add_argument("--acts", help="comma list of registry specs (default: classical baselines "
                   "and every learnable family); use ';' between specs that contain commas")
    p.add_argument("--preset", default="main", choices=sorted(PRESETS),
                   help="; ".join(f"{k}: {v}" for k, v in PRESET_NOTES.items()))
    p.add_argument("--epochs", type=positive_int)
    p.add_argument("--seeds", type=seeds, help="e.g. 0,1,2")
    p.add_argument("--channels", type=positive_int, help="hidden conv width C")
    p.add_argument("--latent", type=positive_int)
    p.add_argument("--lr", type=positive_float)
    p.add_argument("--batch-size", type=positive_int)
    p.add_argument("--loss", choices=["mse", "bce"])
    p.add_argument("--optimizer", choices=["adam", "adamw", "sgd"])
    p.add_argument("--train-limit", type=limit, help="number of training images (all: none)")
    p.add_argument("--test-limit", type=limit)
    p.add_argument("--per-channel", action="store_true", help="per-channel activation parameters")
    p.add_argument("--widths", type=positive_ints, help="sweep C, e.g. 8,16,32 (loss vs parameters)")
    p.add_argument("--lrs", type=positive_floats, help="sweep the learning rate, e.g. 5e-4,2e-3,8e-3")
    p.add_argument("--target-loss", type=positive_float, help="for the epochs-to-target column")
    p.add_argument("--data-dir", help="directory with the Fashion-MNIST IDX files")
    p.add_argument("--device", default="cpu", type=device, help="cpu, cuda, cuda:1 or auto")
    p.add_argument("--threads", type=positive_int, help="torch intra-op threads")
    p.add_argument("--out", help="run directory (default runs/autoencoder-<timestamp>)")
    p.add_argument("--resume", help="finish an interrupted run directory (skips finished runs)")
    p.add_argument("--merge", nargs="+", metavar="RUN_DIR",
                   help="join run directories of one setting (seeds or activations run in "
                        "parallel processes) into --out, with one report; nothing is trained")
    p.add_argument("--record", action="store_true",
                   help="record histograms of activation inputs and loss derivatives")
    p.add_argument("--record-every", type=positive_int, default=None,
                   help="record one training batch in N (default 8: <= 15%% overhead)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_prior_flag(p)
    p.set_defaults(func=_cmd_autoencoder)
    from .depth import add_subcommand as _depth
    from .generate import add_subcommand as _generate
    from .sampling import add_subcommand as _sampling
    from .segment import add_subcommand as _segment
    from .toy2d import add_subcommand as _toy

    _toy(bench)
    _depth(bench)
    _sampling(bench)
    _generate(bench)
    _segment(bench)





def add_train_subcommands(train: argparse._SubParsersAction) -> None:
    from .charlm import add_subcommand as _charlm
    from .convnext import add_subcommand as _convnext

    _charlm(train)
    _convnext(train)
