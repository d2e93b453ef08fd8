#!/usr/bin/env python3
"""Speed and memory of every activation family against F.gelu, measured in the same run.

    python benchmarks/bench_ops.py                      # default specs, eager + compile
    python benchmarks/bench_ops.py --backends eager --runs 30
    python benchmarks/bench_ops.py --specs hermite:degree=8 --shape 16x256x768
    python benchmarks/bench_ops.py --runs 20 --results-md benchmarks/RESULTS.md  # the table there

Rows are appended to benchmarks/results/ops.csv (fixed schema: learnact.speed.OpRow);
benchmarks/plot_ops.py draws the figure from that CSV. Same as ``learnact bench ops``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from learnact.cli import main

if __name__ == "__main__":
    here = Path(__file__).resolve().parent
    argv = sys.argv[1:]
    if "--csv" not in argv:
        argv += ["--csv", os.path.relpath(here / "results" / "ops.csv")]
    raise SystemExit(main(["bench", "ops", *argv]))
