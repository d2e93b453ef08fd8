"""learnact: learnable activation functions for PyTorch.

Every family in one place, exact math, variance-preserving init, fused kernels.
See README.md for the tour and docs/design.md for the layout and the op and family contracts.
"""

from . import functional, integrations, ops
from .expand import Polynomial, expand
from .fit import FitReport, fit
from .kinds import is_activation, is_learnable_activation
from .moments import GaussianMoments, moments, second_moments, variance_map_slope
from .modules import (
    Cantor,
    Cantor2,
    DiTAC,
    Fourier,
    GEDiTAC,
    Hermite,
    LearnableActivation,
    LeakyDiTAC,
    LeftRight,
    NoisyDerivative,
    Perlin,
    Rational,
    SELUVariation,
    Sin,
    Staircase,
    Surrogate,
    Tropical,
    TropicalRational,
)
from .params import activation_parameters, param_groups, regularization
from .registry import available, create, parse_spec, register
from .surgery import SurgeryReport, find_activations, replace_activations, restore

__version__ = "0.1.0"

__all__ = [
    "available",
    "create",
    "register",
    "parse_spec",
    "second_moments",
    "moments",
    "variance_map_slope",
    "GaussianMoments",
    "param_groups",
    "activation_parameters",
    "regularization",
    "is_activation",
    "is_learnable_activation",
    "LearnableActivation",
    "Hermite",
    "Fourier",
    "Tropical",
    "TropicalRational",
    "Sin",
    "SELUVariation",
    "Rational",
    "Perlin",
    "Surrogate",
    "Staircase",
    "Cantor",
    "Cantor2",
    "NoisyDerivative",
    "LeftRight",
    "DiTAC",
    "LeakyDiTAC",
    "GEDiTAC",
    "fit",
    "FitReport",
    "expand",
    "Polynomial",
    "replace_activations",
    "restore",
    "find_activations",
    "SurgeryReport",
    "integrations",
    "functional",
    "ops",
]
