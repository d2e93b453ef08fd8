"""Where activations are sampled over training: fixed-bin histograms, bounded memory.

    rec = learnact.viz.Recorder(model)          # hooks every activation module
    ... train; call rec.end_epoch() after each epoch ...
    state = rec.state()                         # {layer: {"inputs": [...], "grads": [...]}}
    rec.remove()

For every activation module (the same finder as surgery) a forward hook adds the module's
input values to a histogram with fixed bin edges (``bins`` over [lo, hi], plus under/overflow
counters), and a tensor hook on that input adds dL/d(pre-activation) to a second histogram.
Counts are exact: every element seen is counted once (in a bin or an overflow counter).
Memory is O(layers x epochs x bins), never O(samples). The core library does not import this.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["Recorder"]


class _Hist:
    def __init__(self, lo: float, hi: float, bins: int) -> None:
        self.lo, self.hi, self.bins = lo, hi, bins
        self.epochs: list[list[int]] = []
        self._cur = torch.zeros(bins + 2, dtype=torch.int64)  # [underflow, bins..., overflow]

    def add(self, x: Tensor) -> None:
        x = x.detach().reshape(-1).float()
        x = x[~torch.isnan(x)]
        if x.numel() == 0:
            return
        width = (self.hi - self.lo) / self.bins
        idx = torch.floor((x - self.lo) / width).clamp(-1, self.bins).long() + 1
        self._cur += torch.bincount(idx.cpu(), minlength=self.bins + 2)

    def end_epoch(self) -> None:
        self.epochs.append(self._cur.tolist())
        self._cur.zero_()

    def state(self) -> dict[str, Any]:
        return {"lo": self.lo, "hi": self.hi, "bins": self.bins, "counts": self.epochs}


class Recorder:
    """Histograms of pre-activation inputs and of their loss gradients, per layer and epoch.

    Args:
        model: any nn.Module; every activation module in it is recorded.
        bins, lo, hi: input histogram bins on [lo, hi] (default 120 on [-6, 6]).
        grad_lo, grad_hi: gradient histogram range (default [-1e-3, 1e-3]; overflow counted).
    """

    def __init__(self, model: nn.Module, bins: int = 120, lo: float = -6.0, hi: float = 6.0,
                 grad_lo: float = -1e-3, grad_hi: float = 1e-3) -> None:
        from ..surgery import find_activations

        if bins < 1 or not lo < hi or not grad_lo < grad_hi:
            raise ValueError("Recorder needs bins >= 1, lo < hi and grad_lo < grad_hi")
        self.layers = [p for p, _ in find_activations(model)]
        if not self.layers:
            raise ValueError("Recorder: no activation module found in the model")
        self.inputs = {p: _Hist(lo, hi, bins) for p in self.layers}
        self.grads = {p: _Hist(grad_lo, grad_hi, bins) for p in self.layers}
        self.seen = {p: 0 for p in self.layers}
        self._handles = []
        for path, mod in find_activations(model):
            self._handles.append(mod.register_forward_pre_hook(self._hook(path)))

    def _hook(self, path: str):
        def hook(module: nn.Module, args: tuple[Any, ...]) -> None:
            if not module.training or not args or not isinstance(args[0], Tensor):
                return
            x = args[0]
            self.inputs[path].add(x)
            self.seen[path] += x.numel()
            if x.requires_grad:
                x.register_hook(lambda g: self.grads[path].add(g))

        return hook

    def end_epoch(self) -> None:
        for p in self.layers:
            self.inputs[p].end_epoch()
            self.grads[p].end_epoch()

    def state(self) -> dict[str, Any]:
        return {p: {"inputs": self.inputs[p].state(), "grads": self.grads[p].state(),
                    "seen": self.seen[p]} for p in self.layers}

    def remove(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()
