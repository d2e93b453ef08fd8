"""Optimiser helpers: activation parameters apart, and the sum of activation priors."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from .kinds import is_learnable_activation

__all__ = ["activation_parameters", "param_groups", "regularization", "with_prior"]


def activation_parameters(model: nn.Module) -> list[nn.Parameter]:
    """Parameters owned by learnable activation modules (learnact families and nn.PReLU)."""
    seen: set[int] = set()
    out = []
    for m in model.modules():
        if is_learnable_activation(m):
            for p in m.parameters():
                if id(p) not in seen:
                    seen.add(id(p))
                    out.append(p)
    return out


def param_groups(model: nn.Module, lr: float | None = None, weight_decay: float = 0.0,
                 decay: str = "all", *, activation_lr: float | None = None,
                 activation_weight_decay: float = 0.0) -> list[dict]:
    """Optimiser groups: the parameters that decay, those that do not, and the activation
    parameters (every experiment builds its optimiser from these: one rule in one place).

    Args:
        model: the model whose parameters are grouped.
        weight_decay: the decay of the model's other parameters (those ``decay`` selects).
        decay: ``"all"`` (every non-activation parameter decays) or ``"matrices"`` (only
            those with >= 2 dimensions, as in nanoGPT: biases and norm gains do not).
        activation_lr: the activation group's learning rate (None: the optimiser's).
        activation_weight_decay: the activation group's decay, 0 by default: decay pulls
            polynomial coefficients towards the zero function (and a tropical envelope
            towards a constant), not towards a simple activation.
        lr: the same as ``activation_lr`` (its first name, kept for existing code).

    Empty groups are left out. Use as ``torch.optim.AdamW(learnact.param_groups(model,
    activation_lr=1e-3, weight_decay=0.05), lr=3e-4)``: the activations learn at 1e-3 without
    decay, everything else at 3e-4 with decay 0.05.
    """
    if decay not in ("all", "matrices"):
        raise ValueError(f"decay must be 'all' or 'matrices', got {decay!r}")
    if lr is not None and activation_lr is not None:
        raise ValueError("give activation_lr or lr (its old name), not both")
    act_lr = activation_lr if activation_lr is not None else lr
    name = "activation_lr" if activation_lr is not None else "lr"
    if act_lr is not None and not (isinstance(act_lr, (int, float)) and act_lr > 0
                                   and math.isfinite(act_lr)):
        raise ValueError(f"{name} must be a finite number > 0, got {act_lr!r}")
    for key, value in (("weight_decay", weight_decay),
                       ("activation_weight_decay", activation_weight_decay)):
        if not (isinstance(value, (int, float)) and value >= 0 and math.isfinite(value)):
            raise ValueError(f"{key} must be a finite number >= 0, got {value!r}")
    acts = activation_parameters(model)
    ids = {id(p) for p in acts}
    rest = [p for p in model.parameters() if id(p) not in ids]
    decays = [p for p in rest if decay == "all" or p.ndim >= 2]
    kept = [p for p in rest if not (decay == "all" or p.ndim >= 2)]
    groups: list[dict] = []
    if decays:
        groups.append({"params": decays, "weight_decay": weight_decay})
    if kept:
        groups.append({"params": kept, "weight_decay": 0.0})
    if acts:
        g: dict = {"params": acts, "weight_decay": activation_weight_decay}
        if act_lr is not None:
            g["lr"] = act_lr
        groups.append(g)
    return groups


def regularization(model: nn.Module) -> Tensor:
    """Sum of ``prior_loss()`` over every submodule that defines one (0 if none does)."""
    total: Tensor | None = None
    for m in model.modules():
        fn = getattr(m, "prior_loss", None)
        if callable(fn):
            v = fn()
            total = v if total is None else total + v
    if total is None:
        p = next(model.parameters(), None)
        return torch.zeros((), device=p.device if p is not None else None)
    return total


def with_prior(loss: Tensor, model: nn.Module, enabled: bool = True, scale: float = 1.0) -> Tensor:
    """The training objective: ``loss + scale * regularization(model)`` (``loss`` itself when
    ``enabled`` is False). Every experiment trains on this, so DiTAC's smoothness prior, an
    explicit loss by design, is applied; ``scale`` spreads it over gradient-accumulation
    micro-steps. For families without a prior it adds an exact 0."""
    if not enabled:
        return loss
    return loss + scale * regularization(model)
