"""Every family x every surface (learnact.core.definition.SURFACES), from THE list of families
(learnact.core.families.FAMILIES): a family has each surface or its definition says why not
(``missing``), and a declared gap that has since been filled fails too (a stale reason). The
JAX and Keras surfaces are checked in tests/frontends/test_surfaces.py (no torch there); the
values behind each surface are tested per family and in test_deploy.py, test_triton.py,
test_forward_mode.py and the frontends suite, whose spec lists come from the same list."""

from __future__ import annotations

import importlib.util

import pytest
import torch

import learnact
from learnact import xla_native
from learnact.core.definition import SURFACES
from learnact.core.families import FAMILIES
from learnact.freeze import FrozenActivation
from learnact.modules.base import LearnableActivation
from learnact.ops import family_ops

TORCH_SIDE = [s for s in SURFACES if s not in ("jax", "keras")]


def _module(name: str, channels: int | None = None) -> torch.nn.Module:
    d = FAMILIES[name]
    spec = (d.test_specs or (name,))[0]
    torch.manual_seed(0)
    return learnact.create(spec, channels=channels) if channels else learnact.create(spec)


def _has(name: str, surface: str) -> bool:
    x = torch.randn(2, 3, 4)
    if surface == "torch":
        return type(learnact.create(name)).family == name
    if surface == "per_channel":
        m = _module(name, channels=3)
        shaped = [p for p in m.parameters() if p.ndim >= 1 and p.shape[0] == 3]
        return bool(shaped) and m(x).shape == x.shape
    m = _module(name).eval()
    if surface == "freeze":
        return (type(m).inference_form is not LearnableActivation.inference_form
                and any(isinstance(f, FrozenActivation) for f in learnact.freeze(
                    torch.nn.Sequential(m)).modules()))
    if surface == "torchscript":
        try:
            torch.jit.script(learnact.freeze(torch.nn.Sequential(m)))
        except TypeError:
            return False
        return True
    if surface == "export":
        return torch.export.export(m, (x,)).module()(x).shape == x.shape
    if surface == "onnx":  # the values are compared in test_deploy.py, for every spec
        return True
    if surface == "torch_op":
        return name in family_ops()
    if surface == "xla_kernel":
        return name in xla_native.FAMILIES
    if surface == "triton":
        op = family_ops().get(name)
        if op is not None:  # the op's Triton module (imported on first CUDA use)
            module = (op.triton_module or "").split(":")[0]  # "module:variant"
            return bool(module) and importlib.util.find_spec(module) is not None
        return importlib.util.find_spec(f"learnact.ops.triton.{name.split('_')[-1]}") is not None
    if surface == "forward_ad":
        m = m.double()
        xd = x.double()
        try:
            _, t = torch.func.jvp(m, (xd,), (torch.ones_like(xd),))
        except RuntimeError:
            return False
        return bool(torch.isfinite(t).all())
    raise AssertionError(f"surface {surface!r} has no check here")


@pytest.mark.parametrize("surface", TORCH_SIDE)
@pytest.mark.parametrize("name", list(FAMILIES))
def test_every_family_has_every_surface_or_says_why(name: str, surface: str) -> None:
    d = FAMILIES[name]
    assert set(d.missing) <= set(SURFACES), f"{name}: unknown surfaces {set(d.missing) - set(SURFACES)}"
    reason = d.missing.get(surface)
    has = _has(name, surface)
    if reason is None:
        assert has, f"{name} has no {surface!r} surface and its definition does not say why"
    else:
        assert reason.strip() and not has, (
            f"{name} declares {surface!r} missing ({reason!r}) but has it: remove the entry")


def test_the_one_list_is_every_registered_family() -> None:
    from learnact.modules import FAMILIES as MODULES

    assert sorted(c.family for c in MODULES) == sorted(FAMILIES)
    for cls in MODULES:
        d = FAMILIES[cls.family]
        assert cls.inits == d.inits or not d.inits
        assert cls.test_specs == d.test_specs and cls.main_job_specs == d.main_job_specs
