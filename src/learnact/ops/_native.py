"""Native CPU kernels (internal): plain C built on first use with the system compiler.

The sources in ``ops/native/`` include no PyTorch or Python headers, so a build takes a few
seconds once per machine (cpab.c: ~4 s with GCC 12) and does not depend on the installed
torch's ABI (the fragility of extensions compiled against torch at import). The shared library
is cached per source, compiler, flags and CPU under ``$LEARNACT_CACHE`` (default
``~/.cache/learnact``), written atomically (several processes may build at once) with a
SHA-256 checksum beside it that is checked before every load (a truncated or corrupt file is
rebuilt with one warning, never loaded), and called
through ctypes on data pointers. Threads: where torch runs GNU OpenMP (its Linux builds) the
kernels are built with -fopenmp and share torch's OpenMP pool (same libgomp by soname);
otherwise one contiguous element range per thread runs on a small Python thread pool (ctypes
releases the GIL), sized by ``torch.get_num_threads()``.

Without a compiler, or with ``LEARNACT_NATIVE=0``, :func:`library` returns None and the ops
keep their PyTorch paths (which also serve CUDA and every dtype the kernels do not cover).
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import logging
import os
import platform
import re
import shutil
import subprocess
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch
from torch import Tensor

log = logging.getLogger(__name__)

__all__ = ["launch", "library", "parallel_ranges", "run_parallel", "split"]

_SOURCES = Path(__file__).resolve().parent / "native"
# -fno-trapping-math: the kernels compute both sides of a select (e.g. a series and the full
# formula with a division) and keep one; with trapping math the compiler may not speculate a
# division, and the loop stays scalar. Results are unchanged (only FP exception flags).
_FLAGS = ("-O3", "-std=gnu11", "-shared", "-fPIC", "-fno-math-errno", "-fno-trapping-math")
# GCC's partial-redundancy elimination and code sinking turn selects into branches (the clamps
# of the float exp; a series-or-formula select), which stops the vectoriser ("control flow in
# loop": the GELU gate 10x slower, the exact flow's E(z) scalar)
# Scheduling before register allocation interleaves the register-table kernel's two
# independent vector chains (1.5x on the exact flow; neutral on the other kernels).
_GCC_FLAGS = ("-fno-tree-pre", "-fno-tree-sink", "-fschedule-insns", "-fsched-pressure")
# per-machine code (the cache key holds the CPU); on x86-64 also 512-bit vectors where the
# CPU has them (GCC's Intel tunings default to 256: the GELU gate measured 1.3x slower)
_NATIVE = ("-march=native",) + (("-mprefer-vector-width=512",)
                                if platform.machine() in ("x86_64", "AMD64") else ())
_lock = threading.Lock()
_libs: dict[str, ctypes.CDLL | None] = {}
_pool: ThreadPoolExecutor | None = None
_pool_size = 0
_MIN_PER_THREAD = 1 << 15  # elements per thread below which one thread runs the whole call


def _enabled() -> bool:
    return os.environ.get("LEARNACT_NATIVE", "1").strip().lower() not in ("0", "false", "no", "off")


def _cache_dir() -> Path:
    root = os.environ.get("LEARNACT_CACHE")
    if root:
        return Path(root)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "learnact"


def _compiler() -> str | None:
    for cc in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if cc and shutil.which(cc):
            return cc
    return None


def _cpu_fingerprint() -> str:
    """What -march=native depends on: a cache shared by different machines keeps one build
    per CPU."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            lines = [ln for ln in f if ln.startswith(("model name", "flags", "Features",
                                                         "CPU part"))]
        return "".join(sorted(set(lines)))
    except OSError:
        return platform.processor() + platform.machine()


def _torch_libgomp() -> bool:
    """Whether this process runs GNU OpenMP (PyTorch's Linux builds load libgomp.so.1): then
    the kernels are built with -fopenmp, and the loader binds them to that same library by its
    soname, so they share torch's OpenMP threads."""
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as f:
            return any("libgomp" in ln for ln in f)
    except OSError:
        return False


def _abi(name: str) -> int:
    """The ABI number the C source declares (``#define LA_ABI n``): the one constant."""
    m = re.search(r"^#define LA_ABI (\d+)$", (_SOURCES / f"{name}.c").read_text(), re.M)
    if m is None:
        raise RuntimeError(f"{name}.c declares no LA_ABI")
    return int(m.group(1))


def _checksum_path(lib: Path) -> Path:
    return lib.with_name(lib.name + ".sha256")


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _verified(lib: Path) -> bool:
    """Whether the cached library exists and matches the checksum written beside it when it
    was built (a build interrupted mid-write, a truncated copy or a foreign file does not)."""
    try:
        return lib.is_file() and _checksum_path(lib).read_text().strip() == _digest(lib)
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


def _build(name: str) -> Path:
    src = _SOURCES / f"{name}.c"
    cc = _compiler()
    if cc is None:
        raise RuntimeError("no C compiler found (set CC, or install gcc)")
    version = subprocess.run([cc, "--version"], capture_output=True, text=True,
                             check=False).stdout
    flags = _FLAGS + (_GCC_FLAGS if "Free Software Foundation" in version else ())
    omp = ("-fopenmp",) if _torch_libgomp() else ()
    key = hashlib.sha256()
    headers = sorted(_SOURCES.glob("*.h"))  # the templates cpab.c includes
    for part in (src.read_bytes(), *(h.read_bytes() for h in headers),
                 repr((cc, version.splitlines()[:1], flags, _NATIVE, omp,
                       _cpu_fingerprint())).encode()):
        key.update(part)
    out_dir = _cache_dir()
    out = out_dir / f"{name}-{key.hexdigest()[:16]}.so"
    if _verified(out):
        return out
    if out.exists():  # never load it: a truncated shared object crashes dlopen (SIGBUS)
        log.warning("native kernel cache %s failed its checksum (truncated, corrupt or from an "
                    "older learnact); rebuilding it", out)
    out_dir.mkdir(parents=True, exist_ok=True)
    log.info("building native CPU kernels %s with %s (once per machine, a few seconds)",
             src.name, cc)
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=out_dir)
    os.close(fd)
    try:
        err = ""
        # without -march=native or OpenMP it still builds (and runs on the Python pool)
        for extra in dict.fromkeys((_NATIVE + omp, omp, _NATIVE, ())):
            res = subprocess.run([cc, *flags, *extra, "-o", tmp, str(src), "-lm"],
                                 capture_output=True, text=True, check=False)
            if res.returncode == 0:
                break
            err = res.stderr.strip()
        else:
            raise RuntimeError(f"{cc} failed on {src.name}:\n{err}")
        _write_atomic(_checksum_path(out), _digest(Path(tmp)))
        os.replace(tmp, out)  # atomic: a concurrent build leaves one complete file
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    log.info("built %s", out)
    return out


_I64, _I32, _P = ctypes.c_int64, ctypes.c_int32, ctypes.c_void_p


def _declare(lib: ctypes.CDLL) -> None:
    for suf, real in (("f32", ctypes.c_float), ("f64", ctypes.c_double)):
        fwd = getattr(lib, f"la_lut_fwd_{suf}")
        fwd.argtypes = [_P, _P, _I64, _I64, _P, _I64, _I64, _I64, real, real, _I32, real]
        fwd.restype = None
        bwd = getattr(lib, f"la_lut_bwd_{suf}")
        bwd.argtypes = [_P, _P, _P, _P, _I64, _I64, _P, _P, _I64, _I64, _I64, real, real,
                        _I32, real]
        bwd.restype = None
        fwd = getattr(lib, f"la_lut_fwd_par_{suf}")
        fwd.argtypes = [_P, _P, _I64, _I64, _P, _I64, _I64, _I64, real, real, _I32, real]
        fwd.restype = None
        bwd = getattr(lib, f"la_lut_bwd_par_{suf}")
        bwd.argtypes = [_P, _P, _P, _P, _I64, _I64, _P, _P, _I64, _I64, _I64, real, real, _I32,
                        real]
        bwd.restype = None
        for name in (f"la_flow_{suf}", f"la_flow_par_{suf}"):
            fn = getattr(lib, name)
            fn.argtypes = [_P, _P, _P, _P, _I64, _I64, _P, _P, _P, _P, _I64, _I64, _I32, real,
                           real, real, _I32, real]
            fn.restype = None
    lib.la_abi.restype = ctypes.c_int
    lib.la_flow_vec.restype = ctypes.c_int  # the register-table exact kernel: built and on
    lib.la_flow_vec_set.argtypes = [ctypes.c_int]
    lib.la_flow_vec_set.restype = None
    lib.la_openmp.restype = ctypes.c_int
    lib.openmp = bool(lib.la_openmp())
    lib.flow_copies = int(lib.la_flow_copies())  # accumulator layout constant of the C source
    # doubles between two threads' histograms (padded: no shared cache-line pairs)
    lib.la_lut_stride.argtypes = [_I64]
    lib.la_lut_stride.restype = _I64
    lib.la_flow_stride.argtypes = [_I64, _I32]
    lib.la_flow_stride.restype = _I64


def library(name: str = "cpab") -> ctypes.CDLL | None:
    """The loaded kernel library (built on first use), or None when disabled or unbuildable
    (logged once)."""
    if not _enabled():
        return None
    with _lock:
        if name not in _libs:
            try:
                lib = ctypes.CDLL(str(_build(name)))
                _declare(lib)
                if lib.la_abi() != _abi(name):
                    raise RuntimeError(f"{name}: ABI {lib.la_abi()}, expected {_abi(name)}")
                _libs[name] = lib
            except (OSError, RuntimeError, AttributeError) as exc:
                log.warning("native CPU kernels unavailable, using the PyTorch path: %s", exc)
                _libs[name] = None
        return _libs[name]


def split(numel: int, parts: int | None = None) -> tuple[int, int]:
    """(number of parts, elements per part): one part per thread, 64-element aligned; one
    part for small inputs."""
    parts = parts or torch.get_num_threads()
    parts = max(1, min(parts, numel // _MIN_PER_THREAD))
    step = max(64, -(-(-(-numel // parts)) // 64) * 64)
    return max(1, -(-numel // step)), step


def parallel_ranges(numel: int, parts: int | None = None) -> list[tuple[int, int]]:
    """The [start, end) ranges of :func:`split`."""
    n, step = split(numel, parts)
    return [(i * step, min(numel, (i + 1) * step)) for i in range(n)]


def run_parallel(calls: list) -> None:
    """Run zero-argument callables (ctypes calls release the GIL): the first in this thread,
    the rest on the pool."""
    global _pool, _pool_size
    if len(calls) == 1:
        calls[0]()
        return
    with _lock:
        if _pool is None or _pool_size < len(calls) - 1:
            if _pool is not None:
                _pool.shutdown(wait=False)
            _pool_size = len(calls) - 1
            _pool = ThreadPoolExecutor(_pool_size, thread_name_prefix="learnact-native")
        pool = _pool
    futures = [pool.submit(c) for c in calls[1:]]
    calls[0]()
    for f in futures:
        f.result()


def launch(lib: ctypes.CDLL, name: str, dtype: torch.dtype, head: tuple, numel: int,
           tail: tuple, hist: Tensor | None = None, hist_arg: bool = False) -> None:
    """Run kernel ``name`` over ``numel`` elements in the parts of :func:`split`:
    ``<name>_par_<f32|f64>(*head, [hist], numel, step, *tail)`` once, on torch's OpenMP
    threads, when the library was built with OpenMP; else ``<name>_<f32|f64>(*head,
    [hist part], start, end, *tail)`` per part on the Python pool. ``hist_arg``: the kernel
    takes a float64 accumulator pointer after ``head`` (NULL when ``hist`` is None); part i
    owns block i of ``hist``'s ``parts`` equal blocks."""
    suf = "f32" if dtype == torch.float32 else "f64"
    parts, step = split(numel)
    base = None if hist is None else hist.data_ptr()
    if lib.openmp:
        getattr(lib, f"{name}_par_{suf}")(*head, *((base,) if hist_arg else ()), numel, step,
                                          *tail)
        return
    fn = getattr(lib, f"{name}_{suf}")
    block = 0 if hist is None else hist.numel() // parts * hist.element_size()
    run_parallel([functools.partial(
        fn, *head, *((None if base is None else base + i * block,) if hist_arg else ()), s, e,
        *tail) for i, (s, e) in enumerate(parallel_ranges(numel))])
