"""Regressions of the copies that drifted apart before every frontend read one definition per
family (learnact.core.families): each case below was a defect a user could hit."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import learnact
from learnact.core.families import FAMILIES


@pytest.mark.parametrize("spec,match", [
    ("ditac:lambda_smooth=nan", r"lambda_smooth must be a finite number in \(0, 1e\+06\]"),
    ("ditac:lambda_var=0", r"lambda_var must be a finite number in \(0, 1e\+06\]"),
    ("hermite:bound=inf", r"bound must be a finite number"),
])
def test_specs_are_refused_by_the_definition_before_any_work(spec, match) -> None:
    """The same check, range and message as learnact.jax and learnact.keras (the NaN prior
    length scale built a module whose prior_loss() was NaN)."""
    with pytest.raises((ValueError, TypeError), match=match):
        learnact.create(spec)
    with pytest.raises(TypeError, match="learnable must be True or False"):
        learnact.create("perlin", learnable=1)  # was bool(1): the definition is strict


def test_numpy_integer_and_float_scalars_are_accepted() -> None:
    act = learnact.create("hermite", channels=np.int64(4), bound=np.float32(2),
                          tails="linear", degree=np.int32(5))
    assert act.channels == 4 and type(act.channels) is int and act.bound == 2.0
    assert act.coeffs.shape == (4, 6)
    with pytest.raises(TypeError, match="degree must be an integer"):
        learnact.create("hermite", degree=np.float64(2.5))
    with pytest.raises(TypeError, match="channels must be an integer"):
        learnact.create("hermite", channels=np.bool_(True))


@pytest.mark.parametrize("degree,init,domain", [(32, None, (-6.0, 6.0)), (64, "gelu", None)])
def test_frozen_hermite_equals_the_module_at_high_degree(degree, init, domain) -> None:
    """The frozen form evaluated a float32 monomial expansion (off by 0.025 at degree 32 fitted
    to GELU on [-6, 6]; 8.71 instead of 8.96 at x = 6 for degree 64): now Clenshaw in the
    orthogonal basis, as the module."""
    act = learnact.Hermite(degree, init=init) if init else learnact.Hermite(degree)
    if domain:
        learnact.fit(act, "gelu", domain=domain)
    frozen = learnact.freeze(torch.nn.Sequential(act))
    x = torch.linspace(-6, 6, 4001)
    with torch.no_grad():
        want, got = act(x), frozen(x)
        scripted = torch.jit.script(frozen)(x)
    assert (got - want).abs().max() <= 1e-5 * max(1.0, want.abs().max().item())
    assert torch.equal(scripted, got)
    if domain:  # and the module itself is GELU's fit to within its report
        ref = torch.nn.functional.gelu(x.double())
        assert (want.double() - ref).abs().max() < 1e-3


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_staircase_and_cantor_compute_half_inputs_in_float32(dtype) -> None:
    x = torch.tensor([0.499267578125, 2.408, -1.2, 0.25, 3.0]).to(dtype)
    for spec in ("staircase", "cantor", "cantor2"):
        act = learnact.create(spec)
        want = act(x.float()).to(dtype)
        assert torch.equal(act(x), want), spec
        frozen = learnact.freeze(torch.nn.Sequential(act))
        assert torch.equal(frozen(x), want), spec
    assert learnact.create("staircase")(torch.tensor([0.499267578125],
                                                     dtype=torch.float16)).item() == 0.0


def test_every_module_reads_its_definition() -> None:
    """The torch classes' inits, test and main-job specs are the definitions' (by
    construction), and every family of THE list is reachable by name in PyTorch."""
    for name, d in FAMILIES.items():
        cls = type(learnact.create(name))
        assert cls.family == name and cls.test_specs == d.test_specs
        if d.inits:
            assert cls.inits == d.inits
