"""Fused autograd ops, one file per family: save the input (and parameters) only, recompute."""

from .fourier import fourier_op
from .hermite import hermite_op
from .tropical import tropical_op, tropical_rational_op

__all__ = ["hermite_op", "fourier_op", "tropical_op", "tropical_rational_op"]
