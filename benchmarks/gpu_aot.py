#!/usr/bin/env python3
"""Every Triton kernel compiled for the H100/H200 (sm_90) and the A100 (sm_80) without a GPU.

    python benchmarks/gpu_aot.py                 # writes benchmarks/results/gpu_aot.{md,json}
    python benchmarks/gpu_aot.py --check --out /tmp/aot   # what `make test` runs: exit 1 on a
                                                          # spill or an unvectorised stream

The launches are those the family ops make for (32, 1024, 768) (shared parameters, fp32 and
bf16) and for a per-channel (8192, 768) input (768 channels, channels last, fp32), recorded by
running forward and backward with Triton's interpreter in a child process (nothing runs: the
launcher is replaced), then compiled with triton.compile for sm_80 and sm_90 and read back with
the cuobjdump and nvdisasm in triton's wheel (learnact.ops.triton.aot). The roofline column:
bytes moved per element (element streams plus parameter tables and partial sums) and the time at
the H100's 3.35 TB/s and the H200's 4.8 TB/s, against eager GELU's fwd+bwd (which moves the
same 5 element streams: x, y forward; x, dL/dy, dL/dx backward).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

SHAPE = (32, 1024, 768)
PER_CHANNEL = (8192, 768)
SPECS = ["hermite:degree=8", "hermite:degree=8,tails=linear", "fourier:degree=4",
         "tropical:degree=8", "tropical_rational:degree=4", "rational", "selu_variation",
         "ditac", "ditac:lut=2048"]
ARCHS = (80, 90)
ROOT = Path(__file__).resolve().parent


def cases() -> list:
    from learnact.ops.triton.aot import Case

    out = [Case(s, SHAPE, dt) for s in SPECS for dt in ("float32", "bfloat16")]
    out += [Case(s, PER_CHANNEL, "float32", channels=768, channel_dim=-1) for s in SPECS]
    return out


def _capture() -> None:
    """Child process (TRITON_INTERPRET=1): print the recorded launches as JSON."""
    from learnact.ops.triton.aot import capture

    json.dump(capture(cases()), sys.stdout)


def _git() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, cwd=ROOT, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _widths(counts: dict) -> str:
    """{bits: count} as '128x4 32x2', widest first."""
    return " ".join(f"{w}x{n}" for w, n in sorted(counts.items(), key=lambda t: -int(t[0])))


def table(rows: list[dict], archs: tuple[int, ...]) -> str:
    from learnact.ops.triton.aot import BANDWIDTH, element_bits, problems

    import triton

    lines = ["# Triton kernels compiled ahead of time (no GPU)\n",
             f"`python benchmarks/gpu_aot.py` at commit {_git()}, triton {triton.__version__}; "
             f"launches as the ops make them for {'x'.join(map(str, SHAPE))} (shared) and "
             f"{'x'.join(map(str, PER_CHANNEL))} (768 channels, channels last). regs: registers "
             f"per thread; local: spill bytes; ld/st: global loads/stores per thread by width "
             f"(bits x count; the element streams are the 128-bit ones, parameters the 32-bit "
             f"ones); instr/el: static SASS instructions (loops counted once) per element; bytes/el: element streams plus "
             f"tables and partial sums; the last columns project fwd+bwd at full bandwidth, "
             f"against eager GELU's fwd+bwd (the same 5 streams).\n"]
    for arch in archs:
        lines.append(f"\n## sm_{arch}\n")
        lines.append("| case | way | kernel | regs | local | shared | ld | st | instr/el | "
                     "bytes/el | problems |")
        lines.append("|---|---|---|---:|---:|---:|---|---|---:|---:|---|")
        for r in (r for r in rows if r["arch"] == arch):
            bad = problems(r)
            lines.append(f"| {r['case']} | {r['way']} | `{r['kernel']}` | {r['regs']} | "
                         f"{r['local']} | {r['shared']} | {_widths(r['loads'])} | {_widths(r['stores'])} | "
                         f"{r['instructions_per_element']:.0f} | {r['bytes_per_element']:.2f} | "
                         f"{'; '.join(bad) or 'ok'} |")
    lines.append("\n<!-- --8<-- [start:roofline] -->")
    lines.append("## Roofline: fwd+bwd at full memory bandwidth\n")
    lines.append("| case | bytes/el fwd+bwd | GELU bytes/el | ratio | H100 ms | H200 ms | "
                 "GELU H100 ms | GELU H200 ms | max regs (sm_90) |")
    lines.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for case in dict.fromkeys(r["case"] for r in rows):
        mine = [r for r in rows if r["case"] == case and r["arch"] == archs[-1]]
        per = sum(r["bytes_per_element"] for r in mine)
        size = element_bits(mine[0]["dtype"]) // 8
        gelu = 5 * size
        n = mine[0]["numel"]
        ms = {k: per * n / bw * 1e3 for k, bw in BANDWIDTH.items()}
        gms = {k: gelu * n / bw * 1e3 for k, bw in BANDWIDTH.items()}
        lines.append(f"| {case} | {per:.2f} | {gelu} | {per / gelu:.3f} | {ms['H100']:.3f} | "
                     f"{ms['H200']:.3f} | {gms['H100']:.3f} | {gms['H200']:.3f} | "
                     f"{max(r['regs'] for r in mine)} |")
    lines.append("\nThe roofline is a floor, not a forecast: kernels with many instructions "
                 "per element (DiTAC's exact flow) are compute-bound before they are "
                 "memory-bound, and only a GPU run (benchmarks/gpu_check.py) measures them.")
    lines.append("<!-- --8<-- [end:roofline] -->\n")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(ROOT / "results"), help="directory of gpu_aot.md/json")
    ap.add_argument("--archs", default=",".join(map(str, ARCHS)))
    ap.add_argument("--check", action="store_true", help="exit 1 on any problem")
    ap.add_argument("--capture", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.capture:
        _capture()
        return 0
    if os.environ.get("TRITON_INTERPRET") == "1":
        raise SystemExit("gpu_aot.py compiles kernels: run it without TRITON_INTERPRET=1")
    archs = tuple(int(a) for a in args.archs.split(","))
    t = time.time()
    env = dict(os.environ, TRITON_INTERPRET="1")
    done = subprocess.run([sys.executable, __file__, "--capture"], capture_output=True,
                          text=True, env=env)
    if done.returncode:
        sys.stderr.write(done.stderr)
        return 1
    launches = json.loads(done.stdout)
    from learnact.ops.triton.aot import STREAMS, compile_launch, element_bits, problems, save

    from tqdm import tqdm
    rows = []
    for arch in archs:
        for rec in tqdm(launches, desc=f"compile sm_{arch}", leave=False):
            row = {**rec, "arch": arch, **compile_launch(rec, arch)}
            streams = sum(STREAMS[rec["way"]])
            size = element_bits(rec["dtype"]) // 8
            row["bytes_per_element"] = streams * size + rec["table_bytes"] / rec["numel"]
            rows.append(row)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    save(rows, out / "gpu_aot.json")
    (out / "gpu_aot.md").write_text(table(rows, archs))
    bad = [(r["case"], r["way"], r["arch"], p) for r in rows for p in problems(r)]
    print(f"{len(rows)} kernels compiled for sm_{', sm_'.join(map(str, archs))} in "
          f"{time.time() - t:.0f} s: {len(bad)} problem(s); table: {out / 'gpu_aot.md'}")
    for b in bad:
        print("  ", *b)
    return 1 if bad and args.check else 0


if __name__ == "__main__":
    raise SystemExit(main())
