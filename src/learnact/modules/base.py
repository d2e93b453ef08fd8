"""Common base of every learnable activation module."""

from __future__ import annotations

import functools
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from .._validate import check_channels, check_input_channels, check_int
from ..core.families import FAMILIES
from ..moments import GaussianMoments

__all__ = ["LearnableActivation"]


class LearnableActivation(nn.Module):
    """Base class: channel handling, input checks, exact-moment hooks.

    Args:
        channels: ``None`` for one shared set of parameters, ``C`` for one set per channel.
        channel_dim: the channel dimension of the input (1 for NCHW/NC..., -1 for (B, T, C)).

    Subclasses implement :meth:`forward`, :meth:`reset_parameters` and
    :meth:`function_and_derivative` (a float64 evaluation used for exact moments and fitting),
    and may override :meth:`kinks` (points where f' jumps, for piecewise quadrature).

    **Family hooks** (docs/design.md, "The family contract"): what the rest of the library
    needs to know about a family is declared here, on the class, and read by name - never
    found out by ``isinstance``: the class attributes below, and the methods
    :meth:`closed_form_moments` (moments.py), :meth:`closed_form_fit` and :meth:`fit_start`
    (fit.py), :meth:`flops_per_element` (speed.py). Defaults mean "none": quadrature,
    a generic L-BFGS fit, no flop count.
    """

    #: registry name of the family (set by subclasses)
    family: ClassVar[str] = ""
    #: other registry names of the family
    aliases: ClassVar[tuple[str, ...]] = ()
    #: init names this family accepts; the first is the default
    inits: ClassVar[tuple[str, ...]] = ("unit",)
    #: whether a default-constructed module has trainable parameters (registry "learnable")
    learnable_by_default: ClassVar[bool] = True
    #: specs with which the family joins the main job's default list (empty: it does not)
    main_job_specs: ClassVar[tuple[str, ...]] = ()
    #: small specs that the shared property tests (tests/test_common.py, ...) run
    test_specs: ClassVar[tuple[str, ...]] = ()
    #: parameters that :meth:`closed_form_fit` holds fixed (fit refines them by L-BFGS when
    #: they are trainable and that lowers the error)
    closed_form_held: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs) -> None:
        """Every family's ``__init__`` builds on the CPU and then moves to the default device,
        and accepts (and ignores) timm's ``inplace`` keyword.

        Initialisation computes exact moments, least squares and Cholesky factors (``.item()``,
        ``lstsq``, ``nonzero``), which the meta device cannot run: under
        ``with torch.device("meta")`` (Hugging Face's empty-weights loading, FSDP's deferred
        init) or a CUDA default device, the values are computed on the CPU and the finished
        module is moved there (meta: shapes only, as loading expects)."""
        super().__init_subclass__(**kwargs)
        definition = FAMILIES.get(cls.__dict__.get("family", ""))
        if definition is not None:  # the definition's lists, by construction
            if definition.inits:
                cls.inits = definition.inits
            cls.test_specs = definition.test_specs
            cls.main_job_specs = definition.main_job_specs
        init = cls.__dict__.get("__init__")
        if init is None:
            return

        @functools.wraps(init)
        def build_on_cpu(self, *args, **kw) -> None:
            # timm's convention: act_layer(inplace=True); nothing here works in place
            inplace = kw.pop("inplace", False)
            if not isinstance(inplace, bool):
                raise TypeError(f"inplace must be True or False (accepted and ignored), got "
                                f"{inplace!r}")
            target = torch.get_default_device()
            if target.type == "cpu":  # also every nested super().__init__ below the first
                init(self, *args, **kw)
                return
            with torch.device("cpu"):
                init(self, *args, **kw)
            self.to(target)

        cls.__init__ = build_on_cpu  # type: ignore[method-assign]

    def __init__(self, channels: int | None = None, channel_dim: int = 1) -> None:
        super().__init__()
        self.channels = check_channels(channels)
        self.channel_dim = check_int("channel_dim", channel_dim)

    # -- shapes ---------------------------------------------------------------------------
    def _param_shape(self, *tail: int) -> tuple[int, ...]:
        return ((self.channels,) if self.channels is not None else ()) + tail

    def __prepare_scriptable__(self) -> nn.Module:
        """torch.jit.script calls this first: the training modules are Python (custom ops,
        autograd Functions) that TorchScript cannot compile; say what does work."""
        raise TypeError(
            f"torch.jit.script cannot compile learnact.{type(self).__name__} (a training "
            "module: custom ops and autograd Functions TorchScript does not parse). For "
            "inference, script learnact.freeze(model) (standard operators on constant buffers; "
            "every family); to train, use torch.compile; torch.jit.trace, torch.export and "
            "torch.onnx.export take the module as it is")

    def _configure(self, **kw: Any) -> dict[str, Any]:
        """Check the constructor's arguments by the family's definition
        (:mod:`learnact.core.families`: the same checks, ranges and messages in PyTorch, JAX
        and Keras) and keep each as an attribute; returns the normalised arguments."""
        out = FAMILIES[self.family].check(dict(kw, channels=self.channels,
                                                channel_dim=self.channel_dim))
        for k, v in out.items():
            if k not in ("channels", "channel_dim"):
                setattr(self, k, v)
        return out

    def _check_input(self, x: Tensor) -> None:
        if not isinstance(x, Tensor):
            raise TypeError(f"input must be a torch.Tensor, got {type(x).__name__}")
        if not x.is_floating_point():
            raise TypeError(f"input must be a floating-point tensor, got dtype {x.dtype}")
        check_input_channels(tuple(x.shape), self.channels, self.channel_dim,
                             type(self).__name__)

    @torch.no_grad()
    def _copy_init(self, values: dict[str, Tensor]) -> None:
        """Copy shared-shape init values into (possibly per-channel) parameters/buffers."""
        for name, value in values.items():
            t = getattr(self, name)
            t.copy_(torch.as_tensor(value).to(t.dtype).expand_as(t))

    @torch.no_grad()
    def _set_fitted(self, values: dict[str, Tensor], channel: int | None) -> None:
        """Copy fitted float64 values into every channel (channel None) or one channel."""
        for name, value in values.items():
            t = getattr(self, name)
            target = t if channel is None or t.ndim == 0 else t[channel]
            target.copy_(torch.as_tensor(value).to(t.dtype).expand_as(target))

    # -- exact moments --------------------------------------------------------------------
    def function_and_derivative(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """(f(z), f'(z)) in float64 for 1-D z; shape (n,) shared or (C, n) per channel."""
        raise NotImplementedError

    def kinks(self, channel: int | None = None) -> Tensor | None:
        """Points where f' may jump (of one channel, or the union), or None if f is smooth."""
        return None

    def closed_form_moments(self) -> GaussianMoments | None:
        """Exact moments in closed form, or None (then moments.py integrates
        :meth:`function_and_derivative` by quadrature)."""
        return None

    def closed_form_fit(self, x: Tensor, y: Tensor, dy: Tensor, w: Tensor,
                        derivative_weight: float, channel: int | None) -> str | None:
        """Fit (one channel of) the module to target values y and slopes dy at the float64
        points x with weights w, in closed form, in place; return the method's description,
        or None if the family has no closed form (then fit.py runs L-BFGS)."""
        return None

    def fit_start(self, x: Tensor, y: Tensor, dy: Tensor, w: Tensor,
                  channel: int | None) -> None:
        """Move the parameters to a good start for the generic (L-BFGS) fit; default: none."""

    def fit_twin(self) -> LearnableActivation | None:
        """A module with the same parameters that :func:`learnact.fit` fits instead of this
        one (its parameters are then copied here), for a forward whose second derivatives the
        fit's derivative term cannot take; default None (fit this module)."""
        return None

    def inference_form(self, *, ditac: str = "table", points: int = 4096) -> nn.Module:
        """The family's frozen form (:func:`learnact.freeze`): standard operators on constant
        buffers. ``ditac`` and ``points`` are read by DiTAC only."""
        raise ValueError(f"freeze: no inference form for the family {self.family!r} "
                         f"({type(self).__name__})")

    def flops_per_element(self) -> tuple[int, int]:
        """(arithmetic operations, transcendental calls) per element of the forward, counted
        analytically for the benchmark table; (0, 0) where not counted."""
        return 0, 0

    def second_moments(self):
        """(E[f^2], E[f'^2]) under N(0, 1), exact; see :func:`learnact.second_moments`."""
        from ..moments import second_moments

        return second_moments(self)

    def _channel_repr(self) -> str:
        s = f"channels={self.channels}"
        if self.channels is not None:
            s += f", channel_dim={self.channel_dim}"
        return s

    @torch.no_grad()
    def _eval64(self, fn, z: Tensor) -> Tensor:
        """Evaluate fn(x, channel_dim=-1) on z broadcast against every channel -> (C, n) | (n,)."""
        z = z.to(torch.float64)
        if self.channels is None:
            return fn(z, -1)
        x = z.reshape(-1, 1).expand(-1, self.channels)
        return fn(x, -1).transpose(0, 1)
