"""timm conventions, against a stand-in for ``timm.layers.create_act`` (timm itself cannot be
imported here: it needs torchvision, whose PyPI wheels do not match the pinned CPU torch).

The stand-in keeps what learnact relies on in timm: the module-global ``_ACT_LAYER_DEFAULT``
table read at call time by ``get_act_layer`` (strings are lower-cased and looked up, anything
else passes through), and ``create_act_layer(name, inplace=None, **kw)`` calling the layer
with ``inplace`` when given."""

from __future__ import annotations

import sys
import types

import pytest
import torch
from torch import nn

import learnact
from learnact.integrations import register_timm


@pytest.fixture
def fake_timm(monkeypatch):
    ca = types.ModuleType("timm.layers.create_act")
    ca._ACT_LAYER_DEFAULT = {"relu": nn.ReLU, "gelu": nn.GELU}

    def get_act_layer(name="relu"):
        if name is None:
            return None
        if not isinstance(name, str):
            return name
        if not name:
            return None
        return ca._ACT_LAYER_DEFAULT[name.lower()]

    def create_act_layer(name, inplace=None, **kwargs):
        layer = get_act_layer(name)
        if layer is None:
            return None
        if inplace is None:
            return layer(**kwargs)
        try:
            return layer(inplace=inplace, **kwargs)
        except TypeError:
            return layer(**kwargs)

    ca.get_act_layer, ca.create_act_layer = get_act_layer, create_act_layer
    layers = types.ModuleType("timm.layers")
    layers.create_act = ca
    timm = types.ModuleType("timm")
    timm.layers = layers
    for name, mod in (("timm", timm), ("timm.layers", layers), ("timm.layers.create_act", ca)):
        monkeypatch.setitem(sys.modules, name, mod)
    return ca


def test_spec_strings_names_and_classes_are_act_layers(fake_timm) -> None:
    assert register_timm() and register_timm()  # idempotent
    ca = fake_timm
    act = ca.get_act_layer("hermite:degree=8")(inplace=True)
    assert isinstance(act, learnact.Hermite) and act.degree == 8
    act = ca.create_act_layer("Tropical:degree=3", inplace=True)  # timm lower-cases names
    assert isinstance(act, learnact.Tropical) and act.degree == 3
    assert isinstance(ca.create_act_layer("ditac", inplace=False, channels=4), learnact.DiTAC)
    assert isinstance(ca.get_act_layer("relu")(inplace=True), nn.ReLU)  # timm's own untouched
    # classes pass through get_act_layer and accept (and ignore) inplace
    for cls in (learnact.Hermite, learnact.Fourier, learnact.DiTAC, learnact.Rational):
        layer = ca.create_act_layer(cls, inplace=True)
        assert type(layer) is cls
        x = torch.randn(3, 5)
        y = layer(x)
        assert y.shape == x.shape and bool(torch.isfinite(y).all())
    with pytest.raises(TypeError, match="inplace must be True or False"):
        learnact.Hermite(inplace="yes")
    with pytest.raises(KeyError, match="not a timm activation and not a learnact spec"):
        ca.get_act_layer("hermitte:degree=8")
    with pytest.raises(KeyError, match="degree"):
        ca.get_act_layer("hermite:degree=0")


def test_register_timm_without_timm(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "timm", None)  # import fails
    assert register_timm() is False
