"""nn.Module per family: parameters, init, extra_repr, docstring with formula and paper."""

from . import classical
from .base import LearnableActivation
from .classical import Sin
from .ditac import DiTAC, GEDiTAC, LeakyDiTAC
from .fourier import Fourier
from .hermite import Hermite
from .perlin import Perlin
from .rational import Rational
from .selu_variation import SELUVariation
from .surrogate import Cantor, Cantor2, LeftRight, NoisyDerivative, Staircase, Surrogate
from .tropical import Tropical, TropicalRational

__all__ = ["LearnableActivation", "Hermite", "Fourier", "Tropical", "TropicalRational", "Sin",
           "Rational", "SELUVariation", "Perlin", "Surrogate", "Staircase", "Cantor", "Cantor2",
           "NoisyDerivative", "LeftRight", "DiTAC", "LeakyDiTAC", "GEDiTAC",
           "classical"]
