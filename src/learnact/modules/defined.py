"""PyTorch modules generated from a family's definition (:mod:`learnact.core.definition`).

A family whose definition sets ``derived = True`` has no hand-written module: :func:`derive`
builds its ``nn.Module`` class — signature, docstring, argument checks, parameters and buffers,
init, forward, exact-moment hooks — from the definition alone. The forward
(``learnact.ops.defined.evaluate``) runs the family's eager kernel when it has one, else the
definition's formula with ``torch`` as the array namespace, float32 for half inputs as every
family; ``torch.compile``, ``torch.export`` and ONNX trace the formula (standard operators).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor, nn

from .._frontend import derived_init
from .._tensor import compute_dtype
from ..core.definition import Family
from ..core.families import FAMILIES
from ..ops.defined import evaluate
from .base import LearnableActivation

__all__ = ["DefinedActivation", "derive", "DERIVED"]


class DefinedActivation(LearnableActivation):
    """Base of the generated modules: everything comes from ``definition``."""

    definition: ClassVar[Family]

    def _build(self, kw: dict[str, Any]) -> None:
        self._kw = self._configure(**kw)
        names, buffers = self.definition.tensors(self._kw)
        self.tensor_names = names
        values = self._initial()
        for n in names:
            t = torch.from_numpy(np.asarray(values[n], dtype=np.float32).copy())
            if n in buffers:
                self.register_buffer(n, t)
            else:
                self.register_parameter(n, nn.Parameter(t))

    def _initial(self) -> dict[str, np.ndarray]:
        gen = torch.Generator().manual_seed(torch.initial_seed() % (1 << 63))

        def normal(shape: tuple[int, ...]) -> np.ndarray:
            return torch.randn(shape, generator=gen, dtype=torch.float64).numpy()

        return self.definition.initial(self._kw, normal)

    @torch.no_grad()
    def reset_parameters(self) -> None:
        for n, v in self._initial().items():
            t = getattr(self, n)
            t.copy_(torch.from_numpy(np.asarray(v)).to(t.dtype))

    def _tensors(self, dtype: torch.dtype) -> dict[str, Tensor]:
        return {n: getattr(self, n).to(dtype) for n in self.tensor_names}

    def forward(self, x: Tensor) -> Tensor:
        self._check_input(x)
        ct = compute_dtype(x)
        return evaluate(self.definition, x.to(ct), self._tensors(ct), self._kw).to(x.dtype)

    def _numpy_params(self, channel: int | None) -> dict[str, np.ndarray]:
        out = {}
        for n in self.tensor_names:
            t = getattr(self, n).detach().double().cpu()
            out[n] = (t[channel] if channel is not None and self.channels is not None
                      else t).numpy()
        return out

    def function_and_derivative(self, z: Tensor) -> tuple[Tensor, Tensor]:
        z64 = z.detach().double().cpu().numpy()
        rows = range(self.channels) if self.channels is not None else [None]
        kw = dict(self._kw, channels=None, channel_dim=-1)  # one channel's parameters at a time
        fs, dfs = [], []
        for c in rows:
            p = self._numpy_params(c)
            fs.append(self.definition.forward(np, z64, p, kw))
            d = self.definition.derivative(z64, p, kw)
            if d is None:  # autodiff of the formula in float64
                zt = torch.from_numpy(z64.copy()).requires_grad_(True)
                y = self.definition.forward(torch, zt, {k: torch.from_numpy(v)
                                                        for k, v in p.items()}, kw)
                d = torch.autograd.grad(y.sum(), zt)[0].numpy()
            dfs.append(d)
        f, df = (torch.from_numpy(np.stack(v) if self.channels is not None else v[0])
                 for v in (fs, dfs))
        return f, df

    def kinks(self, channel: int | None = None) -> Tensor | None:
        k = self.definition.kinks(self._kw, self._numpy_params(channel))
        return None if k is None else torch.from_numpy(np.asarray(k, dtype=np.float64))

    def flops_per_element(self) -> tuple[int, int]:
        return self.definition.flops_per_element(self._kw)

    def inference_form(self, *, ditac: str = "table", points: int = 4096) -> nn.Module:
        from ..freeze import FrozenDefined

        return FrozenDefined(self)

    def extra_repr(self) -> str:
        own = ", ".join(f"{n}={self._kw[n]!r}" for n, _, _ in self.definition.arguments)
        return f"{own}, {self._channel_repr()}"


def derive(definition: Family, module: str = __name__) -> type[DefinedActivation]:
    """The PyTorch module class of a derived family: the definition's arguments, then
    ``channels=None, channel_dim=1``; docstring, checks, tensors, init and formula from the
    definition."""

    def build(self: DefinedActivation, kw: dict[str, Any], extra: dict[str, Any]) -> None:
        LearnableActivation.__init__(self, kw.pop("channels"), kw.pop("channel_dim"))
        self._build(kw)

    return type(definition.class_name, (DefinedActivation,), {
        "__init__": derived_init(definition, 1, (), build), "__doc__": type(definition).__doc__,
        "__module__": module, "__qualname__": definition.class_name,
        "definition": definition, "family": definition.name,
        "test_specs": definition.test_specs, "main_job_specs": definition.main_job_specs})


#: the generated classes of every derived family, by registry name
DERIVED: dict[str, type[DefinedActivation]] = {
    d.name: derive(d) for d in FAMILIES.values() if d.derived}
globals().update({c.__name__: c for c in DERIVED.values()})  # importable by name (pickle)
