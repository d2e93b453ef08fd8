"""The families' native C++ kernels as PyTorch CPU kernels (native/<family>.h, bound by
native/families.cc, called by ops/_families.py): every family with a kernel table, every layout
the kernels schedule differently, float32 and float64 against the float64 reference, thread-count
independence, gradcheck, and the inputs routed to the reference."""

from __future__ import annotations

import re

import pytest
import torch

import learnact
from learnact._build import NATIVE
from learnact.core.families import FAMILIES
from learnact.ops import CPU_KERNEL_MIN, family_ops
from learnact.ops import _families, _native

from .conftest import perturb_

KERNELS = sorted(n for n, f in FAMILIES.items() if f.table)
# (channels, channel_dim, x shape): shared (the "run" schedule over one run, several work
# items); per channel on dim 1 (a run per channel and row); channels last (the "lanes"
# schedule: 83 channels = one full block of 64 float32 lanes (two of 32 float64) and a
# partial one, and in the backward's blocks of U rows of one vector of channels, 5 full
# vectors (10 in float64) and a partial one; 301 rows = 5 work items of 64 rows and a
# partial block of rows at the end); 2000 channels last: several tiles of channels
# (schedule.h tile_channels: 1792 float32 / 896 float64 channels for 9 parameters);
# channel_dim 0
LAYOUTS = {
    "shared": (None, 1, (4, 3, 3000)),
    "channel_dim=1": (3, 1, (4, 3, 3000)),
    "channels_last": (83, -1, (301, 83)),
    "channels_last_wide": (2000, -1, (9, 2000)),
    "channel_dim=0": (5, 0, (5, 1000)),
}


def _specs(name: str) -> list[str]:
    """The family's first two test and variant specs (rational: degrees (3, 2), fitted at
    construction, and the shipped (5, 4))."""
    fam = FAMILIES[name]
    return list(fam.test_specs + fam.variant_specs)[:2]


CASES = [(s, lay) for n in KERNELS for s in _specs(n) for lay in LAYOUTS]


def test_kernel_list_is_the_definitions() -> None:
    """native/families.h lists exactly the families whose definition has a table, and each has
    a family op with the native CPU kernel."""
    text = (NATIVE / "families.h").read_text()
    listed = re.findall(r"X\((\w+), la::\w+\)", text)
    assert sorted(listed) == KERNELS
    assert sorted(_native.KERNEL_FAMILIES) == KERNELS
    assert set(KERNELS) <= set(family_ops())
    lib = _native.library("families")
    assert lib is not None, "the native kernels must build in the test environment"


def _setup(spec: str, layout: str, dtype=torch.float64):
    channels, cd, shape = LAYOUTS[layout]
    name = spec.split(":")[0]
    act = perturb_(learnact.create(spec, channels=channels, channel_dim=cd).double())
    op = family_ops()[name]
    params = [getattr(act, p.name, None) for p in op.params]
    params = [None if p is None else p.detach().to(dtype) for p in params]
    x = 1.5 * torch.randn(shape, dtype=torch.float64)
    x.view(-1)[:7] = 0.0  # kinks at 0 (rational's |A|, SELU variation's branch)
    return op, x, params, cd


def _close(got: torch.Tensor, want: torch.Tensor, tol: float, what: str) -> None:
    err = (got.double() - want.double()).abs().max().item()
    scale = 1.0 + want.double().abs().max().item()
    assert err <= tol * scale, f"{what}: max error {err:.3g} > {tol:.1g} x {scale:.3g}"


@pytest.mark.parametrize("spec,layout", CASES)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_native_kernel_against_float64_reference(spec, layout, dtype) -> None:
    op, x, params, cd = _setup(spec, layout)
    fwd_ref, bwd_ref = op.reference
    kernel = op.kernels["cpu"]
    g = torch.randn_like(x)
    ref_params64 = [None if p is None else p.double() for p in params]
    want_y = fwd_ref(x, *ref_params64, cd)
    want_g = bwd_ref(x, *ref_params64, g, cd)
    ps = [None if p is None else p.to(dtype) for p in params]
    names = [q.name for q in op.params]
    assert _families.plan(op.name, names, x.to(dtype), ps, cd) is not None  # the C kernel runs
    got_y = kernel.forward(x.to(dtype), *ps, cd)
    got_g = kernel.backward(x.to(dtype), *ps, g.to(dtype), cd)
    tol = 1e-11 if dtype == torch.float64 else 2e-5
    assert got_y.dtype == dtype and got_y.shape == x.shape
    _close(got_y, want_y, tol, "y")
    assert len(got_g) == len(want_g)
    for i, (a, b) in enumerate(zip(got_g, want_g)):
        assert a.shape == b.shape, (i, a.shape, b.shape)
        assert a.is_contiguous(), i  # as the op's fake kernel says (torch.compile checks)
        # parameter sums over ~10^4 float32 terms: float32 block sums, added in double
        _close(a, b, tol if i == 0 else 10 * tol, f"gradient {i}")


@pytest.mark.parametrize("name", KERNELS)
@pytest.mark.parametrize("layout", ["shared", "channels_last"])
def test_thread_count_does_not_change_a_bit(name, layout) -> None:
    op, x, params, cd = _setup(_specs(name)[0], layout, torch.float32)
    x, g = x.float(), torch.randn(x.shape)
    kernel = op.kernels["cpu"]
    threads = torch.get_num_threads()
    results = []
    try:
        for n in (1, 2, 3):
            torch.set_num_threads(n)
            results.append((kernel.forward(x, *params, cd), *kernel.backward(x, *params, g, cd)))
    finally:
        torch.set_num_threads(threads)
    for other in results[1:]:
        for a, b in zip(results[0], other):
            assert torch.equal(a, b)


@pytest.mark.parametrize("name", KERNELS)
def test_gradcheck_through_the_native_kernel(name) -> None:
    """gradcheck of the op (x and every differentiable parameter) where the CPU kernel runs."""
    op, x, params, cd = _setup(_specs(name)[0], "channel_dim=1")
    x = x[:, :, :400].contiguous().requires_grad_()  # 4800 elements >= CPU_KERNEL_MIN
    assert x.numel() >= CPU_KERNEL_MIN
    inputs = [None if p is None else p.clone().requires_grad_(spec.differentiable)
              for p, spec in zip(params, op.params)]
    assert torch.autograd.gradcheck(lambda x, *ps: op(x, *ps, channel_dim=cd), (x, *inputs),
                                    fast_mode=True)


@pytest.mark.parametrize("name", KERNELS)
def test_layouts_and_dtypes_routed(name, monkeypatch) -> None:
    """Non-contiguous x, bfloat16 input (float32 math), an empty input and a missing library
    give the reference's values."""
    op, x, params, cd = _setup(_specs(name)[0], "channel_dim=1", torch.float32)
    fwd_ref = op.reference[0]
    ps32 = [None if p is None else p.float() for p in params]
    want = fwd_ref(x.float(), *ps32, cd)
    # a transposed (non-contiguous) input, through the op: the same values
    xt = x.float().transpose(0, 2).contiguous().transpose(0, 2)
    assert not xt.is_contiguous()
    _close(op(xt, *ps32, channel_dim=cd), want, 2e-5, "non-contiguous")
    got = op(x.bfloat16(), *ps32, channel_dim=cd)
    assert got.dtype == torch.bfloat16
    _close(got, fwd_ref(x.bfloat16().float(), *ps32, cd), 1e-2, "bfloat16")
    empty = torch.empty(0, 3, 5)
    assert op(empty, *ps32, channel_dim=cd).shape == (0, 3, 5)
    monkeypatch.setattr(_native, "library", lambda name="cpab": None)
    _close(op.kernels["cpu"].forward(x.float(), *ps32, cd), want, 1e-6, "without library")


def test_pack_refuses_mismatched_channels() -> None:
    """A table whose rows disagree (3 channels of coefficients, 2 of scale) is not packed: the
    reference raises its own error instead of the kernel reading past a row."""
    p = {"slopes": torch.arange(3.0), "coeffs": torch.zeros(3, 3), "scale": torch.ones(2),
         "offset": torch.zeros(())}
    assert _families.pack("tropical", p, torch.float32) is None
    p["scale"] = torch.ones(3)
    table, cols = _families.pack("tropical", p, torch.float32)
    assert table.shape == (3, 3 + 3 + 1 + 1)
    assert [c[:2] for c in cols] == [("slopes", 3), ("coeffs", 3), ("scale", 1), ("offset", 1)]


def test_learnact_build_reports_each_library(capsys) -> None:
    """`learnact build --torch` builds (here: finds in the cache) both PyTorch libraries and
    says where they are."""
    from learnact.cli import main

    assert main(["build", "--torch"]) == 0
    out = capsys.readouterr().out
    assert "native kernels cache:" in out
    assert "native/families.cc" in out and "native/cpab.c" in out
    assert out.count("ready") == 2


def test_learnact_build_jax_reports_both_libraries(capsys) -> None:
    """`learnact build --jax`: the family kernels' and DiTAC's XLA FFI libraries."""
    from learnact.cli import main  # (the test extra installs jax beside torch)

    assert main(["build", "--jax"]) == 0
    out = capsys.readouterr().out
    assert "xla_native/families.cc" in out and "xla_native/cpab.cc" in out
    assert out.count("ready") == 2
