"""The definition of a learnable family, framework-neutral (numpy and the standard library).

A :class:`Family` says once what every frontend and tool needs: the constructor's arguments
with their types, defaults, checks and messages; the tensors a module holds (trainable
parameters and fixed buffers, in formula order) and their float64 initial values; the forward
formula against an array namespace (numpy, jax.numpy, keras.ops, torch); its derivative and
kinks for exact moments and fits; the documentation; and which surfaces the family has
(:data:`SURFACES`), each missing one with the reason.

Families whose definition sets ``derived = True`` (PWLU) get every frontend class from it:
the PyTorch module (:func:`learnact.modules.defined.derive`), the frozen form, the JAX NNX
module and the Keras layer. The older families keep hand-written classes with fused ops that
read this definition for their checks, inits and formula (see docs/design.md).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

from .._validate import check_channels, check_choice, check_int

__all__ = ["Family", "Normal", "SURFACES"]

Normal = Callable[[tuple[int, ...]], np.ndarray]

#: what a family can have, one name each; tests/test_surfaces.py checks every family x surface
#: (a family without one declares why in ``missing``)
SURFACES = (
    "torch",          # the PyTorch module (learnact.create)
    "jax",            # the Flax NNX module (learnact.jax.create)
    "keras",          # the Keras 3 layer (learnact.keras.create)
    "per_channel",    # channels=C: one parameter set per channel
    "freeze",         # learnact.freeze: an inference form of standard operators
    "torchscript",    # torch.jit.script of the frozen form
    "onnx",           # torch.onnx.export of the module
    "export",         # torch.export of the module
    "torch_op",       # a torch.library custom op with a fused CPU kernel (learnact.ops)
    "xla_kernel",     # fused C++ kernels for JAX on the CPU (learnact.xla_native)
    "triton",         # Triton GPU kernels (learnact.ops.triton)
    "forward_ad",     # forward-mode AD and torch.func transforms (jvp, vmap, jacfwd)
)


class Family(ABC):
    """A learnable family: what every frontend builds from (see the module docstring)."""

    #: registry name
    name: ClassVar[str] = ""
    #: the frontends' class name (derived families)
    class_name: ClassVar[str] = ""
    #: init names, the first the default
    inits: ClassVar[tuple[str, ...]] = ()
    #: (name, type, default) of the family's constructor arguments, in order; "channels" and
    #: "channel_dim" may appear as placeholders (each frontend gives their defaults), else they
    #: follow. The generated classes' signatures come from here (every frontend of a derived
    #: family; the JAX and Keras classes of every family that declares arguments)
    arguments: ClassVar[tuple[tuple[str, Any, Any], ...]] = ()
    #: the frontend classes are generated from this definition (no hand-written class)
    derived: ClassVar[bool] = False
    #: small specs for the shared property tests of every frontend (one layout each)
    test_specs: ClassVar[tuple[str, ...]] = ()
    #: further configurations the surface tests (deploy, frontends) also run
    variant_specs: ClassVar[tuple[str, ...]] = ()
    #: the smallest sizes the fused kernels must also handle (kernel tests only)
    edge_specs: ClassVar[tuple[str, ...]] = ()
    #: those of the specs above that only the PyTorch frontend builds (and why, in a comment)
    torch_only_specs: ClassVar[tuple[str, ...]] = ()
    #: specs with which the family joins the main job (the autoencoder benchmark)
    main_job_specs: ClassVar[tuple[str, ...]] = ()
    #: a derived family's eager PyTorch kernel, "module:function" (f(x, params, kw) -> y, an
    #: autograd Function saving x and the parameters); None: the formula, recomputed in
    #: backward. torch.compile, export and torch.func transforms trace the formula either way
    torch_kernel: ClassVar[str | None] = None
    #: the fused C/C++ kernel's parameter row (native/<family>.h): (tensor name, one number
    #: per channel) in row order, packed into one (C, P) table by every binding (PyTorch:
    #: learnact.ops._families; JAX: learnact.xla_native); () when the family has no such kernel
    table: ClassVar[tuple[tuple[str, bool], ...]] = ()
    #: surface -> why the family does not have it (every other surface of SURFACES it has)
    missing: ClassVar[dict[str, str]] = {}

    def check(self, kw: dict[str, Any]) -> dict[str, Any]:
        """Validated, normalised constructor arguments (channels and channel_dim included)."""
        out = dict(kw)
        out["channels"] = check_channels(kw.get("channels"))
        out["channel_dim"] = check_int("channel_dim", kw.get("channel_dim", -1))
        if "init" in kw:
            out["init"] = check_choice("init", kw["init"], self.inits)
        return out

    @abstractmethod
    def tensors(self, kw: dict[str, Any]) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(names in formula order, the names among them that are fixed buffers)."""

    @abstractmethod
    def shared_init(self, kw: dict[str, Any], normal: Normal | None) -> dict[str, np.ndarray]:
        """float64 initial values of one channel (shared shapes)."""

    def initial(self, kw: dict[str, Any], normal: Normal | None = None) -> dict[str, np.ndarray]:
        """float64 initial values, (C, ...) per channel when ``channels`` is set."""
        values = self.shared_init(kw, normal)
        c = kw["channels"]
        if c is None:
            return values
        return {k: np.ascontiguousarray(np.broadcast_to(v, (c, *np.shape(v))))
                for k, v in values.items()}

    @abstractmethod
    def forward(self, xp: Any, x: Any, p: dict[str, Any], kw: dict[str, Any]) -> Any:
        """f(x) by the family's core formula (xp: the array namespace)."""

    def derivative(self, x: np.ndarray, p: dict[str, np.ndarray], kw: dict[str, Any]
                   ) -> np.ndarray | None:
        """f'(x) in numpy float64 for one channel's parameters, or None (then autodiff of
        the formula, in float64, gives it)."""
        return None

    def kinks(self, kw: dict[str, Any], p: dict[str, np.ndarray]) -> np.ndarray | None:
        """Points where f' may jump (one channel), or None if f is smooth."""
        return None

    def table_tensors(self, p: dict[str, Any]) -> dict[str, Any]:
        """The tensors the kernel's table packs, from the op's (optional ones None or absent);
        by default all of them."""
        return p

    def table_config(self, widths: dict[str, int]) -> tuple[int, int]:
        """The kernel's two family integers (``Cfg`` a, b in native/common.h) from the packed
        columns' widths (name -> width; optional tensors left out are absent)."""
        raise NotImplementedError(f"{self.name} has no fused C kernel")

    def flops_per_element(self, kw: dict[str, Any]) -> tuple[int, int]:
        """(arithmetic operations, transcendental calls) per element of the forward."""
        return 0, 0
