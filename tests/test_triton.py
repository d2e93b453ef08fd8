"""The Triton kernels (ops/triton/) against the float64 reference, run on CPU tensors by
Triton's interpreter (TRITON_INTERPRET=1, set in conftest before they load): values, dL/dx and
every parameter gradient; fp32, bf16 and fp16 inputs; shared, per channel, channels-last,
non-contiguous; sizes that are not multiples of a tile."""

from __future__ import annotations

import logging

import pytest
import torch

import learnact
from learnact.core.families import FAMILIES
from learnact.ops import _library, backend, family_ops

from .conftest import perturb_

# Triton's interpreter evaluates both sides of every tl.where in numpy: the discarded side's
# inf/NaN (exactly what the kernels select away) warns there, never on a GPU
pytestmark = pytest.mark.filterwarnings("ignore:.*encountered in:RuntimeWarning")

# families with Triton kernels: (spec, its op's parameter tensors as the module passes them)
TRITON = {"hermite", "fourier", "tropical", "tropical_rational", "rational", "selu_variation"}
# every family with a FamilyOp Triton kernel (DiTAC's flow and table kernels: below), at its
# test, layout and edge specs (the definitions in learnact.core.families, THE list)
SPECS = [s for d in FAMILIES.values() if "triton" not in d.missing and "ditac" not in d.name
         for s in (*d.test_specs, *d.variant_specs, *d.edge_specs) if "init=" not in s]
TOL = {torch.float32: 2e-5, torch.bfloat16: 2e-2, torch.float16: 4e-3}


def test_every_triton_module_is_tested() -> None:
    have = {n for n, op in family_ops().items() if op.triton_module is not None}
    assert have == TRITON


def _case(spec: str, channels, channel_dim: int, shape, seed: int = 0):
    act = perturb_(learnact.create(spec, channels=channels, channel_dim=channel_dim).double(),
                   seed=seed)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g, dtype=torch.float64) * 1.5
    grad = torch.randn(shape, generator=g, dtype=torch.float64)
    return act, x, grad


def _grads(act, x, grad):
    x = x.detach().clone().requires_grad_(True)
    act.zero_grad()
    y = act(x)
    y.backward(grad.to(y.dtype))
    return y.detach(), x.grad, [p.grad.clone() for p in act.parameters()]


@pytest.mark.parametrize("spec", SPECS)
@pytest.mark.parametrize("channels,channel_dim,shape", [
    (None, 1, (3, 5, 67)),            # shared, odd size
    (5, 1, (2, 5, 7, 9)),             # per channel, NCHW-like (R = 63 < 64: channel tiles)
    (5, 1, (2, 5, 130)),              # per channel, R >= 64: one channel per tile
    (6, -1, (4, 9, 6)),               # channels-last
    (40, -1, (3, 7, 40)),             # channels-last, 3 channel tiles of 16 (the last half)
])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_triton_matches_float64_reference(spec, channels, channel_dim, shape, dtype) -> None:
    act, x, grad = _case(spec, channels, channel_dim, shape)
    y64, gx64, gp64 = _grads(act, x, grad)
    with backend("triton"):
        assert family_ops()[act.family].chosen("cpu", x).native_dtype  # Triton really runs
        y, gx, gp = _grads(act, x.to(dtype), grad)
    assert y.dtype == dtype and gx.dtype == dtype
    tol = TOL[dtype]
    # bf16/fp16: the input is rounded first; compare with the reference at the rounded input
    if dtype != torch.float32:
        y64, gx64, gp64 = _grads(act, x.to(dtype).double(), grad.to(dtype).double())
    scale = lambda t: 1 + t.abs()  # noqa: E731
    assert ((y.double() - y64).abs() / scale(y64)).max() < tol
    assert ((gx.double() - gx64).abs() / scale(gx64)).max() < tol
    for a, b in zip(gp, gp64):
        assert ((a - b).abs().max() / (1 + b.abs().max())) < tol * 10
    assert {p.grad is None for p in act.parameters()} == {False}


def test_triton_non_contiguous_input() -> None:
    act, x, grad = _case("hermite:degree=4", 6, -1, (5, 6, 8))
    xt = x.transpose(1, 2)  # (5, 8, 6), channels last, non-contiguous
    y64, gx64, gp64 = _grads(act, xt, grad.transpose(1, 2))
    with backend("triton"):
        y, gx, gp = _grads(act, xt.float(), grad.transpose(1, 2))
    assert torch.allclose(y.double(), y64, atol=2e-5, rtol=2e-5)
    assert torch.allclose(gx.double(), gx64, atol=2e-5, rtol=2e-5)
    assert torch.allclose(gp[0], gp64[0], atol=2e-4, rtol=2e-5)


def test_triton_empty_input() -> None:
    act = learnact.create("hermite:degree=3")
    with backend("triton"):
        x = torch.empty(0, 4, requires_grad=True)
        y = act(x)
        y.sum().backward()
    assert y.shape == (0, 4) and act.coeffs.grad.abs().sum() == 0


def test_backend_switch_and_env(monkeypatch) -> None:
    op = family_ops()["hermite"]
    x = torch.randn(10_000)
    assert op.chosen("cpu", x) is op.kernels["cpu"]
    with backend("reference"):
        assert op.chosen("cpu", x) is op.kernels["reference"]
    monkeypatch.setenv("LEARNACT_BACKEND", "triton")
    assert op.chosen("cpu", x).native_dtype
    monkeypatch.setenv("LEARNACT_BACKEND", "banana")
    with pytest.raises(ValueError, match="LEARNACT_BACKEND must be one of"):
        op.chosen("cpu", x)
    with pytest.raises(ValueError, match="backend must be one of"):
        with backend("cuda"):
            pass


def test_without_triton_the_reference_runs(monkeypatch, caplog) -> None:
    """A machine without triton: the forced Triton backend falls back to the device default
    with one warning, never an ImportError."""
    op = family_ops()["hermite"]
    monkeypatch.setattr(op, "triton_module", "learnact.ops.triton.no_such_module")
    monkeypatch.delitem(op.kernels, "triton", raising=False)
    monkeypatch.setattr(_library, "_TRITON_MODULES", {})
    x = torch.randn(10_000)
    with caplog.at_level(logging.WARNING), backend("triton"):
        assert op.chosen("cpu", x) is op.kernels["cpu"]
    assert "Triton kernels unavailable" in caplog.text


def test_parameters_on_another_device_is_a_clear_error() -> None:
    op = family_ops()["hermite"]
    with pytest.raises(ValueError, match="the input is on cpu but its parameters on meta"):
        op(torch.randn(3), torch.randn(4, device="meta"), None, None)
    with pytest.raises(TypeError, match="floating-point"):
        op(torch.arange(3), torch.randn(4), None, None)


def _ditac_reference_and_triton(act, x, grad, dtype):
    """(float64 PyTorch path at the dtype-rounded input, the Triton kernels at dtype); checks
    that each path is the one it claims (no native kernel, Triton really running) and that
    the Triton outputs keep the input's dtype."""
    from learnact.ops.cpab import common

    with backend("reference"):
        assert common._triton_kernels(x) is None and not common._native_ok(x)
        ref = _grads(act, x.to(dtype).double(), grad.to(dtype).double())
    with backend("triton"):
        assert common._triton_kernels(x) is not None
        out = _grads(act, x.to(dtype), grad)
    assert out[0].dtype == dtype and out[1].dtype == dtype
    return ref, out


# warp="output" reads the table at x s(x), which the module forms in the input's dtype: in bf16
# that product is rounded before the table read (2% of bins differ from a float64 product), so
# it is checked in float32; the kernel's bf16 path is covered by the other specs
LUT_CASES = [(spec, dt) for spec in ("ditac:lut=64", "leaky_ditac:lut=64,cells=5",
                                     "ditac:lut=33,gate=silu", "ditac:lut=64,gate=identity",
                                     "ditac:lut=64,warp=output")
             for dt in (torch.float32, torch.bfloat16)
             if not ("warp=output" in spec and dt == torch.bfloat16)]


@pytest.mark.parametrize("spec,dtype", LUT_CASES)
@pytest.mark.parametrize("channels,channel_dim,shape", [(None, 1, (3, 5, 67)),
                                                        (5, 1, (2, 5, 90)), (6, -1, (4, 9, 6)),
                                                        (40, -1, (3, 7, 40))])
def test_triton_ditac_lut_matches_reference(spec, dtype, channels, channel_dim, shape) -> None:
    """DiTAC's lookup-table op on the Triton kernels (ops/triton/ditac.py) against the float64
    PyTorch path: values, dL/dx and dL/dtheta (the table's histogram by atomic adds)."""
    act, x, grad = _case(spec, channels, channel_dim, shape)
    (y64, gx64, gp64), (y, gx, gp) = _ditac_reference_and_triton(act, x, grad, dtype)
    tol = TOL[dtype]
    # a few elements may sit on a bin edge, where float32 and float64 pick neighbouring bins
    close = ((y.double() - y64).abs() <= tol * (1 + y64.abs())).double().mean()
    assert close > 0.995
    closex = ((gx.double() - gx64).abs() <= tol * 10 * (1 + gx64.abs())).double().mean()
    assert closex > 0.995
    assert ((gp[0] - gp64[0]).abs().max() / (1 + gp64[0].abs().max())) < 0.05


FLOW_CASES = [(spec, dt) for spec in ("ditac", "ditac:cells=3", "leaky_ditac:cells=15",
                                      "ditac:gate=silu,cells=7", "ge_ditac",
                                      "ditac:gate=identity,cells=10")
              for dt in (torch.float32, torch.bfloat16)]


@pytest.mark.parametrize("spec,dtype", FLOW_CASES)
@pytest.mark.parametrize("channels,channel_dim,shape", [(None, 1, (3, 5, 67)),
                                                        (5, 1, (2, 5, 90)), (6, -1, (4, 9, 6)),
                                                        (40, -1, (3, 7, 40))])
def test_triton_ditac_exact_flow_matches_reference(spec, dtype, channels, channel_dim,
                                                   shape) -> None:
    """DiTAC's exact flow on the Triton kernel (closed form per element, unrolled knot search,
    table gradients by atomic adds) against the float64 PyTorch trajectory: values, dL/dx and
    dL/dtheta, with theta scaled x3 (stiff fields that cross several knots)."""
    act, x, grad = _case(spec, channels, channel_dim, shape)
    with torch.no_grad():
        act.theta.mul_(3.0)
    (y64, gx64, gp64), (y, gx, gp) = _ditac_reference_and_triton(act, x, grad, dtype)
    tol = TOL[dtype]
    assert ((y.double() - y64).abs() / (1 + y64.abs())).max() < tol
    assert ((gx.double() - gx64).abs() / (1 + gx64.abs())).max() < tol * 20
    assert ((gp[0] - gp64[0]).abs().max() / (1 + gp64[0].abs().max())) < tol * 20


def test_ditac_tables_on_another_device_is_a_clear_error() -> None:
    from learnact.ops.cpab import ditac_op

    a2, b2, tau2 = learnact.create("ditac:cells=4")._tables()
    meta = [t.detach().to("meta") for t in (a2, b2, tau2)]
    with pytest.raises(ValueError, match="the input is on cpu but theta .* on meta"):
        ditac_op(torch.randn(5), *meta, lo=-0.5, hi=2.0)


def _sincos_kernel():
    """A kernel that stores sincos(t) (module level: Triton resolves ``sincos`` in globals)."""
    global sincos, tl
    import triton
    import triton.language as tl
    from learnact.ops.triton._common import sincos

    @triton.jit
    def _k(t_ptr, s_ptr, c_ptr, N, B: tl.constexpr):
        i = tl.program_id(0) * B + tl.arange(0, B)
        t = tl.load(t_ptr + i, mask=i < N, other=0.0)
        s, c = sincos(t)
        tl.store(s_ptr + i, s, mask=i < N)
        tl.store(c_ptr + i, c, mask=i < N)

    return _k


def test_register_only_sincos_against_float64() -> None:
    """ops/triton/_common.py sincos (no libdevice slow path): within 2 float32 ulps of 1 of the
    float64 sin/cos of the same float32 argument while |t| < 2^24; finite and in [-1, 1] past
    it; NaN kept."""
    import triton

    _k = _sincos_kernel()
    g = torch.Generator().manual_seed(0)
    t = torch.cat([torch.linspace(-10, 10, 2001), torch.randn(2000, generator=g) * 1e5,
                   (torch.rand(2000, generator=g) - 0.5) * 3.3e7,
                   torch.tensor([3e38, -3e38, 2.0 ** 127, float("nan"), 0.0, -0.0])]).float()
    s, c = torch.empty_like(t), torch.empty_like(t)
    _k[(triton.cdiv(t.numel(), 1024),)](t, s, c, t.numel(), B=1024)
    exact = t.abs() < 2.0 ** 24
    t64 = t.double()
    for got, want in ((s, torch.sin(t64)), (c, torch.cos(t64))):
        err = (got.double() - want)[exact].abs().max()
        assert err < 2.5e-7, float(err)
        finite = ~t.isnan()
        assert torch.isfinite(got[finite]).all() and got[finite].abs().max() <= 1.0
        assert got[t.isnan()].isnan().all()
