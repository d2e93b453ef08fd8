"""What counts as an activation module: one answer for surgery, the optimiser groups and viz."""

from __future__ import annotations

from torch import nn

__all__ = ["is_activation", "is_learnable_activation", "TORCH_ACTIVATIONS", "HF_ACTIVATIONS",
           "TIMM_ACTIVATIONS"]

TORCH_ACTIVATIONS: tuple[type[nn.Module], ...] = (
    nn.ReLU, nn.ReLU6, nn.GELU, nn.SiLU, nn.Mish, nn.ELU, nn.SELU, nn.CELU, nn.LeakyReLU,
    nn.PReLU, nn.RReLU, nn.Softplus, nn.Tanh, nn.Sigmoid, nn.Hardswish, nn.Hardsigmoid,
    nn.Hardtanh, nn.Softsign, nn.LogSigmoid, nn.Tanhshrink, nn.Softshrink, nn.Hardshrink,
)
# transformers.activations and timm.layers.activations classes, by class name
HF_ACTIVATIONS = frozenset({
    "GELUActivation", "NewGELUActivation", "FastGELUActivation", "QuickGELUActivation",
    "ClippedGELUActivation", "AccurateGELUActivation", "PytorchGELUTanh", "GELUTanh",
    "SiLUActivation", "MishActivation", "ReLUSquaredActivation", "LaplaceActivation",
    "LinearActivation", "XIELUActivation",
})
TIMM_ACTIVATIONS = frozenset({
    "GELU", "GELUTanh", "QuickGELU", "Swish", "SwishMe", "SwishAuto", "Mish", "MishMe",
    "MishAuto", "HardSwish", "HardSwishMe", "HardSwishAuto", "HardSigmoid", "HardSigmoidMe",
    "HardMish", "HardMishMe", "Sigmoid", "Tanh", "PReLU", "GELUTanhApprox",
})

# torch activations with trainable parameters of their own
_TORCH_LEARNABLE: tuple[type[nn.Module], ...] = (nn.PReLU,)


def is_activation(module: nn.Module) -> bool:
    """True for any activation module: learnact's (families, surrogates, Sin), torch.nn's, and
    Hugging Face's / timm's by class name (neither package is imported)."""
    from .modules import SURROGATES, LearnableActivation, Sin, Surrogate

    if isinstance(module, (LearnableActivation, Sin, Surrogate, *SURROGATES.values())):
        return True
    if isinstance(module, TORCH_ACTIVATIONS):
        return True
    name = type(module).__name__
    mod = type(module).__module__
    if mod.startswith("transformers") and name in HF_ACTIVATIONS:
        return True
    return mod.startswith("timm") and name in TIMM_ACTIVATIONS


def is_learnable_activation(module: nn.Module) -> bool:
    """True for activation modules whose parameters are the activation's shape: every learnact
    family (:class:`~learnact.LearnableActivation`) and ``nn.PReLU``."""
    from .modules.base import LearnableActivation

    return isinstance(module, (LearnableActivation, *_TORCH_LEARNABLE))
