#!/usr/bin/env python3
"""Draw benchmarks/results/ops.png from benchmarks/results/ops.csv (data first, plots second).

    python benchmarks/plot_ops.py [--csv benchmarks/results/ops.csv] [--out benchmarks/results/ops.png]

Uses the newest timestamp's rows per (spec, backend).
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def main() -> None:
    here = Path(__file__).resolve().parent / "results"
    ap = argparse.ArgumentParser()
    ap.add_argument("--csv", default=str(here / "ops.csv"))
    ap.add_argument("--out", default=str(here / "ops.png"))
    args = ap.parse_args()
    rows = list(csv.DictReader(open(args.csv)))
    latest: dict[tuple[str, str], dict[str, str]] = {}
    for r in rows:
        key = (r["spec"], r["backend"])
        if key not in latest or r["timestamp"] >= latest[key]["timestamp"]:
            latest[key] = r
    specs = list(dict.fromkeys(k[0] for k in latest))
    backends = sorted({k[1] for k in latest})
    fig, ax = plt.subplots(figsize=(9, 4.5), dpi=110)
    w = 0.8 / len(backends)
    for i, b in enumerate(backends):
        vals = [float(latest[(s, b)]["full_ratio_to_gelu"]) if (s, b) in latest else np.nan
                for s in specs]
        ax.bar(np.arange(len(specs)) + i * w, vals, w, label=f"{b} fwd+bwd")
    ax.axhline(1.0, color="k", lw=0.8, ls="--")
    ax.set_yscale("log")
    ax.set_xticks(np.arange(len(specs)) + w * (len(backends) - 1) / 2)
    ax.set_xticklabels([s.replace(",", "\n") for s in specs], rotation=30, ha="right", fontsize=7)
    ax.set_ylabel("time / F.gelu time (same run)")
    r0 = next(iter(latest.values()))
    ax.set_title(f"forward+backward vs GELU, {r0['shape']} {r0['dtype']}, {r0['threads']} threads")
    ax.legend()
    fig.tight_layout()
    fig.savefig(args.out)
    print(args.out)


if __name__ == "__main__":
    main()
