"""nn.Module per family: parameters, init, extra_repr, docstring with formula and paper."""

from . import classical
from .base import LearnableActivation
from .classical import Sin
from .fourier import Fourier
from .hermite import Hermite
from .tropical import Tropical, TropicalRational

__all__ = ["LearnableActivation", "Hermite", "Fourier", "Tropical", "TropicalRational", "Sin",
           "classical"]
