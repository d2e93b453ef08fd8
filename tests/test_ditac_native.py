"""DiTAC's native C kernels (native/cpab.c): the lookup-table and table kernels against the
PyTorch path, their fallbacks and thread pools (split from test_ditac.py by topic)."""

from __future__ import annotations

import os

import pytest
import torch

import learnact
from learnact.core.cpab import GATE_IDS
from learnact.functional import cpab



def _lut_case(channels, channel_dim, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    n = 65
    rows = 1 if channels is None else channels
    u = torch.linspace(0, 1, n, dtype=torch.float64)
    table = (u + 0.05 * torch.sin(torch.pi * u) * torch.randn(rows, 1, generator=g,
                                                                 dtype=torch.float64))
    dtable = 1 + 0.05 * torch.pi * torch.cos(torch.pi * u) * torch.randn(rows, 1, generator=g,
                                                                         dtype=torch.float64)
    if channels is None:
        table, dtable = table[0], dtable[0]
    shape = (3, 4, 700) if channels is None else ((5, channels, 300) if channel_dim == 1
                                                   else (5, 300, channels))
    x = (torch.randn(shape, generator=g, dtype=torch.float64) * 1.5).to(dtype)
    return x, table.requires_grad_(), dtable


@pytest.mark.parametrize("gate", ["gelu", "silu", "leaky_relu", "identity"])
@pytest.mark.parametrize("dtype,vec", [(torch.float32, 1), (torch.float32, 0),
                                       (torch.float64, 1)])
# 300 channels x 67 bins: a table over native/cpab.c's LA_LUT_SMALL (one histogram copy)
@pytest.mark.parametrize("channels,channel_dim", [(None, None), (6, 1), (6, -1), (20, -1),
                                                  (300, -1)])
def test_native_lut_kernel_matches_pytorch_path(gate, dtype, vec, channels, channel_dim,
                                                monkeypatch) -> None:
    """The fused C kernels (native/cpab.c) against the op's PyTorch path: values, dL/dx
    and the table's gradient, shared and per channel (channels first and last), every gate,
    float32 on the AVX-512 segments (vec=1, where built) and on the generic loops (vec=0).
    float64 must agree to rounding; float32's gate polynomials to ~1e-7 relative. A rare
    element may sit on a bin edge where the two paths round v = off + k x differently."""
    from learnact.ops import _native

    lib = None
    if os.environ.get("LEARNACT_NATIVE", "1") != "0":
        lib = _native.library()
        assert lib is not None  # CI has a C compiler: never test only fallback
        lib.la_flow_vec_set(vec)
    try:
        _lut_kernel_vs_pytorch(gate, dtype, channels, channel_dim, monkeypatch)
    finally:
        if lib is not None:
            lib.la_flow_vec_set(1)


def _lut_kernel_vs_pytorch(gate, dtype, channels, channel_dim, monkeypatch,
                           repeats: bool = False) -> None:
    from learnact.ops import cpab as ops

    x, table, dtable = _lut_case(channels, channel_dim, dtype)
    if repeats:  # runs of one value (zero padding, quantised inputs): one bin again and again
        x.view(-1)[: x.numel() // 2] = 0.3
        x.view(-1)[x.numel() // 2: x.numel() // 2 + 999] = -7.0  # an outside bin
    w = torch.randn(x.shape, generator=torch.Generator().manual_seed(1), dtype=dtype)
    kw = dict(lo=-0.5, hi=2.0, gate=gate, alpha=0.1, channel_dim=channel_dim)

    def run():
        xr = x.clone().requires_grad_()
        y = ops.cpab_lut_op(xr, table, dtable, **kw)
        gx, gt = torch.autograd.grad((y * w).sum(), (xr, table))
        return y.detach(), gx, gt

    y1, gx1, gt1 = run()
    monkeypatch.setattr(ops.lut, "_native_ok", lambda xx: False)
    y0, gx0, gt0 = run()
    tol = 1e-12 if dtype == torch.float64 else 4e-7
    same = ((y1 - y0).abs() <= tol * (1 + y0.abs())) & ((gx1 - gx0).abs() <= tol * 10 * (1 + gx0.abs()))
    assert same.double().mean() > 0.999, (y1 - y0).abs().max()
    assert torch.allclose(gt1, gt0, rtol=1e-4 if dtype == torch.float32 else 1e-10, atol=1e-3)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_native_lut_backward_with_repeated_inputs(dtype, monkeypatch) -> None:
    """Half the elements in one bin (and a run outside the window): the table gradient's
    per-thread histogram copies sum to the PyTorch path's."""
    _lut_kernel_vs_pytorch("gelu", dtype, None, None, monkeypatch, repeats=True)


def test_native_lut_nan_inf_half_and_compile_path() -> None:
    """NaN stays NaN, +-inf pass through the outside bins, a bf16 input comes back bf16, and
    the custom ops pass torch.library.opcheck (schema, fake tensors, autograd registration)."""
    from learnact.ops import cpab as ops

    x, table, dtable = _lut_case(None, None, torch.float32)
    spec = torch.tensor([float("nan"), float("inf"), -float("inf"), 1e30, -0.5, 2.0])
    y = ops.cpab_lut_op(spec, table.detach(), dtable, lo=-0.5, hi=2.0, gate="identity")
    assert torch.isnan(y[0]) and y[1] == float("inf") and y[2] == -float("inf") and y[3] == 1e30
    assert torch.isfinite(y[4:]).all()
    yb = ops.cpab_lut_op(x.bfloat16(), table.detach(), dtable, lo=-0.5, hi=2.0, gate="gelu")
    ref = ops.cpab_lut_op(x.bfloat16().float(), table.detach(), dtable, lo=-0.5, hi=2.0,
                          gate="gelu")
    assert yb.dtype == torch.bfloat16 and torch.allclose(yb.float(), ref, atol=1e-2, rtol=1e-2)
    D, S = ops.lut._lut_tables(table.detach(), dtable, -0.5, 2.0, torch.float32)
    xs = x.reshape(-1)[:5000].contiguous()
    args = (1, xs.numel(), 64 / 2.5, 1.5 + 0.5 * 64 / 2.5, 0, 0.01)
    torch.library.opcheck(ops.lut.lut_apply, (xs, D, *args))
    torch.library.opcheck(ops.lut.lut_apply_backward, (xs, torch.randn_like(xs), D, S, *args, True))
    a2, b2, tau2 = learnact.create("ditac")._tables()
    tb = ops.common._Tables(a2.detach(), b2.detach(), tau2.detach(), 1.0, torch.float32)
    fargs = (tb.a, tb.b, tb.P, tb.stop, 1, xs.numel(), 1.0, -0.5, 2.0, 0, 0.01)
    torch.library.opcheck(ops.flow.flow_apply, (xs, *fargs))
    torch.library.opcheck(ops.flow.flow_apply_backward, (xs, torch.randn_like(xs), *fargs, True))


def test_native_lut_gradcheck_table_and_exact_x_derivative() -> None:
    """float64 through the native kernel: gradcheck w.r.t. the table (the output is linear in
    it), and dL/dx equals the straight-through formula dtable[r] s + x~ s' exactly."""
    from learnact.ops import cpab as ops

    g = torch.Generator().manual_seed(7)
    n = 33
    table = torch.sort(torch.rand(n, generator=g, dtype=torch.float64))[0].requires_grad_()
    dtable = torch.rand(n, generator=g, dtype=torch.float64) + 0.5
    # large enough for two threads; points away from bin edges (finite differences in x
    # would cross them, which gradcheck w.r.t. the table does not)
    x = (torch.rand(70000, generator=g, dtype=torch.float64) * 3 - 0.6)
    w = torch.randn(x.shape, generator=g, dtype=torch.float64)  # one scalar: one backward
    assert torch.autograd.gradcheck(
        lambda t: (ops.cpab_lut_op(x, t, dtable, lo=0.0, hi=2.0, gate="silu") * w).sum(),
        (table,))
    xr = x.clone().requires_grad_()
    y = ops.cpab_lut_op(xr, table, dtable, lo=0.0, hi=2.0, gate="silu")
    (gx,) = torch.autograd.grad(y.sum(), xr)
    r = torch.floor(x / 2 * (n - 1) + 0.5).long()
    used = (r >= 0) & (r < n)
    rc = r.clamp(0, n - 1)
    xt = torch.where(used, x + 2 * (table.detach()[rc] - rc / (n - 1)), x)
    s = torch.sigmoid(x)
    assert torch.allclose(y.detach(), xt * s, atol=1e-14)
    assert torch.allclose(gx, torch.where(used, dtable[rc], 1.0) * s + xt * s * (1 - s),
                          atol=1e-13)


def test_lut_grid_memo_is_never_stale() -> None:
    """The LUT's grid is memoised by the tables' values: an optimiser step, load_state_dict
    and a write through .data each give the output of a freshly built module, and theta's
    gradient still flows on a memo hit (equal to a cold build's)."""
    from learnact.ops import cpab as ops

    torch.manual_seed(0)
    act = learnact.create("ditac:lut=513")
    x = torch.randn(2000) * 1.5

    def fresh(a):
        ops.lut._GRID_MEMO.clear()
        b = learnact.create("ditac:lut=513")
        b.load_state_dict(a.state_dict())
        y = b(x)
        y.sum().backward()
        return y.detach(), b.theta.grad

    y0 = act(x)
    y0.sum().backward()
    y1 = act(x)  # memo hit
    y1.sum().backward()
    ref_y, ref_g = fresh(act)
    assert torch.equal(y1.detach(), ref_y) and torch.allclose(act.theta.grad, 2 * ref_g)
    opt = torch.optim.SGD(act.parameters(), lr=0.5)
    opt.step()
    act.zero_grad()
    y2 = act(x)
    assert not torch.equal(y2.detach(), y1.detach())
    assert torch.equal(y2.detach(), fresh(act)[0])
    act.theta.data.copy_(torch.randn_like(act.theta))  # bypasses the version counter
    assert torch.equal(act(x).detach(), fresh(act)[0])
    other = learnact.create("ditac:lut=513")
    act.load_state_dict(other.state_dict())
    assert torch.equal(act(x).detach(), fresh(other)[0])


def test_lut_grid_memo_stays_bounded_in_training(monkeypatch) -> None:
    """Every training step's theta is new, so each step adds a memo entry never read again:
    the memo keeps at most its entry cap, its running byte count equals what it holds, and
    the least recently used entry goes first (a hit moves an entry to the back)."""
    from learnact._lru import ByteLRU
    from learnact.ops.cpab import lut

    memo = ByteLRU(1000, lut._nbytes, 3)
    t = [torch.zeros(10, dtype=torch.float64) + i for i in range(6)]  # 80 bytes each
    for i in range(3):
        memo.put(("k", i), (t[i],))
    assert memo.get(("k", 0))[0][0] == 0  # 0 is now the most recent
    memo.put(("k", 3), (t[3],))
    assert memo.get(("k", 1)) is None and len(memo) == 3 and memo.nbytes == 240
    memo.put(("k", 3), (t[4],))  # replacing an entry counts its bytes once
    assert memo.nbytes == 240 and memo.get(("k", 3))[0][0] == 4
    memo.put(("big",), (torch.zeros(40, dtype=torch.float64),))  # 320 > budget / 4
    assert memo.get(("big",)) is None and len(memo) == 3
    small = ByteLRU(200, lut._nbytes, 10)  # the byte budget binds before the cap
    for i in range(5):
        small.put(("k", i), (torch.zeros(5, dtype=torch.float64),))  # 40 bytes each
    assert len(small) == 5 and small.nbytes == 200
    small.put(("k", 5), (torch.zeros(5, dtype=torch.float64),))
    assert len(small) == 5 and small.get(("k", 0)) is None
    small.clear()
    assert len(small) == 0 and small.nbytes == 0

    monkeypatch.setattr(lut, "_GRID_MEMO", ByteLRU(lut._GRID_MEMO_BYTES, lut._nbytes, 8))
    torch.manual_seed(0)
    act = learnact.create("ditac:lut=257")
    opt = torch.optim.SGD(act.parameters(), lr=1e-2)
    x = torch.randn(64)
    for _ in range(20):
        act(x).square().sum().backward()
        opt.step()
        opt.zero_grad()
    memo = lut._GRID_MEMO
    assert len(memo) == 8
    assert memo.nbytes == sum(lut._nbytes(v) for v in memo.values())


def test_native_library_disabled_or_unbuildable_falls_back(monkeypatch, tmp_path, caplog) -> None:
    """LEARNACT_NATIVE=0, or no working compiler, gives None (logged) and the LUT op keeps
    working on its PyTorch path with the same values."""
    from learnact.ops import _native
    from learnact.ops import cpab as ops

    x, table, dtable = _lut_case(None, None, torch.float64)
    ref = ops.cpab_lut_op(x, table.detach(), dtable, lo=-0.5, hi=2.0, gate="gelu")
    monkeypatch.setattr(_native, "_libs", {})
    monkeypatch.setenv("LEARNACT_NATIVE", "0")
    assert _native.library() is None
    monkeypatch.setenv("LEARNACT_NATIVE", "1")
    monkeypatch.setenv("LEARNACT_CACHE", str(tmp_path))
    monkeypatch.setenv("CC", str(tmp_path / "no-such-cc"))
    monkeypatch.setattr(_native, "_compiler", lambda: "false")  # a "compiler" that fails
    with caplog.at_level("WARNING"):
        assert _native.library() is None
    assert "native CPU kernels unavailable" in caplog.text
    monkeypatch.setattr(ops.common, "_native_library_loaded", lambda: False)
    y = ops.cpab_lut_op(x, table.detach(), dtable, lo=-0.5, hi=2.0, gate="gelu")
    assert torch.allclose(y, ref, atol=1e-12)


@pytest.mark.parametrize("channels", [None, 3])
@pytest.mark.parametrize("scale", [3.0, 0.1])
def test_native_grid_matches_pytorch_grid(channels, scale, monkeypatch) -> None:
    """cpab_grid on the native exact kernel (no Jacobian; its backward is the kernel's own
    table gradients) equals the PyTorch grid: T, dT/du and the gradient w.r.t. theta. Small
    theta: the crossing times' z = a dl/v below 0.05, where the float64 kernel's L'(z) is a
    series (to z^5 it was 2.5e-8 relative off)."""
    from learnact.ops import cpab as ops

    B = cpab.cpa_basis(7)
    g = torch.Generator().manual_seed(11)
    shape = (6,) if channels is None else (channels, 6)
    theta = (torch.randn(shape, generator=g, dtype=torch.float64) * scale).requires_grad_(True)
    w = torch.randn(shape[:-1] + (257,), generator=g, dtype=torch.float64)

    def run():
        ops.lut._GRID_MEMO.clear()
        T, dT, J = ops.cpab_grid(*cpab.flow_tables(theta, B), 257, 1.0, False)
        (gt,) = torch.autograd.grad((T * w).sum(), theta)
        return T.detach(), dT, gt, J

    assert ops.native_grid(theta)
    T1, dT1, g1, J1 = run()
    monkeypatch.setattr(ops.lut, "native_grid", lambda *a: False)
    T0, dT0, g0, _ = run()
    assert J1.numel() == 0
    assert torch.allclose(T1, T0, atol=1e-14) and torch.allclose(dT1, dT0, atol=1e-12)
    # both against autograd through the independent cell-by-cell loop
    u = torch.linspace(0.0, 1.0, 257, dtype=torch.float64).expand(w.shape).contiguous()
    (g2,) = torch.autograd.grad((cpab.integrate_stepwise(u, theta, B) * w).sum(), theta)
    for got in (g1, g0):
        assert (got - g2).abs().max() <= 1e-13 * g2.abs().max()


def test_native_python_pool_path_equals_openmp_path(monkeypatch) -> None:
    """Without OpenMP (e.g. macOS builds) the kernels run per part on a Python thread pool,
    each part on its own histogram block: same values and sums as the OpenMP launch."""
    from learnact.ops import _native
    from learnact.ops import cpab as ops

    lib = _native.library()
    x = torch.randn(100_000, generator=torch.Generator().manual_seed(5)) * 1.5
    g = torch.randn_like(x)
    _, table, dtable = _lut_case(None, None, torch.float32)
    D, S = ops.lut._lut_tables(table.detach(), dtable, -0.5, 2.0, torch.float32)
    largs = (1, x.numel(), 64 / 2.5, 1.5 + 0.5 * 64 / 2.5, 0, 0.01)
    a2, b2, tau2 = learnact.create("ditac")._tables()
    tb = ops.common._Tables(a2.detach(), b2.detach(), tau2.detach(), 1.0, torch.float32)
    fargs = (tb.a, tb.b, tb.P, tb.stop, 1, x.numel(), 1.0, -0.5, 2.0, 0, 0.01)

    def run():
        return (ops.lut.lut_apply(x, D, *largs), *ops.lut.lut_apply_backward(x, g, D, S, *largs, True),
                ops.flow.flow_apply(x, *fargs), *ops.flow.flow_apply_backward(x, g, *fargs, True))

    assert len(_native.parallel_ranges(x.numel(), 2)) == 2
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    with_omp = run()
    monkeypatch.setattr(lib, "openmp", False)
    pool = run()
    for a, b in zip(with_omp, pool):
        assert torch.allclose(a.double(), b.double(), rtol=1e-12, atol=1e-9)


@pytest.mark.parametrize("gate", ["gelu", "silu", "leaky_relu", "identity"])
@pytest.mark.parametrize("cells,zero,scale", [(1, False, 2.0), (2, True, 3.0), (7, False, 4.0),
                                              (10, True, 2.0), (15, True, 2.0), (16, True, 2.0)])
def test_native_register_table_kernel(gate: str, cells: int, zero: bool, scale: float) -> None:
    """float32, one shared table of <= 15 cells: the register-table kernel (tables in vector
    registers, compressed histogram terms; AVX-512 or AVX2, whichever the CPU has) gives the
    generic kernel's values, dL/dx and table sums, and both are within float32 rounding of the
    float64 kernel; tails shorter than a vector, left-moving fields and open boundaries
    included (16 cells: the generic kernel)."""
    from learnact.ops import _native

    lib = _native.library()
    assert lib is not None
    flags = set(_native._cpu_fingerprint().split())
    if "avx512f" in flags or {"avx2", "fma"} <= flags:  # x86-64, AVX-512 or AVX2 (GCC: CI)
        assert lib.la_flow_vec() == 1
    _register_table_case(lib, gate, cells, zero, scale)


@pytest.fixture(scope="module")
def avx2_library(tmp_path_factory: pytest.TempPathFactory):
    """native/cpab.c built for this CPU without AVX-512 (its AVX2 paths; on an AVX2 machine
    the same code the loader builds), loaded beside the cached library."""
    import ctypes
    import subprocess

    from learnact import _build
    from learnact.ops import _native

    flags = set(_native._cpu_fingerprint().split())
    if not {"avx2", "fma"} <= flags:
        pytest.skip("AVX2 paths: x86-64 CPUs with AVX2 and FMA only")
    cc = _native._compiler()
    assert cc is not None, "CI has a C compiler"
    if "Free Software Foundation" not in _build.compiler_version(cc):
        pytest.skip("the vector paths are built by GCC only (native/cpab.c LA_VEC)")
    out = tmp_path_factory.mktemp("avx2") / "cpab_avx2.so"
    subprocess.run([cc, *_native._FLAGS, *_build.gcc_flags(cc), *_build.MARCH, "-mno-avx512f",
                    str(_build.NATIVE / "cpab.c"), "-o", str(out), "-lm"], check=True)
    lib = ctypes.CDLL(str(out))
    _native._declare(lib)
    assert lib.la_abi() == _build.abi() and lib.la_flow_vec() == 1
    return lib


@pytest.mark.parametrize("gate", ["gelu", "identity"])
@pytest.mark.parametrize("cells,zero,scale", [(1, False, 2.0), (7, False, 4.0), (10, True, 2.0),
                                              (15, True, 2.0)])
def test_native_register_table_kernel_avx2(avx2_library, gate: str, cells: int, zero: bool,
                                           scale: float, monkeypatch) -> None:
    """The register-table kernel's AVX2 build (8 lanes: tables in two registers per row, the
    compressions by permutes) against its generic loops and the float64 kernel, as above: on
    an AVX-512 machine the loader builds the 16-lane kernel, and this is what AVX2 CPUs run."""
    from learnact.ops import _native

    monkeypatch.setitem(_native._libs, "cpab", avx2_library)
    _register_table_case(avx2_library, gate, cells, zero, scale)


def _register_table_case(lib, gate: str, cells: int, zero: bool, scale: float) -> None:
    from learnact.ops import cpab as ops

    B = cpab.cpa_basis(cells, zero)
    gen = torch.Generator().manual_seed(cells)
    theta = (torch.randn(B.shape[1], generator=gen, dtype=torch.float64) * scale).requires_grad_()
    a2, b2, tau2 = cpab.flow_tables(theta, B)
    gid = GATE_IDS[gate]

    def theta_grad(hist: torch.Tensor, tb) -> torch.Tensor:
        # the table sums as dL/dtheta (endpoints of zero-velocity boundaries move terms between
        # the two rows' tables with rounding; dL/dtheta is what training sees)
        grads = [G.reshape(v.shape) for G, v in zip(ops.flow._flow_table_grads(hist, tb), (a2, b2, tau2))]
        fin = [torch.where(torch.isfinite(v), G, torch.zeros_like(G)) for G, v in
               zip(grads, (a2, b2, tau2))]
        return torch.autograd.grad((a2, b2, tau2), theta, fin, retain_graph=True)[0]

    for m in (7, 3029):  # one short tail; several blocks with a tail of 13
        x = torch.randn(m, generator=gen) * 1.5
        x[:3] = torch.tensor([-0.5, 2.0, 0.75])  # the window's ends and a knot
        g = torch.randn(m, generator=gen)
        results = {}
        for dtype, vec in ((torch.float32, 1), (torch.float32, 0), (torch.float64, 0)):
            tb = ops.common._Tables(a2, b2, tau2, 1.0, dtype)
            args = (tb.a, tb.b, tb.P, tb.stop, 1, m, 1.0, -0.5, 2.0, gid, 0.1)
            try:
                lib.la_flow_vec_set(vec)
                xx, gg = x.to(dtype), g.to(dtype)
                y = ops.flow.flow_apply(xx, *args)
                gx, hist = ops.flow.flow_apply_backward(xx, gg, *args, True)
            finally:
                lib.la_flow_vec_set(1)
            results[dtype, vec] = (y, gx, hist, theta_grad(hist, tb))
        (y, gx, h, gt), (y0, gx0, h0, _), (y64, gx64, _, gt64) = (
            results[torch.float32, 1], results[torch.float32, 0], results[torch.float64, 0])
        assert torch.allclose(y, y0, rtol=1e-6, atol=1e-6)
        assert torch.allclose(gx, gx0, rtol=1e-5, atol=1e-5)
        assert torch.allclose(h, h0, rtol=1e-9, atol=1e-9 * float(h0.abs().max()))
        assert float((y.double() - y64).abs().max()) < 2e-6 * (1 + float(y64.abs().max()))
        # dL/dx holds v(T)/v(x): large where v(x) is small, float32-relative there
        assert bool(((gx.double() - gx64).abs() <= 1e-4 * (1 + gx64.abs())).all())
        # float32 per-element terms (stiff fields: cancellations in dT/dtau): ~1e-5 of the
        # largest component measured with 15 cells, 2e-6 with DiTAC's default 10
        assert float((gt - gt64).abs().max()) < 1e-4 * float(gt64.abs().max())


def _grid_theta(channels, scale=3.0, cells=7, seed=4):
    B = cpab.cpa_basis(cells)
    g = torch.Generator().manual_seed(seed)
    shape = (B.shape[1],) if channels is None else (channels, B.shape[1])
    theta = (torch.randn(shape, generator=g, dtype=torch.float64) * scale).requires_grad_(True)
    return B, theta


# one part (shared, 300 points), three parts of 512 points (shared), parts of 8 channels and a
# partial one (19 channels); small theta: the crossing times' series branch
@pytest.mark.parametrize("channels,n,scale", [(None, 300, 3.0), (None, 1100, 3.0),
                                              (19, 257, 3.0), (3, 64, 0.1)])
def test_lut_grid_matches_the_flow_tables_path(channels, n, scale) -> None:
    """lut_grid (the padded tables straight from the cells, native/cpab_grid.h) gives the
    tables of flow_tables + lut_tables + _padded_tables, and its gradient w.r.t. theta that
    of autograd through them, and of autograd through the independent cell-by-cell loop."""
    from learnact.ops import cpab as ops

    B, theta = _grid_theta(channels, scale)
    lo, hi = -0.5, 2.0
    C = 1 if channels is None else channels
    w = torch.randn(C * (n + 2), generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    assert ops.native_lut_grid(theta)
    D, S = ops.lut_grid(*cpab.cell_coefficients(theta, B), n, lo, hi)
    (g1,) = torch.autograd.grad((D * w).sum(), theta)
    ops.lut._GRID_MEMO.clear()
    table, dtable = ops.lut_tables(*cpab.flow_tables(theta, B), n)
    D0, S0 = ops.lut._padded_tables(table, dtable, lo, hi)
    (g0,) = torch.autograd.grad((D0 * w).sum(), theta)
    assert D.dtype == S.dtype == torch.float64 and D.shape == S.shape == (C * (n + 2),)
    assert torch.allclose(D, D0, rtol=0, atol=1e-14)
    assert torch.allclose(S, S0, rtol=0, atol=1e-12)
    assert torch.equal(D.reshape(C, n + 2)[:, [0, -1]], torch.zeros(C, 2, dtype=torch.float64))
    assert torch.equal(S.reshape(C, n + 2)[:, [0, -1]], torch.ones(C, 2, dtype=torch.float64))
    u = torch.linspace(0.0, 1.0, n, dtype=torch.float64).expand(C, n)
    if channels is None:
        u = u[0]
    T2 = cpab.integrate_stepwise(u.contiguous(), theta, B)
    (g2,) = torch.autograd.grad(((hi - lo) * (T2 - u) * w.reshape(C, n + 2)[:, 1:-1].reshape(
        T2.shape)).sum(), theta)
    for got in (g1, g0):
        assert (got - g2).abs().max() <= 1e-12 * g2.abs().max()


def test_lut_grid_gradcheck_threads_and_errors() -> None:
    """gradcheck of lut_grid's backward in ta, tb; the same bits with 1 and 2 threads (the
    parts depend on the shape); bad arguments named before any work."""
    from learnact.ops import cpab as ops

    B, theta = _grid_theta(3)
    ta, tb = (t.detach().requires_grad_() for t in cpab.cell_coefficients(theta, B))
    assert torch.autograd.gradcheck(lambda a, b: ops.lut_grid(a, b, 40, -0.5, 2.0)[0], (ta, tb))
    B, theta = _grid_theta(20)
    ta, tb = cpab.cell_coefficients(theta.detach(), B)
    gD = torch.randn(20 * 1102, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    threads = torch.get_num_threads()
    results = []
    try:
        for k in (1, 2):
            torch.set_num_threads(k)
            ops.lut._GRID_MEMO.clear()  # computed again, not remembered
            results.append((*ops.lut_grid(ta, tb, 1100, -0.5, 2.0),
                            *ops.lut.lut_grid_backward(ta, tb, gD, 1100, -0.5, 2.0),
                            *ops.lut.lut_grid_backward(ta[0], tb[0], gD[:1102], 1100, -0.5, 2.0)))
    finally:
        torch.set_num_threads(threads)
    for a, b in zip(*results):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match="n .grid points. must be in"):
        ops.lut_grid(ta, tb, 1, -0.5, 2.0)
    with pytest.raises(ValueError, match="ta and tb need the same shape"):
        ops.lut_grid(ta, tb[:, :3], 40, -0.5, 2.0)
    with pytest.raises(ValueError, match="gD needs"):
        ops.lut.lut_grid_backward(ta, tb, gD[:5], 1100, -0.5, 2.0)


@pytest.mark.parametrize("spec,shape", [("ditac:lut=2048", (64, 300)),
                                        ("ditac:lut=257,channels=5,channel_dim=1", (7, 5, 90)),
                                        ("ditac:lut=64,gate=silu,channels=5,channel_dim=-1",
                                         (40, 5))])
def test_module_lut_on_cpu_runs_lut_grid(spec, shape, monkeypatch) -> None:
    """DiTAC(lut=n) on the CPU builds its tables with lut_grid (one op each way), with the
    values and gradients of the flow_tables path (float64, and float32 inputs)."""
    import learnact.modules.ditac as mod
    from learnact.ops import cpab as ops

    act = learnact.create(spec).double()
    with torch.no_grad():
        act.theta.mul_(3.0).add_(0.3)
    calls = []
    real = mod.lut_grid
    monkeypatch.setattr(mod, "lut_grid", lambda *a: calls.append(1) or real(*a))
    for dtype in (torch.float64, torch.float32):
        x = (torch.randn(shape, dtype=torch.float64) * 1.5).to(dtype).requires_grad_()
        g = torch.randn(shape, dtype=dtype)
        res = []
        for fast in (True, False):
            monkeypatch.setattr(mod, "native_lut_grid", ops.native_lut_grid if fast
                                else (lambda t: False))
            act.zero_grad()
            x.grad = None
            act(x).backward(g)
            res.append((act(x).detach(), x.grad.clone(), act.theta.grad.clone()))
        (y1, gx1, gt1), (y0, gx0, gt0) = res
        tol = 1e-13 if dtype == torch.float64 else 1e-6  # float32: D rounded from float64
        assert torch.allclose(y1, y0, rtol=0, atol=tol)
        assert torch.allclose(gx1, gx0, rtol=0, atol=10 * tol)
        assert (gt1 - gt0).abs().max() <= 1e-12 * gt0.abs().max()
    assert len(calls) == 4  # the fast runs' forward (and the value check's) calls
