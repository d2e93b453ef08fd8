"""What a frontend needs to build each learnable family, framework-neutral.

One :class:`Family` per family (the JAX and Keras frontends build their modules and layers from
these): the arguments and their checks (the same ranges and messages as the PyTorch modules),
the tensors a module holds (trainable parameters and fixed buffers, in formula order), their
float64 initial values (learnact.core's inits, expanded per channel), and the forward formula
against an array namespace. The PyTorch modules keep their own classes (fused ops, fit hooks).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

import numpy as np

from .._validate import check_channels, check_choice, check_float, check_int
from . import cpab, fourier, hermite, perlin, rational, selu_variation, tropical

__all__ = ["Family", "FAMILIES", "family", "MAX_DEGREE"]

MAX_DEGREE = 64  # Hermite, Fourier, tropical (the PyTorch modules' bound)
Normal = Callable[[tuple[int, ...]], np.ndarray]


class Family(ABC):
    """A learnable family as the JAX and Keras frontends see it."""

    name = ""
    inits: tuple[str, ...] = ()

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


class _Degree(Family):
    """A family with one ``degree`` in [1, 64]."""

    def check(self, kw):
        out = super().check(kw)
        out["degree"] = check_int("degree", kw["degree"], 1, MAX_DEGREE)
        return out


class _Hermite(_Degree):
    name = "hermite"
    inits = hermite.INITS

    def check(self, kw):
        out = super().check(kw)
        out["tails"] = check_choice("tails", kw["tails"], hermite.TAILS)
        out["bound"] = check_float("bound", kw["bound"], 0.0, 1e4, lo_open=True)
        return out

    def tensors(self, kw):
        if kw["tails"] == "linear":
            return ("coeffs", "lo", "hi"), ("lo", "hi")
        return ("coeffs",), ()

    def shared_init(self, kw, normal):
        v = hermite.init_parameters(kw["degree"], kw["init"], kw["tails"], kw["bound"])
        if kw["tails"] == "linear":
            v |= {"lo": np.array(-kw["bound"]), "hi": np.array(kw["bound"])}
        return v

    def forward(self, xp, x, p, kw):
        return hermite.hermite(xp, x, p["coeffs"], kw["channel_dim"], p.get("lo"), p.get("hi"))


class _Fourier(_Degree):
    name = "fourier"
    inits = fourier.INITS

    def tensors(self, kw):
        return fourier.NAMES, ()

    def shared_init(self, kw, normal):
        return fourier.init_parameters(kw["degree"], kw["init"])

    def forward(self, xp, x, p, kw):
        return fourier.fourier(xp, x, *(p[n] for n in fourier.NAMES), kw["channel_dim"])


class _Tropical(_Degree):
    name = "tropical"
    inits = tropical.INITS

    def tensors(self, kw):
        return ("slopes", "coeffs", "scale", "offset"), ("slopes",)

    def shared_init(self, kw, normal):
        return ({"slopes": np.arange(kw["degree"] + 1, dtype=np.float64)}
                | tropical.tropical_init(kw["degree"], kw["init"]))

    def initial(self, kw, normal=None):
        v = super().initial(kw, normal)
        v["slopes"] = np.arange(kw["degree"] + 1, dtype=np.float64)  # shared, fixed
        return v

    def forward(self, xp, x, p, kw):
        return tropical.tropical(xp, x, p["slopes"], p["coeffs"], p["scale"], p["offset"],
                                 kw["channel_dim"])


class _TropicalRational(_Degree):
    name = "tropical_rational"
    inits = tropical.INITS

    def tensors(self, kw):
        return tropical.RATIONAL_NAMES, ()

    def shared_init(self, kw, normal):
        return tropical.tropical_rational_init(kw["degree"], kw["init"], normal)

    def initial(self, kw, normal=None):
        if kw["init"] in ("paper", "published") and kw["channels"] is not None:
            # one independent draw per channel and table
            c, n = kw["channels"], kw["degree"] + 1
            if normal is None:
                raise ValueError("init='paper' draws the tables at random: pass a seed")
            return {k: np.asarray(normal((c, n)), dtype=np.float64)
                    for k in tropical.RATIONAL_NAMES[:4]} | {
                        "scale": np.ones(c), "offset": np.zeros(c)}
        return super().initial(kw, normal)

    def forward(self, xp, x, p, kw):
        return tropical.tropical_rational(xp, x, *(p[n] for n in tropical.RATIONAL_NAMES),
                                          kw["channel_dim"])


class _Rational(Family):
    name = "rational"
    inits = rational.INITS

    def check(self, kw):
        out = super().check(kw)
        out["num_degree"] = check_int("num_degree", kw["num_degree"], 1, 16)
        out["den_degree"] = check_int("den_degree", kw["den_degree"], 1, 16)
        return out

    def tensors(self, kw):
        return rational.NAMES, ()

    def shared_init(self, kw, normal):
        return rational.init_parameters(kw["num_degree"], kw["den_degree"], kw["init"])

    def forward(self, xp, x, p, kw):
        return rational.rational(xp, x, *(p[n] for n in rational.NAMES), kw["channel_dim"])


class _SELUVariation(Family):
    name = "selu_variation"
    inits = selu_variation.INITS

    def tensors(self, kw):
        return selu_variation.NAMES, ()

    def shared_init(self, kw, normal):
        return {k: np.array(v) for k, v in selu_variation.init_parameters(kw["init"]).items()}

    def forward(self, xp, x, p, kw):
        return selu_variation.selu_variation(xp, x, *(p[n] for n in selu_variation.NAMES),
                                             kw["channel_dim"])


class _Perlin(Family):
    """Perlin noise: shared lattices (``channels`` is accepted and ignored, as in PyTorch);
    buffers unless ``learnable``."""

    name = "perlin"

    def check(self, kw):
        out = super().check(kw)
        out["kind"] = check_choice("kind", kw["kind"], perlin.KINDS)
        out["resolution"] = check_int("resolution", kw["resolution"], 1, 4096)
        out["octaves"] = check_int("octaves", kw["octaves"], 1, 12)
        out["radius"] = check_float("radius", kw["radius"], 0.0, lo_open=True)
        out["seed"] = check_int("seed", kw["seed"])
        out["amplitude"] = check_float("amplitude", kw["amplitude"])
        out["base"] = check_choice("base", kw["base"], perlin.BASES)
        if not isinstance(kw["learnable"], bool):
            raise TypeError(f"learnable must be True or False, got {kw['learnable']!r}")
        out["channels"] = None  # accepted and ignored: one noise function for every channel
        return out

    def tensors(self, kw):
        names = tuple(f"lattice{o}" for o in range(kw["octaves"]))
        return names, () if kw["learnable"] else names

    def shared_init(self, kw, normal):
        lats = perlin.lattices(kw["resolution"], kw["octaves"], kw["seed"])
        return {f"lattice{o}": lat for o, lat in enumerate(lats)}

    def forward(self, xp, x, p, kw):
        lats = [p[f"lattice{o}"] for o in range(kw["octaves"])]
        return perlin.perlin(xp, x, lats, kw["radius"], kw["kind"], kw["amplitude"],
                             kw["base"])


class _DiTAC(Family):
    """DiTAC and its variants (they differ in the defaults of ``a`` and ``gate``): theta
    (d,) or (C, d) learns; the CPA basis B (2N, d) is a fixed buffer (from :func:`cpab.basis`,
    the same matrix as PyTorch's). Exact mode or the lookup table (``lut``, PyTorch's bin rule
    and straight-through derivative); ``prior="released"``: the frontends apply
    :meth:`released_gradient` to theta's gradient in training mode, as PyTorch's module."""

    inits = ("prior", "zeros")

    def __init__(self, name: str, default_a: float, default_gate: str) -> None:
        self.name = name
        self.default_a = default_a
        self.default_gate = default_gate

    def check(self, kw):
        out = super().check(kw)
        out["a"] = check_float("a", self.default_a if kw.get("a") is None else kw["a"])
        out["b"] = check_float("b", kw["b"])
        if not out["a"] < out["b"]:
            raise ValueError(f"DiTAC needs a < b, got a={out['a']}, b={out['b']}")
        out["cells"] = check_int("cells", kw["cells"], 1, 1024)
        out["gate"] = check_choice("gate", self.default_gate if kw.get("gate") is None
                                   else kw["gate"], cpab.GATES)
        out["warp"] = check_choice("warp", kw["warp"], ("input", "output"))
        out["lut"] = None if kw.get("lut") is None else check_int("lut", kw["lut"], 2, 1 << 20)
        out["lambda_reg"] = check_float("lambda_reg", kw["lambda_reg"], 0.0)
        out["lambda_smooth"] = check_float("lambda_smooth", kw["lambda_smooth"], 0.0,
                                           lo_open=True)
        out["lambda_var"] = check_float("lambda_var", kw["lambda_var"], 0.0, lo_open=True)
        out["kernel"] = check_choice("kernel", kw["kernel"], cpab.KERNELS)
        out["alpha"] = check_float("alpha", kw["alpha"])
        out["prior"] = check_choice("prior", kw["prior"], ("explicit", "released"))
        return out

    def tensors(self, kw):
        return ("theta", "basis"), ("basis",)

    def _theta(self, kw, normal, shape):
        if kw["init"] == "zeros" or shape[-1] == 0:
            return np.zeros(shape)
        if normal is None:
            raise ValueError("init='prior' draws theta at random: pass a seed")
        return cpab.init_theta(kw["cells"], normal, shape)

    def shared_init(self, kw, normal):
        B = np.array(cpab.basis(kw["cells"]))
        return {"theta": self._theta(kw, normal, (B.shape[1],)), "basis": B}

    def initial(self, kw, normal=None):
        if kw["channels"] is None:
            return self.shared_init(kw, normal)
        B = np.array(cpab.basis(kw["cells"]))  # one field per channel, one draw each
        return {"theta": self._theta(kw, normal, (kw["channels"], B.shape[1])), "basis": B}

    def forward(self, xp, x, p, kw):
        return cpab.ditac(xp, x, p["theta"], p["basis"], a=kw["a"], b=kw["b"],
                          cells=kw["cells"], gate_name=kw["gate"], alpha=kw["alpha"],
                          warp=kw["warp"], channel_dim=kw["channel_dim"],
                          per_channel=kw["channels"] is not None, lut=kw["lut"])

    @staticmethod
    def precision(kw) -> np.ndarray:
        """The prior's precision, rounded through float32 as PyTorch's module keeps it."""
        return cpab.precision(kw["cells"], kw["lambda_smooth"], kw["lambda_var"],
                              kw["kernel"]).astype(np.float32)

    @staticmethod
    def released_gradient(xp, theta, g, P, lambda_reg: float):
        """The released code's effective update of theta (``prior="released"``, training):
        d g + 2 lambda_reg theta * colsum(P), d = theta's last size (its elementwise
        ``P.mul(theta)`` broadcasts to (d, d) and autograd sums it back)."""
        return theta.shape[-1] * g + 2.0 * lambda_reg * theta * xp.sum(P, axis=0)

    @staticmethod
    def prior_loss(xp, theta, P, lambda_reg: float):
        """lambda_reg * sum over channels of theta_c^T P theta_c."""
        th = xp.reshape(theta, (-1, theta.shape[-1]))
        return lambda_reg * xp.sum(xp.matmul(th, P) * th)


#: every family the JAX and Keras frontends build, by registry name
FAMILIES: dict[str, Family] = {f.name: f for f in (
    _Hermite(), _Fourier(), _Tropical(), _TropicalRational(), _Rational(), _SELUVariation(),
    _Perlin(), _DiTAC("ditac", -0.5, "gelu"), _DiTAC("leaky_ditac", -0.5, "leaky_relu"),
    _DiTAC("ge_ditac", 0.0, "gelu"))}


def family(name: str) -> Family:
    return FAMILIES[name]
