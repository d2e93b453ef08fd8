"""Native CPU kernels (internal): plain C built on first use with the system compiler.

The sources in ``native/`` (cpab.c, C; families.cc, C++) include no PyTorch or Python headers, so a build takes a few
seconds once per machine (cpab.c: ~4 s with GCC 12) and does not depend on the installed
torch's ABI (the fragility of extensions compiled against torch at import). The shared library
is cached and checksummed by :mod:`learnact._build` and called through ctypes on data
pointers. Threads: where torch runs GNU OpenMP (its Linux builds) the
kernels are built with -fopenmp and share torch's OpenMP pool (same libgomp by soname);
otherwise one contiguous element range per thread runs on a small Python thread pool (ctypes
releases the GIL), sized by ``torch.get_num_threads()``.

Without a compiler, or with ``LEARNACT_NATIVE=0``, :func:`library` returns None and the ops
keep their PyTorch paths (which also serve CUDA and every dtype the kernels do not cover).
"""

from __future__ import annotations

import ctypes
import functools
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch
from torch import Tensor

from .. import _build as _build_mod
from ..core.families import FAMILIES

log = logging.getLogger(__name__)

__all__ = ["launch", "library", "parallel_ranges", "run_parallel", "split"]

# -fno-trapping-math: the kernels compute both sides of a select (e.g. a series and the full
# formula with a division) and keep one; with trapping math the compiler may not speculate a
# division, and the loop stays scalar. Results are unchanged (only FP exception flags).
_FLAGS = ("-O3", "-std=gnu11", "-shared", "-fPIC", "-fno-math-errno", "-fno-trapping-math")
_lock = threading.Lock()
_libs: dict[str, ctypes.CDLL | None] = {}
_pool: ThreadPoolExecutor | None = None
_pool_size = 0
_MIN_PER_THREAD = 1 << 15  # elements per thread below which one thread runs the whole call


_enabled = _build_mod.enabled
_cpu_fingerprint = _build_mod.cpu_fingerprint


def _compiler() -> str | None:
    return _build_mod.find_compiler("CC", ("cc", "gcc", "clang"))


def _torch_libgomp() -> bool:
    """Whether this process runs GNU OpenMP (PyTorch's Linux builds load libgomp.so.1): then
    the kernels are built with -fopenmp, and the loader binds them to that same library by its
    soname, so they share torch's OpenMP threads."""
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as f:
            return any("libgomp" in ln for ln in f)
    except OSError:
        return False


def _build(name: str) -> Path:
    """native/cpab.c (C) or native/families.cc (C++), built and cached."""
    cxx = name == "families"
    cc = (_build_mod.find_compiler("CXX", ("c++", "g++", "clang++")) if cxx else _compiler())
    if cc is None:
        raise RuntimeError(f"no {'C++' if cxx else 'C'} compiler found (set {'CXX' if cxx else 'CC'}"
                           f", or install {'g++' if cxx else 'gcc'})")
    omp = ("-fopenmp",) if _torch_libgomp() else ()
    # without -march=native or OpenMP it still builds (and runs on the Python pool / threads)
    march = _build_mod.MARCH  # per-machine code (the cache key holds the CPU)
    variants = (march + omp, omp, march, ())
    if cxx:
        return _build_mod.compile_cached(_build_mod.NATIVE / "families.cc", cc,
                                         _build_mod.CXX_FLAGS + _build_mod.gcc_flags(cc),
                                         variants, deps=_build_mod.headers(), libs=())
    flags = _FLAGS + _build_mod.gcc_flags(cc)
    return _build_mod.compile_cached(
        _build_mod.NATIVE / f"{name}.c", cc, flags, variants,
        deps=_build_mod.headers())  # the templates cpab.c includes


_I64, _I32, _P = ctypes.c_int64, ctypes.c_int32, ctypes.c_void_p


#: the families with C kernels: those whose definition has a ``table`` (native/families.h
#: LA_FAMILIES lists their structs; tests/test_native_families.py checks the two agree)
KERNEL_FAMILIES = tuple(n for n, d in FAMILIES.items() if d.table)


def _declare_families(lib: ctypes.CDLL) -> None:
    for fam in KERNEL_FAMILIES:
        for suf in ("f32", "f64"):
            fwd = getattr(lib, f"la_{fam}_fwd_{suf}")
            fwd.argtypes = [_P, _P, _P, _I64, _I64, _I64, _I64, _I64, _I32]
            fwd.restype = None
            bwd = getattr(lib, f"la_{fam}_bwd_{suf}")
            bwd.argtypes = [_P, _P, _P, _P, _P, _I64, _I64, _I64, _I64, _I64, _I32]
            bwd.restype = None
    lib.la_abi.restype = ctypes.c_int
    lib.la_openmp.restype = ctypes.c_int
    lib.openmp = bool(lib.la_openmp())


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
    # the lookup tables from the cells and back (native/cpab_grid.h): 0 when out of memory
    lib.la_lut_grid.argtypes = [_P, _P, _I64, _I32, _I32, ctypes.c_double, ctypes.c_double,
                                _P, _P]
    lib.la_lut_grid.restype = ctypes.c_int
    lib.la_lut_grid_backward.argtypes = [_P, _P, _P, _I64, _I32, _I32, ctypes.c_double,
                                         ctypes.c_double, _P, _P]
    lib.la_lut_grid_backward.restype = ctypes.c_int


def library(name: str = "cpab") -> ctypes.CDLL | None:
    """The loaded kernel library (built on first use), or None when disabled or unbuildable
    (logged once)."""
    if not _enabled():
        return None
    with _lock:
        if name not in _libs:
            try:
                lib = ctypes.CDLL(str(_build(name)))
                (_declare_families if name == "families" else _declare)(lib)
                if lib.la_abi() != _build_mod.abi():
                    raise RuntimeError(f"{name}: ABI {lib.la_abi()}, expected "
                                       f"{_build_mod.abi()}")
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
    per_part = -(-numel // parts)  # ceil(numel / parts)
    step = max(64, -(-per_part // 64) * 64)  # rounded up to 64
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
