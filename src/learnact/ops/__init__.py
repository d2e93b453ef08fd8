"""Family ops, one file per family: ``torch.library`` custom ops (``learnact::<family>`` and
``learnact::<family>_backward``) with a reference kernel for every device and fused kernels per
device type (ops/_library.py); they save the input and the parameters only and recompute.

DiTAC's flow and lookup-table ops live in cpab.py; surrogate-derivative activations in
surrogate.py (a plain autograd.Function: their derivative is user code, not a kernel).
"""

from ._library import BACKENDS, CPU_KERNEL_MIN, FamilyOp, Kernel, Param, backend, family_ops
from .fourier import fourier_op
from .hermite import hermite_op
from .rational import rational_op
from .selu_variation import selu_variation_op
from .tropical import tropical_op, tropical_rational_op

__all__ = ["hermite_op", "fourier_op", "tropical_op", "tropical_rational_op", "rational_op",
           "selu_variation_op", "FamilyOp", "Kernel", "Param", "family_ops", "backend", "BACKENDS",
           "CPU_KERNEL_MIN"]
