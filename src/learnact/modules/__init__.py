"""nn.Module per family: parameters, init, extra_repr, docstring with formula and paper.

Registration is this file's explicit list (as timm's create_act keeps one dict): a family that
is not in ``FAMILIES`` is not reachable by name, and tests/test_registry.py fails for any
``LearnableActivation`` subclass in this package that is missing here.
"""

from . import classical
from .base import LearnableActivation
from .classical import Sin
from .defined import DERIVED, DefinedActivation
from .ditac import DiTAC, GEDiTAC, LeakyDiTAC
from .fourier import Fourier
from .hermite import Hermite
from .perlin import Perlin
from .rational import Rational
from .selu_variation import SELUVariation
from .surrogate import Cantor, Cantor2, LeftRight, NoisyDerivative, Staircase, Surrogate
from .tropical import Tropical, TropicalRational

from .._registry import register

#: every built-in learnable family, registered under ``cls.family`` (and ``cls.aliases``)
FAMILIES: tuple[type[LearnableActivation], ...] = (
    Hermite, Fourier, Tropical, TropicalRational, SELUVariation, Rational, Perlin,
    DiTAC, LeakyDiTAC, GEDiTAC, *DERIVED.values(),
)
#: the surrogate-derivative activations (fixed forward, declared backward), by name
SURROGATES: dict[str, type] = {
    "staircase": Staircase, "cantor": Cantor, "cantor2": Cantor2, "noisy": NoisyDerivative,
    "left_right": LeftRight,
}

for _cls in FAMILIES:
    register(_cls.family, aliases=_cls.aliases)(_cls)
for _name, _cls in SURROGATES.items():
    register(_name)(_cls)

__all__ = ["LearnableActivation", "Hermite", "Fourier", "Tropical", "TropicalRational", "Sin",
           "Rational", "SELUVariation", "Perlin", "Surrogate", "Staircase", "Cantor", "Cantor2",
           "NoisyDerivative", "LeftRight", "DiTAC", "LeakyDiTAC", "GEDiTAC",
           "DefinedActivation", "classical", "FAMILIES", "SURROGATES"]

# the classes generated from the derived families' definitions (PWLU, ...), by class name
globals().update({_c.__name__: _c for _c in DERIVED.values()})
__all__ += [_c.__name__ for _c in DERIVED.values()]
