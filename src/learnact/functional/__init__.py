"""Pure math per family: forward values, analytic derivatives and backward, exact moments.

No nn.Module state lives here; parameters are passed in. Every function is differentiable
torch code, float64-safe, and serves as the reference and the compiled path of the fused ops.
"""

from . import fourier, hermite, tropical

__all__ = ["hermite", "fourier", "tropical"]
