"""Run a script on one CPU and on all of them (XLA sizes its intra-op pool by the affinity mask
when it starts): the kernels' thread-count independence tests compare the two outputs."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


def last_lines_on_one_and_all_cpus(script: str) -> list[str]:
    """The last output line of ``script`` run in a fresh process pinned to one CPU, then to
    every CPU this process may use (skips where there is only one)."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        pytest.skip("needs two CPUs to compare thread counts")
    runs = []
    for mask in ([cpus[0]], cpus):
        pin = f"import os; os.sched_setaffinity(0, {mask!r})\n"
        res = subprocess.run([sys.executable, "-c", pin + script], capture_output=True,
                             text=True, timeout=300, check=True)
        runs.append(res.stdout.strip().splitlines()[-1])
    return runs
