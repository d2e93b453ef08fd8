"""Speed of learnact.jax and learnact.keras (JAX backend) against jax.nn.gelu, side by side.

fwd+bwd under ``jax.jit``: the gradient of sum(f(x) * g) with respect to x and the
activation's parameters, on a (16, 256, 768) float32 tensor; every family's timing is
interleaved with a GELU timing in the same loop (median of --runs after warm-up), so the ratio
is meaningful on a noisy machine. Writes a markdown table (stdout) and a CSV.

    python benchmarks/bench_frontends.py --runs 20 --csv benchmarks/results/frontends.csv
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "jax")
# 2 threads, like the PyTorch op table: XLA's CPU client sizes its intra-op pool by the CPU
# affinity mask when it starts, so the process keeps two CPUs before jax is imported
os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:2])

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from flax import nnx  # noqa: E402

import learnact.jax as lj  # noqa: E402
import learnact.keras as lk  # noqa: E402

SPECS = ["hermite:degree=4", "hermite:degree=8", "hermite:degree=8,tails=linear",
         "hermite:degree=8,channels=768", "fourier:degree=4", "fourier:degree=8",
         "tropical:degree=4", "tropical:degree=8", "tropical_rational:degree=4", "rational",
         "selu_variation", "ditac", "ditac:channels=768", "ditac:lut=2048"]


def _jax_step(spec: str):
    if spec == "gelu":
        f = jax.jit(jax.value_and_grad(lambda x, g: (jax.nn.gelu(x, approximate=False) * g).sum()))
        return lambda x, g: f(x, g)
    m = lj.create(spec, rngs=nnx.Rngs(0))  # seeded: DiTAC's prior init draws theta
    graphdef, params, rest = nnx.split(m, nnx.Param, ...)

    def loss(x, params, g):
        return (nnx.merge(graphdef, params, rest)(x) * g).sum()

    f = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))
    return lambda x, g: f(x, params, g)


def _keras_step(spec: str):
    layer = lk.create(spec, seed=0)
    layer.build((16, 256, 768))
    tv = [v.value for v in layer.trainable_variables]
    ntv = [v.value for v in layer.non_trainable_variables]

    def loss(x, tv, g):
        y, _ = layer.stateless_call(tv, ntv, x)
        return (y * g).sum()

    f = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))
    return lambda x, g: f(x, tv, g)


def _time(step, x, g) -> float:
    t = time.perf_counter()
    jax.block_until_ready(step(x, g))
    return (time.perf_counter() - t) * 1e3


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=20, help="timed runs per row (default 20)")
    ap.add_argument("--shape", type=int, nargs="+", default=[16, 256, 768],
                    help="input shape, channels last (default 16 256 768)")
    ap.add_argument("--specs", nargs="+", default=SPECS, help="activation specs to time")
    ap.add_argument("--csv", default=None, help="write the rows to this CSV file")
    args = ap.parse_args(argv)
    if args.runs < 1:
        ap.error("--runs must be >= 1")
    key = jax.random.PRNGKey(0)
    x = jax.random.normal(key, tuple(args.shape), jnp.float32)
    g = jax.random.normal(jax.random.PRNGKey(1), tuple(args.shape), jnp.float32)
    gelu = _jax_step("gelu")
    rows = []
    for frontend, build in (("jax", _jax_step), ("keras-jax", _keras_step)):
        for spec in args.specs:
            if "channels=" in spec:
                spec = spec.replace("channels=768", f"channels={args.shape[-1]}")
            step = build(spec)
            for _ in range(3):  # compile and warm up both
                _time(step, x, g), _time(gelu, x, g)
            ours, ref = [], []
            for _ in range(args.runs):
                ours.append(_time(step, x, g))
                ref.append(_time(gelu, x, g))
            mo, mr = statistics.median(ours), statistics.median(ref)
            rows.append({"frontend": frontend, "spec": spec, "ms": round(mo, 3),
                         "gelu_ms": round(mr, 3), "ratio": round(mo / mr, 3)})
            print(f"{frontend:10s} {spec:36s} {mo:8.2f} ms  gelu {mr:7.2f} ms  {mo / mr:5.2f}x",
                  file=sys.stderr)
    print(f"Input {tuple(args.shape)} float32, fwd+bwd under jax.jit (grad wrt x and the "
          f"parameters), median of {args.runs} runs interleaved with jax.nn.gelu; "
          f"jax {jax.__version__}.\n")
    print("| frontend | spec | fwd+bwd ms | GELU ms | / GELU |")
    print("|---|---|---:|---:|---:|")
    for r in rows:
        print(f"| {r['frontend']} | `{r['spec']}` | {r['ms']:.2f} | {r['gelu_ms']:.2f} | "
              f"{r['ratio']:.2f}x |")
    if args.csv:
        with open(args.csv, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
