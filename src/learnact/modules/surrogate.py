"""Surrogate-derivative activations: one function forward, another derivative backward.

These are experiments. Each docstring says what backward computes; it is deliberately not the
true gradient (except where noted), so ``torch.autograd.gradcheck`` fails on them by design.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._validate import check_float
from ..core import surrogate as _core
from ..functional import surrogate as S
from ..ops.surrogate import surrogate_op
from .._registry import create

__all__ = ["Surrogate", "Staircase", "Cantor", "Cantor2", "NoisyDerivative", "LeftRight"]


class _SurrogateModule(nn.Module):
    def inference_form(self, *, ditac: str = "table", points: int = 4096) -> nn.Module:
        """The frozen form (:func:`learnact.freeze`): the forward function only."""
        fn = self.fn
        if not isinstance(fn, nn.Module):
            raise ValueError(f"freeze: {type(self).__name__} wraps a plain function "
                             f"({fn!r}), not a module; wrap it in an nn.Module to freeze it")
        return copy.deepcopy(fn)

    def __prepare_scriptable__(self) -> nn.Module:
        raise TypeError(
            f"torch.jit.script cannot compile learnact.{type(self).__name__} (its surrogate "
            "derivative is an autograd Function over Python callables). For inference, script "
            "learnact.freeze(model) (the forward function only); torch.jit.trace, torch.export "
            "and torch.onnx.export record the forward function")


class Surrogate(_SurrogateModule):
    """f(x) = forward(x) with backward dL/dx = grad * derivative(x).

    Args:
        forward: a tensor function (or a registry spec, e.g. "relu").
        derivative: the declared derivative, a tensor function of x.
    """

    def __init__(self, forward: Callable[[Tensor], Tensor] | str,
                 derivative: Callable[[Tensor], Tensor]) -> None:
        super().__init__()
        self.fn = create(forward) if isinstance(forward, str) else forward
        self.derivative = derivative

    def forward(self, x: Tensor) -> Tensor:
        d = self.derivative
        return surrogate_op(x, self.fn, lambda x, g: g * d(x))


class Staircase(_SurrogateModule):
    r"""Hard staircase forward, smooth-staircase derivative backward.

    forward: f(x) = w (clamp(floor(x/w + n/2), 0, n) - n/2): n+1 levels
    {-n w/2, ..., n w/2}, jumps at b_j = (j - n/2) w.
    backward: grad * k sum_j sigmoid'(k (x - b_j)/w) - the derivative of the smooth staircase
    w sum_j sigmoid(k (x - b_j)/w), positive everywhere, so flat regions still pass gradient.
    Not the true gradient (which is 0 almost everywhere).

    Args: steps n >= 1 (default 8), width w > 0 (default 0.5), sharpness k > 0 (default 2).
    """

    def __init__(self, steps: int = 8, width: float = 0.5, sharpness: float = 2.0,
                 channels: int | None = None, channel_dim: int = 1) -> None:
        super().__init__()
        kw = _core.check("staircase", dict(steps=steps, width=width, sharpness=sharpness))
        self.steps, self.width, self.sharpness = kw["steps"], kw["width"], kw["sharpness"]

    def forward(self, x: Tensor) -> Tensor:
        n, w, k = self.steps, self.width, self.sharpness
        return surrogate_op(x, lambda t: S.staircase(t, n, w),
                            lambda t, g: g * S.staircase_derivative(t, n, w, k))

    def inference_form(self, *, ditac: str = "table", points: int = 4096) -> nn.Module:
        from ..freeze import FrozenStaircase

        return FrozenStaircase(self)

    def extra_repr(self) -> str:
        return f"steps={self.steps}, width={self.width:g}, sharpness={self.sharpness:g}"


class Cantor(_SurrogateModule):
    r"""Depth-n Cantor staircase forward; backward 0 everywhere (its derivative a.e.).

    forward: lo + (hi - lo) C_n((x - lo)/(hi - lo)) with C_n the depth-n Cantor staircase from
    ternary digits (2^n flat steps), input clamped to [lo, hi].
    backward: grad * 0 - nothing flows through (the true derivative almost everywhere).

    Args: depth n >= 1 (default 4), lo < hi (default -3, 3).
    """

    declared = 0.0

    def __init__(self, depth: int = 4, lo: float = -3.0, hi: float = 3.0,
                 channels: int | None = None, channel_dim: int = 1) -> None:
        super().__init__()
        kw = _core.check("cantor", dict(depth=depth, lo=lo, hi=hi))
        self.depth, self.lo, self.hi = kw["depth"], kw["lo"], kw["hi"]

    def forward(self, x: Tensor) -> Tensor:
        n, lo, hi, c = self.depth, self.lo, self.hi, self.declared
        return surrogate_op(x, lambda t: S.cantor_staircase(t, n, lo, hi), lambda t, g: g * c)

    def inference_form(self, *, ditac: str = "table", points: int = 4096) -> nn.Module:
        from ..freeze import FrozenCantor

        return FrozenCantor(self)

    def extra_repr(self) -> str:
        return f"depth={self.depth}, lo={self.lo:g}, hi={self.hi:g}"


class Cantor2(Cantor):
    r"""The Cantor staircase forward of :class:`Cantor`; backward: derivative 1 (grad passes).

    Not the true gradient: a straight-through estimator for a function that is flat a.e.
    """

    declared = 1.0


class NoisyDerivative(_SurrogateModule):
    r"""Forward untouched; in training, the derivative is multiplied by noise U(lower, upper).

    forward: base(x) (default ReLU). backward (training): grad * base'(x) * u, u ~ U(lower,
    upper) per element (the RReLU idea applied to the derivative instead of the function);
    in eval: grad * base'(x). Not the true gradient in training.

    Args: base (registry spec, default "relu"), lower <= upper (default 0.5, 1.5).
    """

    def __init__(self, base: str = "relu", lower: float = 0.5, upper: float = 1.5,
                 channels: int | None = None, channel_dim: int = 1) -> None:
        super().__init__()
        self.base = base
        self.fn = create(base)
        self.lower = check_float("lower", lower)
        self.upper = check_float("upper", upper)
        if self.lower > self.upper:
            raise ValueError(f"noisy needs lower <= upper, got lower={lower}, upper={upper}")

    def forward(self, x: Tensor) -> Tensor:
        fn, lo, hi, training = self.fn, self.lower, self.upper, self.training

        def backward(t: Tensor, g: Tensor) -> Tensor:
            with torch.enable_grad():
                tt = t.detach().requires_grad_(True)
                (d,) = torch.autograd.grad(fn(tt), tt, g)
            if training:
                d = d * (torch.rand_like(d) * (hi - lo) + lo)
            return d

        return surrogate_op(x, fn, backward)

    def extra_repr(self) -> str:
        return f"base={self.base!r}, lower={self.lower:g}, upper={self.upper:g}"


class LeftRight(_SurrogateModule):
    r"""One-sided-derivative backward chosen by the sign of the upstream gradient.

    forward: ReLU(x). backward: grad * d+(x) where grad < 0 (a descent step increases the
    output, so the right derivative applies), grad * d-(x) elsewhere, with d-(x) = [x > 0] and
    d+(x) = 1: a "dead" unit (x < 0) still receives gradient when the loss wants it to grow.
    Caveat: with momentum optimisers the accumulated direction can disagree with the sign the
    rule saw at each step, so the surrogate's bias is not self-correcting.

    Args: none (channels/channel_dim are accepted and ignored).
    """

    def inference_form(self, *, ditac: str = "table", points: int = 4096) -> nn.Module:
        return nn.ReLU()  # its forward; the left/right derivative is a training rule

    def __init__(self, channels: int | None = None, channel_dim: int = 1) -> None:
        super().__init__()

    def forward(self, x: Tensor) -> Tensor:
        def backward(t: Tensor, g: Tensor) -> Tensor:
            d_minus = (t > 0).to(g.dtype)
            return torch.where(g < 0, g, g * d_minus)

        return surrogate_op(x, F.relu, backward)
