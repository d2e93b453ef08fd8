"""Registry: names, spec strings, typed parsing, pass-through, and the errors users hit."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import learnact
from learnact.registry import parse_spec

CONTRACT_NAMES = ("hermite fourier tropical tropical_rational relu gelu gelu_tanh silu mish elu "
                  "selu celu leaky_relu prelu rrelu softplus tanh sigmoid hardswish hardtanh "
                  "softsign identity sin").split()


def test_contract_names_are_registered() -> None:
    assert set(CONTRACT_NAMES) <= set(learnact.available())


@pytest.mark.parametrize("name", sorted(set(CONTRACT_NAMES)))
def test_every_name_builds_and_runs(name: str) -> None:
    act = learnact.create(name)
    x = torch.randn(2, 3, 4)
    y = act.eval()(x)
    assert y.shape == x.shape and torch.isfinite(y).all()


@pytest.mark.parametrize("name,cls,fn", [
    ("relu", nn.ReLU, torch.relu), ("gelu", nn.GELU, torch.nn.functional.gelu),
    ("silu", nn.SiLU, torch.nn.functional.silu), ("tanh", nn.Tanh, torch.tanh),
    ("sigmoid", nn.Sigmoid, torch.sigmoid), ("identity", nn.Identity, lambda x: x),
])
def test_classical_wrap_torch_modules(name, cls, fn) -> None:
    act = learnact.create(name, channels=8)  # channels is accepted and ignored for fixed ones
    assert type(act) is cls
    x = torch.randn(100)
    assert torch.equal(act(x), fn(x))


def test_gelu_tanh_and_kwargs() -> None:
    assert learnact.create("gelu_tanh").approximate == "tanh"
    assert learnact.create("leaky_relu:negative_slope=0.2").negative_slope == 0.2
    assert learnact.create("prelu", channels=16).weight.shape == (16,)


def test_spec_parsing_is_typed() -> None:
    act = learnact.create("hermite:degree=8,channels=64,channel_dim=-1")
    assert act.degree == 8 and act.channels == 64 and act.channel_dim == -1
    assert act.coeffs.shape == (64, 9)
    assert learnact.create("hermite: degree = 3 , init=paper").init == "paper"
    assert learnact.create("hermite:channels=None").channels is None
    assert learnact.create("hermite:degree=3", degree=5).degree == 5  # overrides win
    assert learnact.create("HERMITE").degree == 8
    assert parse_spec("fourier:degree=4") == ("fourier", {"degree": "4"})


def test_pass_through() -> None:
    m = learnact.Hermite(3)
    assert learnact.create(m) is m
    assert isinstance(learnact.create(learnact.Fourier, degree=2), learnact.Fourier)
    with pytest.raises(TypeError, match="overrides"):
        learnact.create(m, degree=2)


@pytest.mark.parametrize("spec,kw,exc,pattern", [
    ("hermite:degree=0", {}, ValueError, r"degree must be an integer in \[1, 64\], got 0"),
    ("hermite:degree=8.5", {}, ValueError, r"degree=.8\.5.*integer"),
    ("hermite", {"degree": 2.5}, TypeError, r"degree must be an integer"),
    ("hermite", {"degree": True}, TypeError, r"degree must be an integer"),
    ("hermit", {}, ValueError, r"unknown activation 'hermit'.*did you mean 'hermite'"),
    ("hermite:degre=3", {}, TypeError, r"no parameter 'degre'.*did you mean 'degree'"),
    ("hermite", {"degre": 3}, TypeError, r"no parameter 'degre'"),
    ("hermite:degree", {}, ValueError, r"malformed spec"),
    ("hermite:", {}, ValueError, r"malformed spec"),
    ("hermite:degree=3,degree=4", {}, ValueError, r"given twice"),
    (":degree=3", {}, ValueError, r"malformed spec"),
    ("hermite:init=unitt", {}, ValueError, r"init must be one of .*did you mean 'unit'"),
    ("hermite:channels=0", {}, ValueError, r"channels must be an integer in \[1, 1048576\]"),
    ("tropical:degree=-2", {}, ValueError, r"degree must be an integer in \[1, 64\]"),
])
def test_bad_input_errors_name_the_argument(spec, kw, exc, pattern) -> None:
    with pytest.raises(exc, match=pattern):
        learnact.create(spec, **kw)


def test_register_custom_family() -> None:
    @learnact.register("test_square_act", aliases=("sq_act",))
    class Square(nn.Module):
        def __init__(self, power: int = 2) -> None:
            super().__init__()
            self.power = power

        def forward(self, x):
            return x**self.power

    assert learnact.create("sq_act:power=3").power == 3
    assert "test_square_act" in learnact.available()
    with pytest.raises(ValueError, match="already registered"):
        learnact.register("test_square_act")(Square)


def _subclasses(cls: type) -> set[type]:
    out = set()
    for sub in cls.__subclasses__():
        out |= {sub} | _subclasses(sub)
    return out


def test_every_family_class_is_registered_and_tested() -> None:
    """The 'add a family' checklist (CONTRIBUTING.md), checked: every LearnableActivation
    subclass in learnact.modules is in the explicit registration list, reachable by its
    ``family`` name, and declares test specs, so it runs every shared property test."""
    from learnact.modules import FAMILIES
    from learnact.modules.base import LearnableActivation

    from .conftest import LEARNABLE

    from learnact.modules.defined import DefinedActivation

    ours = {c for c in _subclasses(LearnableActivation) if c.__module__.startswith("learnact.")
            and c is not DefinedActivation}  # the generated classes' base
    assert ours == set(FAMILIES), f"missing from modules.FAMILIES: {ours - set(FAMILIES)}"
    tested = {name for name, _ in LEARNABLE}
    for cls in FAMILIES:
        assert type(learnact.create(cls.family)) is cls
        if cls.learnable_by_default:
            assert cls.test_specs, f"{cls.__name__} declares no test_specs"
            assert cls.family in tested
        for spec in cls.test_specs + cls.main_job_specs:
            assert type(learnact.create(spec)) is cls, spec
    # every registry name with trainable parameters by default is a tested family (or torch's)
    assert set(learnact.available(learnable=True)) - tested == {"prelu"}


def test_spec_kwargs_are_typed() -> None:
    from learnact.registry import spec_kwargs

    assert spec_kwargs("PAU:num_degree=3") == ("rational", {"num_degree": 3})
    with pytest.raises(ValueError, match="expected an integer"):
        spec_kwargs("hermite:degree=8.5")
