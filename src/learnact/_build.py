"""Native kernels built on first use (internal, imports neither torch nor jax).

Shared by the PyTorch ops' C kernels (:mod:`learnact.ops._native`) and the JAX kernels
(:mod:`learnact.xla_native`). A shared library is cached per source, compiler, flags and CPU
under ``$LEARNACT_CACHE`` (default ``~/.cache/learnact``), written atomically (several processes
may build at once) with a SHA-256 checksum beside it that is checked before every load: a
truncated or corrupt file is rebuilt with one warning, never loaded. ``LEARNACT_NATIVE=0``
turns every native kernel off.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import platform
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

log = logging.getLogger(__name__)

__all__ = ["enabled", "cache_dir", "cpu_fingerprint", "find_compiler", "compiler_version",
           "verified", "compile_cached", "NATIVE", "abi", "headers", "CXX_FLAGS", "MARCH",
           "GCC_FLAGS", "gcc_flags"]

#: the native kernels' sources: DiTAC's cpab.c, the families' <family>.h, their schedules and
#: the bindings (families.cc for PyTorch; xla_native/families.cc for JAX)
NATIVE = Path(__file__).resolve().parent / "native"
#: C++ flags of the family kernels (both bindings). -fno-trapping-math: the kernels compute
#: both sides of a select and keep one; with trapping math the compiler may not speculate a
#: division, and the loop stays scalar (results unchanged: only FP exception flags)
CXX_FLAGS = ("-O3", "-std=c++17", "-shared", "-fPIC", "-fno-math-errno", "-fno-trapping-math")
#: per-machine code (the cache key holds the CPU); on x86-64 also 512-bit vectors where the
#: CPU has them (GCC's Intel tunings default to 256: the GELU gate measured 1.3x slower)
MARCH = ("-march=native",) + (("-mprefer-vector-width=512",)
                              if platform.machine() in ("x86_64", "AMD64") else ())
# GCC's flags for every native kernel (DiTAC's cpab.c and the families' headers, in every
# binding). Its partial-redundancy elimination and code sinking turn selects into branches (a
# series-or-formula select), which stops the vectoriser ("control flow in loop": the GELU gate
# 10x slower, the exact flow's E(z) scalar), and PRE keeps reloading the family kernels'
# block sums (Acc::sum: tropical d8 backward 2.4 ns/element without these flags, 1.0 with, on
# a Xeon with AVX-512); scheduling before register allocation interleaves independent vector
# chains (1.5x on the exact flow)
GCC_FLAGS = ("-fno-tree-pre", "-fno-tree-sink", "-fschedule-insns", "-fsched-pressure")


def gcc_flags(cc: str) -> tuple[str, ...]:
    """:data:`GCC_FLAGS` when ``cc`` is GCC (``--version`` names the FSF), else none."""
    return GCC_FLAGS if "Free Software Foundation" in compiler_version(cc) else ()


_ON = ("1", "true", "yes", "on", "")
_OFF = ("0", "false", "no", "off")


def enabled() -> bool:
    """False when ``LEARNACT_NATIVE`` is 0, false, no or off; True when unset or 1, true, yes,
    on; any other value is an error (a typo such as "disable" must not leave them on)."""
    value = os.environ.get("LEARNACT_NATIVE", "1").strip().lower()
    if value not in _ON + _OFF:
        raise ValueError(f"LEARNACT_NATIVE must be one of 0, false, no, off (native kernels "
                         f"off) or 1, true, yes, on (on, the default), got {value!r}")
    return value not in _OFF


def cache_dir() -> Path:
    root = os.environ.get("LEARNACT_CACHE")
    if root:
        return Path(root)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "learnact"


def find_compiler(env: str, names: Sequence[str]) -> str | None:
    """``$env`` when set and found on PATH, else the first of ``names`` found."""
    for cc in (os.environ.get(env), *names):
        if cc and shutil.which(cc):
            return cc
    return None


@functools.cache
def compiler_version(cc: str) -> str:
    """``cc --version`` (run once per compiler and process)."""
    return subprocess.run([cc, "--version"], capture_output=True, text=True,
                          check=False).stdout


def cpu_fingerprint() -> str:
    """What -march=native depends on: a cache shared by different machines keeps one build
    per CPU."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            lines = [ln for ln in f if ln.startswith(("model name", "flags", "Features",
                                                         "CPU part"))]
        return "".join(sorted(set(lines)))
    except OSError:
        return platform.processor() + platform.machine()


def abi() -> int:
    """The one ABI number of the native kernels (``#define LA_ABI n`` in native/abi.h): every
    loader compares it with the built library's ``la_abi()``."""
    m = re.search(r"^#define LA_ABI (\d+)$", (NATIVE / "abi.h").read_text(), re.M)
    if m is None:
        raise RuntimeError("native/abi.h declares no LA_ABI")
    return int(m.group(1))


def headers() -> list[Path]:
    """Every header under native/ (part of each build's cache key)."""
    return sorted(NATIVE.glob("*.h"))


def checksum_path(lib: Path) -> Path:
    return lib.with_name(lib.name + ".sha256")


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def verified(lib: Path) -> bool:
    """Whether the cached library exists and matches the checksum written beside it when it
    was built (a build interrupted mid-write, a truncated copy or a foreign file does not)."""
    try:
        return lib.is_file() and checksum_path(lib).read_text().strip() == _digest(lib)
    except OSError:
        return False


def _write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def compile_cached(src: Path, cc: str, flags: Sequence[str],
                   variants: Sequence[Sequence[str]], key: Iterable[object] = (),
                   deps: Iterable[Path] = (), libs: Sequence[str] = ("-lm",)) -> Path:
    """The shared library built from ``src`` by ``cc flags variant -o out src libs``, cached:
    the first variant that compiles is kept (e.g. with and without -march=native). The cache
    key holds the sources (``src`` and the headers in ``deps``), the compiler's version line,
    the flags, the variants, ``key`` and the CPU."""
    version = compiler_version(cc)
    h = hashlib.sha256()
    for part in (src.read_bytes(), *(d.read_bytes() for d in deps),
                 repr((cc, version.splitlines()[:1], tuple(flags),
                       tuple(map(tuple, variants)), tuple(key), cpu_fingerprint())).encode()):
        h.update(part)
    out_dir = cache_dir()
    out = out_dir / f"{src.stem}-{h.hexdigest()[:16]}.so"
    if verified(out):
        return out
    if out.exists():  # never load it: a truncated shared object crashes dlopen (SIGBUS)
        log.warning("native kernel cache %s failed its checksum (truncated, corrupt or from an "
                    "older learnact); rebuilding it", out)
    out_dir.mkdir(parents=True, exist_ok=True)
    log.info("building native CPU kernels %s with %s into %s (once per machine and compiler; "
             "`learnact build` does it ahead of time)", src.name, cc, out_dir)
    start = time.perf_counter()
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=out_dir)
    os.close(fd)
    try:
        err = ""
        for extra in dict.fromkeys(map(tuple, variants)):
            res = subprocess.run([cc, *flags, *extra, "-o", tmp, str(src), *libs],
                                 capture_output=True, text=True, check=False)
            if res.returncode == 0:
                break
            err = res.stderr.strip()
        else:
            raise RuntimeError(f"{cc} failed on {src.name}:\n{err[-4000:]}")
        _write_atomic(checksum_path(out), _digest(Path(tmp)))
        os.replace(tmp, out)  # atomic: a concurrent build leaves one complete file
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    log.info("built %s in %.1f s", out, time.perf_counter() - start)
    return out
