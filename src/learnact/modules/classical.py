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

from ..registry import register_factory

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
    return nn.PReLU(num_parameters=channels or num_parameters, init=init)


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

_ALIASES = {"gelu_tanh": ("gelu_new", "gelu_pytorch_tanh"), "silu": ("swish",),
            "identity": ("linear", "none")}

for _name, _factory in CLASSICAL.items():
    if _name == "prelu":
        register_factory(_name, _factory, learnable=True)
    elif _name == "identity":
        register_factory(_name, lambda **kw: nn.Identity(), signature_of=lambda: None,
                         aliases=_ALIASES[_name], ignores=("channels", "channel_dim"))
    else:
        register_factory(_name, _factory, aliases=_ALIASES.get(_name, ()),
                         ignores=("channels", "channel_dim"))
