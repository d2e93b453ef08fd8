"""The classical fixed activations, registered under their lower-case torch names.

They wrap torch's own modules (no re-implementation); keyword arguments are the torch class's
(``"leaky_relu:negative_slope=0.1"``). ``channels``/``channel_dim`` are accepted and ignored so
that one call ``create(spec, channels=C)`` works for every registry name; ``prelu`` maps
``channels`` to ``num_parameters``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from .._validate import MAX_CHANNELS, check_choice, check_float, check_int
from .._registry import register_factory

__all__ = ["Sin", "CLASSICAL"]


class Sin(nn.Module):
    """f(x) = sin(x) (the sine activation of SIREN-style networks; fixed, no parameters)."""

    def forward(self, x: Tensor) -> Tensor:
        return torch.sin(x)


def _gelu_tanh() -> nn.Module:
    return nn.GELU(approximate="tanh")


def _prelu(num_parameters: int = 1, init: float = 0.25, channels: int | None = None,
           channel_dim: int = 1) -> nn.Module:
    if channel_dim != 1:
        raise ValueError(f"prelu supports channel_dim=1 only (torch.nn.PReLU), got {channel_dim}")
    n = check_int("channels" if channels is not None else "num_parameters",
                  channels if channels is not None else num_parameters, 1, MAX_CHANNELS)
    return nn.PReLU(num_parameters=n, init=check_float("init", init))


CLASSICAL: dict[str, Callable[..., nn.Module]] = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "gelu_tanh": _gelu_tanh,
    "silu": nn.SiLU,
    "mish": nn.Mish,
    "elu": nn.ELU,
    "selu": nn.SELU,
    "celu": nn.CELU,
    "leaky_relu": nn.LeakyReLU,
    "prelu": _prelu,
    "rrelu": nn.RReLU,
    "softplus": nn.Softplus,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "hardswish": nn.Hardswish,
    "hardtanh": nn.Hardtanh,
    "softsign": nn.Softsign,
    "identity": nn.Identity,
    "sin": Sin,
}

def _bool(name: str, v: object) -> bool:
    if not isinstance(v, bool):
        raise TypeError(f"{name} must be true or false, got {v!r}")
    return v


def _nonzero(name: str, v: object) -> float:
    f = check_float(name, v)
    if f == 0:
        raise ValueError(f"{name} must be a finite number other than 0, got {v!r}")
    return f


def _real(name: str, v: object) -> float:
    """A finite number of a sane size (torch converts to float32 at the first forward)."""
    return check_float(name, v, -1e6, 1e6)


# keyword arguments of the torch classes, checked before torch sees them (torch accepts
# gelu:approximate=0 and fails at the first forward; celu:alpha=0 divides by zero)
_RULES: dict[str, Callable[[str, object], object]] = {
    "inplace": _bool,
    "approximate": lambda n, v: check_choice(n, v, ("none", "tanh")),
    "negative_slope": _real,
    "threshold": _real,
    "beta": lambda n, v: check_float(n, v, 0.0, 1e6, lo_open=True),
    "lower": _real, "upper": _real,
    "min_val": _real, "max_val": _real,
    "min_value": _real, "max_value": _real,
}
_ALPHA = {"elu": _real, "celu": lambda n, v: _nonzero(n, _real(n, v))}


def _checked(name: str, cls: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """``cls(**kwargs)`` after each keyword argument passes its rule (unknown keywords are the
    registry's error, raised before this is called)."""

    def build(**kwargs: object) -> nn.Module:
        for k, v in kwargs.items():
            rule = _ALPHA.get(name) if k == "alpha" else _RULES.get(k)
            if rule is not None:
                kwargs[k] = rule(k, v)
        lo = kwargs.get("lower", kwargs.get("min_val"))
        hi = kwargs.get("upper", kwargs.get("max_val"))
        if name in ("rrelu", "hardtanh") and lo is not None and hi is not None and not lo < hi:
            raise ValueError(f"{name}: need lower < upper, got {lo} and {hi}")
        return cls(**kwargs)

    build.__name__ = build.__qualname__ = f"{name}_checked"
    return build


_ALIASES = {"gelu_tanh": ("gelu_new", "gelu_pytorch_tanh"), "silu": ("swish",),
            "identity": ("linear", "none")}

for _name, _factory in CLASSICAL.items():
    if _name == "prelu":
        register_factory(_name, _factory, learnable=True)
    elif _name == "identity":
        register_factory(_name, lambda **kw: nn.Identity(), signature_of=lambda: None,
                         aliases=_ALIASES[_name], ignores=("channels", "channel_dim"))
    else:
        register_factory(_name, _checked(_name, _factory), signature_of=_factory,
                         aliases=_ALIASES.get(_name, ()), ignores=("channels", "channel_dim"))
