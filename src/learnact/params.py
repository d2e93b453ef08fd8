"""Optimiser helpers: activation parameters apart, and the sum of activation priors."""

from __future__ import annotations

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
                 decay: str = "all") -> list[dict]:
    """Optimiser groups: the parameters that decay, those that do not, and the activation
    parameters (every experiment builds its optimiser from these: one rule in one place).

    The activation group never gets weight decay: decay pulls polynomial coefficients towards
    the zero function (and a tropical envelope towards a constant), not towards a simple
    activation. ``lr`` (if given) is set on the activation group only. ``decay``: ``"all"``
    (every other parameter decays) or ``"matrices"`` (only those with >= 2 dimensions, as in
    nanoGPT: biases and norm gains do not). Empty groups are left out. Use as
    ``torch.optim.AdamW(learnact.param_groups(model, lr=1e-3, weight_decay=0.05), lr=3e-4)``.
    """
    if decay not in ("all", "matrices"):
        raise ValueError(f"decay must be 'all' or 'matrices', got {decay!r}")
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
        g: dict = {"params": acts, "weight_decay": 0.0}
        if lr is not None:
            g["lr"] = lr
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
