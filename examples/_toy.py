"""What the two toy-regression examples share: arguments, the summary table (no framework)."""

from __future__ import annotations

import argparse
import json
import statistics
from collections.abc import Callable

ACTS = ["gelu", "relu", "hermite", "fourier", "tropical", "tropical_rational", "rational", "ditac",
        "selu_variation"]


def run(doc: str, create: Callable[[str], object], train: Callable[..., dict], header: str,
        argv: list[str] | None = None) -> int:
    """Parse the shared arguments, check every activation name before training, train each
    activation x seed with ``train(act, seed, steps, lr, batch, width)`` and print the table."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--acts", nargs="+", default=ACTS, help="activation specs")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], help="run seeds")
    ap.add_argument("--steps", type=int, default=6000, help="Adam steps per run")
    ap.add_argument("--lr", type=float, default=5e-3, help="Adam learning rate")
    ap.add_argument("--batch", type=int, default=98, help="fresh points per step")
    ap.add_argument("--width", type=int, default=50, help="hidden width")
    ap.add_argument("--json", default=None, help="write every run's record to this file")
    args = ap.parse_args(argv)
    if args.steps < 1 or args.batch < 1 or args.width < 1 or not args.lr > 0:
        ap.error("--steps, --batch and --width must be >= 1 and --lr > 0")
    for act in args.acts:  # bad names fail before any training
        create(act)
    runs = [train(a, s, args.steps, args.lr, args.batch, args.width)
            for a in args.acts for s in args.seeds]
    print(f"{header}; {args.steps} steps x {len(args.seeds)} seed(s)\n")
    print("| activation | test MSE (mean ± std) | R² | s/run |")
    print("|---|---:|---:|---:|")
    for act in args.acts:
        rs = [r for r in runs if r["act"] == act]
        m = [r["test_mse"] for r in rs]
        sd = statistics.stdev(m) if len(m) > 1 else 0.0
        print(f"| `{act}` | {statistics.mean(m):.5f} ± {sd:.5f} | "
              f"{statistics.mean(r['r2'] for r in rs):.4f} | "
              f"{statistics.mean(r['seconds'] for r in rs):.1f} |")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(runs, fh, indent=1)
    return 0
