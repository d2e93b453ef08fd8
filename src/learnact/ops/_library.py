r"""One family's op as ``torch.library`` custom ops with kernels per device (internal).

Every family op is two custom ops in the ``learnact`` namespace::

    learnact::<family>(Tensor x, Tensor p1, ..., int channel_dim) -> Tensor
    learnact::<family>_backward(Tensor grad, Tensor x, Tensor p1, ..., int channel_dim) -> Tensor[]

The backward op returns dL/dx and dL/dp for every differentiable parameter. Both carry a fake
(meta) implementation, and the forward an autograd registration that saves ``x`` and the
parameters only and calls the backward op. Kernels are registered **per device**: the
reference (:mod:`learnact.functional`, plain torch, any device) for every device, the CPU
kernel (the family's native C++ kernel, native/<family>.h via ops/_families.py) for ``cpu``,
and the Triton
kernel (:mod:`learnact.ops.triton.<family>`) for ``cuda``. The dispatcher picks by the input's
device, not our ``if``\ s; :func:`backend` (or ``LEARNACT_BACKEND``) forces one kernel.

* Double backward (``create_graph=True``): the registered backward evaluates the reference
  backward, which is ordinary differentiable torch code, so ``gradgradcheck`` holds.
* ``torch.compile`` / ``torch.export``: the op is traced through a plain
  ``autograd.Function`` over the same reference (``compile="trace"``, the default), so inductor
  fuses it with its neighbours and an exported program holds standard aten ops only; the
  Function saves only ``x`` and the parameters as the op does. ``compile="op"`` keeps the opaque
  custom op in torch.compile's graph instead (for families whose traced backward inductor
  handles badly: tropical's 29x GELU traced vs 1.6x opaque); torch.export always traces.
* Eager CPU calls on plain tensors (not compiled or traced, no autocast, no torch-function or
  dispatch mode: :func:`_plain_eager_cpu`) run the same kernels through an
  ``autograd.Function`` with the op's autograd rules instead of entering the op: the
  dispatcher's custom-op layers cost ~100 us per fwd+bwd, most of a small layer's time.
* Dtypes: CPU and reference kernels see the compute dtype (fp32 for fp16/bf16 inputs, else the
  promoted floating dtype); Triton kernels read x and the gradient in their own dtype (fp32
  math inside); the op returns y in x's dtype and each gradient in its input's dtype.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor
from torch.utils import _python_dispatch

from .._tensor import compute_dtype
from . import _dtensor

__all__ = ["Param", "FamilyOp", "Kernel", "CPU_KERNEL_MIN", "family_ops", "backend",
           "current_backend", "BACKENDS"]

log = logging.getLogger(__name__)

#: the native CPU kernels run from this many elements on (an empty input takes the reference).
#: They are faster than the reference's whole-tensor operations at every size: fwd+bwd of 16
#: elements hermite d8 0.25 vs 0.50 ms, rational 0.33 vs 0.70, tropical_rational d4 0.40 vs
#: 0.75, selu_variation even (2 threads, 2026-12-07; the threshold was 4096, set for the old
#: chunked torch kernels)
CPU_KERNEL_MIN = 1

_OPS: dict[str, FamilyOp] = {}

Forward = Callable[..., Tensor]  # (x, *params, channel_dim) -> y, all in the compute dtype
Backward = Callable[..., Sequence[Tensor]]  # (x, *params, grad, channel_dim) -> (gx, *gparams)


@dataclass(frozen=True)
class Param:
    """A tensor argument of a family op: its schema name, whether it gets a gradient, whether
    it may be None (``Tensor?``, e.g. Hermite's tail bounds)."""

    name: str
    differentiable: bool = True
    optional: bool = False


@dataclass(frozen=True)
class Kernel:
    """One kernel pair of a family op. ``native_dtype`` kernels (Triton) read x and the
    upstream gradient in their own dtype (fp32 math inside) and return y and dL/dx in x's
    dtype; the others receive everything in the compute dtype."""

    forward: Forward
    backward: Backward
    min_numel: int = 0
    native_dtype: bool = False

    def run_forward(self, x: Tensor, params: Sequence[Tensor | None], channel_dim: int) -> Tensor:
        dtype = compute_dtype(x, *(p for p in params if p is not None))
        if self.native_dtype:
            return self.forward(x, *_cast(params, dtype), channel_dim)
        return _to(self.forward(_to(x, dtype), *_cast(params, dtype), channel_dim), x.dtype)

    def run_backward(self, grad: Tensor, x: Tensor, params: Sequence[Tensor | None],
                     channel_dim: int) -> Sequence[Tensor]:
        dtype = compute_dtype(x, *(p for p in params if p is not None))
        if self.native_dtype:
            return self.backward(x, *_cast(params, dtype), grad, channel_dim)
        return self.backward(_to(x, dtype), *_cast(params, dtype), _to(grad, dtype), channel_dim)


BACKENDS = ("auto", "reference", "cpu", "triton")
_backend: ContextVar[str | None] = ContextVar("learnact_backend", default=None)


def assume_constant_result(fn):
    """``torch.compiler.assume_constant_result(fn)`` without importing torch._dynamo (1.8 s,
    and it imports triton, which aborts a process that imported TensorFlow first): the public
    decorator only sets this marker, which dynamo reads when it traces a call to ``fn``
    (tests/test_ops.py checks the two agree, and the compile tests that dynamo honours it)."""
    if "torch._dynamo" in sys.modules:
        return torch.compiler.assume_constant_result(fn)
    fn._dynamo_marked_constant = True
    return fn


@assume_constant_result
def current_backend() -> str:
    """The kernel choice in force: :func:`backend`'s, else ``LEARNACT_BACKEND``, else "auto"
    (per device: the CPU kernel on CPU, Triton on CUDA where importable, else the reference).
    torch.compile reads it once, when it traces a graph (a constant there)."""
    b = _backend.get()
    if b is None:
        b = os.environ.get("LEARNACT_BACKEND", "auto").strip().lower() or "auto"
        if b not in BACKENDS:
            raise ValueError(f"LEARNACT_BACKEND must be one of {BACKENDS}, got {b!r}")
    return b


@contextlib.contextmanager
def backend(name: str) -> Iterator[None]:
    """Force the family ops' kernels: ``"triton"`` (on CPU tensors too, where
    ``TRITON_INTERPRET=1`` was set before the first Triton kernel loaded: how CI tests the GPU
    kernels), ``"reference"`` (the functional math), ``"cpu"`` or ``"auto"``. An op without
    the forced kernel runs its device's default."""
    if name not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {name!r}")
    token = _backend.set(name)
    try:
        yield
    finally:
        _backend.reset(token)


_TRITON_MODULES: dict[str, object] = {}


def _import_triton_module(path: str):
    """ops/triton/<family>.py, or None (logged once) where triton is not importable."""
    if path not in _TRITON_MODULES:
        try:
            _TRITON_MODULES[path] = importlib.import_module(path)
        except ImportError as exc:
            log.warning("Triton kernels unavailable (%s): the reference runs instead", exc)
            _TRITON_MODULES[path] = None
    return _TRITON_MODULES[path]


def _forward_mode_active() -> bool:
    """True under a torch.func transform or inside a forward-mode AD dual level; False while
    dynamo traces (it handles torch.func itself and cannot trace this inspection)."""
    from torch.autograd import forward_ad

    if torch.compiler.is_compiling():
        return False
    return (torch._C._functorch.peek_interpreter_stack() is not None
            or forward_ad._current_level >= 0)


def _check_devices(name: str, x: Tensor, params: Sequence[Tensor | None]) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} op: x must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} op: x must be a floating-point tensor, got dtype {x.dtype}")
    for p in params:
        if p is not None and p.device != x.device:
            raise ValueError(f"{name} op: the input is on {x.device} but its parameters on "
                             f"{p.device}; move the module with .to({str(x.device)!r})")


class FamilyOp:
    """A family's forward/backward custom-op pair; call it as ``op(x, *params, channel_dim=1)``.

    Args:
        name: op name in the ``learnact`` namespace (the family's registry name).
        params: the tensor parameters in call order.
        forward, backward: the reference (plain torch, differentiable, any device).
        cpu: the CPU kernel pair (the families' native kernels: ops/_families.py
            :func:`family_op`); inputs below its ``min_numel`` take the reference.
        triton: the module of the Triton kernels (``"learnact.ops.triton.<family>"``, or
            ``"module:prefix"`` for ``<prefix>_forward``/``<prefix>_backward``), imported on
            the first call that wants it; the op's cuda kernel.
        compile: under ``torch.compile``, ``"trace"`` (inductor fuses the reference with its
            neighbours) or ``"op"`` (the opaque op with its native kernel: for families whose
            traced backward inductor handles badly); ``torch.export`` always traces.
        compile_cpu: ``"op"`` keeps the op for CPU calls under ``torch.compile`` while other
            devices follow ``compile`` (hermite: its native kernel measured faster than
            inductor's fusion of the reference on the CPU).
        keep_op: with ``compile="trace"``, calls ``keep_op(x, params)`` says True for keep the
            op anyway (the families' per-channel CPU calls, which inductor's traced parameter
            reductions run 2-3x slower than the native kernel: benchmarks/RESULTS.md).
    """

    def __init__(self, name: str, params: Sequence[Param], forward: Forward, backward: Backward,
                 *, cpu: Kernel | None = None,
                 triton: str | None = None, compile: Literal["trace", "op"] = "trace",
                 compile_cpu: Literal["trace", "op"] = "trace",
                 keep_op: Callable[[Tensor, tuple], bool] | None = None) -> None:
        self.name = name
        self.params = tuple(params)
        self.compile = compile
        self.compile_cpu = compile_cpu
        self.keep_op = keep_op
        self.kernels: dict[str, Kernel] = {"reference": Kernel(forward, backward)}
        if cpu is not None:
            self.kernels["cpu"] = cpu
        self.triton_module = triton  # imported on first use: ops/triton/<family>.py
        self._define()
        # kernels per device type: the reference everywhere, then the fused ones
        self._register_device(None, "reference")
        if "cpu" in self.kernels:
            self._register_device("cpu", "cpu")
        if triton is not None:
            self._register_device("cuda", "triton")
        self._traced = self._traced_function()
        self._eager = self._eager_function()
        _OPS[name] = self

    # -- public -----------------------------------------------------------------------------
    def __call__(self, x: Tensor, *params: Tensor | None, channel_dim: int = 1) -> Tensor:
        if len(params) != len(self.params):
            raise TypeError(f"{self.name} op takes {len(self.params)} parameter tensors "
                            f"({', '.join(p.name for p in self.params)}), got {len(params)}")
        if _dtensor.involved(x, params):
            _dtensor.prepare(self, x, params, channel_dim)
        else:
            _check_devices(self.name, x, params)
        if torch.compiler.is_compiling() and (torch.compiler.is_exporting()
                                              or not self._op_under_compile(x, params)):
            # an exported program holds standard aten ops only (ONNX, other runtimes)
            return self._traced.apply(channel_dim, x, *params)
        if _forward_mode_active():
            # torch.func transforms (jvp, vmap, jacfwd, ...) and forward-mode AD see through
            # the custom op's kernels as constants (torch.func.jvp returned zero tangents):
            # the reference forward is plain torch, which every transform differentiates
            return self.kernels["reference"].run_forward(x, params, channel_dim)
        if "cpu" in self.kernels and _plain_eager_cpu(x, params):
            # the same kernels without the dispatcher's custom-op layers (its Python autograd
            # wrapper, argument defaults, redispatch): ~100 us less per fwd+bwd, most of a
            # small layer's cost
            return self._eager.apply(channel_dim, x, *params)
        return self.forward_op(x, *params, channel_dim)

    def _op_under_compile(self, x: Tensor, params: tuple) -> bool:
        return (self.compile == "op" or (self.compile_cpu == "op" and x.device.type == "cpu")
                or (self.keep_op is not None and self.keep_op(x, params)))

    @property
    def reference(self) -> tuple[Forward, Backward]:
        """(forward, backward) of the functional reference."""
        k = self.kernels["reference"]
        return k.forward, k.backward

    @property
    def forward_op(self):
        return getattr(torch.ops.learnact, self.name)

    @property
    def backward_op(self):
        return getattr(torch.ops.learnact, self.name + "_backward")

    def kernel(self, name: str) -> Kernel | None:
        """The kernel pair ``name`` ("reference", "cpu", "triton"), or None if this op has
        none (or triton is not importable here)."""
        if name == "triton" and name not in self.kernels and self.triton_module is not None:
            path, _, prefix = self.triton_module.partition(":")
            mod = _import_triton_module(path)
            if mod is not None:  # "module:prefix" names <prefix>_forward / <prefix>_backward
                pre = prefix + "_" if prefix else ""
                self.kernels["triton"] = Kernel(getattr(mod, pre + "forward"),
                                                getattr(mod, pre + "backward"), native_dtype=True)
        return self.kernels.get(name)

    def chosen(self, device_default: str, x: Tensor) -> Kernel:
        """The kernel a call on x runs: the forced backend (:func:`backend`) where this op has
        it, else the device's default, else the reference; small CPU inputs: the reference."""
        forced = current_backend()
        if (forced == "triton" and x.device.type != "cuda"
                and os.environ.get("TRITON_INTERPRET", "0") != "1"):
            raise RuntimeError(
                f"learnact.ops.backend('triton') on a {x.device.type} tensor: the Triton kernels "
                "run on CUDA tensors, or on CPU tensors through Triton's interpreter "
                "(TRITON_INTERPRET=1, set before the first Triton kernel loads)")
        for name in ((forced,) if forced != "auto" else ()) + (device_default,):
            k = self.kernel(name)
            if k is not None and x.numel() >= k.min_numel:
                return k
        return self.kernels["reference"]

    # -- registration -------------------------------------------------------------------------
    def _register_device(self, device: str | None, default: str) -> None:
        def fwd(x: Tensor, *args):
            *params, channel_dim = args
            return self.chosen(default, x).run_forward(x, params, channel_dim)

        def bwd(grad: Tensor, x: Tensor, *args):
            *params, channel_dim = args
            grads = self.chosen(default, x).run_backward(grad, x, params, channel_dim)
            return tuple(self._in_input_dtypes(grads, x, params))

        torch.library.register_kernel(self._qual(), device, fwd)
        torch.library.register_kernel(self._qual("_backward"), device, bwd)

    def _qual(self, suffix: str = "") -> str:
        return f"learnact::{self.name}{suffix}"

    def _differentiable(self, params: Sequence) -> list:
        return [p for p, spec in zip(params, self.params) if spec.differentiable]

    def _define(self) -> None:
        args = ", ".join(f"Tensor{'?' if p.optional else ''} {p.name}" for p in self.params)
        torch.library.define(self._qual(), f"(Tensor x, {args}, int channel_dim) -> Tensor")
        # a fixed tuple (dL/dx, dL/dp for each differentiable p), not Tensor[]: DTensor's
        # sharding rules (ops/_dtensor.py) place each output
        outs = ", ".join(["Tensor"] * (1 + len(self._differentiable(self.params))))
        torch.library.define(self._qual("_backward"),
                             f"(Tensor grad, Tensor x, {args}, int channel_dim) -> ({outs})")

        def fake_forward(x: Tensor, *args):
            return torch.empty_like(x)

        def fake_backward(grad: Tensor, x: Tensor, *args):
            return tuple(torch.empty_like(t) for t in (x, *self._differentiable(args[:-1])))

        torch.library.register_fake(self._qual(), fake_forward)
        torch.library.register_fake(self._qual("_backward"), fake_backward)
        torch.library.register_autograd(self._qual(), self._backward,
                                        setup_context=self._setup_context)

    @staticmethod
    def _setup_context(ctx, inputs, output) -> None:
        x, *params, channel_dim = inputs
        ctx.save_for_backward(x, *params)
        ctx.channel_dim = channel_dim

    def _grads(self, grad: Tensor, x: Tensor, params: Sequence[Tensor | None], channel_dim: int,
               *, via_op: bool) -> list[Tensor]:
        """[dL/dx, dL/dp for each differentiable p]: the backward op's kernel for this device,
        or the differentiable reference (double backward, and the traced path)."""
        if via_op:
            return list(self.backward_op(grad, x, *params, channel_dim))
        return self._in_input_dtypes(
            self.kernels["reference"].run_backward(grad, x, params, channel_dim), x, params)

    def _in_input_dtypes(self, grads: Sequence[Tensor], x: Tensor,
                         params: Sequence[Tensor | None]) -> list[Tensor]:
        """Each gradient in its input's dtype (dL/dx in x's, dL/dp in p's)."""
        return [_to(g, t.dtype) for g, t in zip(grads, (x, *self._differentiable(params)))]

    def _autograd_outputs(self, needs: Sequence[bool], grads: list[Tensor]) -> list:
        """Per input (x, *params): its gradient where autograd needs it, else None."""
        it = iter(grads)
        out = [next(it)]
        out += [next(it) if spec.differentiable else None for spec in self.params]
        return [g if need else None for g, need in zip(out, needs)]

    def _backward(self, ctx, grad: Tensor):
        x, *params = ctx.saved_tensors
        # create_graph runs the backward with grad mode on: then the reference, which autograd
        # can differentiate again
        grads = self._grads(grad, x, params, ctx.channel_dim, via_op=not torch.is_grad_enabled())
        return (*self._autograd_outputs(ctx.needs_input_grad, grads), None)

    def _eager_function(self) -> type[torch.autograd.Function]:
        """The eager CPU path (:func:`_plain_eager_cpu`): the device's kernels as the op's
        registered kernels and autograd run them (create_graph: the reference backward)."""
        op = self

        def forward(ctx, channel_dim: int, x: Tensor, *params: Tensor | None) -> Tensor:
            ctx.save_for_backward(x, *params)
            ctx.channel_dim = channel_dim
            return op.chosen("cpu", x).run_forward(x, params, channel_dim)

        def backward(ctx, grad: Tensor):
            x, *params = ctx.saved_tensors
            if torch.is_grad_enabled():
                grads = op._grads(grad, x, params, ctx.channel_dim, via_op=False)
            else:
                grads = op._in_input_dtypes(
                    op.chosen("cpu", x).run_backward(grad, x, params, ctx.channel_dim), x,
                    params)
            return (None, *op._autograd_outputs(ctx.needs_input_grad[1:], grads))

        return type(f"{self.name.title().replace('_', '')}Eager", (torch.autograd.Function,),
                    {"forward": staticmethod(forward), "backward": staticmethod(backward)})

    def _traced_function(self) -> type[torch.autograd.Function]:
        """The traceable autograd.Function over the reference (the torch.compile path)."""
        op = self

        def forward(ctx, channel_dim: int, x: Tensor, *params: Tensor | None) -> Tensor:
            ctx.save_for_backward(x, *params)
            ctx.channel_dim = channel_dim
            return op.kernels["reference"].run_forward(x, params, channel_dim)

        def backward(ctx, grad: Tensor):
            x, *params = ctx.saved_tensors
            grads = op._grads(grad, x, params, ctx.channel_dim, via_op=False)
            return (None, *op._autograd_outputs(ctx.needs_input_grad[1:], grads))

        return type(f"{self.name.title().replace('_', '')}Traced", (torch.autograd.Function,),
                    {"forward": staticmethod(forward), "backward": staticmethod(backward)})


def _plain_eager_cpu(x: Tensor, params: Sequence[Tensor | None]) -> bool:
    """Whether a call runs in plain eager PyTorch on plain CPU tensors: not compiled, exported
    or jit-traced, no autocast, no torch-function or dispatch mode (FakeTensorMode, FLOP
    counters, ...) and no tensor subclass; then FamilyOp runs its kernels through an
    autograd.Function (what the op's registered autograd does, minus the dispatcher's layers).
    Everything else takes the custom op, which those mechanisms see."""
    return (x.device.type == "cpu" and type(x) in _PLAIN
            and all(p is None or type(p) in _PLAIN for p in params)
            and not torch.compiler.is_compiling() and not torch.jit.is_tracing()
            and not torch.is_autocast_enabled("cpu")
            and torch._C._len_torch_function_stack() == 0
            and _python_dispatch._get_current_dispatch_mode() is None)


_PLAIN = (torch.Tensor, torch.nn.Parameter)


def family_ops() -> dict[str, FamilyOp]:
    """Every family op defined so far, by name (the ops package defines them all on import)."""
    return dict(_OPS)


def _cast(params: Sequence[Tensor | None], dtype: torch.dtype) -> list[Tensor | None]:
    return [None if p is None else _to(p, dtype) for p in params]


def _to(t: Tensor, dtype: torch.dtype) -> Tensor:
    """t in dtype (t itself where it is: Tensor.to's argument parsing costs ~2 us a call, and a
    small layer's fwd+bwd made eleven)."""
    return t if t.dtype == dtype else t.to(dtype)
