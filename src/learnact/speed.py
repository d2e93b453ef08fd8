"""Speed and memory of the activation ops, side by side with F.gelu in the same run.

Used by ``benchmarks/bench_ops.py`` and ``learnact bench ops``. Every timing of a family is
interleaved with a timing of ``torch.nn.functional.gelu`` on the same tensor, so the ratios
are robust to the machine's noise; absolute milliseconds are only meaningful within a row.
"""

from __future__ import annotations

import csv
import datetime as _dt
import logging
import os
import platform
import re
import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .modules.base import LearnableActivation
from .registry import create, parse_spec

log = logging.getLogger(__name__)

__all__ = ["OpRow", "benchmark_ops", "write_csv", "DEFAULT_SPECS", "flops_per_element"]

DEFAULT_SPECS = (
    "hermite:degree=4", "hermite:degree=8", "hermite:degree=16",
    "fourier:degree=4", "fourier:degree=8",
    "tropical:degree=4", "tropical:degree=8",
    "tropical_rational:degree=4",
    "hermite:degree=8,channels=768,channel_dim=-1",
    "tropical:degree=4,channels=768,channel_dim=-1", "rational:channels=768,channel_dim=-1",
    "hermite:degree=8,tails=linear",
    "selu_variation", "rational", "perlin", "staircase", "cantor",
    "ditac", "ditac:lut=2048", "pwlu",
)


@dataclass
class OpRow:
    """One CSV row (fixed schema)."""

    timestamp: str
    torch_version: str
    device: str
    threads: int
    shape: str
    dtype: str
    spec: str
    family: str
    degree: int
    channels: int
    backend: str
    fwd_ms_p20: float
    fwd_ms_p50: float
    fwd_ms_p80: float
    full_ms_p20: float
    full_ms_p50: float
    full_ms_p80: float
    gelu_fwd_ms_p50: float
    gelu_full_ms_p50: float
    fwd_ratio_to_gelu: float
    full_ratio_to_gelu: float
    saved_bytes: int
    saved_ratio_to_input: float
    gelu_saved_bytes: int
    flops_per_element: int
    transcendentals_per_element: int
    runs: int
    timing: str = "interleaved"  # or "blocks" (see benchmark_ops)
    params: str = "fixed"  # or "stepped" (see benchmark_ops)
    malloc: str = "default"  # or "steady" (see steady_malloc)


def flops_per_element(act: nn.Module) -> tuple[int, int]:
    """Forward arithmetic operations and transcendental calls per element (analytic count):
    the family's own hook (``LearnableActivation.flops_per_element``); GELU's for reference."""
    if isinstance(act, LearnableActivation):
        return act.flops_per_element()
    if isinstance(act, nn.GELU):  # x * 0.5 * (1 + erf(x / sqrt(2)))
        return 4, 1
    return 0, 0


def steady_malloc() -> bool:
    """Make glibc keep freed memory for reuse (mallopt: M_MMAP_THRESHOLD at its 32 MB maximum,
    M_TRIM_THRESHOLD 1 GB) for the rest of the process; returns whether it applied (glibc
    only). A benchmark's 12 MB outputs otherwise come, depending on the heap's history, from
    fresh pages (~3200 page faults, 1-3 ms per call) or from reused ones: the same op's median
    moved 5.3-8.7 ms between runs with GELU's unchanged. Applies to GELU and the op alike."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if platform.system() != "Linux" or not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        m_trim, m_mmap = -1, -3  # malloc.h
        return bool(libc.mallopt(m_mmap, 32 << 20)) and bool(libc.mallopt(m_trim, 1 << 30))
    except (OSError, AttributeError):
        return False


def _quantiles(ts: list[float]) -> tuple[float, float, float]:
    q = statistics.quantiles(ts, n=10, method="inclusive")
    return q[1] * 1e3, statistics.median(ts) * 1e3, q[7] * 1e3


def _saved_bytes(fn: Callable[[Tensor], Tensor], x: Tensor) -> int:
    total = 0

    def pack(t: Tensor) -> Tensor:
        nonlocal total
        total += t.numel() * t.element_size()
        return t

    xx = x.detach().requires_grad_(True)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn(xx)
    return total


def _timed(fn: Callable[[], object], sync: Callable[[], None]) -> float:
    sync()
    t = time.perf_counter()
    fn()
    sync()
    return time.perf_counter() - t


def benchmark_ops(specs: Iterable[str] = DEFAULT_SPECS, shape: tuple[int, ...] = (16, 256, 768),
                  dtype: torch.dtype = torch.float32, device: str = "cpu", runs: int = 25,
                  warmup: int = 3, backends: Iterable[str] = ("eager", "compile"),
                  threads: int | None = 2, progress: bool = True,
                  timing: str = "interleaved", step_params: bool = False,
                  malloc: str = "default") -> list[OpRow]:
    """Time forward and forward+backward of each spec against F.gelu in the same run.

    timing ``"interleaved"`` alternates one GELU run and one op run; ``"blocks"`` times all GELU
    runs back to back, then all op runs. Interleaving cancels slow drifts of the machine, but
    next to a much slower op GELU's own time grows (its working set is evicted: measured up
    to 3x), which understates that op's ratio; blocks time each in its steady state.

    ``step_params``: before every timed run of the op its parameters move a little in place,
    as after an optimiser step, so anything an op derives from its parameters and keeps
    while they are unchanged (DiTAC's lookup table) is rebuilt and timed: the training-step
    cost. Without it parameters stay fixed (inference, or several calls per step).

    ``malloc="steady"``: :func:`steady_malloc` first (glibc keeps freed memory), so that page
    faults of fresh outputs do not decide the medians; recorded in each row.
    """
    if timing not in ("interleaved", "blocks"):
        raise ValueError(f"timing must be 'interleaved' or 'blocks', got {timing!r}")
    if malloc not in ("default", "steady"):
        raise ValueError(f"malloc must be 'default' or 'steady', got {malloc!r}")
    if malloc == "steady" and not steady_malloc():
        log.warning("malloc='steady' needs glibc; timing with the default allocator")
        malloc = "default"
    if threads:
        torch.set_num_threads(threads)
    dev = torch.device(device)
    sync = (lambda: torch.cuda.synchronize(dev)) if dev.type == "cuda" else (lambda: None)
    x = torch.randn(shape, dtype=dtype, device=dev)
    g = torch.randn_like(x)
    rows: list[OpRow] = []
    specs = list(specs)
    backends = list(backends)
    if not backends or any(b not in ("eager", "compile") for b in backends):
        raise ValueError(f"backends must be 'eager' and/or 'compile', got {backends}")
    try:
        from tqdm import tqdm

        bar = tqdm(total=len(specs) * len(backends), disable=not progress, desc="bench ops")
    except ImportError:  # tqdm is an [exp] extra
        bar = None
    for backend in backends:
        gelu_fn: Callable[[Tensor], Tensor] = F.gelu
        for spec in specs:
            act = create(spec).to(dev)
            fam, raw = parse_spec(spec)
            fn: Callable[[Tensor], Tensor] = act
            if backend == "compile":
                torch._dynamo.reset()
                fn = torch.compile(act, fullgraph=True)
            try:
                fn(x[:1].detach().requires_grad_(True)).sum().backward()
            except Exception as exc:  # noqa: BLE001 - one failing row must not end the run
                log.warning("%s [%s] failed: %s: %s", spec, backend, type(exc).__name__, exc)
                if bar is not None:
                    bar.update(1)
                continue

            params = [p for p in act.parameters() if p.is_floating_point()]

            def step() -> None:
                if step_params:
                    with torch.no_grad():  # new values every run (a drift of ~1e-2 in all)
                        for p in params:
                            p.add_(1e-4)

            def fwd(f=fn) -> None:
                step()
                with torch.no_grad():
                    f(x)

            def full(f=fn) -> None:
                step()
                xx = x.detach().requires_grad_(True)
                f(xx).backward(g)

            def gfwd() -> None:
                with torch.no_grad():
                    gelu_fn(x)

            def gfull() -> None:
                xx = x.detach().requires_grad_(True)
                gelu_fn(xx).backward(g)

            for _ in range(warmup):
                fwd(), full(), gfwd(), gfull()
            tf, tb, gf, gb = [], [], [], []
            if timing == "interleaved":
                for _ in range(runs):
                    gf.append(_timed(gfwd, sync))
                    tf.append(_timed(fwd, sync))
                    gb.append(_timed(gfull, sync))
                    tb.append(_timed(full, sync))
            else:
                for fn_, ts in ((gfwd, gf), (fwd, tf), (gfull, gb), (full, tb)):
                    fn_()  # one untimed run: the block starts from its own working set
                    ts.extend(_timed(fn_, sync) for _ in range(runs))
            f20, f50, f80 = _quantiles(tf)
            b20, b50, b80 = _quantiles(tb)
            g_f = statistics.median(gf) * 1e3
            g_b = statistics.median(gb) * 1e3
            saved = _saved_bytes(act, x)  # eager graph: what autograd keeps for backward
            degree = int(getattr(act, "degree", 0))
            fl, tr = flops_per_element(act)
            rows.append(OpRow(
                timestamp=_dt.datetime.now().isoformat(timespec="seconds"),
                torch_version=torch.__version__, device=_device_name(dev),
                threads=torch.get_num_threads(), shape="x".join(map(str, shape)),
                dtype=str(dtype).replace("torch.", ""), spec=spec, family=fam, degree=degree,
                channels=int(getattr(act, "channels", None) or 0), backend=backend,
                fwd_ms_p20=f20, fwd_ms_p50=f50, fwd_ms_p80=f80, full_ms_p20=b20,
                full_ms_p50=b50, full_ms_p80=b80, gelu_fwd_ms_p50=g_f, gelu_full_ms_p50=g_b,
                fwd_ratio_to_gelu=f50 / g_f, full_ratio_to_gelu=b50 / g_b, saved_bytes=saved,
                saved_ratio_to_input=saved / (x.numel() * x.element_size()),
                gelu_saved_bytes=_saved_bytes(F.gelu, x), flops_per_element=fl,
                transcendentals_per_element=tr, runs=runs, timing=timing,
                params="stepped" if step_params else "fixed", malloc=malloc))
            log.info("%s [%s]: fwd %.2fx, fwd+bwd %.2fx GELU, saved %.3fx input", spec, backend,
                     rows[-1].fwd_ratio_to_gelu, rows[-1].full_ratio_to_gelu,
                     rows[-1].saved_ratio_to_input)
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()
    return rows


def _device_name(dev: torch.device) -> str:
    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    return f"cpu:{platform.processor() or platform.machine()}x{os.cpu_count()}"


def write_csv(rows: list[OpRow], path: str | os.PathLike) -> Path:
    """Append rows to a CSV with the fixed OpRow schema (header written once)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    names = [f.name for f in fields(OpRow)]
    new = not p.exists() or p.stat().st_size == 0
    if not new:
        with p.open(newline="") as fh:
            reader = csv.DictReader(fh)
            old_rows, header = list(reader), reader.fieldnames or []
        if header != names:  # an older schema: rewrite it with the new columns' defaults
            defaults = {f.name: f.default for f in fields(OpRow)}
            with p.open("w", newline="") as fh:
                w = csv.DictWriter(fh, fieldnames=names)
                w.writeheader()
                for r in old_rows:
                    w.writerow({k: r.get(k, defaults[k]) for k in names})
    with p.open("a", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=names)
        if new:
            w.writeheader()
        for r in rows:
            w.writerow({k: (round(v, 4) if isinstance(v, float) else v)
                        for k, v in asdict(r).items()})
    return p


def markdown_table(rows: list[OpRow]) -> str:
    """The RESULTS.md table."""
    out = ["| spec | backend | fwd ms | fwd+bwd ms | GELU fwd+bwd ms | fwd / GELU "
           "| fwd+bwd / GELU | saved / input | flops/elem |",
           "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        backend = r.backend if r.timing == "interleaved" else f"{r.backend} (blocks)"
        if r.params == "stepped":
            backend += " (params stepped)"
        if r.malloc == "steady":
            backend += " (steady malloc)"
        out.append(f"| `{r.spec}` | {backend} | {r.fwd_ms_p50:.2f} | {r.full_ms_p50:.2f} | "
                   f"{r.gelu_full_ms_p50:.2f} | {r.fwd_ratio_to_gelu:.2f}x | "
                   f"{r.full_ratio_to_gelu:.2f}x | {r.saved_ratio_to_input:.3f} | "
                   f"{r.flops_per_element} |")
    return "\n".join(out)


__all__ += ["markdown_table"]



#: Issue #33's goals: eager and compiled fwd+bwd / GELU for these specs (per channel: within
#: PER_CHANNEL_GOAL of the same family's shared row measured in the same run)
GOALS: dict[str, float] = {
    "hermite:degree=8": 1.5, "tropical:degree=4": 1.5, "tropical:degree=8": 1.5,
    "tropical_rational:degree=4": 1.5, "rational": 1.5, "selu_variation": 1.5,
    "fourier:degree=4": 2.0, "ditac": 4.0, "ditac:lut=2048": 1.5,
}
PER_CHANNEL_GOAL = 1.2
_PER_CHANNEL = re.compile(r"(.*?)[:,]channels=\d+,channel_dim=-?\d+")


def _goal_cell(r: OpRow, by_key: dict[tuple[str, str], OpRow]) -> str:
    if r.spec in GOALS:
        goal = GOALS[r.spec]
        over = r.full_ratio_to_gelu / goal
        return f"<= {goal:.1f}x: " + ("met" if over <= 1 else f"{over:.2f}x over")
    m = _PER_CHANNEL.fullmatch(r.spec)
    if m:
        shared = by_key.get((m.group(1), r.backend))
        if shared is None:
            return ""
        rel = r.full_ms_p50 / shared.gelu_full_ms_p50 / shared.full_ratio_to_gelu
        return (f"{rel:.2f}x shared (<= {PER_CHANNEL_GOAL}x: "
                + ("met)" if rel <= PER_CHANNEL_GOAL else f"{rel / PER_CHANNEL_GOAL:.2f}x over)"))
    return ""


def _machine() -> str:
    """The CPU model, its count and its widest SIMD (AVX-512, AVX2: the native kernels' paths)."""
    from . import _build

    lines = _build.cpu_fingerprint().splitlines()  # /proc/cpuinfo's model and flags lines
    model = next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name")),
                 platform.processor() or platform.machine())
    flags = set(next((ln.split(":", 1)[1].split() for ln in lines if ln.startswith("flags")),
                     []))
    simd = ", AVX-512" if "avx512f" in flags else ", AVX2" if "avx2" in flags else ""
    return f"{model}, {os.cpu_count()} CPUs{simd}"


def _commit() -> str:
    """The checkout's commit, and whether the library's sources (what the timings measure)
    differ from it: results files written by earlier runs do not count."""
    import subprocess

    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, check=True, cwd=here)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--",
                                str(here)], capture_output=True, text=True, check=True,
                               cwd=here).stdout.strip()
        return out.stdout.strip() + (" + local changes to src/learnact" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"


def results_section(rows: list[OpRow], command: str) -> str:
    """RESULTS.md's generated ops block: what was run (command, date, commit, torch, threads,
    machine) and the table with issue #33's goal per row."""
    by_key = {(r.spec, r.backend): r for r in rows}
    r0 = rows[0]
    head = (f"Generated by `{command}` on {r0.timestamp[:10]}: commit {_commit()}, torch "
            f"{r0.torch_version}, {r0.threads} threads, {_machine()}; input {r0.shape} "
            f"{r0.dtype}, {r0.runs} runs per row (median), every op run interleaved with an "
            f"`F.gelu` run on the same tensor.")
    table = markdown_table(rows).splitlines()
    table[0] += " goal (fwd+bwd) |"
    table[1] += "---|"
    table[2:] = [line + f" {_goal_cell(r, by_key)} |" for line, r in zip(table[2:], rows)]
    return "\n".join([head, "", *table])


def write_section(path: str | os.PathLike, name: str, text: str) -> None:
    """Replace what lies between ``<!-- name:start -->`` and ``<!-- name:end -->`` in ``path``
    (a ValueError, before writing, when the markers are not there once each, in order)."""
    p = Path(path)
    doc = p.read_text()
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    if doc.count(start) != 1 or doc.count(end) != 1 or doc.index(start) > doc.index(end):
        raise ValueError(f"{p} must hold {start} and {end} once each, in that order")
    a, b = doc.index(start) + len(start), doc.index(end)
    p.write_text(doc[:a] + "\n" + text + "\n" + doc[b:])


__all__ += ["GOALS", "PER_CHANNEL_GOAL", "results_section", "write_section"]
