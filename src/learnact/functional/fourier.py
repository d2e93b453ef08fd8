r"""Fourier activation: pure math, no module state.

.. math::

    f(x) = a_0 + \sum_{k=1}^{d} c_k \cos(w_k x - \varphi_k),\qquad
    f'(x) = -\sum_k c_k w_k \sin(w_k x - \varphi_k)

Parameters (``bias`` a_0, ``amplitude`` c, ``frequency`` w, ``phase`` phi) are tensors of shape
``()``/``(d,)`` (shared) or ``(C,)``/``(C, d)`` (per channel, broadcast along ``channel_dim``).
The product w_k x is clipped to +-2^127 (``learnact.core.fourier.PHASE_BOUND``) so that f stays
finite at every finite x; the derivatives are the formulas above at the clipped phase.
"""

from __future__ import annotations


import torch
from torch import Tensor

from ..core import fourier as _core
from .._tensor import channel_view, clipped_phase, column, reduce_to_channels

__all__ = ["fourier", "fourier_derivative", "fourier_backward", "paper_parameters"]

PAPER_GAIN = _core.PAPER_GAIN


def fourier(x: Tensor, bias: Tensor, amplitude: Tensor, frequency: Tensor, phase: Tensor,
            channel_dim: int = 1) -> Tensor:
    """f(x) = bias + sum_k amplitude_k cos(frequency_k x - phase_k)."""
    nd = x.ndim
    out = channel_view(bias, nd, channel_dim) + torch.zeros_like(x)
    for k in range(amplitude.shape[-1]):
        theta = (clipped_phase(x, column(frequency, k, nd, channel_dim))
                 - column(phase, k, nd, channel_dim))
        out = out + column(amplitude, k, nd, channel_dim) * torch.cos(theta)
    return out


def fourier_derivative(x: Tensor, bias: Tensor, amplitude: Tensor, frequency: Tensor,
                       phase: Tensor, channel_dim: int = 1) -> Tensor:
    """f'(x) = -sum_k amplitude_k frequency_k sin(frequency_k x - phase_k)."""
    nd = x.ndim
    out = torch.zeros_like(x)
    for k in range(amplitude.shape[-1]):
        w = column(frequency, k, nd, channel_dim)
        theta = clipped_phase(x, w) - column(phase, k, nd, channel_dim)
        out = out - column(amplitude, k, nd, channel_dim) * w * torch.sin(theta)
    return out


def fourier_backward(x: Tensor, bias: Tensor, amplitude: Tensor, frequency: Tensor,
                     phase: Tensor, grad: Tensor, channel_dim: int = 1
                     ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Gradients w.r.t. (x, bias, amplitude, frequency, phase); params reduced over non-channel dims.

    With theta_k = w_k x - phi_k: df/dc_k = cos theta_k, df/dw_k = -c_k x sin theta_k,
    df/dphi_k = c_k sin theta_k, df/da_0 = 1.
    """
    nd = x.ndim
    per_channel = amplitude.ndim == 2
    gx = torch.zeros_like(x)
    g_amp, g_freq, g_phase = [], [], []
    for k in range(amplitude.shape[-1]):
        c = column(amplitude, k, nd, channel_dim)
        w = column(frequency, k, nd, channel_dim)
        theta = clipped_phase(x, w) - column(phase, k, nd, channel_dim)
        s, co = torch.sin(theta), torch.cos(theta)
        gcs = grad * c * s
        gx = gx - gcs * w
        g_amp.append(reduce_to_channels(grad * co, per_channel, channel_dim))
        g_freq.append(reduce_to_channels(-gcs * x, per_channel, channel_dim))
        g_phase.append(reduce_to_channels(gcs, per_channel, channel_dim))
    g_bias = reduce_to_channels(grad, per_channel, channel_dim)
    return gx, g_bias, torch.stack(g_amp, -1), torch.stack(g_freq, -1), torch.stack(g_phase, -1)


def paper_parameters(degree: int) -> dict[str, Tensor]:
    """The published init (arXiv 2502.01247, torchortho defaults) in this parameterisation:
    c_k = g/k!, phi_k = pi/4, w_k = k, a_0 = g sqrt(1 - 1/(d!)^2), g ~ 0.6623
    (learnact.core.fourier). It does not preserve variance: E[f^2] = 1.31 at degree 5."""
    return {k: torch.from_numpy(v) for k, v in _core.paper_parameters(degree).items()}
