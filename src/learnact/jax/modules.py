"""Flax NNX modules for the learnable families, built from learnact.core.families."""

from __future__ import annotations

import functools
import inspect
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from .. import xla_native
from .._frontend import FIXED_NAMES, derived_init, from_spec, names
from .._validate import check_choice, check_float, check_input_channels, check_int
from ..core import surrogate
from ..core.families import FAMILIES, family
from .functional import _JNP, compute_dtype

__all__ = ["Activation", "Buffer", "Fixed", "Perlin", "DiTAC", "LeakyDiTAC", "GEDiTAC",
           "SurrogateActivation", "Staircase", "Cantor", "Cantor2", "LeftRight",
           "NoisyDerivative", "create", "available", "parameters", "regularization"]


class Buffer(nnx.Variable):
    """A fixed tensor of an activation (Hermite's tail bounds, tropical slopes): saved with
    the module's state, never trained (``nnx.grad`` and ``nnx.Optimizer`` take ``nnx.Param``)."""


class Activation(nnx.Module):
    """Base of the learnable families: builds the family's tensors from the core's float64
    initial values and evaluates its formula in ``__call__``."""

    family: ClassVar[str] = ""

    def _build(self, kw: dict[str, Any], param_dtype: Any, rngs: nnx.Rngs | None) -> None:
        fam = family(self.family)
        kw = fam.check(kw)
        if not jnp.issubdtype(param_dtype, jnp.floating):
            raise TypeError(f"param_dtype must be a floating dtype, got {param_dtype}")
        names, buffers = fam.tensors(kw)

        def normal(shape: tuple[int, ...]) -> np.ndarray:
            if rngs is None:
                raise ValueError(f"{type(self).__name__}(init={kw.get('init')!r}) draws its "
                                 "parameters at random: pass rngs=nnx.Rngs(seed)")
            return np.asarray(jax.random.normal(rngs.params(), shape, jnp.float32))

        values = fam.initial(kw, normal)
        for n in names:
            kind = Buffer if n in buffers else nnx.Param
            setattr(self, n, kind(jnp.asarray(values[n], dtype=param_dtype)))
        self.config = tuple(kw.items())  # static (hashable) arguments
        self.tensor_names = names

    @property
    def channels(self) -> int | None:
        return dict(self.config)["channels"]

    @property
    def channel_dim(self) -> int:
        return dict(self.config)["channel_dim"]

    def __call__(self, x: Any) -> Any:
        x = jnp.asarray(x)
        ct = compute_dtype(x.dtype)
        kw = dict(self.config)
        check_input_channels(x.shape, kw["channels"], kw["channel_dim"], type(self).__name__)
        p = self._tensors(ct)
        y = xla_native.apply(self.family, x.astype(ct), p, kw)  # fused CPU kernels
        if y is None:
            y = family(self.family).forward(_JNP, x.astype(ct), p, kw)
        return y.astype(x.dtype)

    def _tensors(self, ct: Any) -> dict[str, Any]:
        return {n: getattr(self, n)[...].astype(ct) for n in self.tensor_names}


class Perlin(Activation):
    r"""A fixed (or learnable) random 1-D noise function as an activation,
    f(x) = b(x) + a sum_{o<O} 2^{-o} n_o(x): value noise (lattice values, smoothstep) or
    gradient noise (Perlin's lattice gradients, quintic fade) at ``resolution`` 2^o cells on
    [-r, r], continued C1-linearly outside; b an optional base activation.

    Args: ``kind`` "value"/"gradient"; ``resolution`` >= 1 (8); ``octaves`` in [1, 12] (3);
    ``radius`` r > 0 (3); ``seed`` (the lattices: numpy's generator, so the same seed is a
    different function than PyTorch's Perlin); ``amplitude`` a (1); ``base`` "none",
    "identity", "relu", "gelu"; ``learnable`` (lattices as parameters; default buffers);
    ``channels``/``channel_dim`` accepted and ignored. No unit init: a random draw.
    Source: K. Perlin, SIGGRAPH 1985; "Improving noise", SIGGRAPH 2002.
    """

    family = "perlin"

    def __init__(self, kind: str = "value", resolution: int = 8, octaves: int = 3,
                 radius: float = 3.0, seed: int = 0, amplitude: float = 1.0, base: str = "none",
                 learnable: bool = False, channels: int | None = None, channel_dim: int = -1,
                 *, param_dtype: Any = jnp.float32) -> None:
        self._build(dict(kind=kind, resolution=resolution, octaves=octaves, radius=radius,
                         seed=seed, amplitude=amplitude, base=base, learnable=learnable,
                         channels=channels, channel_dim=channel_dim), param_dtype, None)


class DiTAC(Activation):
    r"""DiTAC: a CPAB diffeomorphism T_theta of the input on [a, b], gated like GELU,
    f(x) = x~ s(x), x~ = a + (b - a) T((x - a)/(b - a)) on [a, b] and x elsewhere.

    T is the time-1 flow of a continuous piecewise-affine velocity field with ``cells`` cells
    and zero velocity at both ends, (a_j, b_j) = B theta with the same basis B as PyTorch's
    (so the same theta gives the same function), integrated in closed form cell by cell
    (learnact.core.cpab). Args as :class:`learnact.modules.DiTAC`: ``a`` (default -0.5),
    ``b`` (2), ``cells`` (10), ``channels``, ``channel_dim`` (default -1), ``init``
    ("prior": one draw from the released code's init covariance, from ``rngs``; "zeros":
    GELU), ``gate`` ("gelu", "leaky_relu", "silu", "identity"), ``warp`` ("input"/"output"),
    ``alpha``, and the prior's ``lambda_reg``, ``lambda_smooth``, ``lambda_var``, ``kernel``:
    :meth:`prior_loss` = lambda_reg theta^T P theta, summed over a model by
    :func:`regularization`. ``lut=n``: the lookup-table mode (PyTorch's bin rule and
    straight-through derivative; the table computed in the graph on every call).
    ``prior="released"``: the released code's update instead of the explicit prior (theta's
    gradient becomes d dL/dtheta + 2 lambda_reg theta * colsum(P) while the module trains,
    i.e. until ``model.eval()`` sets ``deterministic``; :meth:`prior_loss` is then 0), for
    reproducing published numbers. The exact flow's derivative is a custom reverse-mode rule:
    ``jax.grad``/``vjp`` (and grad of grad) work, forward mode (``jvp``, ``jacfwd``) does not.

    Source: I. Chelly, S. E. Finder, S. Ifergane, O. Freifeld, "Trainable Highly-expressive
    Activation Functions", ECCV 2024 (arXiv:2407.07564).
    """

    family = "ditac"

    def __init__(self, a: float | None = None, b: float = 2.0, cells: int = 10,
                 channels: int | None = None, channel_dim: int = -1, init: str = "prior",
                 gate: str | None = None, warp: str = "input", lut: int | None = None,
                 lambda_reg: float = 0.1, lambda_smooth: float = 5.0, lambda_var: float = 2.0,
                 kernel: str = "released", alpha: float = 0.01, prior: str = "explicit", *,
                 param_dtype: Any = jnp.float32, rngs: nnx.Rngs | None = None) -> None:
        self._build(dict(a=a, b=b, cells=cells, channels=channels, channel_dim=channel_dim,
                         init=init, gate=gate, warp=warp, lut=lut, lambda_reg=lambda_reg,
                         lambda_smooth=lambda_smooth, lambda_var=lambda_var, kernel=kernel,
                         alpha=alpha, prior=prior), param_dtype, rngs)
        self.precision = Buffer(jnp.asarray(family(self.family).precision(dict(self.config)),
                                            dtype=param_dtype))
        self.deterministic = False  # training mode (nnx's model.eval() sets it)

    def _tensors(self, ct: Any) -> dict[str, Any]:
        p = super()._tensors(ct)
        kw = dict(self.config)
        if kw["prior"] == "released" and not self.deterministic:
            p["theta"] = _released(p["theta"], self.precision[...].astype(ct), kw["lambda_reg"])
        return p

    def prior_loss(self) -> Any:
        """lambda_reg * theta^T P theta (summed over channels); 0 with ``prior="released"``
        (whose prior acts on the gradient)."""
        theta = self.theta[...]
        if dict(self.config)["prior"] == "released":
            return jnp.zeros((), theta.dtype)
        return family(self.family).prior_loss(jnp, theta, self.precision[...].astype(
            theta.dtype), dict(self.config)["lambda_reg"])

    def velocity(self, x: Any) -> Any:
        """The CPA field at x in input units ((b - a) v((x - a)/(b - a)) on [a, b], 0
        outside); shared theta only."""
        kw = dict(self.config)
        if kw["channels"] is not None:
            raise ValueError("velocity: per-channel DiTAC has one field per channel; index "
                             "theta yourself")
        x = jnp.asarray(x)
        A = jnp.reshape(self.basis[...] @ self.theta[...], (-1, 2))
        n, a, b = kw["cells"], kw["a"], kw["b"]
        inside = (x >= a) & (x <= b)
        u = jnp.where(inside, (x - a) / (b - a), 0.0)
        c = jnp.clip(jnp.floor(u * n), 0, n - 1).astype(jnp.int32)
        return jnp.where(inside, (b - a) * (A[c, 0] * u + A[c, 1]), 0.0)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _released(theta: Any, P: Any, lambda_reg: float) -> Any:
    """theta itself; its gradient becomes the released code's update (core family's
    ``released_gradient``)."""
    return theta


def _released_fwd(theta, P, lambda_reg):
    return theta, (theta, P)


def _released_bwd(lambda_reg, res, g):
    theta, P = res
    return family("ditac").released_gradient(jnp, theta, g, P, lambda_reg), jnp.zeros_like(P)


_released.defvjp(_released_fwd, _released_bwd)


class LeakyDiTAC(DiTAC):
    r"""Leaky-DiTAC: :class:`DiTAC` with the leaky-ReLU gate (s = 1 for x > 0, alpha else) by
    default."""

    family = "leaky_ditac"


class GEDiTAC(DiTAC):
    r"""GE-DiTAC: :class:`DiTAC` on [0, b] by default (f = GELU for x < 0)."""

    family = "ge_ditac"


def regularization(model: nnx.Module) -> Any:
    """The sum of every DiTAC's ``prior_loss()`` inside ``model`` (0.0 without any): add it
    to the training loss, as ``learnact.regularization`` in PyTorch."""
    total = jnp.zeros(())
    for _, node in nnx.iter_graph(model):
        if isinstance(node, DiTAC):
            total = total + node.prior_loss()
    return total


def _with_derivative(forward: Any, backward: Any) -> Any:
    """x -> forward(x) whose vector-Jacobian product is backward(x, g) (jax.custom_vjp)."""

    @jax.custom_vjp
    def f(x: Any) -> Any:
        return forward(x)

    f.defvjp(lambda x: (forward(x), x), lambda x, g: (backward(x, g),))
    return f


class SurrogateActivation(nnx.Module):
    """Base of the surrogate-derivative activations: a fixed forward whose backward is the
    declared derivative (``jax.custom_vjp``), not the forward's own derivative."""

    name: ClassVar[str] = ""

    def _build(self, kw: dict[str, Any]) -> None:
        self.config = tuple(surrogate.check(self.name, kw).items())

    def __call__(self, x: Any) -> Any:
        x = jnp.asarray(x)
        ct = compute_dtype(x.dtype)
        kw = dict(self.config)
        f = _with_derivative(lambda t: surrogate.forward(jnp, self.name, t, kw),
                             lambda t, g: surrogate.backward(jnp, self.name, t, g, kw))
        return f(x.astype(ct)).astype(x.dtype)


class Staircase(SurrogateActivation):
    r"""Hard staircase forward, smooth-staircase derivative backward.

    forward: f(x) = w (clamp(floor(x/w + n/2), 0, n) - n/2), n+1 levels; backward:
    grad * k sum_j sigma'(k (x - b_j)/w), b_j = (j - n/2) w (positive everywhere, so flat
    regions still pass gradient; not the true gradient). Args: ``steps`` n >= 1 (default 8),
    ``width`` w > 0 (0.5), ``sharpness`` k > 0 (2); ``channels``/``channel_dim`` ignored.
    Source: surrogate-gradient training (e.g. Neftci, Mostafa, Zenke, IEEE SPM 2019).
    """

    name = "staircase"

    def __init__(self, steps: int = 8, width: float = 0.5, sharpness: float = 2.0,
                 channels: int | None = None, channel_dim: int = -1) -> None:
        self._build(dict(steps=steps, width=width, sharpness=sharpness))


class Cantor(SurrogateActivation):
    r"""Depth-n Cantor staircase forward on [lo, hi] (2^n flat steps); backward 0 (its
    derivative almost everywhere). Args: ``depth`` in [1, 30] (default 4), ``lo`` < ``hi``
    (default -3, 3); ``channels``/``channel_dim`` ignored. Source: the Cantor function
    (G. Cantor, 1884) as an activation experiment."""

    name = "cantor"

    def __init__(self, depth: int = 4, lo: float = -3.0, hi: float = 3.0,
                 channels: int | None = None, channel_dim: int = -1) -> None:
        self._build(dict(depth=depth, lo=lo, hi=hi))


class Cantor2(Cantor):
    r"""The Cantor staircase forward of :class:`Cantor`; backward: derivative 1 (straight
    through). Not the true gradient."""

    name = "cantor2"


class LeftRight(SurrogateActivation):
    r"""ReLU forward; backward grad where grad < 0 (the right derivative, 1), grad [x > 0]
    elsewhere: a "dead" unit still receives gradient when the loss wants it to grow.
    ``channels``/``channel_dim`` ignored."""

    name = "left_right"

    def __init__(self, channels: int | None = None, channel_dim: int = -1) -> None:
        self._build({})


class NoisyDerivative(nnx.Module):
    r"""A classical activation's forward with a noisy derivative.

    forward: base(x) (default ReLU). backward while training: grad * base'(x) * u,
    u ~ U(lower, upper) per element (the RReLU idea applied to the derivative instead of the
    function); after ``model.eval()`` (``deterministic``): grad * base'(x). Not the true
    gradient in training. Args: ``base`` (a classical activation's name, default "relu"),
    ``lower`` <= ``upper`` (0.5, 1.5), ``seed`` (the noise's key stream, an ``nnx.Rngs``
    kept in the module: each call draws the next key); ``channels``/``channel_dim`` ignored.
    As PyTorch's ``noisy`` (whose base may be any spec).
    """

    name = "noisy"

    def __init__(self, base: str = "relu", lower: float = 0.5, upper: float = 1.5,
                 channels: int | None = None, channel_dim: int = -1, seed: int = 0) -> None:
        self.base, self.lower, self.upper = surrogate.check_noisy(base, lower, upper,
                                                                  FIXED_NAMES)
        self.rngs = nnx.Rngs(noise=check_int("seed", seed, 0))
        self.deterministic = False

    def __call__(self, x: Any) -> Any:
        x = jnp.asarray(x)
        ct = compute_dtype(x.dtype)
        t = x.astype(ct)
        u = (jnp.ones_like(t) if self.deterministic else
             jax.random.uniform(self.rngs.noise(), t.shape, ct, self.lower, self.upper))
        return _noisy(t, u, self.base).astype(x.dtype)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _noisy(x: Any, u: Any, base: str) -> Any:
    return Fixed(base)(x)


def _noisy_fwd(x, u, base):
    return _noisy(x, u, base), (x, u)


def _noisy_bwd(base, res, g):
    x, u = res
    return g * surrogate.fixed_derivative(_JNP, base, x) * u, jnp.zeros_like(u)


_noisy.defvjp(_noisy_fwd, _noisy_bwd)


def _gelu(x: Any, approximate: str) -> Any:
    return jax.nn.gelu(x, approximate=approximate == "tanh")


_FIXED = {
    "identity": lambda x: x, "relu": jax.nn.relu, "silu": jax.nn.silu, "tanh": jnp.tanh,
    "sigmoid": jax.nn.sigmoid, "softplus": jax.nn.softplus, "selu": jax.nn.selu,
    "elu": jax.nn.elu,
}


class Fixed(nnx.Module):
    """A classical (parameter-free) activation by its PyTorch name, for baselines:
    identity, relu, silu, tanh, sigmoid, softplus, selu, elu, leaky_relu (``negative_slope``,
    default 0.01), gelu (``approximate``: "none", exact as PyTorch's default, or "tanh")."""

    def __init__(self, activation: str, approximate: str = "none",
                 negative_slope: float = 0.01) -> None:
        self.activation = check_choice("activation", activation, FIXED_NAMES)
        self.approximate = check_choice("approximate", approximate, ("none", "tanh"))
        self.negative_slope = check_float("negative_slope", negative_slope)

    def __call__(self, x: Any) -> Any:
        x = jnp.asarray(x)
        compute_dtype(x.dtype)  # the same type check as the learnable families
        if self.activation == "gelu":
            return _gelu(x, self.approximate)
        if self.activation == "leaky_relu":
            return jax.nn.leaky_relu(x, self.negative_slope)
        return _FIXED[self.activation](x)


def derive(definition: Any) -> type[Activation]:
    """The NNX module class of a derived family (learnact.core.definition): the definition's
    arguments, ``channels=None, channel_dim=-1``, then ``param_dtype`` and ``rngs``."""
    P = inspect.Parameter
    extra = (P("param_dtype", P.KEYWORD_ONLY, default=jnp.float32, annotation=Any),
             P("rngs", P.KEYWORD_ONLY, default=None, annotation=nnx.Rngs | None))

    def build(self: Activation, kw: dict[str, Any], ex: dict[str, Any]) -> None:
        self._build(kw, ex["param_dtype"], ex["rngs"])

    return type(definition.class_name, (Activation,), {
        "__init__": derived_init(definition, -1, extra, build),
        "__doc__": type(definition).__doc__, "__module__": __name__,
        "__qualname__": definition.class_name, "family": definition.name})


#: the classes generated from the definitions (every family that declares its arguments:
#: Hermite, Fourier, Tropical, TropicalRational, Rational, SELUVariation, PWLU), by name
DERIVED: dict[str, type] = {d.name: derive(d) for d in FAMILIES.values() if d.arguments}
globals().update({c.__name__: c for c in DERIVED.values()})
__all__ += [c.__name__ for c in DERIVED.values()]

_CLASSES: dict[str, type] = {c.family: c for c in (
    *DERIVED.values(), DiTAC, LeakyDiTAC, GEDiTAC)}
#: the surrogate-derivative activations (not learnable: ``available(learnable=False)``)
_SURROGATES: dict[str, type] = {c.name: c for c in (
    Staircase, Cantor, Cantor2, LeftRight, NoisyDerivative)} | {"perlin": Perlin}


def available(learnable: bool | None = None) -> list[str]:
    """Sorted names ``create`` accepts (the learnable families and the fixed baselines)."""
    return names(_CLASSES, learnable, _SURROGATES)


def create(spec: str | nnx.Module, *, rngs: nnx.Rngs | None = None,
           param_dtype: Any = jnp.float32, **overrides: Any) -> nnx.Module:
    """Build a module from a spec string (``"hermite:degree=8,channels=64"``), the same strings
    as ``learnact.create``; a module instance passes through unchanged. ``overrides`` take
    precedence over the spec's values; ``rngs`` seeds random inits."""
    if isinstance(spec, nnx.Module):
        if overrides:
            raise TypeError("overrides cannot be applied to an already built module instance")
        return spec
    return from_spec(spec, _CLASSES, Fixed, "learnact.jax", ("param_dtype", "rngs"),
                     {"param_dtype": param_dtype, "rngs": rngs}, overrides, _SURROGATES)


def parameters(model: nnx.Module) -> nnx.State:
    """The trainable parameters of every learnact activation inside ``model`` (an
    ``nnx.State``), e.g. for their own optimizer settings (``optax.multi_transform``)."""
    owners = [path for path, node in nnx.iter_graph(model) if isinstance(node, Activation)]
    return nnx.state(model, lambda path, value: isinstance(value, nnx.Param) and any(
        tuple(path[:len(o)]) == tuple(o) for o in owners))
