"""The family kernels built at every vector width (native/common.h LA_VBYTES: 16, 32 and this
machine's) give the same values and gradients: the machine's build runs its SIMD-specific paths
(AVX-512 mask tests, compress and expand), the narrower ones the portable lane loops that
machines without AVX-512 run. tests/native_widths.cc writes each family's outputs."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from learnact import _build
from learnact.core.families import FAMILIES

SRC = Path(__file__).with_name("native_widths.cc")


def _run(tmp: Path, vbytes: int | None) -> tuple[int, Path]:
    cxx = _build.find_compiler("CXX", ("c++", "g++", "clang++"))
    assert cxx is not None, "CI has a C++ compiler"
    flags = [f for f in _build.CXX_FLAGS if f not in ("-shared", "-fPIC")]
    flags += [*_build.MARCH, *_build.gcc_flags(cxx), f"-I{_build.NATIVE}"]
    if vbytes is not None:
        flags.append(f"-DLA_VBYTES={vbytes}")
    out = tmp / str(vbytes or "native")
    out.mkdir()
    exe = out / "widths"
    subprocess.run([cxx, *flags, str(SRC), "-o", str(exe)], check=True)
    done = subprocess.run([str(exe), str(out)], check=True, capture_output=True, text=True)
    return int(done.stdout.strip()), out


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    tmp = tmp_path_factory.mktemp("widths")
    return dict(_run(tmp, v) for v in (None, 16, 32))


def test_every_family_is_run() -> None:
    """The program's list is native/families.h's, which is every family with a table."""
    listed = re.findall(r"X\((\w+), la::\w+\)", (_build.NATIVE / "families.h").read_text())
    assert sorted(listed) == sorted(n for n, f in FAMILIES.items() if f.table)
    for name in listed:
        assert f"{name}_a" in SRC.read_text()


@pytest.mark.parametrize("name", sorted(n for n, f in FAMILIES.items() if f.table))
def test_every_vector_width_gives_the_same_results(builds: dict[int, Path], name: str) -> None:
    widths = sorted(builds)  # 16, 32 and the machine's (64 with AVX-512; 32 on AVX2 machines)
    assert {16, 32} <= set(widths)
    for layout in range(3):
        for what in ("y", "gx", "gt"):
            got = [np.fromfile(builds[w] / f"{name}_{layout}_{what}", np.float32)
                   for w in widths]
            ref = got[-1].astype(np.float64)
            assert ref.size > 0
            assert np.isfinite(ref).all()
            scale = 1.0 + np.abs(ref).max()
            for w, v in zip(widths, got):
                err = np.abs(v - ref).max() / scale
                # float32 sums in another order (blocks of other widths): a few ulp of the
                # largest term, far below a wrong lane
                assert err <= 1e-5, f"{name} layout {layout} {what}: {w} bytes off by {err:.2g}"
