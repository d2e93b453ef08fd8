"""Forward-mode AD and torch.func transforms through learnact's custom ops.

torch.func.jvp used to return zero tangents through the fused ops (a silent zero: the custom
op had no forward-mode rule); under a transform or a forward-AD dual level the ops now run
their plain-torch reference forward. Checked against reverse mode in float64, for the input
and for every parameter, shared and per-channel.
"""

from __future__ import annotations

import pytest
import torch
import torch.autograd.forward_ad as fwAD

import learnact
from learnact.core.families import FAMILIES

# every family that has forward mode (learnact.core.families, THE list), at its test and
# layout specs; Perlin with learnable lattices (its buffers otherwise). DiTAC's lookup table
# refuses forward mode by name (tests/test_trust3.py)
SPECS = [s.replace("perlin", "perlin:learnable=True") if s == "perlin" else s
         for d in FAMILIES.values() if "forward_ad" not in d.missing
         for s in [s for s in (*d.test_specs, *d.variant_specs) if "lut=" not in s][:2]
         or (d.name,)]


def _module(spec: str, per_channel: bool) -> torch.nn.Module:
    torch.manual_seed(0)
    m = (learnact.create(spec, channels=3, channel_dim=1) if per_channel
         else learnact.create(spec)).double()
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return m


@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize("spec", SPECS)
def test_jvp_equals_reverse_mode(spec: str, per_channel: bool) -> None:
    m = _module(spec, per_channel)
    x = torch.randn(4, 3, dtype=torch.float64) * 1.5
    params = dict(m.named_parameters())

    def f(x, *ps):
        return torch.func.functional_call(m, dict(zip(params, ps)), (x,))

    primals = (x, *[p.detach() for p in params.values()])
    tangents = tuple(torch.randn_like(t) for t in primals)
    _, jvp = torch.func.jvp(f, primals, tangents)
    ins = [t.clone().requires_grad_(True) for t in primals]
    y = f(*ins)
    want = torch.zeros_like(y)
    for i in range(y.numel()):  # row i of the Jacobian, by reverse mode
        gs = torch.autograd.grad(y.reshape(-1)[i], ins, retain_graph=True, allow_unused=True)
        want.view(-1)[i] = sum((g * t).sum() for g, t in zip(gs, tangents) if g is not None)
    assert jvp.abs().max() > 0
    torch.testing.assert_close(jvp, want, rtol=1e-9, atol=1e-10)
    with fwAD.dual_level():  # the forward-AD API too (it used to raise)
        out = fwAD.unpack_dual(m(fwAD.make_dual(x, tangents[0]))).tangent
    xin = x.clone().requires_grad_(True)
    yx = m(xin)
    want_x = torch.zeros_like(yx)
    for i in range(yx.numel()):
        (g,) = torch.autograd.grad(yx.reshape(-1)[i], xin, retain_graph=True)
        want_x.view(-1)[i] = (g * tangents[0]).sum()
    torch.testing.assert_close(out, want_x, rtol=1e-9, atol=1e-10)


def test_vmap_of_grad_is_per_sample_gradients() -> None:
    m = _module("hermite", False)
    x = torch.randn(6, dtype=torch.float64)
    per = torch.func.vmap(torch.func.grad(lambda v: m(v.reshape(1)).sum()))(x)
    xin = x.clone().requires_grad_(True)
    (want,) = torch.autograd.grad(m(xin).sum(), xin)
    torch.testing.assert_close(per, want)
