"""Inputs up to the float32 range: nothing overflows (or turns NaN) before the true value does.

`rational` at |x| = 1e8 returned inf (true value ~5e7) and NaN from 5e9 in every path: x^5
overflowed float32 in Horner's rule. It is now evaluated scaled (learnact.functional.rational).
Hermite's native kernel overflowed at |x| = 1e8 (degree 5: x h_4 before the division by 5).
Every family is checked here at |x| up to 3e38 against its own float64 evaluation: where that is
finite and inside the float32 range, the float32 result must be finite; rational's values and
gradients must also be close.
"""

from __future__ import annotations

import mpmath
import pytest
import torch

import learnact
from learnact.core.families import FAMILIES
from learnact.ops import backend, family_ops

from .conftest import perturb_

BIG = [-3e38, -1e30, -1e20, -5e9, -1e8, -1e4, -2.5, 0.0, 0.7, 3.0, 1e4, 1e8, 5e9, 1e20, 1e30,
       3e38]
SPECS = [s for d in FAMILIES.values() for s in d.test_specs]
F32_MAX = float(torch.finfo(torch.float32).max)


def _inputs(numel: int) -> torch.Tensor:
    """The BIG values repeated to ``numel``."""
    x = torch.tensor(BIG, dtype=torch.float64)
    return x.repeat(-(-numel // x.numel()))[:numel]


@pytest.mark.parametrize("spec", SPECS)
@pytest.mark.parametrize("path,numel", [("reference", len(BIG)), ("auto", len(BIG)),
                                        ("auto", 8192)])
def test_no_overflow_before_the_true_value_overflows(spec, path, numel) -> None:
    act = learnact.create(spec)
    x64 = _inputs(numel)
    with torch.no_grad(), backend(path):
        want = act.double()(x64)
        got = act.float()(x64.float()).double()
    inside = torch.isfinite(want) & (want.abs() < F32_MAX / 2)
    bad = inside & ~torch.isfinite(got)
    assert not bad.any(), f"{spec}: non-finite at x = {x64[bad][:4].tolist()}, float64 gives " \
                          f"{want[bad][:4].tolist()}"


def _rational_mp(x: float, num: list[float], den: list[float], s: float, t: float) -> float:
    mpmath.mp.dps = 60
    xm = mpmath.mpf(x)
    p = sum(mpmath.mpf(a) * xm ** i for i, a in enumerate(num))
    a = sum(mpmath.mpf(b) * xm ** (j + 1) for j, b in enumerate(den))
    return float(mpmath.mpf(s) * p / (1 + abs(a)) + mpmath.mpf(t))


@pytest.mark.parametrize("spec", ["rational", "rational:num_degree=3,den_degree=2",
                                  "rational:num_degree=2,den_degree=3"])
@pytest.mark.parametrize("path,numel", [("reference", len(BIG)), ("auto", len(BIG)),
                                        ("auto", 8192)])
def test_rational_is_exact_over_the_float32_range(spec, path, numel) -> None:
    """Values (float32 and float64) against a 60-digit evaluation, every path: the reference,
    the native kernel (one block, several), the frozen form."""
    act = perturb_(learnact.create(spec))
    num, den = act.num.tolist(), act.den.tolist()
    s, t = float(act.scale), float(act.offset)
    x64 = _inputs(numel)
    want = torch.tensor([_rational_mp(v, num, den, s, t) for v in BIG], dtype=torch.float64)
    want = want.repeat(-(-numel // len(BIG)))[:numel]
    frozen = learnact.freeze(act)
    for dtype, tol in ((torch.float32, 2e-6), (torch.float64, 1e-13)):
        for name, fn in (("module", act.to(dtype)), ("frozen", frozen.to(dtype))):
            with torch.no_grad(), backend(path):
                got = fn(x64.to(dtype)).double()
            err = ((got - want).abs() / want.abs().clamp_min(1.0)).max()
            assert err < tol, (name, dtype, float(err))


def test_rational_gradients_stay_finite_and_match_the_reference() -> None:
    """The native backward (large input) against the reference backward (same values, float64),
    at |x| up to 1e30: every gradient finite and equal to 1e-12."""
    act = perturb_(learnact.create("rational")).double()
    op = family_ops()["rational"]
    x = _inputs(8192).clamp(-1e30, 1e30)
    ps = (act.num.detach(), act.den.detach(), act.scale.detach(), act.offset.detach())
    g = torch.randn_like(x)
    native = op.kernels["cpu"].backward(x, *ps, g, 0)
    ref = op.kernels["reference"].backward(x, *ps, g, 0)
    for a, b in zip(native, ref):
        assert torch.isfinite(a).all()
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    x32 = x.float().requires_grad_(True)
    act32 = perturb_(learnact.create("rational"))
    act32(x32).sum().backward()
    grads = [x32.grad, *(p.grad for p in act32.parameters())]
    assert all(torch.isfinite(t).all() for t in grads)


def test_rational_triton_kernels_over_the_float32_range() -> None:
    """The CUDA kernels (run by Triton's interpreter on CPU tensors, as tests/conftest sets)
    agree with the reference: values at |x| up to 3e38, every gradient finite and close at |x|
    up to 1e30 (dL/da_5 ~ sum g x / b_4 itself overflows near 3e38)."""
    from learnact.functional.rational import rational, rational_backward
    from learnact.ops.triton import rational as tr

    act = perturb_(learnact.create("rational", channels=2))
    ps = [p.detach() for p in (act.num, act.den, act.scale, act.offset)]
    x = _inputs(len(BIG)).float().reshape(1, 1, -1).expand(2, 2, -1).contiguous()
    g = torch.randn_like(x)
    torch.testing.assert_close(tr.forward(x, *ps, 1), rational(x, *ps, 1), rtol=2e-6, atol=0)
    x = x.clamp(-1e30, 1e30)
    got, want = tr.backward(x, *ps, g, 1), rational_backward(x, *ps, g, 1)
    for a, b in zip(got, want):
        assert torch.isfinite(a).all()
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6 * float(b.abs().max()))


@pytest.mark.parametrize("name", ["fourier", "selu_variation"])
def test_periodic_families_agree_over_the_float32_range(name) -> None:
    """Fourier's w x and SELU variation's omega x overflowed float32 at |x| ~ 3e38 (cos/sin of
    inf: NaN where float64 is finite). The phase is clipped to +-2^127 in every path, so every
    path gives the same finite values there: the reference (small inputs), the native kernel
    (large ones), the frozen form and the CUDA kernels (Triton's interpreter); dL/dx finite."""
    import importlib

    from learnact._tensor import clipped_phase
    from learnact.core import fourier, selu_variation
    from learnact.core._xp import PHASE_BOUND

    inf = torch.tensor([float("inf"), -float("inf"), float("nan")], dtype=torch.float64)
    got = clipped_phase(inf, torch.tensor(1.0, dtype=torch.float64))
    assert got[:2].tolist() == [PHASE_BOUND, -PHASE_BOUND] and got[2].isnan()  # one bound

    names = {"fourier": fourier.NAMES, "selu_variation": selu_variation.NAMES}[name]
    tr = importlib.import_module(f"learnact.ops.triton.{name}")
    act = perturb_(learnact.create(name, channels=2))
    ps = [getattr(act, n).detach() for n in names]
    small = torch.tensor(BIG, dtype=torch.float32)
    x = torch.stack([small, small.flip(0)])  # (2 channels, 16)
    big = x.repeat(1, 256)  # several of the kernel's blocks
    with torch.no_grad():
        with backend("reference"):
            ref = act(x.t()).t()  # channels last
        native = act(big.t()).t()[:, :x.shape[1]]
        frozen = learnact.freeze(act)(x.t()).t()
    cuda = tr.forward(x.unsqueeze(0), *ps, 1)[0]
    for got in (ref, native, frozen):
        assert torch.isfinite(got).all()
        torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-5)
    # the CUDA kernels reduce the phase in registers (ops/triton/_common.py sincos): exact while
    # |w x| < 2^24, finite and bounded past it (a float32 phase there has an ulp of 2 or more)
    exact = x.abs() <= 1e4
    assert torch.isfinite(cuda).all()
    torch.testing.assert_close(cuda[exact], ref[exact], rtol=1e-5, atol=1e-5)
    xg = big.t().clone().requires_grad_(True)
    act(xg).sum().backward()
    assert torch.isfinite(xg.grad).all()
    gx = tr.backward(x.unsqueeze(0), *ps, torch.ones_like(x.unsqueeze(0)), 1)[0]
    assert torch.isfinite(gx).all()
    torch.testing.assert_close(gx[0][exact], xg.grad.t()[:, :x.shape[1]][exact], rtol=1e-5,
                               atol=1e-4)
