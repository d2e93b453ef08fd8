#!/usr/bin/env python3
"""Regenerate the documentation's figures (docs/*.png, shown in docs/gallery.md) from real runs.

    make gallery                              # = python benchmarks/gallery.py (~8 min on 2 cores)
    python benchmarks/gallery.py --full       # also the main job, the GPT, the ConvNeXt, the
                                              # surrogates, sampling, the VAE (~2 h)
    python benchmarks/gallery.py --only depth,fit --dry-run   # print the commands

Every figure comes from a command a user can run (printed before it runs); the runs land in
``--runs`` (default runs/gallery) and the figures are copied into docs/ under the names the
pages use. Only figures are copied: the results pages (docs/*-summary.md) are the published
runs' own records; rerun a table with the command on its page. Needs the ``[exp]`` and
``[plots]`` extras, the Fashion-MNIST data (``make data``) and, for the atlas page's
screenshots, Debian's chromium + chromium-driver (``make browser``).
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
# the atlas page's views (addresses of `learnact atlas serve`)
ATLAS_DEEP = "w=4,4,3,2&act0=hermite&act1=ditac&act2=tropical&act3=gelu&seed=2&zoom=0.8&res=48&ui=compact"
ATLAS_ACT = "w=4,4,3&act0=hermite&act1=ditac&act2=tropical&pc=1&seed=1&zoom=0.8&res=48"
ATLAS_TRAIN = ("w=6,6&act0=hermite&act1=ditac&data=gmm&steps=400&lr=0.03&zoom=0.6&res=64"
               "&dparam=3.theta@4&ui=compact")


def groups(runs: Path) -> dict[str, list[tuple[list[str], dict[str, str]]]]:
    """Each group: commands (argv lists, 'learnact' = this Python's CLI) and the figures they
    produce (source path -> docs/ name)."""
    la = [sys.executable, "-m", "learnact"]
    d, t, ae = runs / "depth", runs / "toy2d", runs / "autoencoder-tropical"
    g: dict[str, list[tuple[list[str], dict[str, str]]]] = {
        "depth": [(la + ["bench", "depth", "--out", str(d)], {str(d / "depth.png"): "depth.png"})],
        "fit": [(la + ["fit", "hermite:degree=8", "--target", "gelu", "--plot", str(runs / "fit.png")],
                 {str(runs / "fit.png"): "fit-hermite8-gelu.png"})],
        "toy2d": [
            (la + ["bench", "toy2d", "--seeds", "0", "--out", str(t)],
             {str(t / "gmm.png"): "toy2d-gmm.png", str(t / "regression.png"): "toy2d-regression.png"}),
            (la + ["plot", "shapes", str(t), "--match", "ditac-taskreg-*", "--lo", "-2", "--hi", "3",
                   "--out", str(t / "fig")],
             {str(t / "fig" / "shapes-ditac-taskreg-s0.png"): "shapes-toy2d-ditac.png"}),
            (la + ["plot", "atlas", str(t), "--match", "*-taskgmm-*", "--lo", "-4", "--hi", "4",
                   "--out", str(t / "fig")],
             {str(t / "fig" / "atlas-relu-taskgmm-s0.png"): "atlas-toy2d-gmm-relu.png",
              str(t / "fig" / "atlas-hermite-taskgmm-s0.png"): "atlas-toy2d-gmm-hermite.png"}),
            (la + ["plot", "atlas", str(t), "--match", "ditac-taskreg-*", "--lo", "-1", "--hi", "1",
                   "--out", str(t / "fig")],
             {str(t / "fig" / "atlas-ditac-taskreg-s0.png"): "atlas-toy2d-reg-ditac.png"}),
        ],
        "regression1d": [
            (la + ["bench", "toy2d", "--task", "regression1d", "--quiet", "--out",
                   str(runs / "regression1d")],
             {str(runs / "regression1d" / "regression1d.png"): "regression1d.png"})],
        "sampling": [
            (la + ["bench", "autoencoder", "--preset", "quick", "--acts", "tropical", "--seeds", "0",
                   "--record", "--out", str(ae)], {}),
            (la + ["plot", "sampling", str(ae), "--out", str(ae / "fig")], {}),
            (la + ["plot", "shapes", str(ae), "--out", str(ae / "fig")], {}),
        ],
        "atlas-page": [
            (la + ["atlas", "serve", "--screenshot", str(DOCS / "atlas-page-depth.png"), "--window",
                   "1250x1500", "--query", ATLAS_DEEP, "--element", "net"], {}),
            (la + ["atlas", "serve", "--screenshot", str(DOCS / "atlas-page-activation.png"), "--window",
                   "1250x2400", "--query", ATLAS_ACT, "--element", "layer1"], {}),
            (la + ["atlas", "serve", "--screenshot", str(DOCS / "atlas-page-derivative.png"), "--window",
                   "1250x2400", "--query", ATLAS_ACT + "&dparam=3.theta@2", "--element", "deriv"], {}),
            (la + ["atlas", "serve", "--screenshot", str(DOCS / "atlas-page-training.png"), "--window",
                   "1250x1400", "--query", ATLAS_TRAIN], {}),
            (la + ["atlas", "serve", "--screenshot", str(DOCS / "atlas-serve.png"), "--window", "1250x1100"], {}),
        ],
        # this site's front page and family-choice table (make docs builds build/site)
        "docs-site": [
            ([str(ROOT / ".venv-docs" / "bin" / "mkdocs"), "build", "--strict"], {}),
            ([sys.executable, str(ROOT / "benchmarks" / "docs_shots.py")], {}),
        ],
    }
    full = {
        "main": [(la + ["bench", "autoencoder", "--preset", "main", "--out", str(runs / "main")],
                  {str(runs / "main" / "loss.png"): "loss.png"})],
        "surrogates": [(la + ["bench", "autoencoder", "--preset", "quick", "--seeds", "0,1,2", "--acts",
                              "relu,staircase,cantor,cantor2", "--out", str(runs / "surrogates")],
                        {str(runs / "surrogates" / "loss.png"): "surrogates-loss.png"})],
        "charlm": [(la + ["train", "charlm", "--preset", "cpu", "--quiet", "--out", str(runs / "charlm")],
                    {str(runs / "charlm" / "val_loss.png"): "charlm-val-loss.png"})],
        "sampling-study": [(la + ["bench", "sampling", "--quiet", "--out", str(runs / "sampling")],
                            {str(runs / "sampling" / "sampling.png"): "sampling-study.png"})],
        "generate": [(la + ["bench", "generate", "--quiet", "--out", str(runs / "generate")],
                      {str(runs / "generate" / "samples.png"): "generate-samples.png",
                       str(runs / "generate" / "curves.png"): "generate-curves.png"})],
        "segment": [(la + ["bench", "segment", "--quiet", "--out", str(runs / "segment")],
                     {str(runs / "segment" / "predictions.png"): "segment-predictions.png"})],
        "convnext": [(la + ["train", "convnext", "--preset", "cpu", "--quiet", "--out", str(runs / "convnext")],
                      {str(runs / "convnext" / "test_error.png"): "convnext-test-error.png"})],
    }
    return g, full


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", default=str(ROOT / "runs" / "gallery"), help="folder for the runs")
    ap.add_argument("--full", action="store_true", help="also the long runs (main job, GPT, ConvNeXt, surrogates)")
    ap.add_argument("--only", default="", help="comma list of groups to run (see --dry-run)")
    ap.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    args = ap.parse_args(argv)
    runs = Path(args.runs).resolve()
    cheap, full = groups(runs)
    todo = dict(cheap, **(full if args.full else {}))
    if args.only:
        names = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = sorted(set(names) - set(cheap) - set(full))
        if unknown:
            ap.error(f"--only: unknown group(s) {unknown}; groups: {sorted(cheap) + sorted(full)}")
        todo = {n: dict(cheap, **full)[n] for n in names}
    if not args.dry_run:
        import matplotlib  # noqa: F401  (fail before any run if plotting is unavailable)
        runs.mkdir(parents=True, exist_ok=True)
    for name, steps in todo.items():
        for cmd, figures in steps:
            shown = " ".join(shlex.quote(c) for c in cmd).replace(
                f"{sys.executable} -m learnact", "learnact").replace(f"{ROOT}/", "")
            print(f"[{name}] {shown}", flush=True)
            if args.dry_run:
                continue
            if cmd[3:4] in (["bench"], ["train"]):  # a fresh run in our own folder under --runs
                out = Path(cmd[cmd.index("--out") + 1])
                if out.exists():
                    shutil.rmtree(out)
            subprocess.run(cmd, check=True, cwd=ROOT)
            for src, dst in figures.items():
                shutil.copyfile(src, DOCS / dst)
                print(f"  -> docs/{dst}")
        if name == "sampling" and not args.dry_run:
            fig = runs / "autoencoder-tropical" / "fig"
            for src, dst in ((next(fig.glob("sampling-inputs-*.png")), "sampling-inputs-autoencoder-tropical.png"),
                             (next(fig.glob("sampling-grads-*.png")), "sampling-grads-autoencoder-tropical.png"),
                             (next(fig.glob("shapes-*.png")), "shapes-autoencoder-tropical.png")):
                shutil.copyfile(src, DOCS / dst)
                print(f"  -> docs/{dst}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
