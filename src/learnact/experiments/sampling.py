"""The blog's three questions, answered with numbers: ``learnact bench sampling``.

1. Where is an activation sampled, and do the learning rate or the run (seed) change that?
2. Does the sampled region move over the epochs?
3. What do the loss derivatives that reach the activation look like?

Run manual::

    learnact bench sampling                                   # gelu and tropical, 3 lrs x 3 seeds
    learnact bench sampling --acts "gelu,hermite:init=gelu,tails=linear" --epochs 6
    learnact bench sampling --analyse runs/sampling-<timestamp>   # redo the analysis only

The autoencoder of the main job (``learnact bench autoencoder``, main preset's data: 2000
training images, C = 16) is trained per activation x learning rate x seed with a
:class:`learnact.viz.Recorder` (histograms of every activation's inputs on [-6, 6] and of the
loss derivatives dL/dx on a symmetric log scale, per layer and epoch; one training batch in
``--record-every``). The analysis reads only those histograms (results.json) and writes

* ``sampling.json``: per run, layer and epoch the central 98% range [q01, q99] of the sampled
  inputs and the fraction outside [-6, 6]; per layer the Wasserstein-1 distance between the
  input distributions of two runs with the same learning rate and different seeds, and of two
  runs with the same seed and different learning rates (final epoch), and between the first
  and the last epoch of each run; the loss derivatives' median |dL/dx| and the decades from
  the median to the 99.9th percentile of |dL/dx| (the tail);
* ``sampling.png``: those three views per layer;
* ``sampling.md``: the answers in plain sentences, with the numbers.

Distances are in input units (W1 = the area between the two CDFs; mass outside [-6, 6] sits at
the edges, so a distance understates moves beyond them: the outside fractions say how much).
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import statistics
from pathlib import Path
from typing import Any

import numpy as np

from .._files import write_atomic

__all__ = ["quantile", "wasserstein1", "grad_stats", "analyse", "write_summary", "run_sampling"]

log = logging.getLogger(__name__)

DEFAULT_ACTS = ["gelu", "tropical"]
DEFAULT_LRS = [5e-4, 2e-3, 8e-3]
# log10(q_0.999 / median) of |g| for Gaussian g: log10(3.2905 / 0.6745)
GAUSS_TAIL = 0.6883


# -- histogram statistics (pure numpy on the Recorder's state) ----------------------------------
def _edges(hist: dict[str, Any]) -> np.ndarray:
    return np.linspace(hist["lo"], hist["hi"], hist["bins"] + 1)


def quantile(counts: Any, hist: dict[str, Any], q: float) -> float:
    """The q-quantile of one epoch's histogram ``counts`` ([under, bins..., over]), linear
    inside a bin; mass below lo / above hi sits at lo / hi (a quantile there reads lo / hi)."""
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"q must be in [0, 1], got {q}")
    c = np.asarray(counts, dtype=np.float64)
    total = c.sum()
    if total <= 0:
        return float("nan")
    edges = _edges(hist)
    target = q * total
    if target <= c[0]:
        return float(edges[0])
    cum = c[0] + np.cumsum(c[1:-1])
    k = int(np.searchsorted(cum, target, side="left"))
    if k >= len(cum):
        return float(edges[-1])
    before = cum[k] - c[1 + k]
    frac = (target - before) / c[1 + k] if c[1 + k] > 0 else 0.0
    return float(edges[k] + frac * (edges[k + 1] - edges[k]))


def wasserstein1(p: Any, q: Any, hist: dict[str, Any]) -> float:
    """W1 between two histograms on the same bins (the area between their CDFs, in value units;
    under/overflow mass half a bin beyond the edges)."""
    a, b = np.asarray(p, dtype=np.float64), np.asarray(q, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"histograms differ in shape: {a.shape} vs {b.shape}")
    if a.sum() <= 0 or b.sum() <= 0:
        return float("nan")
    width = (hist["hi"] - hist["lo"]) / hist["bins"]
    # positions: under at lo - w/2, bin centres, over at hi + w/2 (equally spaced by w)
    ca, cb = np.cumsum(a / a.sum()), np.cumsum(b / b.sum())
    return float(np.abs(ca - cb)[:-1].sum() * width)


def grad_stats(counts: Any, hist: dict[str, Any]) -> dict[str, float]:
    """From a symlog histogram of dL/dx (the Recorder's: sign(g) log10(|g|/floor) on [-D, D]):
    the fraction in the bins touching 0 (|dL/dx| within one bin of the floor: zeros, e.g. from
    ReLU's flat part), and among the others the median |dL/dx| and the decades from it to their
    99.9th percentile (the tail's length). Resolution: one bin (0.2 decades by default)."""
    c = np.asarray(counts, dtype=np.float64)
    total = c.sum()
    nan = float("nan")
    if total <= 0:
        return {"median_abs": nan, "tail_decades": nan, "zero_fraction": nan}
    edges = _edges(hist)
    centres = 0.5 * (edges[:-1] + edges[1:])
    width = edges[1] - edges[0]
    zero = np.abs(centres) <= width
    near_zero = float(c[1:-1][zero].sum() / total)
    mags = np.concatenate([np.abs(centres[~zero]), [float(hist["hi"]), float(hist["hi"])]])
    weights = np.concatenate([c[1:-1][~zero], [c[0], c[-1]]])
    if weights.sum() <= 0:
        return {"median_abs": nan, "tail_decades": nan, "zero_fraction": near_zero}
    order = np.argsort(mags, kind="stable")
    mags, cum = mags[order], np.cumsum(weights[order]) / weights.sum()

    def q(level: float) -> float:
        return float(mags[min(int(np.searchsorted(cum, level, side="left")), len(mags) - 1)])

    med = q(0.5)
    return {"median_abs": float(hist["floor"] * 10.0 ** med), "tail_decades": q(0.999) - med,
            "zero_fraction": near_zero}


# -- the analysis ---------------------------------------------------------------------------
def _key(run: dict[str, Any]) -> tuple[str, float, int]:
    return run["act"], float(run["lr"]), int(run["seed"])


def analyse(results: dict[str, Any]) -> dict[str, Any]:
    """Every statistic of the module docstring from an autoencoder results.json with recorder
    states. Raises ValueError if no run has a recorder state."""
    runs = [r for r in results["runs"] if "recorder" in r and not r.get("diverged")]
    if not runs:
        raise ValueError("no (non-diverged) run with recorder histograms: train with --record")
    per_run = []
    for r in runs:
        layers = {}
        for layer, st in r["recorder"].items():
            ih, gh = st["inputs"], st["grads"]
            epochs = []
            for e, counts in enumerate(ih["counts"]):
                c = np.asarray(counts, dtype=np.float64)
                epochs.append({"epoch": e + 1, "q01": quantile(c, ih, 0.01), "q99": quantile(c, ih, 0.99),
                               "outside": float((c[0] + c[-1]) / c.sum()) if c.sum() else float("nan"),
                               **grad_stats(gh["counts"][e], gh)})
            move = wasserstein1(ih["counts"][0], ih["counts"][-1], ih)
            layers[layer] = {"epochs": epochs, "first_to_last_w1": move}
        per_run.append({"act": r["act"], "lr": float(r["lr"]), "seed": int(r["seed"]),
                        "final_test_loss": r["epochs"][-1]["test_loss"], "layers": layers})
    by = {_key(r): r for r in runs}
    comparisons: dict[str, dict[str, Any]] = {}
    for act in sorted({r["act"] for r in runs}, key=[r["act"] for r in runs].index):
        mine = [r for r in runs if r["act"] == act]
        lrs = sorted({float(r["lr"]) for r in mine})
        seeds = sorted({int(r["seed"]) for r in mine})
        layers = list(mine[0]["recorder"])
        out = {}
        for layer in layers:
            ih = mine[0]["recorder"][layer]["inputs"]

            def last(lr: float, seed: int) -> Any:
                return by[(act, lr, seed)]["recorder"][layer]["inputs"]["counts"][-1]

            seed_d = [wasserstein1(last(lr, s1), last(lr, s2), ih) for lr in lrs
                      for s1, s2 in itertools.combinations(seeds, 2)
                      if (act, lr, s1) in by and (act, lr, s2) in by]
            lr_d = [wasserstein1(last(l1, s), last(l2, s), ih) for s in seeds
                    for l1, l2 in itertools.combinations(lrs, 2)
                    if (act, l1, s) in by and (act, l2, s) in by]
            out[layer] = {"seed_w1": _mean(seed_d), "lr_w1": _mean(lr_d),
                          "n_seed_pairs": len(seed_d), "n_lr_pairs": len(lr_d)}
        comparisons[act] = {"lrs": lrs, "seeds": seeds, "layers": out}
    return {"runs": per_run, "comparisons": comparisons}


def _mean(xs: list[float]) -> float:
    xs = [x for x in xs if np.isfinite(x)]
    return float(statistics.mean(xs)) if xs else float("nan")


def _median(xs: list[float]) -> float:
    xs = [x for x in xs if np.isfinite(x)]
    return float(statistics.median(xs)) if xs else float("nan")


def _last(rs: list[dict[str, Any]], layers: list[str], key: str, agg=None) -> float:
    """The median (or ``agg``) of ``key`` at the last epoch over runs rs and layers; key
    "width" is q99 - q01, key "first_to_last_w1" is the per-layer drift."""
    def value(r: dict[str, Any], l: str) -> float:
        if key == "first_to_last_w1":
            return r["layers"][l][key]
        e = r["layers"][l]["epochs"][-1]
        return e["q99"] - e["q01"] if key == "width" else e[key]

    return (agg or _median)([value(r, l) for r in rs for l in layers])


def _drift_verdict(moves: dict[float, float], seed_w: float) -> str:
    """Which learning rates move the sampled region more than two seeds differ."""
    if not np.isfinite(seed_w):
        return "no seed-to-seed reference (one seed)."
    more = [lr for lr, m in moves.items() if m > seed_w]
    within = [lr for lr, m in moves.items() if not m > seed_w]
    if not within:
        return "at every learning rate it moves more than two runs differ."
    if not more:
        return "at every learning rate the drift is within the seed-to-seed spread."
    return (f"at lr {', '.join(f'{lr:g}' for lr in more)} it moves more than two runs differ, "
            f"at lr {', '.join(f'{lr:g}' for lr in within)} the drift stays within that spread.")


def _fmt(x: float, digits: int = 2) -> str:
    return "n/a" if not np.isfinite(x) else f"{x:.{digits}f}"


def write_summary(analysis: dict[str, Any], path: Path, command: str = "") -> str:
    """sampling.md: the three answers in sentences (numbers from ``analysis``), then tables."""
    runs, comps = analysis["runs"], analysis["comparisons"]
    lines = ["# Where activations are sampled, and what they are told", ""]
    if command:
        lines += [f"`{command}`", ""]
    for act, comp in comps.items():
        mine = [r for r in runs if r["act"] == act]
        layers = list(comp["layers"])
        lrs = comp["lrs"]
        finals = {lr: [r for r in mine if r["lr"] == lr] for lr in lrs}
        lines += [f"## `{act}` ({len(layers)} activation layers, learning rates "
                  f"{', '.join(f'{lr:g}' for lr in lrs)}, seeds {comp['seeds']})", ""]
        # Q1: where
        widths = {lr: _last(finals[lr], layers, "width") for lr in lrs}
        outside = {lr: _last(finals[lr], layers, "outside", _mean)
                   for lr in lrs}
        per_layer_w = [_last(mine, [l], "width") for l in layers]
        narrow, wide = int(np.nanargmin(per_layer_w)), int(np.nanargmax(per_layer_w))
        seed_w = _median([v["seed_w1"] for v in comp["layers"].values()])
        lr_w = _median([v["lr_w1"] for v in comp["layers"].values()])
        lines += [
            "**Where is it sampled?** At the last epoch the central 98% of the inputs spans a "
            f"median width of {_fmt(widths[lrs[0]])} at lr {lrs[0]:g} and {_fmt(widths[lrs[-1]])} "
            f"at lr {lrs[-1]:g} (per layer from {_fmt(per_layer_w[narrow])} in `{layers[narrow]}` "
            f"to {_fmt(per_layer_w[wide])} in `{layers[wide]}`); "
            f"{100 * outside[lrs[0]]:.1f}% / {100 * outside[lrs[-1]]:.1f}% of the inputs lie "
            "outside [-6, 6] at those learning rates.",
            "",
            "**Do the learning rate or the run change it?** Between two seeds at the same "
            f"learning rate the final input distributions differ by W1 = {_fmt(seed_w, 3)} "
            f"(median over layers); between two learning rates at the same seed by "
            f"{_fmt(lr_w, 3)}: "
            + (f"the learning rate moves the sampled region {lr_w / seed_w:.1f}x more than the "
               "run does." if seed_w > 0 and lr_w >= 1.5 * seed_w else
               f"the run changes it {seed_w / lr_w:.1f}x more than the learning rate does."
               if lr_w > 0 and seed_w >= 1.5 * lr_w else
               f"the run changes it about as much as the learning rate (ratio {lr_w / seed_w:.2f})."
               if seed_w > 0 and lr_w > 0 else "no difference measured."),
            ""]
        # Q2: movement over epochs
        moves = {lr: _last(finals[lr], layers, "first_to_last_w1")
                 for lr in lrs}
        nep = len(mine[0]["layers"][layers[0]]["epochs"])
        lines += [
            f"**Does the region move over the {nep} epochs?** From the first to the last epoch "
            "the input distribution moves by W1 = "
            + ", ".join(f"{_fmt(moves[lr], 3)} (lr {lr:g})" for lr in lrs)
            + f" (median over layers and seeds), against {_fmt(seed_w, 3)} between two seeds at "
            "the end: " + _drift_verdict(moves, seed_w), ""]
        # Q3: loss derivatives
        meds = {lr: _last(finals[lr], layers, "median_abs")
                for lr in lrs}
        tails = {lr: _last(finals[lr], layers, "tail_decades")
                 for lr in lrs}
        zeros = {lr: _last(finals[lr], layers, "zero_fraction", _mean)
                 for lr in lrs}
        lines += [
            "**What do the loss derivatives look like?** At the last epoch the median non-zero "
            "|dL/dx| is " + ", ".join(f"{meds[lr]:.2e} (lr {lr:g})" for lr in lrs)
            + "; their 99.9th percentile lies "
            + ", ".join(f"{_fmt(tails[lr], 1)}" for lr in lrs)
            + f" decades above the median (for Gaussian derivatives it would be {GAUSS_TAIL:.2f}: "
            + ("heavier tails, a few inputs get derivatives far larger than the typical one); "
               if _median(list(tails.values())) > GAUSS_TAIL + 0.2 else "no heavier than Gaussian); ")
            + ", ".join(f"{100 * zeros[lr]:.1f}%" for lr in lrs)
            + " of the derivatives are zero or within one bin of the floor (|dL/dx| < 1.6e-10; "
            "a flat part of the activation gives exact zeros).", ""]
        lines += ["| layer | 98% range (last epoch, lr " + f"{lrs[0]:g}" + ") | W1 seed vs seed | "
                  "W1 lr vs lr | W1 first -> last epoch | median non-zero abs dL/dx | tail (decades) |",
                  "|---|---|---:|---:|---:|---:|---:|"]
        for l in layers:
            r0 = finals[lrs[0]]
            q01 = _last(r0, [l], "q01")
            q99 = _last(r0, [l], "q99")
            c = comp["layers"][l]
            mv = _last(mine, [l], "first_to_last_w1")
            gm = _last(mine, [l], "median_abs")
            tl = _last(mine, [l], "tail_decades")
            lines.append(f"| `{l}` | [{_fmt(q01)}, {_fmt(q99)}] | {_fmt(c['seed_w1'], 3)} | "
                         f"{_fmt(c['lr_w1'], 3)} | {_fmt(mv, 3)} | {gm:.2e} | {_fmt(tl, 1)} |")
        lines.append("")
    lines += ["W1: Wasserstein-1 distance between input distributions (value units; mass outside "
              "[-6, 6] counted at the edges). Figure: ![sampling](sampling.png)", ""]
    text = "\n".join(lines)
    write_atomic(path, text)
    return text


def plot_analysis(analysis: dict[str, Any], path: Path) -> Path:
    """Per activation one row: 98% ranges per layer and lr; W1 seed vs lr per layer; median
    |dL/dx| per layer and lr."""
    from ..viz.curves import _plt, save_figure

    plt = _plt()
    comps = analysis["comparisons"]
    fig, axes = plt.subplots(len(comps), 3, figsize=(14, 3.6 * len(comps)), dpi=100, squeeze=False)
    for row, (act, comp) in enumerate(comps.items()):
        layers = list(comp["layers"])
        xs = np.arange(len(layers))
        mine = [r for r in analysis["runs"] if r["act"] == act]
        for k, lr in enumerate(comp["lrs"]):
            rs = [r for r in mine if r["lr"] == lr]
            lo = [_last(rs, [l], "q01") for l in layers]
            hi = [_last(rs, [l], "q99") for l in layers]
            axes[row, 0].vlines(xs + 0.2 * (k - 1), lo, hi, colors=f"C{k}", lw=3, label=f"lr {lr:g}")
            med = [_last(rs, [l], "median_abs") for l in layers]
            axes[row, 2].semilogy(xs, med, "o-", color=f"C{k}", label=f"lr {lr:g}")
        axes[row, 0].set_title(f"{act}: central 98% of inputs, last epoch", fontsize=9)
        axes[row, 0].legend(fontsize=7)
        sw = [comp["layers"][l]["seed_w1"] for l in layers]
        lw = [comp["layers"][l]["lr_w1"] for l in layers]
        axes[row, 1].bar(xs - 0.2, sw, 0.4, label="two seeds, same lr")
        axes[row, 1].bar(xs + 0.2, lw, 0.4, label="two lrs, same seed")
        axes[row, 1].set_title(f"{act}: W1 between final input distributions", fontsize=9)
        axes[row, 1].legend(fontsize=7)
        axes[row, 2].set_title(f"{act}: median non-zero |dL/dx|, last epoch", fontsize=9)
        axes[row, 2].legend(fontsize=7)
        for ax in axes[row]:
            ax.set_xticks(xs)
            ax.set_xticklabels([str(i) for i in range(len(layers))], fontsize=7)
            ax.set_xlabel("activation layer", fontsize=8)
            ax.grid(alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, path)


# -- the command ------------------------------------------------------------------------------
def run_sampling(args: argparse.Namespace) -> Path:
    """Train (unless --analyse), then analyse, plot and summarise; returns the run directory."""
    from .autoencoder import make_config, run_autoencoder
    from .common import require_plots
    from .schema import load_autoencoder_results

    require_plots("learnact bench sampling")
    if args.analyse:
        path = Path(args.analyse)
        results, _ = load_autoencoder_results(path)
    else:
        cfg = make_config(args.preset, acts=args.acts, lrs=args.lrs, seeds=args.seeds, epochs=args.epochs,
                          record=True, record_every=args.record_every, out=args.out,
                          quiet=args.quiet or None, threads=args.threads)
        path = run_autoencoder(cfg)
        if path is None:  # not rank 0
            return Path()
        results, _ = load_autoencoder_results(path)
    analysis = analyse(results)
    write_atomic(path / "sampling.json", json.dumps(analysis, indent=1))
    plot_analysis(analysis, path / "sampling.png")
    if args.analyse:
        cmd = f"learnact bench sampling --analyse {args.analyse}"
    else:
        cmd = (f"learnact bench sampling --acts '{';'.join(args.acts)}' --lrs "
               f"{','.join(f'{lr:g}' for lr in args.lrs)} --seeds {','.join(map(str, args.seeds))} "
               f"--epochs {args.epochs} --record-every {args.record_every} --preset {args.preset}")
    write_summary(analysis, path / "sampling.md", cmd)
    return path


def add_subcommand(bench: argparse._SubParsersAction) -> None:
    from .args import positive_floats, positive_int, seeds, split_specs

    p = bench.add_parser("sampling", help="where activations are sampled, and what they are told "
                         "(the blog's questions, answered)")
    p.add_argument("--acts", type=split_specs, default=list(DEFAULT_ACTS),
                   help="comma list of specs (default: gelu,tropical)")
    p.add_argument("--lrs", type=positive_floats, default=list(DEFAULT_LRS),
                   help="learning rates (default 5e-4,2e-3,8e-3)")
    p.add_argument("--seeds", type=seeds, default=[0, 1, 2], help="seeds (default 0,1,2)")
    p.add_argument("--preset", default="main", choices=["main", "quick", "tiny", "blog"],
                   help="the autoencoder preset for data and width (default main: 2000 images, C = 16)")
    p.add_argument("--epochs", type=positive_int, default=4, help="epochs per run (default 4)")
    p.add_argument("--record-every", type=positive_int, default=4,
                   help="record one training batch in N (default 4)")
    p.add_argument("--threads", type=positive_int, help="torch intra-op threads")
    p.add_argument("--out", help="run directory (default runs/autoencoder-<timestamp>)")
    p.add_argument("--analyse", metavar="RUN_DIR",
                   help="analyse an existing autoencoder run recorded with --record; no training")
    p.add_argument("--quiet", action="store_true", help="no progress bars")

    def _cmd(args: argparse.Namespace) -> int:
        path = run_sampling(args)
        if path != Path():
            print(f"summary: {path}/sampling.md\nfigure:  {path}/sampling.png\ndata:    {path}/sampling.json")
            print((path / "sampling.md").read_text())
        return 0

    p.set_defaults(func=_cmd)
