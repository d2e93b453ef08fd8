"""Inference speed of learnact.freeze's forms against the training modules and F.gelu, in
eager PyTorch and in onnxruntime (CPU), side by side.

Forward only (inference: ``torch.no_grad`` / an ONNX session) on a (64, 4096) float32
tensor; in each round every form and GELU are timed in turn (median of --runs after
warm-up), so the ratios are meaningful on a noisy machine. Writes a markdown table (stdout)
and a CSV.

    python benchmarks/bench_freeze.py --runs 30 --csv benchmarks/results/freeze.csv
"""

from __future__ import annotations

import argparse
import csv
import logging
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch

import learnact

SPECS = ["hermite:degree=8", "hermite:degree=8,tails=linear", "fourier:degree=8",
         "tropical:degree=8", "tropical_rational:degree=4", "rational", "selu_variation",
         "perlin", "ditac", "ditac:lut=256", "staircase"]


def _session(model: torch.nn.Module, x: torch.Tensor, path: Path, threads: int):
    import onnxruntime as ort

    prog = torch.onnx.export(model, (x,), dynamo=True, verbose=False)
    prog.save(str(path))
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    # idle onnxruntime workers otherwise spin, stealing the cores from the eager timings
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    s = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    name = s.get_inputs()[0].name
    feed = {name: x.numpy()}
    return lambda: s.run(None, feed)


def _timer(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=30, help="timed rounds (median)")
    p.add_argument("--warmup", type=int, default=3, help="untimed rounds first")
    p.add_argument("--threads", type=int, default=2, help="torch and onnxruntime threads")
    p.add_argument("--shape", type=int, nargs="+", default=[64, 4096], help="input shape")
    p.add_argument("--specs", nargs="+", default=SPECS, help="learnact specs")
    p.add_argument("--no-onnx", action="store_true", help="eager only")
    p.add_argument("--csv", type=Path, default=None, help="write the rows here")
    a = p.parse_args(argv)
    warnings.filterwarnings("ignore")
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    from learnact.speed import steady_malloc

    steady_malloc()  # reused pages for every form and GELU alike (learnact.speed)
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    x = torch.randn(*a.shape)
    gelu = torch.nn.GELU()
    fns: dict[tuple[str, str], object] = {}
    tmp = Path(tempfile.mkdtemp())
    for i, spec in enumerate(["gelu", *a.specs]):
        module = gelu if spec == "gelu" else learnact.create(spec).eval()
        frozen = learnact.freeze(module)
        for form, m in (("module", module), ("frozen", frozen)):
            if spec == "gelu" and form == "frozen":
                continue
            fns[(spec, f"eager {form}")] = (lambda m=m: m(x))
            if not a.no_onnx:
                fns[(spec, f"onnx {form}")] = _session(m, x, tmp / f"{i}{form}.onnx", a.threads)
    times: dict[tuple[str, str], list[float]] = {k: [] for k in fns}
    with torch.no_grad():
        for r in range(a.warmup + a.runs):
            for k, fn in fns.items():
                t = _timer(fn)
                if r >= a.warmup:
                    times[k].append(t)
    med = {k: statistics.median(v) * 1e3 for k, v in times.items()}
    g_eager = med[("gelu", "eager module")]
    g_onnx = med.get(("gelu", "onnx module"))
    rows = []
    for spec in a.specs:
        row = {"spec": spec,
               "eager_module_x_gelu": med[(spec, "eager module")] / g_eager,
               "eager_frozen_x_gelu": med[(spec, "eager frozen")] / g_eager}
        if g_onnx:
            row["onnx_module_x_gelu"] = med[(spec, "onnx module")] / g_onnx
            row["onnx_frozen_x_gelu"] = med[(spec, "onnx frozen")] / g_onnx
        rows.append(row)
    head = (f"shape {tuple(a.shape)} float32, {a.threads} threads, forward only, median of "
            f"{a.runs}; GELU: eager {g_eager:.3f} ms" +
            (f", onnxruntime {g_onnx:.3f} ms" if g_onnx else ""))
    print(head + "\n")
    cols = list(rows[0])
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for row in rows:
        print("| " + " | ".join(row["spec"] if c == "spec" else f"{row[c]:.2f}"
                                for c in cols) + " |")
    if a.csv:
        a.csv.parent.mkdir(parents=True, exist_ok=True)
        with a.csv.open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=cols)
            w.writeheader()
            w.writerows(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
