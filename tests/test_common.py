"""Properties every learnable family must have, shared and per channel (timm/activations-plus style)."""

from __future__ import annotations

import io

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import learnact
from learnact._tensor import use_fast_cpu_path

from .conftest import LEARNABLE, perturb_

C = 6
CASES = [(name, kw, ch) for name, kw in LEARNABLE for ch in (None, C)]
IDS = [f"{n}-{'pc' if ch else 'shared'}" for n, _, ch in CASES]


def build(name, kw, channels, channel_dim=1):
    return perturb_(learnact.create(name, channels=channels, channel_dim=channel_dim, **kw))


@pytest.mark.parametrize("name,kw,channels", CASES, ids=IDS)
@pytest.mark.parametrize("dtype,atol", [(torch.float32, 1e-5), (torch.bfloat16, 5e-2),
                                        (torch.float16, 1e-2), (torch.float64, 1e-12)])
def test_dtype_in_dtype_out_and_close_to_fp64(name, kw, channels, dtype, atol) -> None:
    act = build(name, kw, channels)
    x = torch.randn(3, C, 5, 7)
    ref = act.double()(x.double()).detach()
    act = act.float()
    y = act(x.to(dtype))
    assert y.dtype == dtype and y.shape == x.shape
    scale = max(1.0, ref.abs().max().item())
    assert torch.allclose(y.double(), ref, atol=atol * scale, rtol=0)


@pytest.mark.parametrize("name,kw,channels", CASES, ids=IDS)
def test_fused_kernel_equals_plain_path_and_grads(name, kw, channels) -> None:
    """Large input (fused CPU kernel) vs the same input split in small pieces (plain path)."""
    act = build(name, kw, channels)
    x = torch.randn(64, C, 9, 11)
    with torch.no_grad():
        assert use_fast_cpu_path(x) and not use_fast_cpu_path(x[:1, :, :2])
    g = torch.randn_like(x)
    xa = x.clone().requires_grad_()
    act(xa).backward(g)
    grads_fast = [p.grad.clone() for p in act.parameters()]
    act.zero_grad()
    xb = x.clone().requires_grad_()
    outs = [act(xb[i:i + 1]) for i in range(64)]  # 594 elements each: plain path
    torch.cat(outs).backward(g)
    assert torch.allclose(xa.grad, xb.grad, atol=1e-5, rtol=1e-5)
    for gf, p in zip(grads_fast, act.parameters()):
        assert torch.allclose(gf, p.grad, atol=1e-3, rtol=1e-4)


@pytest.mark.parametrize("name,kw,channels", CASES, ids=IDS)
def test_non_contiguous_and_channel_last(name, kw, channels) -> None:
    act = build(name, kw, channels)
    x = torch.randn(4, 9, C, 13).transpose(1, 2)  # (4, C, 9, 13), non-contiguous
    assert not x.is_contiguous()
    assert torch.equal(act(x), act(x.contiguous()))
    last = build(name, kw, channels, channel_dim=-1)
    last.load_state_dict(act.state_dict())
    xl = torch.randn(2, 5000, C)
    assert torch.allclose(last(xl), act(xl.transpose(1, 2)).transpose(1, 2), atol=1e-6)


@pytest.mark.parametrize("name,kw,channels", CASES, ids=IDS)
def test_empty_and_nan(name, kw, channels) -> None:
    act = build(name, kw, channels)
    e = torch.empty(0, C, 3, requires_grad=True)
    y = act(e)
    assert y.shape == e.shape
    y.sum().backward()
    assert all(torch.all(p.grad == 0) for p in act.parameters() if p.grad is not None)
    for n in (7, 6000):
        x = torch.randn(1, C, n)
        x[0, 1, 3] = float("nan")
        y = act(x)
        assert torch.isnan(y[0, 1, 3])
        mask = torch.ones_like(x, dtype=torch.bool)
        mask[0, 1, 3] = False
        assert torch.isfinite(y[mask]).all()


@pytest.mark.parametrize("name,kw,channels", CASES, ids=IDS)
def test_state_dict_round_trip(name, kw, channels) -> None:
    act = build(name, kw, channels)
    buf = io.BytesIO()
    torch.save(act.state_dict(), buf)
    buf.seek(0)
    fresh = learnact.create(name, channels=channels, **kw)
    fresh.load_state_dict(torch.load(buf))
    x = torch.randn(2, C, 10)
    assert torch.equal(fresh(x), act(x))
    for conv in (lambda m: m.double(), lambda m: m.half()):
        a, b = conv(build(name, kw, channels)), None
        sd = a.state_dict()
        b = conv(learnact.create(name, channels=channels, **kw))
        b.load_state_dict(sd)
        xx = x.to(next(a.parameters()).dtype)
        assert torch.equal(a(xx), b(xx))


@pytest.mark.parametrize("name,kw,channels", CASES, ids=IDS)
def test_saves_only_input_and_parameters(name, kw, channels) -> None:
    act = build(name, kw, channels)
    x = torch.randn(8, C, 64, 64, requires_grad=True)
    saved: list[int] = []

    def pack(t):
        saved.append(t.numel() * t.element_size())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        act(x)
    param_bytes = sum(p.numel() * p.element_size() for p in act.parameters())
    param_bytes += sum(b.numel() * b.element_size() for b in act.buffers())
    input_bytes = x.numel() * x.element_size()
    # DiTAC's exact mode recomputes its flow in backward but its transform/gate still keep a
    # few input-sized tensors (measured 5.5x): an open item of the DiTAC issue, bounded here
    factor = 6 if name.endswith("ditac") else 1
    assert input_bytes <= sum(saved) <= factor * input_bytes + param_bytes


@pytest.mark.parametrize("name,kw,channels", CASES, ids=IDS)
def test_wrong_channel_count_is_a_clear_error(name, kw, channels) -> None:
    if channels is None:
        return
    act = build(name, kw, channels)
    with pytest.raises(ValueError, match=r"channels=6"):
        act(torch.randn(2, C + 1, 3))
    with pytest.raises(ValueError, match="channel"):
        act(torch.tensor(1.0))


@pytest.mark.parametrize("name,kw", LEARNABLE)
def test_per_channel_grads_reduce_over_batch_and_space(name, kw) -> None:
    """Channel c's parameter gradient equals that of a shared module fed only channel c."""
    pc = build(name, kw, C)
    x = torch.randn(5, C, 4, 3)
    g = torch.randn_like(x)
    pc(x).backward(g)
    for c in (0, C - 1):
        shared = learnact.create(name, **kw)
        with torch.no_grad():
            for (n, ps), (_, pp) in zip(shared.named_parameters(), pc.named_parameters()):
                ps.copy_(pp[c])
        shared(x[:, c]).backward(g[:, c])
        for (_, ps), (_, pp) in zip(shared.named_parameters(), pc.named_parameters()):
            assert torch.allclose(ps.grad, pp.grad[c], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name,kw,channels", CASES, ids=IDS)
def test_gradcheck_module_float64(name, kw, channels) -> None:
    act = build(name, kw, channels).double()
    x = torch.randn(2, C, 3, dtype=torch.float64, requires_grad=True)
    params = list(act.parameters())
    names = [n for n, _ in act.named_parameters()]

    def fn(x, *ps):
        return torch.func.functional_call(act, dict(zip(names, ps)), (x,))

    assert torch.autograd.gradcheck(fn, (x, *params), atol=1e-6)


@pytest.mark.parametrize("name,kw,channels", CASES + [("perlin", {}, None), ("perlin", {}, C),
                                                  ("ditac", {"lut": 64}, C)],
                         ids=IDS + ["perlin-shared", "perlin-pc", "ditac-lut-pc"])
def test_builds_on_the_meta_device_and_materialises(name, kw, channels) -> None:
    """Under ``with torch.device("meta")`` (Hugging Face's empty-weights loading, deferred
    init) every family builds with meta parameters; ``to_empty`` + ``load_state_dict`` then
    gives the module built normally: same outputs, same regularisation."""
    with torch.device("meta"):
        lazy = learnact.create(name, channels=channels, **kw)
    tensors = list(lazy.parameters()) + list(lazy.buffers())
    assert tensors == [] or {t.device.type for t in tensors} == {"meta"}
    ref = build(name, kw, channels)
    lazy = lazy.to_empty(device="cpu")
    lazy.load_state_dict(ref.state_dict())
    x = torch.randn(2, C, 5)
    assert torch.equal(lazy(x), ref(x))
    assert torch.equal(learnact.regularization(lazy), learnact.regularization(ref))


@pytest.mark.parametrize("name,kw,channels", CASES, ids=IDS)
def test_gradgradcheck_module_float64(name, kw, channels) -> None:
    """Double backward (gradient penalties) through every family, w.r.t. x and every
    parameter: true second derivatives, never zeros (gradgradcheck vs finite differences)."""
    act = build(name, kw, channels).double()
    x = torch.randn(1, C, 2, dtype=torch.float64, requires_grad=True)
    params = [p.detach().clone().requires_grad_(True) for p in act.parameters()]
    names = [n for n, _ in act.named_parameters()]

    def fn(x, *ps):
        return torch.func.functional_call(act, dict(zip(names, ps)), (x,))

    assert torch.autograd.gradgradcheck(fn, (x, *params), atol=1e-5)


@settings(max_examples=25, deadline=None)
@given(st.sampled_from(LEARNABLE), st.lists(st.integers(1, 5), min_size=1, max_size=4),
       st.floats(-50, 50))
def test_property_finite_shape_kept_input_untouched(fam, shape, shift) -> None:
    name, kw = fam
    act = learnact.create(name, **kw)
    x = torch.randn(shape) + shift
    before = x.clone()
    y = act(x)
    assert y.shape == x.shape and torch.isfinite(y).all()
    assert torch.equal(x, before)
