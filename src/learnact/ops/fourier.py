r"""Fused Fourier op: saves only the input and the parameters, recomputes in backward.

Math and derivatives: :mod:`learnact.functional.fourier`; CPU kernel: native/fourier.h
(ops/_families.py); CUDA: ops/triton/fourier.py. With theta_k = w_k x - phi_k:
df/dx = -sum_k c_k w_k sin theta_k; df/dc_k = cos theta_k; df/dw_k = -c_k x sin theta_k;
df/dphi_k = c_k sin theta_k; df/da_0 = 1.
"""

from __future__ import annotations

from torch import Tensor

from ..functional.fourier import fourier, fourier_backward
from ._families import family_op
from ._library import Param

__all__ = ["fourier_op", "op"]

# learnact::fourier / fourier_backward (ops/_library.py); torch.compile keeps the opaque op
# (the native kernel's vectorised sin/cos: 3.8x GELU's fwd+bwd, inductor's traced 4.2x)
op = family_op("fourier", [Param(n) for n in ("bias", "amplitude", "frequency", "phase")],
               fourier, fourier_backward, triton="learnact.ops.triton.fourier", compile="op")


def fourier_op(x: Tensor, bias: Tensor, amplitude: Tensor, frequency: Tensor, phase: Tensor,
               channel_dim: int = 1) -> Tensor:
    """Fused Fourier activation; parameter shapes as in :func:`learnact.functional.fourier.fourier`."""
    return op(x, bias, amplitude, frequency, phase, channel_dim=channel_dim)
