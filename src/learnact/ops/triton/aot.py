"""Ahead-of-time compilation of the Triton kernels for named GPUs, without a GPU.

What a GPU run would launch is recorded, then compiled for sm_80/sm_90 and read back:

1. ``capture(cases)`` (in a process with ``TRITON_INTERPRET=1``, set before triton loads): each
   case (a spec, a shape, a dtype, a channel layout) runs forward and backward through the
   family op with ``backend("triton")``; the interpreter's launcher is replaced by a recorder,
   so no kernel runs, and every launch is kept as Triton's own JIT would specialise it
   (``native_specialize_impl``: pointers 16-byte aligned, integers equal to 1 as constants,
   multiples of 16 marked divisible), with its constexprs, ``num_warps`` and grid.
2. ``compile_launch(record, arch)`` (a process without the interpreter) compiles that launch
   with ``triton.compile(ASTSource(...), target=GPUTarget("cuda", arch, 32))`` and reads the
   cubin with the ``cuobjdump -res-usage`` and ``nvdisasm`` that ship in triton's wheel:
   registers, local (spill) and shared memory, the global loads and stores by width, SASS
   instructions per element.
3. ``problems(row)``: what CI refuses (local memory; a contiguous fp32 layout whose element
   streams do not move with 128-bit instructions, 64-bit for 16-bit dtypes).

``benchmarks/gpu_aot.py`` drives the three and writes the table (benchmarks/results/gpu_aot.md),
with a roofline column: bytes moved per element and the time they take at the H100's and the
H200's memory bandwidth, against GELU's (which moves the same streams).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["BANDWIDTH", "STREAMS", "Case", "capture", "compile_launch", "problems", "ptxas_spills",
           "sass_stats", "save", "streams_vectorised", "element_bits"]

#: HBM bandwidth in bytes/s (vendor figures: H100 SXM 3.35 TB/s, H200 4.8 TB/s)
BANDWIDTH = {"H100": 3.35e12, "H200": 4.8e12}


@dataclass(frozen=True)
class Case:
    """A kernel call as a user makes it: spec, input shape, dtype name and per-channel layout
    (``channels`` None for shared parameters, else ``channel_dim``)."""

    spec: str
    shape: tuple[int, ...]
    dtype: str = "float32"
    channels: int | None = None
    channel_dim: int = -1

    @property
    def label(self) -> str:
        lay = "shared" if self.channels is None else (
            "channels-last" if self.channel_dim in (-1, len(self.shape) - 1) else "channels-first")
        return f"{self.spec} {'x'.join(map(str, self.shape))} {self.dtype} {lay}"


# -- 1. capture (interpreter process) ----------------------------------------------------------
def capture(cases: list[Case]) -> list[dict[str, Any]]:
    """Every launch of forward and backward for each case, recorded, not run (see the module
    docstring). Needs ``TRITON_INTERPRET=1`` in the environment before triton was imported."""
    if os.environ.get("TRITON_INTERPRET") != "1":
        raise RuntimeError("aot.capture needs TRITON_INTERPRET=1, set before triton loads")
    import torch
    from triton._C.libtriton import native_specialize_impl
    from triton.backends.compiler import BaseBackend
    from triton.runtime.interpreter import InterpretedFunction

    import learnact
    from learnact.ops import backend

    out: list[dict[str, Any]] = []
    current: dict[str, Any] = {}

    def record(self, *args, grid, warmup, **kwargs):  # noqa: ANN001 - triton's signature
        names = self.arg_names
        sig, const, div = {}, {}, []
        for i, (name, a) in enumerate(zip(names, args)):
            if isinstance(a, torch.Tensor):
                kind, key = native_specialize_impl(BaseBackend, a, False, True, True)
                sig[name] = kind
            elif isinstance(a, bool):
                sig[name], key = "i1", ""
            elif isinstance(a, int):
                kind, key = native_specialize_impl(BaseBackend, a, False, True, True)
                if kind == "constexpr":
                    sig[name], const[name] = "constexpr", a
                else:
                    sig[name] = kind
            elif isinstance(a, float):
                sig[name], key = "fp32", ""
            else:
                raise TypeError(f"aot.capture: argument {name} of {self.fn.__name__}: "
                                f"{type(a).__name__}")
            if key == "D":
                div.append(i)
        for name in names[len(args):]:
            if name in kwargs:
                sig[name], const[name] = "constexpr", kwargs[name]
        g = grid if isinstance(grid, tuple) else tuple(grid(kwargs))
        tensors = [a for a in args if isinstance(a, torch.Tensor)]
        numel = current.get("numel", 0)
        other = sum(t.numel() * t.element_size() for t in tensors if t.numel() != numel)
        out.append({**current, "module": self.fn.__module__, "kernel": self.fn.__name__,
                    "signature": sig, "constexprs": const, "divisible": div,
                    "num_warps": int(kwargs.get("num_warps", 4)),
                    "grid": [int(v) for v in g],
                    "table_bytes": int(other)})

    saved = InterpretedFunction.run
    InterpretedFunction.run = record
    try:
        for case in cases:
            kw = {} if case.channels is None else {"channels": case.channels,
                                                  "channel_dim": case.channel_dim}
            act = learnact.create(case.spec, **kw)
            dt = getattr(torch, case.dtype)
            x = torch.zeros(case.shape, dtype=dt, requires_grad=True)
            for p in act.parameters():
                p.requires_grad_(True)
            with backend("triton"):
                current.update(case=case.label, spec=case.spec, dtype=case.dtype,
                               layout=case.label.split()[-1], numel=x.numel(), way="forward")
                y = act(x)
                current["way"] = "backward"
                y.backward(torch.zeros_like(y))
    finally:
        InterpretedFunction.run = saved
    return out


# -- 2. compile (no interpreter) -------------------------------------------------------------
def _bin(tool: str) -> str:
    import triton

    return str(Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / tool)


def sass_stats(cubin: bytes) -> dict[str, Any]:
    """Registers, stack/local/shared memory (``cuobjdump -res-usage``), and the SASS: every
    instruction's opcode counted, global loads and stores by width in bits."""
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "k.cubin"
        path.write_bytes(cubin)
        res = subprocess.run([_bin("cuobjdump"), "-res-usage", str(path)], capture_output=True,
                             text=True, check=True).stdout
        sass = subprocess.run([_bin("nvdisasm"), "-c", str(path)], capture_output=True,
                              text=True, check=True).stdout
    usage = {k.lower(): int(v) for k, v in re.findall(r"\b(REG|STACK|SHARED|LOCAL):(\d+)", res)}
    ops = re.findall(r"^\s+/\*[0-9a-f]+\*/\s+(?:@!?U?P\w+\s+)?([A-Z][A-Z0-9_.]*)", sass, re.M)
    loads: Counter[int] = Counter()
    stores: Counter[int] = Counter()
    for op in ops:
        head = op.split(".")[0]
        if head in ("LDG", "STG"):
            width = next((int(p) for p in op.split(".")[1:] if p in ("64", "128")), 32)
            (loads if head == "LDG" else stores)[width] += 1
    return {"regs": usage.get("reg", 0), "stack": usage.get("stack", 0),
            "local": usage.get("local", 0), "shared": usage.get("shared", 0),
            "instructions": len(ops), "loads": dict(loads), "stores": dict(stores),
            "spill_ops": sum(1 for op in ops if op.split(".")[0] in ("LDL", "STL"))}


def ptxas_spills(ptx: str, arch: int) -> dict[str, int]:
    """ptxas -v's own count: bytes of spill stores and loads (register spills) and the stack
    frame (which also holds local arrays, e.g. the slow path of sin/cos for huge arguments)."""
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "k.ptx"
        path.write_text(ptx)
        from triton.backends.nvidia.compiler import get_ptxas  # the ptxas triton itself runs

        gpu = f"sm_{arch}a" if arch >= 90 else f"sm_{arch}"
        done = subprocess.run([get_ptxas(arch).path, "-v", f"--gpu-name={gpu}", str(path), "-o",
                               str(Path(d) / "k.o")], capture_output=True, text=True, check=True)
    log = done.stdout + done.stderr
    nums = {k: int(v) for v, k in re.findall(r"(\d+) bytes (spill stores|spill loads|stack frame)",
                                              log)}
    return {"spill_stores": nums.get("spill stores", 0), "spill_loads": nums.get("spill loads", 0),
            "stack_frame": nums.get("stack frame", 0)}


def compile_launch(rec: dict[str, Any], arch: int) -> dict[str, Any]:
    """Compile one captured launch for sm_<arch> and read it back (:func:`sass_stats`,
    :func:`ptxas_spills`). ``rec`` holds ``module``, ``kernel``, ``signature``, ``constexprs``,
    ``divisible`` (argument indices known to be multiples of 16) and ``num_warps``; the elements
    a program handles are ``tile`` if given, else the constexprs ``BC`` x ``BR``."""
    import importlib

    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    fn = getattr(importlib.import_module(rec["module"]), rec["kernel"])
    if not hasattr(fn, "arg_names") or type(fn).__name__ != "JITFunction":
        raise RuntimeError("aot.compile_launch needs the compiler: unset TRITON_INTERPRET")
    attrs = {(i,): [["tt.divisibility", 16]] for i in rec["divisible"]}
    src = ASTSource(fn, dict(rec["signature"]), dict(rec["constexprs"]), attrs)
    cc = triton.compile(src, target=GPUTarget("cuda", arch, 32),
                        options={"num_warps": rec["num_warps"]})
    stats = sass_stats(cc.asm["cubin"])
    stats.update(ptxas_spills(cc.asm["ptx"], arch))
    threads = 32 * rec["num_warps"]
    c = rec["constexprs"]
    tile = int(rec.get("tile") or int(c.get("BC", 1)) * int(c.get("BR", 1)))
    stats["elements_per_thread"] = max(1, tile // threads)
    stats["instructions_per_element"] = stats["instructions"] / stats["elements_per_thread"]
    return stats


# -- 3. the checks ---------------------------------------------------------------------------
#: element streams per way: (read, written)
STREAMS = {"forward": (1, 1), "backward": (2, 1)}


def element_bits(dtype: str) -> int:
    """Bits of one element of an element stream of dtype name ``dtype``."""
    return 16 if dtype in ("bfloat16", "float16") else 32


def streams_vectorised(row: dict[str, Any]) -> bool:
    """The element streams move in vector instructions: the bits moved by global loads (and
    stores) of at least the vector width (128 bits for 32-bit dtypes, 64 for 16-bit ones) cover
    every element stream's share of a thread (streams x elements per thread x element bits)."""
    reads, writes = STREAMS[row["way"]]
    bits = element_bits(row["dtype"])
    need = 128 if bits == 32 else 64
    per_thread = row["elements_per_thread"] * bits

    def wide(counts: dict) -> int:
        return sum(int(w) * v for w, v in counts.items() if int(w) >= need)

    return wide(row["loads"]) >= reads * per_thread and wide(row["stores"]) >= writes * per_thread


def problems(row: dict[str, Any], *, max_regs: int | None = None) -> list[str]:
    """What CI refuses in a compiled kernel: spills (local memory) and element streams that
    are not vectorised (every layout the table compiles is contiguous along its tile);
    ``max_regs``: a register budget to report against."""
    out = []
    if row["local"] or row["spill_stores"] or row["spill_loads"]:
        out.append(f"spills: {row['spill_stores']} bytes stored, {row['spill_loads']} loaded "
                   f"(ptxas), {row['local']} bytes of local memory")
    if not streams_vectorised(row):
        out.append(f"element streams not vectorised (loads {row['loads']}, stores "
                   f"{row['stores']})")
    if max_regs is not None and row["regs"] > max_regs:
        out.append(f"{row['regs']} registers > {max_regs}")
    return out


def save(rows: list[dict[str, Any]], path: str | Path) -> None:
    """Write compiled rows as JSON (what ``benchmarks/gpu_aot.py`` commits beside its table)."""
    Path(path).write_text(json.dumps(rows, indent=1))
