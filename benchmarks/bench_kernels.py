"""The family kernels alone, without PyTorch or JAX around them: ns per element, one thread.

Builds benchmarks/bench_kernels.cc against learnact/native with the flags both bindings use
(learnact._build: CXX_FLAGS, MARCH, GCC_FLAGS under GCC) and prints its markdown table
(forward and backward of a 2M-element float32 tensor, shared row and 768 channels last, best
of --reps runs). Where a family's op is slower than its kernel, the difference is the
framework's (dispatch, autograd, allocation); the kernel's cost against the memory floor is
what RESULTS.md's "why" paragraph reads from here.

    python benchmarks/bench_kernels.py --reps 15
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from learnact import _build


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=15, help="runs per row; the best is reported")
    args = ap.parse_args(argv)
    if args.reps < 1:
        ap.error(f"--reps must be >= 1, got {args.reps}")
    cxx = _build.find_compiler("CXX", ("c++", "g++", "clang++"))
    if cxx is None:
        print("no C++ compiler found (set CXX, or install g++)", file=sys.stderr)
        return 1
    flags = [f for f in _build.CXX_FLAGS if f not in ("-shared", "-fPIC")]
    flags += [*_build.MARCH, *_build.gcc_flags(cxx), f"-I{_build.NATIVE}"]
    src = Path(__file__).with_name("bench_kernels.cc")
    with tempfile.TemporaryDirectory() as tmp:
        exe = Path(tmp) / "bench_kernels"
        subprocess.run([cxx, *flags, str(src), "-o", str(exe)], check=True)
        print(f"{cxx} {' '.join(flags)}")
        return subprocess.run([str(exe), str(args.reps)], check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
