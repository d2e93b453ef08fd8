"""learnact: learnable activation functions for PyTorch, JAX (Flax NNX) and Keras 3.

Every family in one place, exact math, variance-preserving init, fused kernels.
See the documentation (docs/ in the repository, `make docs`) for guides and the API
reference, and docs/design.md for the layout and the op and family contracts.

``import learnact`` itself imports no framework: the PyTorch API below (``learnact.Hermite``,
``learnact.create``, ...) loads torch on first use, and ``learnact.jax`` / ``learnact.keras``
never import torch. The framework-neutral math (moments, inits) lives in ``learnact.core``.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> the submodule that defines it (the PyTorch API; loaded on first access)
_TORCH_API: dict[str, str] = {
    "available": "registry", "create": "registry", "register": "registry",
    "parse_spec": "registry",
    "second_moments": "moments", "moments": "moments", "variance_map_slope": "moments",
    "GaussianMoments": "moments",
    "param_groups": "params", "activation_parameters": "params", "regularization": "params",
    "is_activation": "kinds", "is_learnable_activation": "kinds",
    "fit": "fit", "FitReport": "fit",
    "expand": "expand", "Polynomial": "expand",
    "replace_activations": "surgery", "restore": "surgery", "find_activations": "surgery",
    "SurgeryReport": "surgery",
    "freeze": "freeze", "FrozenActivation": "freeze",
    "save": "saving", "load": "saving",
    **{name: "modules" for name in (
        "LearnableActivation", "Hermite", "Fourier", "Tropical", "TropicalRational", "Sin",
        "SELUVariation", "Rational", "Perlin", "Surrogate", "Staircase", "Cantor", "Cantor2",
        "NoisyDerivative", "LeftRight", "DiTAC", "LeakyDiTAC", "GEDiTAC")},
}


def _derived_classes() -> dict[str, str]:
    """The class names of the families generated from their definitions (PWLU, ...): read
    from learnact.core.families, THE list (numpy only, no framework import)."""
    from .core.families import FAMILIES

    return {d.class_name: "modules" for d in FAMILIES.values() if d.derived}


_TORCH_API.update(_derived_classes())
# subpackages reachable as attributes (``learnact.ops``), also loaded on first access
_SUBMODULES = ("functional", "integrations", "ops", "core", "jax", "keras")

__all__ = [*_TORCH_API, "integrations", "functional", "ops", "core"]


def __getattr__(name: str) -> Any:
    """Load the PyTorch API (or a subpackage) on first access (PEP 562)."""
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    where = _TORCH_API.get(name)
    if where is None:
        raise AttributeError(f"module 'learnact' has no attribute {name!r}")
    try:
        module = importlib.import_module(f".{where}", __name__)
    except ModuleNotFoundError as exc:
        if exc.name == "torch":
            raise ImportError(f"learnact.{name} is part of learnact's PyTorch API, which needs "
                              "torch: pip install 'learnact[torch]' (the JAX and Keras "
                              "frontends are learnact.jax and learnact.keras)") from exc
        raise
    value = getattr(module, name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__) | set(_SUBMODULES))


# functions that share their submodule's name: the function is the package attribute (as with
# the eager imports before), whatever order the submodules are imported in
_SHADOWED = frozenset({"moments", "fit", "expand", "freeze"})


class _Package(types.ModuleType):
    def __setattr__(self, name: str, value: Any) -> None:
        if name in _SHADOWED and isinstance(value, types.ModuleType):
            return  # the import system binding learnact.fit to the submodule: keep the function
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


if TYPE_CHECKING:  # static tools see the eager names
    from . import functional, integrations, ops  # noqa: F401
    from .expand import Polynomial, expand  # noqa: F401
    from .fit import FitReport, fit  # noqa: F401
    from .freeze import FrozenActivation, freeze  # noqa: F401
    from .kinds import is_activation, is_learnable_activation  # noqa: F401
    from .modules import (Cantor, Cantor2, DiTAC, Fourier, GEDiTAC, Hermite,  # noqa: F401
                          LeakyDiTAC, LearnableActivation, LeftRight, NoisyDerivative, Perlin,
                          Rational, SELUVariation, Sin, Staircase, Surrogate, Tropical,
                          TropicalRational)
    from .moments import GaussianMoments, moments, second_moments, variance_map_slope  # noqa: F401
    from .params import activation_parameters, param_groups, regularization  # noqa: F401
    from .registry import available, create, parse_spec, register  # noqa: F401
    from .surgery import SurgeryReport, find_activations, replace_activations, restore  # noqa: F401
