"""PWLU (the first family defined once, every class derived): values and gradients against an
independent float64 reference (numpy's interp plus the tails), the unit init's moments, the
checks, and the surfaces derived from the definition (freeze, export, ONNX, pickling)."""

from __future__ import annotations

import io
import pickle

import numpy as np
import pytest
import torch

import learnact

ort = pytest.importorskip("onnxruntime", reason="the [deploy] extra (part of [test])")


def _reference(x: np.ndarray, knots: np.ndarray, k_l: float, k_r: float, a: float, b: float
               ) -> tuple[np.ndarray, np.ndarray]:
    """(f, f') in float64: linear interpolation of the knot values, linear tails."""
    pos = np.linspace(a, b, knots.shape[-1])
    f = np.interp(x, pos, knots) + np.where(x < a, k_l * (x - a), 0.0) \
        + np.where(x > b, k_r * (x - b), 0.0)
    seg = np.diff(knots) / (pos[1] - pos[0])
    i = np.clip(np.searchsorted(pos, x, side="right") - 1, 0, len(seg) - 1)
    df = np.where(x < a, k_l, np.where(x >= b, k_r, seg[i]))
    return f, df


def _perturbed(**kw) -> learnact.PWLU:
    torch.manual_seed(0)
    act = learnact.PWLU(**kw).double()
    with torch.no_grad():
        for p in act.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return act


@pytest.mark.parametrize("segments,a,b", [(16, -3.0, 3.0), (1, -1.0, 2.0), (7, -0.5, 4.0)])
def test_values_and_gradients_against_numpy_interp(segments, a, b) -> None:
    act = _perturbed(segments=segments, a=a, b=b)
    knots = act.knots.detach().numpy()
    k_l, k_r = act.left_slope.item(), act.right_slope.item()
    # away from the knots (f' jumps there), both tails, far out
    x = np.concatenate([np.linspace(a - 5, b + 5, 1001) + 1e-4, [-1e6, 1e6, a - 1e-3]])
    xt = torch.from_numpy(x).requires_grad_(True)
    y = act(xt)
    y.sum().backward()
    f, df = _reference(x, knots, k_l, k_r, a, b)
    scale = np.maximum(1.0, np.abs(f))
    assert np.abs(y.detach().numpy() - f).max() / scale.max() <= 1e-12
    assert np.abs(xt.grad.numpy() - df).max() <= 1e-9
    # parameter gradients: f is linear in (knots, k_l, k_r); sum over x of the hat functions
    pos = np.linspace(a, b, segments + 1)
    hats = np.stack([np.interp(x, pos, np.eye(segments + 1)[j]) for j in range(segments + 1)])
    assert np.allclose(act.knots.grad.numpy(), hats.sum(1), rtol=1e-10, atol=1e-8)
    assert act.left_slope.grad.item() == pytest.approx(np.minimum(x - a, 0).sum(), rel=1e-12)
    assert act.right_slope.grad.item() == pytest.approx(np.maximum(x - b, 0).sum(), rel=1e-12)


@pytest.mark.parametrize("channels", [None, 3])
def test_gradcheck_and_gradgradcheck(channels) -> None:
    act = _perturbed(segments=5, channels=channels)
    x = (torch.randn(2, 3, 4, dtype=torch.float64) * 2).requires_grad_(True)
    names = [n for n, _ in act.named_parameters()]

    def fn(x, *params):
        return torch.func.functional_call(act, dict(zip(names, params)), (x,))

    args = (x, *[p.detach().requires_grad_(True) for p in act.parameters()])
    assert torch.autograd.gradcheck(fn, args)
    assert torch.autograd.gradgradcheck(fn, args)


def test_unit_init_and_other_inits() -> None:
    e2, ed2 = learnact.second_moments(learnact.PWLU())
    # float32 parameters: 1e-6 (the float64 init itself is exact, see test_core)
    assert e2 == pytest.approx(1.0, abs=1e-6) and ed2 == pytest.approx(1.0, abs=1e-6)
    relu = learnact.PWLU(init="relu")
    x = torch.linspace(-10, 10, 401)
    # the hinge sum rounds each rise once: equal to float32 rounding of values up to 10
    assert (relu(x) - torch.relu(x)).abs().max() <= 1e-5
    gelu = learnact.PWLU(segments=64, init="gelu")
    inside = torch.linspace(-3, 3, 401)  # outside: GELU's tangents at -3 and 3
    assert (gelu(inside) - torch.nn.functional.gelu(inside)).abs().max() < 2e-3
    assert learnact.PWLU.inits == ("unit", "gelu", "relu")


def test_per_channel_along_any_dim_equals_each_channel_alone() -> None:
    act = _perturbed(segments=4, channels=3, channel_dim=-1).float()
    x = torch.randn(5, 2, 3) * 3
    y = act(x)
    for c in range(3):
        one = learnact.PWLU(segments=4)
        with torch.no_grad():
            for n in ("knots", "left_slope", "right_slope"):
                getattr(one, n).copy_(getattr(act, n)[c])
        assert torch.equal(y[..., c], one(x[..., c]))


@pytest.mark.parametrize("spec,match", [
    ("pwlu:segments=0", r"segments must be an integer in \[1, 1024\]"),
    ("pwlu:a=2,b=1", "pwlu needs a < b"),
    ("pwlu:a=nan", "a must be a finite number"),
    ("pwlu:init=elu", "init must be one of"),
])
def test_bad_specs_are_refused_with_the_argument_named(spec, match) -> None:
    with pytest.raises((ValueError, TypeError), match=match):
        learnact.create(spec)


def test_numpy_scalars_are_accepted() -> None:
    act = learnact.PWLU(segments=np.int64(4), a=np.float32(-2), b=np.float64(2),
                        channels=np.int32(3))
    assert act.knots.shape == (3, 5) and act._kw["a"] == -2.0


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_inputs_are_computed_in_float32(dtype) -> None:
    act = _perturbed(segments=6).float()
    x = torch.randn(200) * 4
    assert torch.equal(act(x.to(dtype)), act(x.to(dtype).float()).to(dtype))


def test_freeze_export_onnx_and_pickle_equal_the_module() -> None:
    act = _perturbed(segments=8, channels=4).float()
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), act).eval()
    x = torch.randn(64, 4) * 3
    with torch.no_grad():
        want = model(x)
    frozen = learnact.freeze(model)
    assert not list(frozen.parameters()) or all(not p.requires_grad for p in frozen.parameters()
                                                if p is not model[0].weight)
    scale = max(1.0, want.abs().max().item())
    with torch.no_grad():
        assert torch.equal(frozen(x), want)  # eager: the same kernel
        # traced and exported: the definition's formula (a sum of hinges), float32 rounding
        assert (torch.jit.trace(frozen, (x,))(x) - want).abs().max() <= 2e-6 * scale
    ep = torch.export.export(model, (x,))
    assert (ep.module()(x) - want).abs().max() <= 2e-6 * scale
    with pytest.raises(TypeError, match="torch.jit.script cannot compile the frozen PWLU"):
        torch.jit.script(frozen)
    buf = io.BytesIO()
    torch.onnx.export(frozen, (x,), buf, dynamo=False)
    sess = ort.InferenceSession(buf.getvalue())
    got = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
    assert np.abs(got - want.numpy()).max() <= 1e-5 * max(1.0, want.abs().max().item())
    again = pickle.loads(pickle.dumps(act))
    assert type(again) is learnact.PWLU and torch.equal(again(x), act(x))
    state = act.state_dict()
    assert set(state) == {"knots", "left_slope", "right_slope"}
    fresh = learnact.PWLU(segments=8, channels=4)
    fresh.load_state_dict(state)
    assert torch.equal(fresh(x), act(x))


def test_fit_reaches_gelu_and_memory_is_input_and_parameters() -> None:
    act = learnact.PWLU(segments=32, init="relu")
    rep = learnact.fit(act, "gelu", domain=(-4, 4))
    assert rep.max_error < 5e-3
    x = torch.randn(4, 1024, requires_grad=True)
    saved: list[int] = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t.numel()) or t,
                                                  lambda t: t):
        act(x)
    assert sum(saved) <= x.numel() + sum(p.numel() for p in act.parameters())


@pytest.mark.parametrize("channels,channel_dim,shape", [(None, 1, (3, 5, 7)), (5, 1, (3, 5, 7)),
                                                        (7, -1, (3, 5, 7)), (3, 0, (3, 4))])
def test_eager_kernel_equals_the_definition_formula(channels, channel_dim, shape) -> None:
    """ops/pwlu.py (a bin lookup, used with autograd on) against the definition's hinge sum
    (used under no_grad, compile and export): values and every gradient, float64; NaN stays
    local, +-inf go to the tails."""
    act = _perturbed(segments=5, a=-2.0, b=1.5, channels=channels, channel_dim=channel_dim)
    x = torch.randn(shape, dtype=torch.float64) * 3
    x.view(-1)[:3] = torch.tensor([float("nan"), float("inf"), -float("inf")])
    g = torch.randn(shape, dtype=torch.float64)
    xk = x.clone().requires_grad_(True)
    yk = act(xk)
    gk = torch.autograd.grad((yk * g).nansum(), [xk, *act.parameters()])
    with torch.no_grad():
        yf = act(x)
    assert torch.equal(yk.isnan(), yf.isnan()) and yk.view(-1)[0].isnan()
    fin = torch.isfinite(yf)
    assert (yk[fin] - yf[fin]).abs().max() <= 1e-12 * max(1.0, yf[fin].abs().max().item())
    assert torch.equal(yk[~fin & ~yf.isnan()], yf[~fin & ~yf.isnan()])
    # gradients of the finite part against autograd through the formula
    keep = torch.isfinite(x)
    xf = torch.where(keep, x, torch.zeros_like(x)).requires_grad_(True)
    yfor = act.definition.forward(torch, xf, dict(act.named_parameters()), act._kw)
    gf = torch.autograd.grad((yfor * g * keep).sum(), [xf, *act.parameters()])
    xk2 = torch.where(keep, x, torch.zeros_like(x)).requires_grad_(True)
    gk2 = torch.autograd.grad((act(xk2) * g * keep).sum(), [xk2, *act.parameters()])
    for a, b in zip(gk2, gf):
        assert torch.allclose(a, b, rtol=1e-10, atol=1e-10)
    assert torch.isfinite(gk[0][3:]).all()
