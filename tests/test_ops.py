"""The custom-op layer (ops/_library.py): schema, fake kernels, autograd registration, kernels
per device, double backward, and the torch.compile path, for every family op."""

from __future__ import annotations

import pytest
import torch

import learnact
from learnact.ops import CPU_KERNEL_MIN, family_ops

from .conftest import perturb_

# family op -> (module spec, the op's parameter tensors as the module passes them)
OPS = {
    "hermite": ("hermite:degree=5,tails=linear", lambda m: (m.coeffs, m.lo, m.hi)),
    "fourier": ("fourier:degree=3", lambda m: (m.bias, m.amplitude, m.frequency, m.phase)),
    "tropical": ("tropical:degree=4",
                 lambda m: (m.slopes.to(m.coeffs.dtype), m.coeffs, m.scale, m.offset)),
    "tropical_rational": ("tropical_rational:degree=3", lambda m: (
        m.num_slopes, m.num_coeffs, m.den_slopes, m.den_coeffs, m.scale, m.offset)),
    "rational": ("rational", lambda m: (m.num, m.den, m.scale, m.offset)),
    "selu_variation": ("selu_variation", lambda m: tuple(m._params())),
}
# a small input and one of several work items (every non-empty CPU input runs the kernel from
# CPU_KERNEL_MIN on; the reference is op.reference, compared with directly)
SIZES = [60, max(3 * CPU_KERNEL_MIN, 12288)]


def test_every_family_op_is_covered() -> None:
    assert set(family_ops()) == set(OPS)
    for op in family_ops().values():
        assert {"reference", "cpu"} <= set(op.kernels)


def _setup(name: str, channels, numel: int, channel_dim: int = 1):
    spec, params = OPS[name]
    act = perturb_(learnact.create(spec, channels=channels, channel_dim=channel_dim).double())
    shape = (4, 3, numel // 12) if channel_dim == 1 else (4, numel // 12, 3)
    x = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    return act, x, params(act)


@pytest.mark.parametrize("name", sorted(OPS))
@pytest.mark.parametrize("channels", [None, 3])
@pytest.mark.parametrize("numel", SIZES)
def test_opcheck(name, channels, numel) -> None:
    """Schema, fake tensor, autograd registration and AOT dispatch (torch.library.opcheck)."""
    act, x, params = _setup(name, channels, numel)
    torch.library.opcheck(family_ops()[name].forward_op, (x, *params, act.channel_dim))


@pytest.mark.parametrize("name", sorted(OPS))
@pytest.mark.parametrize("channels,channel_dim", [(None, 1), (3, 1), (3, -1)])
def test_cpu_kernel_equals_reference(name, channels, channel_dim) -> None:
    """Forward and every gradient of the CPU kernel equal the reference kernel's (float64)."""
    act, x, params = _setup(name, channels, SIZES[1], channel_dim)
    op = family_ops()[name]
    fwd_ref, bwd_ref = op.reference
    fwd_cpu, bwd_cpu = op.kernels["cpu"].forward, op.kernels["cpu"].backward
    g = torch.randn_like(x)
    ps = [None if p is None else p.detach() for p in params]
    torch.testing.assert_close(fwd_cpu(x.detach(), *ps, channel_dim),
                               fwd_ref(x.detach(), *ps, channel_dim), rtol=1e-10, atol=1e-10)
    for a, b in zip(bwd_cpu(x.detach(), *ps, g, channel_dim), bwd_ref(x.detach(), *ps, g,
                                                                        channel_dim)):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("name", sorted(OPS))
@pytest.mark.parametrize("channels", [None, 3])
def test_double_backward_equals_autograd_of_reference(name, channels) -> None:
    """A gradient penalty through the op (create_graph) gives the same parameter gradients as
    autograd through the reference forward, at the CPU kernel's size."""
    act, x, params = _setup(name, channels, SIZES[1])
    op = family_ops()[name]
    leaves = [p for p in params if p is not None and p.requires_grad]

    def penalty(fn):
        y = fn(x, *params, act.channel_dim)
        (gx,) = torch.autograd.grad(y.sin().sum(), x, create_graph=True)
        return torch.autograd.grad(gx.square().sum(), leaves)

    for a, b in zip(penalty(op.forward_op), penalty(op.reference[0])):
        assert float(b.abs().max()) > 0
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("name", sorted(OPS))
def test_gradgradcheck_through_op(name) -> None:
    act, x, params = _setup(name, 3, 24)
    op = family_ops()[name]
    leaves = [p for p in params if p is not None and p.requires_grad]
    fixed = {i: p for i, p in enumerate(params) if p is None or not p.requires_grad}

    def f(x, *ls):
        it = iter(ls)
        ps = [fixed[i] if i in fixed else next(it) for i in range(len(params))]
        return op.forward_op(x, *ps, act.channel_dim)

    assert torch.autograd.gradgradcheck(f, (x, *leaves))


@pytest.mark.parametrize("name", sorted(OPS))
def test_meta_device_shapes(name) -> None:
    """The fake kernels give shapes and dtypes without data (meta device, as in from_pretrained)."""
    act, x, params = _setup(name, 3, 120)
    meta = [None if p is None else p.detach().to("meta") for p in params]
    y = family_ops()[name].forward_op(x.detach().to("meta").float(), *meta, 1)
    assert y.device.type == "meta" and y.shape == x.shape and y.dtype == torch.float32


def test_wrong_parameter_count_is_a_clear_error() -> None:
    with pytest.raises(TypeError, match="hermite op takes 3 parameter tensors"):
        family_ops()["hermite"](torch.randn(3), torch.randn(4))


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(OPS))
@pytest.mark.parametrize("channels", [None, 3])
def test_compile_traces_the_reference_or_keeps_the_op(name, channels) -> None:
    """Under torch.compile a ``compile="trace"`` op is traced (inductor fuses it: the graph
    holds no learnact custom op), a ``compile="op"`` op stays one opaque call, and so does a
    family op with per-channel parameters on the CPU (its ``keep_op``), and any CPU call of an
    op built with ``compile_cpu="op"``; no graph break
    either way. torch.export always traces (an exported program holds aten ops only)."""
    act, x, _ = _setup(name, channels, 120)
    op = family_ops()[name]
    torch._dynamo.reset()
    explanation = torch._dynamo.explain(act)(x)
    assert explanation.graph_break_count == 0 and explanation.graph_count == 1
    code = "\n".join(g.code for g in explanation.graphs)
    kept = (op.compile == "op" or op.compile_cpu == "op"
            or (channels is not None and op.keep_op is not None))
    assert ("learnact" in code) == kept
    exported = torch.export.export(act, (x.detach(),))
    assert "learnact" not in str(exported.graph)
    torch.testing.assert_close(exported.module()(x.detach()), act(x.detach()))


def test_assume_constant_result_matches_torch_and_import_stays_light() -> None:
    """learnact marks its constant-result functions without importing torch._dynamo (whose
    import takes ~2 s and pulls in triton): ``import learnact`` stays light. (The first call of
    any torch.library custom op imports dynamo anyway: torch's own machinery.) The marker must
    be exactly what torch's public decorator sets."""
    import subprocess
    import sys

    from learnact.ops._library import assume_constant_result

    def ours():
        return 1

    def theirs():
        return 1

    before = set(vars(theirs))
    torch.compiler.assume_constant_result(theirs)
    marked = set(vars(theirs)) - before
    saved = sys.modules.pop("torch._dynamo")  # take the no-dynamo branch
    try:
        assume_constant_result(ours)
    finally:
        sys.modules["torch._dynamo"] = saved
    assert marked and {k: getattr(ours, k) for k in marked} == {k: getattr(theirs, k) for k in marked}
    code = "import sys, learnact; print('torch._dynamo' in sys.modules, 'triton' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "False"]


@pytest.mark.parametrize("name", sorted(OPS))
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_eager_cpu_path_equals_the_op(name, dtype) -> None:
    """Plain eager CPU calls run the kernels through an autograd.Function (no dispatcher
    layers): the output and every gradient bit-identical to the custom op's, in the input's
    dtype, and the Function is what autograd records."""
    act, x, params = _setup(name, 3, SIZES[0])
    op = family_ops()[name]
    x = x.detach().to(dtype).requires_grad_()
    params = [p if p is None or not p.is_floating_point()
              else p.detach().float().requires_grad_(spec.differentiable)
              for p, spec in zip(params, op.params)]
    g = torch.randn(x.shape).to(dtype)
    results = []
    for call in (lambda: op(x, *params, channel_dim=1),
                 lambda: op.forward_op(x, *params, 1)):
        y = call()
        diff = [t for t in (x, *params) if t.requires_grad]
        results.append((y, y.grad_fn, torch.autograd.grad(y, diff, g)))
    (y, fn, grads), (y_op, fn_op, grads_op) = results
    assert type(fn).__name__.endswith("EagerBackward") and "Eager" not in type(fn_op).__name__
    assert y.dtype == dtype and torch.equal(y, y_op)
    for a, b in zip(grads, grads_op):
        assert a.dtype == b.dtype and torch.equal(a, b)


def test_eager_cpu_path_leaves_modes_and_tracing_the_op() -> None:
    """Under a dispatch mode (what FakeTensorMode and FLOP counters are), autocast or
    torch.jit.trace the call goes through the custom op, which they see."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Seen(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.ops = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.ops.append(str(func))
            return func(*args, **(kwargs or {}))

    act = learnact.create("hermite:degree=4")
    x = torch.randn(4, 8)
    with Seen() as seen:
        act(x)
    assert any(s.startswith("learnact.hermite") for s in seen.ops)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = act(x.clone().requires_grad_())
    assert "Eager" not in type(y.grad_fn).__name__
    traced = torch.jit.trace(act, x, check_trace=False)
    assert "learnact::hermite" in str(traced.graph)
    assert "Eager" in type(act(x.requires_grad_()).grad_fn).__name__
