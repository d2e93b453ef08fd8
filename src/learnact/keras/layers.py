"""Keras 3 layers for the learnable families, built from learnact.core.families."""

from __future__ import annotations

import inspect
from typing import Any, ClassVar

import keras
import numpy as np
from keras import ops

from .. import xla_native
from .._frontend import FIXED_NAMES, derived_init, from_spec, names
from .._validate import check_choice, check_float, check_input_channels, check_int
from ..core import cpab, surrogate
from ..core.families import FAMILIES, family

__all__ = ["Activation", "Fixed", "Perlin", "DiTAC", "LeakyDiTAC", "GEDiTAC",
           "SurrogateActivation", "Staircase", "Cantor", "Cantor2", "LeftRight", "create",
           "available"]

_PACKAGE = "learnact"


class _Values:
    """Initializer returning fixed float64 values (cast to the variable's dtype)."""

    def __init__(self, value: np.ndarray) -> None:
        self.value = value

    def __call__(self, shape: Any, dtype: Any = None) -> Any:
        return ops.convert_to_tensor(np.asarray(self.value).reshape(shape), dtype=dtype)


class _Ops:
    """``keras.ops`` for the core's formulas, except where Keras' type promotion drops float64:
    on the JAX and PyTorch backends ``sin``/``cos``/``floor``/``tanh`` (JAX) and
    ``minimum``/``maximum``/``clip``/``matmul``/``cumsum`` (PyTorch) return float32 for float64
    tensors
    (keras.src.backend.common.dtypes maps float64 to float32 outside TensorFlow), which would
    cost float64 layers eight digits. For float64 tensors those go to the backend's own
    function."""

    def __getattr__(self, name: str) -> Any:
        return getattr(ops, name)

    @staticmethod
    def _native(name: str, x: Any, *rest: Any) -> Any:
        backend = keras.backend.backend()
        if keras.backend.standardize_dtype(x.dtype) == "float64" and backend in ("jax", "torch"):
            if backend == "jax":
                import jax.numpy as module
            else:
                import torch as module
            return getattr(module, name)(x, *rest)
        return getattr(ops, name)(x, *rest)

    def cos(self, x: Any) -> Any:
        return self._native("cos", x)

    def sin(self, x: Any) -> Any:
        return self._native("sin", x)

    def floor(self, x: Any) -> Any:
        return self._native("floor", x)

    def tanh(self, x: Any) -> Any:
        return self._native("tanh", x)

    def minimum(self, x: Any, y: Any) -> Any:
        return self._native("minimum", x, y)

    def clip(self, x: Any, lo: Any, hi: Any) -> Any:
        return self._native("clip", x, lo, hi)

    def maximum(self, x: Any, y: Any) -> Any:
        return self._native("maximum", x, y)

    def matmul(self, x: Any, y: Any) -> Any:  # float32 on the PyTorch backend (DiTAC's B theta)
        return self._native("matmul", x, y)

    def cumsum(self, x: Any, axis: int) -> Any:  # DiTAC's crossing times and their gradient
        return self._native("cumsum", x, axis)

    @staticmethod
    def materialize(arrays: tuple) -> tuple:
        """On the JAX backend the arrays computed once before their consumers
        (learnact._xla.materialize: XLA would fuse them into each); else as is."""
        if keras.backend.backend() == "jax":
            from .. import _xla

            return _xla.materialize(arrays)
        return arrays

    def cpab_flow(self, u: Any, a: Any, b: Any, cells: int, cd: int) -> Any:
        """The CPAB flow with its analytic derivative (learnact.core.cpab.flow_vjp) on every
        backend (``keras.ops.custom_gradient``): autodiff through the closed form's selects
        costs ~70x its forward on XLA's CPU backend. On the JAX backend the JAX frontend's,
        compiled as one program (learnact._xla)."""
        if keras.backend.backend() == "jax":
            from .. import _xla

            return _xla.cpab_flow(u, a, b, cells, cd)

        @ops.custom_gradient
        def f(u: Any, a: Any, b: Any) -> Any:
            def grad(*args: Any, upstream: Any = None) -> Any:
                if upstream is None:
                    (upstream,) = args
                return cpab.flow_vjp(self, upstream, u, a, b, cells, cd)

            return cpab.flow(self, u, a, b, cells, len(u.shape), cd), grad

        return f(u, a, b)

    def cpab_lut_tables(self, ta: Any, tb: Any, **kw: Any) -> tuple[Any, Any]:
        """learnact.core.cpab.lut_tables; on the JAX backend the JAX frontend's, compiled as
        one program (eagerly, JAX would compile each of its small operations on first use)."""
        if keras.backend.backend() == "jax":
            from .. import _xla

            return _xla.Jnp.cpab_lut_tables(ta, tb, **kw)
        return cpab.lut_tables(self, ta, tb, **kw)

    @staticmethod
    def ditac_fused(mode: str, x: Any, tables: tuple, **kw: Any) -> Any:
        """On the JAX backend DiTAC by its fused CPU kernels (learnact.xla_native.ditac, None
        where they do not apply); None on the others."""
        if keras.backend.backend() != "jax":
            return None
        from ..xla_native import ditac

        return ditac.apply(mode, x, tables, **kw)


_OPS = _Ops()


def _compute_dtype(dtype: Any) -> str:
    name = keras.backend.standardize_dtype(dtype)
    if not name.startswith(("float", "bfloat")):
        raise TypeError(f"input must be a floating-point tensor, got dtype {name}")
    return "float32" if name in ("float16", "bfloat16") else name


class Activation(keras.layers.Layer):
    """Base of the learnable families: creates the family's variables from the core's float64
    initial values (trainable parameters and non-trainable buffers) and evaluates its formula
    with ``keras.ops``."""

    family: ClassVar[str] = ""

    def _build(self, kw: dict[str, Any], seed: int | None) -> None:
        fam = family(self.family)
        self._kw = fam.check(kw)
        self.seed = None if seed is None else check_int("seed", seed, 0)
        names_, buffers = fam.tensors(self._kw)
        rng = np.random.default_rng(self.seed)  # one generator: every table its own draw
        values = fam.initial(self._kw, lambda shape: rng.normal(size=shape))
        for n in names_:
            setattr(self, n, self.add_weight(name=n, shape=values[n].shape,
                                             initializer=_Values(values[n]),
                                             trainable=n not in buffers,
                                             # read at float32 under mixed precision: the
                                             # math runs in float32 (as PyTorch's) and
                                             # DiTAC's prior loss stays float32
                                             autocast=False))
        self._names = names_

    @property
    def channels(self) -> int | None:
        return self._kw["channels"]

    @property
    def channel_dim(self) -> int:
        return self._kw["channel_dim"]

    def call(self, x: Any, training: bool | None = None) -> Any:
        dtype = keras.backend.standardize_dtype(x.dtype)
        ct = _compute_dtype(dtype)
        check_input_channels(tuple(x.shape), self._kw["channels"], self._kw["channel_dim"],
                             type(self).__name__)
        p = self._tensors(ct, training)
        x = ops.cast(x, ct)
        y = None
        if keras.backend.backend() == "jax":  # learnact.jax's fused CPU kernels
            y = xla_native.apply(self.family, x, p, self._kw)
        if y is None:
            y = family(self.family).forward(_OPS, x, p, self._kw)
        return ops.cast(y, dtype)

    def _tensors(self, ct: str, training: bool | None) -> dict[str, Any]:
        return {n: ops.cast(getattr(self, n), ct) for n in self._names}

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return super().get_config() | dict(self._kw) | {"seed": self.seed}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class Perlin(Activation):
    r"""A fixed (or learnable) random 1-D noise function as an activation,
    f(x) = b(x) + a sum_{o<O} 2^{-o} n_o(x): value noise (lattice values, smoothstep) or
    gradient noise (Perlin's lattice gradients, quintic fade) at ``resolution`` 2^o cells on
    [-r, r], continued C1-linearly outside; b an optional base activation.

    Args: ``kind`` "value"/"gradient"; ``resolution`` >= 1 (8); ``octaves`` in [1, 12] (3);
    ``radius`` r > 0 (3); ``seed`` (the lattices' numpy generator: the same seed is a
    different function than PyTorch's Perlin); ``amplitude`` a (1); ``base`` "none",
    "identity", "relu", "gelu"; ``learnable`` (trainable lattices; default non-trainable);
    ``channels``/``channel_dim`` accepted and ignored. No unit init: a random draw.
    Source: K. Perlin, SIGGRAPH 1985; "Improving noise", SIGGRAPH 2002.
    """

    family = "perlin"

    def __init__(self, kind: str = "value", resolution: int = 8, octaves: int = 3,
                 radius: float = 3.0, seed: int = 0, amplitude: float = 1.0, base: str = "none",
                 learnable: bool = False, channels: int | None = None, channel_dim: int = -1,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._build(dict(kind=kind, resolution=resolution, octaves=octaves, radius=radius,
                         seed=seed, amplitude=amplitude, base=base, learnable=learnable,
                         channels=channels, channel_dim=channel_dim), None)

    def get_config(self) -> dict[str, Any]:
        return super().get_config() | {"seed": self._kw["seed"]}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class DiTAC(Activation):
    r"""DiTAC: a CPAB diffeomorphism T_theta of the input on [a, b], gated like GELU,
    f(x) = x~ s(x), x~ = a + (b - a) T((x - a)/(b - a)) on [a, b] and x elsewhere.

    T is the time-1 flow of a continuous piecewise-affine velocity field with ``cells`` cells
    and zero velocity at both ends, (a_j, b_j) = B theta with the same basis B as PyTorch's
    (non-trainable weight ``basis``), integrated in closed form cell by cell
    (learnact.core.cpab). Args as :class:`learnact.modules.DiTAC`: ``a`` (default -0.5),
    ``b`` (2), ``cells`` (10), ``channels``, ``channel_dim`` (default -1), ``init``
    ("prior": one draw from the released code's init covariance, from ``seed``; "zeros":
    GELU), ``gate``, ``warp``, ``alpha``, and the prior's ``lambda_reg``, ``lambda_smooth``,
    ``lambda_var``, ``kernel``: every call adds lambda_reg theta^T P theta to the layer's
    losses (``add_loss``: ``model.fit`` minimises it with the data loss). ``lut=n``: the
    lookup-table mode (PyTorch's bin rule and straight-through derivative).
    ``prior="released"``: the released code's update instead (theta's gradient becomes
    d dL/dtheta + 2 lambda_reg theta * colsum(P) in calls with ``training=True``, as
    ``model.fit`` makes them; no loss is added), for reproducing published numbers.

    Source: I. Chelly, S. E. Finder, S. Ifergane, O. Freifeld, "Trainable Highly-expressive
    Activation Functions", ECCV 2024 (arXiv:2407.07564).
    """

    family = "ditac"

    def __init__(self, a: float | None = None, b: float = 2.0, cells: int = 10,
                 channels: int | None = None, channel_dim: int = -1, init: str = "prior",
                 gate: str | None = None, warp: str = "input", lut: int | None = None,
                 lambda_reg: float = 0.1, lambda_smooth: float = 5.0, lambda_var: float = 2.0,
                 kernel: str = "released", alpha: float = 0.01, prior: str = "explicit",
                 seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._build(dict(a=a, b=b, cells=cells, channels=channels, channel_dim=channel_dim,
                         init=init, gate=gate, warp=warp, lut=lut, lambda_reg=lambda_reg,
                         lambda_smooth=lambda_smooth, lambda_var=lambda_var, kernel=kernel,
                         alpha=alpha, prior=prior), seed)
        self._precision = family(self.family).precision(self._kw)

    def prior_loss(self) -> Any:
        """lambda_reg * theta^T P theta (summed over channels); 0 with ``prior="released"``
        (whose prior acts on the gradient)."""
        dtype = keras.backend.standardize_dtype(self.theta.dtype)
        if self._kw["prior"] == "released":
            return ops.zeros((), dtype)
        return family(self.family).prior_loss(
            _OPS, self.theta, ops.convert_to_tensor(self._precision, dtype=dtype),
            self._kw["lambda_reg"])

    def _tensors(self, ct: str, training: bool | None) -> dict[str, Any]:
        p = super()._tensors(ct, training)
        kw = self._kw
        if kw["prior"] == "released" and training:
            P = ops.convert_to_tensor(self._precision, dtype=ct)

            @ops.custom_gradient
            def released(theta: Any) -> Any:
                def grad(*args: Any, upstream: Any = None) -> Any:
                    if upstream is None:
                        (upstream,) = args
                    return family(self.family).released_gradient(_OPS, theta, upstream, P,
                                                                 kw["lambda_reg"])

                return theta + ops.zeros_like(theta), grad

            p["theta"] = released(p["theta"])
        return p

    def call(self, x: Any, training: bool | None = None) -> Any:
        if self._kw["lambda_reg"] > 0 and self._kw["prior"] == "explicit":
            self.add_loss(self.prior_loss())
        return super().call(x, training=training)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class LeakyDiTAC(DiTAC):
    r"""Leaky-DiTAC: :class:`DiTAC` with the leaky-ReLU gate (s = 1 for x > 0, alpha else) by
    default."""

    family = "leaky_ditac"


@keras.saving.register_keras_serializable(package=_PACKAGE)
class GEDiTAC(DiTAC):
    r"""GE-DiTAC: :class:`DiTAC` on [0, b] by default (f = GELU for x < 0)."""

    family = "ge_ditac"


class SurrogateActivation(keras.layers.Layer):
    """Base of the surrogate-derivative activations: a fixed forward whose backward is the
    declared derivative (``keras.ops.custom_gradient``), not the forward's own derivative."""

    kind: ClassVar[str] = ""

    def _build(self, kw: dict[str, Any]) -> None:
        self._kw = surrogate.check(self.kind, kw)

    def call(self, x: Any) -> Any:
        dtype = keras.backend.standardize_dtype(x.dtype)
        ct = _compute_dtype(dtype)
        kind, kw = self.kind, self._kw

        @ops.custom_gradient
        def f(t: Any) -> Any:
            def grad(*args: Any, upstream: Any = None) -> Any:
                if upstream is None:
                    (upstream,) = args
                return surrogate.backward(_OPS, kind, t, ops.cast(upstream, t.dtype), kw)

            return surrogate.forward(_OPS, kind, t, kw), grad

        return ops.cast(f(ops.cast(x, ct)), dtype)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return super().get_config() | dict(self._kw)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class Staircase(SurrogateActivation):
    r"""Hard staircase forward, smooth-staircase derivative backward.

    forward: f(x) = w (clamp(floor(x/w + n/2), 0, n) - n/2), n+1 levels; backward:
    grad * k sum_j sigma'(k (x - b_j)/w), b_j = (j - n/2) w (positive everywhere; not the true
    gradient). Args: ``steps`` n >= 1 (default 8), ``width`` w > 0 (0.5), ``sharpness`` k > 0
    (2). Source: surrogate-gradient training (e.g. Neftci, Mostafa, Zenke, IEEE SPM 2019).
    """

    kind = "staircase"

    def __init__(self, steps: int = 8, width: float = 0.5, sharpness: float = 2.0,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._build(dict(steps=steps, width=width, sharpness=sharpness))


@keras.saving.register_keras_serializable(package=_PACKAGE)
class Cantor(SurrogateActivation):
    r"""Depth-n Cantor staircase forward on [lo, hi] (2^n flat steps); backward 0 (its
    derivative almost everywhere). Args: ``depth`` in [1, 30] (default 4), ``lo`` < ``hi``
    (default -3, 3). Source: the Cantor function (G. Cantor, 1884) as an activation
    experiment."""

    kind = "cantor"

    def __init__(self, depth: int = 4, lo: float = -3.0, hi: float = 3.0,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._build(dict(depth=depth, lo=lo, hi=hi))


@keras.saving.register_keras_serializable(package=_PACKAGE)
class Cantor2(Cantor):
    r"""The Cantor staircase forward of :class:`Cantor`; backward: derivative 1 (straight
    through). Not the true gradient."""

    kind = "cantor2"


@keras.saving.register_keras_serializable(package=_PACKAGE)
class LeftRight(SurrogateActivation):
    r"""ReLU forward; backward grad where grad < 0 (the right derivative, 1), grad [x > 0]
    elsewhere: a "dead" unit still receives gradient when the loss wants it to grow."""

    kind = "left_right"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._build({})


@keras.saving.register_keras_serializable(package=_PACKAGE)
class NoisyDerivative(keras.layers.Layer):
    r"""A classical activation's forward with a noisy derivative.

    forward: base(x) (default ReLU). backward in calls with ``training=True`` (as
    ``model.fit`` makes them): grad * base'(x) * u, u ~ U(lower, upper) per element (the RReLU
    idea applied to the derivative instead of the function); otherwise grad * base'(x). Not
    the true gradient in training. Args: ``base`` (a classical activation's name, default
    "relu"), ``lower`` <= ``upper`` (0.5, 1.5), ``seed`` (the noise's ``SeedGenerator``);
    ``channels``/``channel_dim`` ignored. As PyTorch's ``noisy`` (whose base may be any spec).
    """

    kind = "noisy"

    def __init__(self, base: str = "relu", lower: float = 0.5, upper: float = 1.5,
                 channels: int | None = None, channel_dim: int = -1, seed: int | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.base, self.lower, self.upper = surrogate.check_noisy(base, lower, upper,
                                                                  FIXED_NAMES)
        self.seed = None if seed is None else check_int("seed", seed, 0)
        self.fn = Fixed(self.base, dtype=self.dtype_policy)  # the layer's dtype, not float32
        self.noise = keras.random.SeedGenerator(self.seed)

    def call(self, x: Any, training: bool | None = None) -> Any:
        dtype = keras.backend.standardize_dtype(x.dtype)
        ct = _compute_dtype(dtype)
        t = ops.cast(x, ct)
        u = (keras.random.uniform(ops.shape(t), self.lower, self.upper, dtype=ct,
                                  seed=self.noise) if training else ops.ones_like(t))
        base, fn = self.base, self.fn

        @ops.custom_gradient
        def f(t: Any, u: Any) -> Any:
            def grad(*args: Any, upstream: Any = None) -> Any:
                if upstream is None:
                    (upstream,) = args
                upstream = ops.cast(upstream, t.dtype)
                return (upstream * surrogate.fixed_derivative(_OPS, base, t) * u,
                        ops.zeros_like(u))

            # the base layer answers in its policy's dtype (bfloat16 under mixed_bfloat16):
            # back to the compute dtype, so the gradient's dtypes match
            return ops.cast(fn(t), t.dtype), grad

        return ops.cast(f(t, u), dtype)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return super().get_config() | {"base": self.base, "lower": self.lower,
                                       "upper": self.upper, "seed": self.seed}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class Fixed(keras.layers.Layer):
    """A classical (parameter-free) activation by its PyTorch name, for baselines:
    identity, relu, silu, tanh, sigmoid, softplus, selu, elu, leaky_relu (``negative_slope``),
    gelu (``approximate``: "none", exact as PyTorch's default, or "tanh")."""

    def __init__(self, activation: str = "identity", approximate: str = "none",
                 negative_slope: float = 0.01, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.kind = check_choice("activation", activation, FIXED_NAMES)
        self.approximate = check_choice("approximate", approximate, ("none", "tanh"))
        self.negative_slope = check_float("negative_slope", negative_slope)

    def call(self, x: Any) -> Any:
        _compute_dtype(x.dtype)
        if self.kind == "gelu" and self.approximate == "none":
            # x Phi(x) by erf: keras.ops.gelu's exact form loses float64 digits on TensorFlow
            return 0.5 * x * (1.0 + ops.erf(x * 0.7071067811865476))
        if self.kind == "gelu":
            return ops.gelu(x, approximate=True)
        if self.kind == "leaky_relu":
            return ops.leaky_relu(x, negative_slope=self.negative_slope)
        if self.kind == "identity":
            return x
        return getattr(_OPS, self.kind)(x)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return super().get_config() | {"activation": self.kind, "approximate": self.approximate,
                                       "negative_slope": self.negative_slope}


def derive(definition: Any) -> type[Activation]:
    """The Keras layer class of a derived family (learnact.core.definition): the definition's
    arguments, ``channels=None, channel_dim=-1``, ``seed=None`` and Keras' layer keywords;
    registered for ``.keras`` files under the package "learnact"."""
    P = inspect.Parameter
    extra = (P("seed", P.POSITIONAL_OR_KEYWORD, default=None, annotation=int | None),
             P("kwargs", P.VAR_KEYWORD, annotation=Any))

    def build(self: Activation, kw: dict[str, Any], ex: dict[str, Any]) -> None:
        keras.layers.Layer.__init__(self, **ex["kwargs"])
        self._build(kw, ex["seed"])

    cls = type(definition.class_name, (Activation,), {
        "__init__": derived_init(definition, -1, extra, build),
        "__doc__": type(definition).__doc__, "__module__": __name__,
        "__qualname__": definition.class_name, "family": definition.name})
    return keras.saving.register_keras_serializable(package=_PACKAGE)(cls)


#: the classes generated from the definitions (every family that declares its arguments:
#: Hermite, Fourier, Tropical, TropicalRational, Rational, SELUVariation, PWLU), by name
DERIVED: dict[str, type] = {d.name: derive(d) for d in FAMILIES.values() if d.arguments}
globals().update({c.__name__: c for c in DERIVED.values()})
__all__ += [c.__name__ for c in DERIVED.values()]

_CLASSES: dict[str, type] = {c.family: c for c in (
    *DERIVED.values(), DiTAC, LeakyDiTAC, GEDiTAC)}
#: the surrogate-derivative activations (not learnable: ``available(learnable=False)``)
_SURROGATES: dict[str, type] = {c.kind: c for c in (
    Staircase, Cantor, Cantor2, LeftRight, NoisyDerivative)} | {"perlin": Perlin}


def available(learnable: bool | None = None) -> list[str]:
    """Sorted names ``create`` accepts (the learnable families and the fixed baselines)."""
    return names(_CLASSES, learnable, _SURROGATES)


def create(spec: str | keras.layers.Layer, **overrides: Any) -> keras.layers.Layer:
    """Build a layer from a spec string (``"hermite:degree=8,channels=64"``), the same strings
    as ``learnact.create``; a layer instance passes through unchanged. ``overrides`` (also
    Keras layer keywords such as ``dtype`` and ``name``) take precedence over the spec."""
    if isinstance(spec, keras.layers.Layer):
        if overrides:
            raise TypeError("overrides cannot be applied to an already built layer instance")
        return spec
    layer_kw = {k: overrides.pop(k) for k in ("dtype", "name", "trainable") if k in overrides}
    return from_spec(spec, _CLASSES, Fixed, "learnact.keras", ("kwargs",), layer_kw, overrides,
                     _SURROGATES, layer_kw)
