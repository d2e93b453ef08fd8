"""Ranked tables, summary.md and figures of a finished comparison."""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from typing import Any

from .blog_claims import blog_claim_lines
from .common import RunDir
from .schema import read_autoencoder_results
from .stats import BETTER, UNCLEAR, WORSE, interval, paired

__all__ = ["summarise_runs", "write_autoencoder_report", "markdown_rank_table"]


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)


def summarise_runs(runs: list[dict[str, Any]], metric: str = "test_loss",
                   target: float | None = None, higher_is_better: bool = False
                   ) -> list[dict[str, Any]]:
    """Per activation: final metric mean/std/min/max over seeds, epochs to target, cost."""
    by_act: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in runs:
        by_act[r["act"]].append(r)
    rows = []
    for act, rs in by_act.items():
        by_seed = {r["seed"]: r["epochs"][-1][metric] for r in rs
                   if r["epochs"] and not r["diverged"] and _finite(r["epochs"][-1][metric])}
        finals = list(by_seed.values())
        _, low, high = interval(finals)
        diverged = sum(1 for r in rs if r["diverged"])
        n_ep = min((len(r["epochs"]) for r in rs if not r["diverged"]), default=0)
        curve = [statistics.fmean(r["epochs"][e][metric] for r in rs if not r["diverged"])
                 for e in range(n_ep)] if n_ep else []
        ept = None
        if target is not None and curve:
            hits = [e + 1 for e, v in enumerate(curve)
                    if (v >= target if higher_is_better else v <= target)]
            ept = hits[0] if hits else None
        secs = [e["seconds"] for r in rs for e in r["epochs"]]
        rows.append({
            "act": act, "seeds": len(rs), "diverged": diverged,
            "mean": statistics.fmean(finals) if finals else float("nan"),
            "std": statistics.stdev(finals) if len(finals) > 1 else 0.0,
            "low": low, "high": high, "by_seed": by_seed,
            "min": min(finals) if finals else float("nan"),
            "max": max(finals) if finals else float("nan"),
            "best": (max if higher_is_better else min)(
                (e[metric] for r in rs for e in r["epochs"] if _finite(e[metric])),
                default=float("nan")),
            "epochs_to_target": ept,
            "params": rs[0].get("params"), "act_params": rs[0].get("act_params"),
            "sec_per_epoch": statistics.fmean(secs) if secs else float("nan"),
        })
    bad = float("-inf") if higher_is_better else float("inf")
    rows.sort(key=lambda r: (r["mean"] if _finite(r["mean"]) else bad),
              reverse=higher_is_better)
    return rows


def _verdict(rows: list[dict[str, Any]], act: str, base: str | None) -> str:
    ref = next((r for r in rows if r["act"] == base), None)
    if ref is None or act == base:
        return "–"
    row = next(r for r in rows if r["act"] == act)
    p = paired(row["by_seed"], ref["by_seed"])
    if not math.isfinite(p.low):
        return f"{p.verdict} (n={p.n})"
    return f"{p.verdict} ({p.mean:+.4f} [{p.low:+.4f}, {p.high:+.4f}])"


def markdown_rank_table(rows: list[dict[str, Any]], metric_name: str, target_name: str = "",
                        baselines: tuple[str, ...] = ()) -> str:
    """Ranked by the mean over seeds, with the 95% t interval of the mean and, per baseline,
    the paired verdict (difference to the baseline, same seeds: mean [95% interval])."""
    cols = "".join(f" vs `{b}` |" for b in baselines)
    head = (f"| rank | activation | final {metric_name}: mean [95% interval] | min – max |"
            f"{cols} epochs to {target_name or 'target'} | params | act. params | s/epoch | "
            f"seeds (diverged) |")
    out = [head, "|---:|---|---:|---:|" + "---|" * len(baselines) + "---:|---:|---:|---:|---:|"]
    for i, r in enumerate(rows, 1):
        ept = "–" if r["epochs_to_target"] is None else str(r["epochs_to_target"])
        if not _finite(r["mean"]):
            mean = "diverged"
        elif _finite(r["low"]):
            mean = f"{r['mean']:.5f} [{r['low']:.5f}, {r['high']:.5f}]"
        else:
            mean = f"{r['mean']:.5f}"
        verdicts = "".join(f" {_verdict(rows, r['act'], b)} |" for b in baselines)
        out.append(f"| {i} | `{r['act']}` | {mean} | {r['min']:.5f} – {r['max']:.5f} |"
                   f"{verdicts} {ept} | {r['params']} | {r['act_params']} | "
                   f"{r['sec_per_epoch']:.2f} | {r['seeds']} ({r['diverged']}) |")
    return "\n".join(out)


def verdict_lines(rows: list[dict[str, Any]], base: str, what: str) -> list[str]:
    """Plain sentences that claim only what the paired intervals support."""
    if not any(r["act"] == base for r in rows):
        return []
    groups: dict[str, list[str]] = {BETTER: [], WORSE: [], UNCLEAR: []}
    ref = next(r for r in rows if r["act"] == base)
    for r in rows:
        if r["act"] != base:
            groups[paired(r["by_seed"], ref["by_seed"]).verdict].append(f"`{r['act']}`")
    n = len(ref["by_seed"])
    return [f"**Against {what} (`{base}`, paired over {n} seeds, 95% interval of the "
            f"difference)**: lower loss: {', '.join(groups[BETTER]) or 'none'}; higher loss: "
            f"{', '.join(groups[WORSE]) or 'none'}; not distinguishable: "
            f"{', '.join(groups[UNCLEAR]) or 'none'}.", ""]


def write_autoencoder_report(run: RunDir, results: dict[str, Any]) -> None:
    read_autoencoder_results(results, str(run.path / "results.json"))  # the schema, checked
    cfg = results["config"]
    runs = results["runs"]
    groups: dict[tuple[int, float], list[dict[str, Any]]] = defaultdict(list)
    for r in runs:
        groups[(r["width"], r["lr"])].append(r)
    main_key = (cfg["channels"], cfg["lr"]) if (cfg["channels"], cfg["lr"]) in groups else next(iter(groups))
    main = groups[main_key]
    ident = [r for r in main if r["act"] == "identity" and not r["diverged"]]
    target = cfg.get("target_loss")
    target_name = f"loss {target:g}" if target is not None else "identity's final loss"
    if target is None and ident:
        target = statistics.fmean(r["epochs"][-1]["test_loss"] for r in ident)
    rows = summarise_runs(main, "test_loss", target)
    from ..viz.curves import plot_loss_curves, plot_sweep

    curves: dict[str, list[list[float]]] = defaultdict(list)
    for r in main:
        curves[r["act"]].append([e["test_loss"] for e in r["epochs"]] if not r["diverged"] else [])
    base = results.get("baselines", {}).get("mean_image_test_loss")
    plot_loss_curves(dict(curves), run.path / "loss.png",
                     title=f"Fashion-MNIST conv autoencoder, preset {cfg['preset']} "
                           f"(C={main_key[0]}, lr={main_key[1]:g}, {len(cfg['seeds'])} seed(s))",
                     ylabel=f"test {cfg['loss'].upper()}",
                     baseline=("mean image", base) if base is not None and base < 1 else None)
    lines = [f"# Autoencoder comparison ({cfg['preset']} preset)", "",
             f"Fashion-MNIST, conv autoencoder (no pooling, 28x28 -> {cfg['latent']}x1x1 -> "
             f"28x28), C = {main_key[0]}, {cfg['epochs']} epochs, {cfg['optimizer']} lr "
             f"{main_key[1]:g}, batch {cfg['batch_size']}, loss {cfg['loss']}, "
             f"train images {cfg['train_limit'] or 60000}, test images "
             f"{cfg['test_limit'] or 10000}, seeds {cfg['seeds']}, "
             f"{'per-channel' if cfg['per_channel'] else 'shared'} activation parameters, "
             f"world size {results.get('world_size', 1)}.", ""]
    if base is not None:
        lines += [f"Predicting the mean training image gives test loss **{base:.5f}**.", ""]
    baselines = tuple(b for b in ("identity", "gelu") if any(r["act"] == b for r in rows))
    lines += [markdown_rank_table(rows, f"test {cfg['loss']}", target_name, baselines), ""]
    if len(cfg["seeds"]) < 2:
        lines += ["One seed: no interval, so no difference in this table is shown to be real "
                  "(run with `--seeds 0,1,2`).", ""]
    else:
        lines += ["The rank follows the mean; a difference counts only where the paired "
                  "interval excludes 0 (the verdicts below).", ""]
        lines += verdict_lines(rows, "identity", "the linear baseline")
        lines += verdict_lines(rows, "gelu", "GELU")
        lines += blog_claim_lines(rows)
    diverged = [r["act"] for r in rows if r["diverged"]]
    if diverged:
        lines += ["Diverged (NaN/inf loss) in at least one seed: "
                  + ", ".join(f"`{a}`" for a in diverged) + ".", ""]
    lines += ["![log test loss per epoch](loss.png)", ""]
    widths = sorted({k[0] for k in groups})
    if len(widths) > 1:
        xs: dict[str, list[float]] = defaultdict(list)
        ys: dict[str, list[float]] = defaultdict(list)
        lines += ["## Loss against parameter count (width sweep)", "",
                  "| activation | " + " | ".join(f"C={w}" for w in widths) + " |",
                  "|---|" + "---:|" * len(widths)]
        for act in cfg["acts"]:
            cells = []
            for w in widths:
                rs = summarise_runs(groups.get((w, main_key[1]), []))
                r = next((r for r in rs if r["act"] == act), None)
                cells.append(f"{r['mean']:.5f} ({r['params']} p)" if r else "–")
                if r and _finite(r["mean"]):
                    xs[act].append(r["params"])
                    ys[act].append(r["mean"])
            lines.append(f"| `{act}` | " + " | ".join(cells) + " |")
        plot_sweep(xs, ys, run.path / "loss_vs_params.png", xlabel="parameters",
                   ylabel="final test loss", title="Is a learnable activation more expressive "
                   "per parameter?")
        lines += ["", "![final loss vs parameters](loss_vs_params.png)", ""]
    lrs = sorted({k[1] for k in groups})
    if len(lrs) > 1:
        lines += ["## Ranking per learning rate", "",
                  "| lr | ranking (best first, final test loss) |", "|---:|---|"]
        for lr in lrs:
            rs = summarise_runs(groups.get((main_key[0], lr), []))
            lines.append(f"| {lr:g} | " + ", ".join(
                f"`{r['act']}` {r['mean']:.4f}" if _finite(r["mean"]) else f"`{r['act']}` div."
                for r in rs) + " |")
        lines.append("")
    run.write_text("summary.md", "\n".join(lines))
