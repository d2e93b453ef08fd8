"""The framework-neutral math core of learnact: numpy (float64) and the standard library only.

One source for what every frontend needs besides its array operations:

* ``quadrature``: exact Gaussian expectations (composite Gauss-Legendre with a panel edge at
  every kink), the moments E[f], E[f^2], E[f'^2], V'(1), and the general unit route
  f = s g + t;
* ``<family>``: per learnable family, its forward formula written once against an array
  namespace ``xp`` (``numpy``, ``jax.numpy`` or ``keras.ops``: the same expression serves the
  float64 quadrature here, learnact.jax and learnact.keras), the derivative in numpy, and the
  float64 initial parameters of every init (``init_parameters``);
* ``cpab``: DiTAC's CPA basis, prior and init covariances (numpy float64) and its flow
  against an array namespace.

The PyTorch modules take their initial values from here too (one source), and keep their own
torch references and fused kernels (learnact.functional, learnact.ops). Nothing in this package
imports torch, jax or keras; scipy only inside ``cpab.basis`` (the pivoted QR), on first use.
"""

from . import cpab, fourier, hermite, quadrature, rational, selu_variation, tropical
from .quadrature import Moments, expectations, unit_scale_offset

__all__ = ["Moments", "expectations", "unit_scale_offset", "quadrature", "hermite", "fourier",
           "tropical", "rational", "selu_variation", "cpab"]
