"""What a frontend needs to build each learnable family, framework-neutral.

``FAMILIES`` is THE list of learnable families: every frontend, tool and test reads it. One
:class:`~learnact.core.definition.Family` per family: the arguments and their checks (every
frontend calls them: the same ranges and messages in PyTorch, JAX and Keras), the tensors a
module holds (trainable parameters and fixed buffers, in formula order), their float64 initial
values (learnact.core's inits, expanded per channel), the forward formula against an array
namespace, the test and main-job specs, and the surfaces the family lacks (with the reason).
Derived families (PWLU) define everything in their own core file and get every class from it;
the others keep hand-written classes with fused ops that read these definitions.
"""

from __future__ import annotations

import numpy as np

from .._validate import check_choice, check_float, check_int
from . import cpab, fourier, hermite, perlin, rational, selu_variation, tropical
from .definition import SURFACES, Family, Normal
from .pwlu import PWLU

__all__ = ["Family", "FAMILIES", "family", "MAX_DEGREE", "SURFACES", "Normal"]

MAX_DEGREE = 64  # Hermite, Fourier, tropical (the PyTorch modules' bound)
MAX_LATTICE_POINTS = 1 << 20  # Perlin: every octave's lattice together


class _Degree(Family):
    """A family with one ``degree`` in [1, 64]."""

    def check(self, kw):
        out = super().check(kw)
        out["degree"] = check_int("degree", kw["degree"], 1, MAX_DEGREE)
        return out


class _Hermite(_Degree):
    r"""Learnable Hermite-polynomial activation, f(x) = sum_{k=0}^{d} c_k He_k(x)/k!.

    Probabilists' Hermite polynomials evaluated by Clenshaw's recurrence; under N(0, 1)
    E[f^2] = sum_k c_k^2/k! and E[f'^2] = sum_{k>=1} c_k^2/(k-1)!.

    Args: ``degree`` d in [1, 64]; ``channels`` None (shared ``coeffs`` (d+1,)) or C
    ((C, d+1)); ``channel_dim`` (PyTorch: default 1; JAX, Keras: -1); ``init``: "unit"
    (E[f^2] = E[f'^2] = 1), "paper"/"published", "stable" (unit moments, V'(1) < 1), "gelu"
    (GELU's shape, unit moments); ``tails``: "polynomial" or "linear" (f continues C1-linearly outside
    [-bound, bound], held in the buffers ``lo``, ``hi``); ``bound`` (default 3).

    Source: I. Khalfaoui-Hassani and S. Kesselheim, "Learnable polynomial, trigonometric, and
    tropical activations", arXiv:2502.01247 (2025).
    """

    class_name = "Hermite"
    arguments = (("degree", int, 8), ("channels", None, None), ("channel_dim", None, None),
                 ("init", str, "unit"), ("tails", str, "polynomial"), ("bound", float, 3.0))
    name = "hermite"
    inits = hermite.INITS
    test_specs = ("hermite:degree=5",)
    edge_specs = ("hermite:degree=1",)
    variant_specs = ("hermite:degree=4,tails=linear,bound=2.5", "hermite:degree=6,init=gelu")
    # un-normalised, heavy-tailed inputs in the main job's network: a pure degree-8 polynomial
    # overflows there (NaN at step ~200), so linear tails; the GELU-shaped init beside it
    main_job_specs = ("hermite:tails=linear", "hermite:init=gelu,tails=linear")

    table = (("coeffs", False), ("lo", True), ("hi", True))

    def table_tensors(self, p):
        if p.get("lo") is None or p.get("hi") is None:
            return {"coeffs": p["coeffs"]}  # linear tails need both bounds (as the formula)
        return p

    def table_config(self, widths):
        return widths["coeffs"] - 1, int("lo" in widths)

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
    r"""Learnable truncated Fourier series, f(x) = a_0 + sum_{k=1}^{d} c_k cos(w_k x - phi_k).

    Parameters ``bias`` a_0, ``amplitude`` c, ``frequency`` w (init w_k = k), ``phase`` phi.
    Args: ``degree`` d in [1, 64]; ``channels``; ``channel_dim`` (PyTorch: default 1; JAX, Keras: -1); ``init``:
    "unit" (the published shape rescaled to E[f^2] = E[f'^2] = 1) or "paper"/"published"
    (c_k = 0.6623/k!, phi_k = pi/4).

    Source: I. Khalfaoui-Hassani and S. Kesselheim, arXiv:2502.01247 (2025).
    """

    class_name = "Fourier"
    arguments = (("degree", int, 8), ("channels", None, None), ("channel_dim", None, None),
                 ("init", str, "unit"))
    name = "fourier"
    inits = fourier.INITS
    test_specs = ("fourier:degree=4",)
    edge_specs = ("fourier:degree=1",)
    main_job_specs = ("fourier",)

    table = (("bias", True), ("amplitude", False), ("frequency", False), ("phase", False))

    def table_config(self, widths):
        return widths["amplitude"], 0

    def tensors(self, kw):
        return fourier.NAMES, ()

    def shared_init(self, kw, normal):
        return fourier.init_parameters(kw["degree"], kw["init"])

    def forward(self, xp, x, p, kw):
        return fourier.fourier(xp, x, *(p[n] for n in fourier.NAMES), kw["channel_dim"])


class _Tropical(_Degree):
    r"""Learnable tropical (max-plus) polynomial, f(x) = alpha max_{k=0..d}(k x + c_k) + beta.

    Learnable intercepts ``coeffs`` c, ``scale`` alpha, ``offset`` beta; fixed buffer
    ``slopes`` = 0..d. Args: ``degree`` d in [1, 64]; ``channels``; ``channel_dim``;
    ``init``: "unit" (breakpoints at the N(0,1) quantiles j/(d+1), alpha and beta giving
    E[f^2] = E[f'^2] = 1) or "paper"/"published" (c_k = 1, alpha = sqrt(2)/d, beta = 0).

    Source: I. Khalfaoui-Hassani and S. Kesselheim, arXiv:2502.01247 (2025).
    """

    class_name = "Tropical"
    arguments = (("degree", int, 8), ("channels", None, None), ("channel_dim", None, None),
                 ("init", str, "unit"))
    name = "tropical"
    inits = tropical.INITS
    test_specs = ("tropical:degree=4",)
    edge_specs = ("tropical:degree=1",)
    main_job_specs = ("tropical",)

    table = (("slopes", False), ("coeffs", False), ("scale", True), ("offset", True))

    def table_config(self, widths):
        return widths["coeffs"] - 1, 0

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
    r"""Tropical rational activation, f(x) = alpha (max_k(p_k x + a_k) - max_k(q_k x + b_k)) + beta.

    All of ``num_slopes`` p, ``num_coeffs`` a, ``den_slopes`` q, ``den_coeffs`` b, ``scale``
    alpha and ``offset`` beta learn. Args: ``degree`` d in [1, 64] (d+1 lines each, default
    4); ``channels``; ``channel_dim``; ``init``: "unit" (p_k = k, q_k = k/2, breakpoints at
    the Gaussian quantiles, unit moments) or "paper"/"published" (the four tables i.i.d.
    N(0, 1), drawn from ``rngs``, one key per table).

    Source: I. Khalfaoui-Hassani and S. Kesselheim, arXiv:2502.01247 (2025).
    """

    class_name = "TropicalRational"
    arguments = (("degree", int, 4), ("channels", None, None), ("channel_dim", None, None),
                 ("init", str, "unit"))
    name = "tropical_rational"
    inits = tropical.INITS
    test_specs = ("tropical_rational:degree=3",)
    main_job_specs = ("tropical_rational",)

    table = tuple((n, n in ("scale", "offset")) for n in tropical.RATIONAL_NAMES)

    def table_config(self, widths):
        return widths["num_slopes"] - 1, 0

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
    r"""Rational (Pade) activation with the safe denominator,
    f(x) = s (a_0 + ... + a_n x^n) / (1 + |b_1 x + ... + b_m x^m|) + t.

    Parameters ``num`` (n+1), ``den`` (m), ``scale`` s, ``offset`` t. Args: ``num_degree``,
    ``den_degree`` (the shipped fits: (5, 4)); ``channels``; ``channel_dim``; ``init``:
    "paper"/"published"/"leaky_relu" (fitted to leaky ReLU on [-3, 3]), "gelu", "unit" (the
    leaky-ReLU fit with unit moments).

    Source: A. Molina, P. Schramowski, K. Kersting, "Pade Activation Units", ICLR 2020
    (arXiv:1907.06732).
    """

    class_name = "Rational"
    arguments = (("num_degree", int, 5), ("den_degree", int, 4), ("channels", None, None),
                 ("channel_dim", None, None), ("init", str, "paper"))
    name = "rational"
    inits = rational.INITS
    test_specs = ("rational:num_degree=3,den_degree=2",)
    variant_specs = ("rational", "rational:init=unit")
    edge_specs = ("rational:num_degree=2,den_degree=1",)
    # other degrees than the shipped (5, 4) fits are fitted at construction by PyTorch's L-BFGS
    # (core.rational.init_parameters' ``fit``); JAX and Keras build the shipped degrees
    torch_only_specs = ("rational:num_degree=3,den_degree=2", "rational:num_degree=2,den_degree=1")
    main_job_specs = ("rational",)

    table = (("num", False), ("den", False), ("scale", True), ("offset", True))

    def table_config(self, widths):
        return widths["num"] - 1, widths["den"]

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
    r"""Learnable SELU variation,
    f(x) = s lam (x if x > 0 else alpha (e^{beta x} - 1) + gamma sin(omega x)) + t.

    Parameters ``lam``, ``alpha``, ``beta``, ``gamma``, ``omega``, ``scale``, ``offset``.
    Args: ``channels``; ``channel_dim``; ``init``: "paper"/"published" (lam = 1.0507,
    alpha = 1.67326, beta = 1, gamma = 0.1, omega = 2, s = 1, t = 0) or "unit" (s, t giving
    E[f^2] = E[f'^2] = 1). The negative branch is evaluated at min(x, 0): no overflow.

    Source: the SELU Variation activations (ToyMath, GitHub, 2024), built on SELU (Klambauer
    et al., NeurIPS 2017, arXiv:1706.02515).
    """

    class_name = "SELUVariation"
    arguments = (("channels", None, None), ("channel_dim", None, None), ("init", str, "paper"))
    name = "selu_variation"
    inits = selu_variation.INITS
    test_specs = ("selu_variation",)
    variant_specs = ("selu_variation:init=unit",)
    main_job_specs = ("selu_variation",)

    table = tuple((n, True) for n in selu_variation.NAMES)

    def table_config(self, widths):
        return 0, 0

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
    # not in the shared property tests: no fused op (autograd keeps its intermediates) and no
    # per-channel lattices; tests/test_perlin.py covers it
    variant_specs = ("perlin", "perlin:kind=gradient,base=gelu,learnable=true")
    missing = {
        "per_channel": "one noise function for every channel (channels is accepted, ignored)",
        "torch_op": "no fused op: autograd through the lattice lookups",
        "xla_kernel": "no fused kernel: the formula runs in XLA",
        "triton": "no GPU kernel: the formula runs as torch operators",
    }

    def check(self, kw):
        out = super().check(kw)
        out["kind"] = check_choice("kind", kw["kind"], perlin.KINDS)
        out["resolution"] = check_int("resolution", kw["resolution"], 1, 4096)
        out["octaves"] = check_int("octaves", kw["octaves"], 1, 12)
        points = out["resolution"] * (2 ** out["octaves"] - 1) + out["octaves"]
        if points > MAX_LATTICE_POINTS:  # bounded memory: lattices, moments, the atlas page
            raise ValueError(
                f"perlin: resolution (2^octaves - 1) + octaves lattice points must be <= "
                f"{MAX_LATTICE_POINTS} (4 MiB of float32), got {points} "
                f"(resolution={out['resolution']}, octaves={out['octaves']}): lower either")
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
    missing = {
        "torch_op": "its own custom ops over the flow and the table (ops/cpab: flow_apply, "
                    "lut_apply, cpab_grid), not a FamilyOp",
        "xla_kernel": "JAX runs the flow as selects in XLA (the C kernels of native/cpab.c "
                      "have no XLA binding yet)",
    }

    def __init__(self, name: str, default_a: float, default_gate: str,
                 main_job_specs: tuple[str, ...] = ()) -> None:
        self.name = name  # type: ignore[misc]
        self.default_a = default_a
        self.default_gate = default_gate
        self.test_specs = (f"{name}:cells=5",)  # type: ignore[misc]
        self.main_job_specs = main_job_specs  # type: ignore[misc]
        if name == "ditac":
            self.variant_specs = ("ditac:lut=256",  # type: ignore[misc]
                                  "ditac:cells=5,gate=silu,warp=output")
        elif name == "leaky_ditac":  # the paper's Figure 4(c) reading: identity at theta = 0
            self.variant_specs = ("leaky_ditac:cells=5,gate=identity",)  # type: ignore[misc]

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
    _Perlin(),
    # DiTAC joins the main job with the lookup table: the released code's training path (exact
    # mode costs ~4x more per epoch in its network)
    _DiTAC("ditac", -0.5, "gelu", ("ditac:lut=2048",)),
    _DiTAC("leaky_ditac", -0.5, "leaky_relu"), _DiTAC("ge_ditac", 0.0, "gelu"),
    PWLU())}


def family(name: str) -> Family:
    return FAMILIES[name]
