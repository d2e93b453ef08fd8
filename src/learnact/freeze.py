r"""Inference forms: :func:`freeze` turns every learnact activation of a model into a small
module of standard PyTorch operators with constant buffers.

A frozen activation has no parameters, no custom op, no autograd Function and no native
build: ``torch.jit.script`` compiles it (except DiTAC's exact form, see below),
``torch.jit.trace``, ``torch.export`` and ``torch.onnx.export`` record standard operators only,
and a TorchScript or exported program runs without learnact installed.

Forms, family by family (the value is the training module's up to rounding, except DiTAC's
table):

=====================  ===================================================================
hermite                Clenshaw's recurrence in the orthogonal basis (the module's numerics)
                       on clamp(x, lo, hi), the linear tails folded into two constant slopes
                       (the training op evaluates f' at the bound per element)
tropical, tropical_   max of the lines, one multiply-add and one maximum per line (the training
rational               op also tracks the argmax for its backward)
fourier, rational,     the reference formula (:mod:`learnact.functional`) on constant buffers
perlin
selu_variation         the formula on constant buffers
ditac (all gates)      ``ditac="table"`` (default): T sampled on ``points`` grid points of
                       [a, b] and read by linear interpolation (2 gathers); ``error_bound``
                       holds the largest |f_table - f| found on 8 points per grid step
                       (float64, at freeze time). ``ditac="exact"``: the closed-form flow in
                       standard operators (error 0; torch.export/ONNX only: TorchScript cannot
                       compile it, and says so)
staircase, cantor,     the forward function only (the surrogate derivative is a training
cantor2, left_right,   device; a frozen model is for inference). ``left_right`` and ``noisy``
noisy                  become their forward module (ReLU / the base)
=====================  ===================================================================

Classical activations (torch modules) are left as they are.
"""

import copy
import logging
import math
from typing import Literal

import torch
from torch import Tensor, nn

from ._tensor import clipped_phase
from .functional import fourier as _fourier
from .functional import perlin as _perlin
from .functional import rational as _rational
from .functional import surrogate as _surrogate
from .ops.cpab import export_form
from .ops.defined import evaluate
from .ops.cpab import gate as ditac_gate
from .surgery import _swap

__all__ = ["freeze", "FrozenActivation", "FrozenHermite", "FrozenFourier", "FrozenTropical",
           "FrozenTropicalRational", "FrozenRational", "FrozenSELUVariation", "FrozenPerlin",
           "FrozenDiTACTable", "FrozenDiTACLookup", "FrozenDiTACExact", "FrozenStaircase", "FrozenCantor",
           "FrozenDefined"]

log = logging.getLogger(__name__)


def _along(p: Tensor, ndim: int, channel_dim: int) -> Tensor:
    """p of shape (C, *rest) viewed to broadcast against an ndim-dimensional input whose
    channels are at channel_dim: (C, 1, ..., 1, *rest)."""
    d = channel_dim % ndim
    shape = [p.shape[0]] + [1] * (ndim - d - 1) + list(p.shape[1:])
    return p.reshape(shape)


def _compute_dtype(x: Tensor) -> torch.dtype:
    """float32 for half inputs, else x's dtype (learnact._tensor.compute_dtype, scriptable)."""
    if x.dtype == torch.float16 or x.dtype == torch.bfloat16:
        return torch.float32
    return x.dtype


class FrozenActivation(nn.Module):
    """Base of the inference forms: constant buffers, no parameters.

    Attributes:
        source: ``repr`` of the module this was frozen from.
        error_bound: the largest |frozen - original| stated for this form (0.0: the same
            formula, rounding only).
    """

    source: str
    error_bound: float

    def __init__(self, source: nn.Module, error_bound: float = 0.0) -> None:
        super().__init__()
        self.source = repr(source)
        self.error_bound = float(error_bound)

    def _const(self, name: str, value: Tensor | None) -> None:
        self.register_buffer(name, None if value is None else value.detach().clone())


class FrozenHermite(FrozenActivation):
    r"""f(x) = \sum_k c_k He_k(x)/k! by the training module's own numerics: Clenshaw's
    recurrence in the orthogonal basis (b_k = c_k + x b_{k+1}/(k+1) - b_{k+2}/(k+2)) on the
    constant coefficients, in float32 for half inputs; never via monomials (a float32
    monomial expansion of a degree-32 fit is off by 0.025, at degree 64 by more). With tails,
    at clamp(x, lo, hi) plus slope (x - clamp(x)), the slopes f'(lo), f'(hi) folded at freeze
    time in float64 (the training op evaluates f' at the bound per element)."""

    channel_dim: int
    per_channel: bool
    tails: bool
    degree: int

    def __init__(self, module: nn.Module) -> None:
        super().__init__(module)
        self.channel_dim = int(module.channel_dim)
        self.per_channel = module.coeffs.ndim == 2
        coeffs = module.coeffs.detach()
        self.degree = int(coeffs.shape[-1] - 1)
        self._const("coeffs", coeffs)
        self.tails = module.lo is not None and module.hi is not None
        if self.tails:
            from .functional.hermite import hermite_derivative

            lo, hi = module.lo.detach(), module.hi.detach()
            c = coeffs.double()
            cd = 0 if self.per_channel else -1
            lo_, hi_ = lo.double(), hi.double()
            d_lo = hermite_derivative(lo_.reshape(-1, 1) if self.per_channel else lo_, c, cd)
            d_hi = hermite_derivative(hi_.reshape(-1, 1) if self.per_channel else hi_, c, cd)
            self._const("lo", lo)
            self._const("hi", hi)
            self._const("slope_lo", d_lo.reshape(lo.shape).to(coeffs.dtype))
            self._const("slope_hi", d_hi.reshape(hi.shape).to(coeffs.dtype))
        else:
            for name in ("lo", "hi", "slope_lo", "slope_hi"):
                self._const(name, None)

    def forward(self, x: Tensor) -> Tensor:
        xt = x.to(_compute_dtype(x))
        c = self.coeffs.to(xt.dtype)
        if self.per_channel:
            c = _along(c, xt.dim(), self.channel_dim)
        xc = xt
        lo, hi, s_lo, s_hi = self.lo, self.hi, self.slope_lo, self.slope_hi
        if self.tails and lo is not None and hi is not None and s_lo is not None \
                and s_hi is not None:
            if self.per_channel:
                lo = _along(lo, xt.dim(), self.channel_dim)
                hi = _along(hi, xt.dim(), self.channel_dim)
                s_lo = _along(s_lo, xt.dim(), self.channel_dim)
                s_hi = _along(s_hi, xt.dim(), self.channel_dim)
            xc = torch.minimum(torch.maximum(xt, lo.to(xt.dtype)), hi.to(xt.dtype))
        n = self.degree + 1
        if n == 2:
            y = c[..., 0] + xc * c[..., 1]
        else:
            b2 = torch.zeros_like(xc)
            b1 = c[..., n - 1] + b2
            for k in range(n - 2, 0, -1):
                b1, b2 = c[..., k] + xc * b1 * (1.0 / (k + 1)) - b2 * (1.0 / (k + 2)), b1
            y = c[..., 0] + xc * b1 - 0.5 * b2
        if self.tails and s_lo is not None and s_hi is not None:
            y = y + torch.where(xt < xc, s_lo.to(xt.dtype), s_hi.to(xt.dtype)) * (xt - xc)
        return y.to(x.dtype)


class FrozenFourier(FrozenActivation):
    r"""f(x) = bias + \sum_k amplitude_k cos(frequency_k x - phase_k) on constant buffers."""

    channel_dim: int

    def __init__(self, module: nn.Module) -> None:
        super().__init__(module)
        self.channel_dim = int(module.channel_dim)
        for name in ("bias", "amplitude", "frequency", "phase"):
            self._const(name, getattr(module, name))

    def forward(self, x: Tensor) -> Tensor:
        return _fourier.fourier(x, self.bias.to(x.dtype), self.amplitude.to(x.dtype),
                                self.frequency.to(x.dtype), self.phase.to(x.dtype),
                                self.channel_dim)


def _max_of_lines(x: Tensor, slopes: Tensor, coeffs: Tensor, per_channel: bool,
                  channel_dim: int) -> Tensor:
    """max_k (slopes_k x + coeffs_k): one multiply-add and one maximum per line (the training
    op also tracks the argmax for its backward)."""
    if per_channel:
        slopes = _along(slopes, x.dim(), channel_dim)
        coeffs = _along(coeffs, x.dim(), channel_dim)
    best = torch.addcmul(coeffs[..., 0], x, slopes[..., 0])
    for k in range(1, coeffs.shape[-1]):
        best = torch.maximum(best, torch.addcmul(coeffs[..., k], x, slopes[..., k]))
    return best


def _scale_offset(y: Tensor, scale: Tensor, offset: Tensor, per_channel: bool,
                  channel_dim: int) -> Tensor:
    if per_channel:
        scale = _along(scale, y.dim(), channel_dim)
        offset = _along(offset, y.dim(), channel_dim)
    return torch.addcmul(offset, y, scale)


class FrozenTropical(FrozenActivation):
    r"""f(x) = scale max_k (slopes_k x + coeffs_k) + offset on constant buffers."""

    channel_dim: int
    per_channel: bool

    def __init__(self, module: nn.Module) -> None:
        super().__init__(module)
        self.channel_dim = int(module.channel_dim)
        coeffs = module.coeffs.detach()
        self.per_channel = coeffs.ndim == 2
        self._const("slopes", module.slopes.detach().to(coeffs.dtype).expand_as(coeffs))
        for name in ("coeffs", "scale", "offset"):
            self._const(name, getattr(module, name))

    def forward(self, x: Tensor) -> Tensor:
        t = x.dtype
        y = _max_of_lines(x, self.slopes.to(t), self.coeffs.to(t), self.per_channel,
                          self.channel_dim)
        return _scale_offset(y, self.scale.to(t), self.offset.to(t), self.per_channel,
                             self.channel_dim)


class FrozenTropicalRational(FrozenActivation):
    """f(x) = scale (P(x) - Q(x)) + offset, P and Q tropical polynomials, on constant buffers."""

    channel_dim: int
    per_channel: bool

    def __init__(self, module: nn.Module) -> None:
        super().__init__(module)
        self.channel_dim = int(module.channel_dim)
        self.per_channel = module.num_coeffs.ndim == 2
        for part in ("num", "den"):
            coeffs = getattr(module, f"{part}_coeffs").detach()
            self._const(f"{part}_coeffs", coeffs)
            self._const(f"{part}_slopes", getattr(module, f"{part}_slopes").detach().to(
                coeffs.dtype).expand_as(coeffs))
        for name in ("scale", "offset"):
            self._const(name, getattr(module, name))

    def forward(self, x: Tensor) -> Tensor:
        t = x.dtype
        p = _max_of_lines(x, self.num_slopes.to(t), self.num_coeffs.to(t), self.per_channel,
                          self.channel_dim)
        q = _max_of_lines(x, self.den_slopes.to(t), self.den_coeffs.to(t), self.per_channel,
                          self.channel_dim)
        return _scale_offset(p - q, self.scale.to(t), self.offset.to(t), self.per_channel,
                             self.channel_dim)


class FrozenRational(FrozenActivation):
    """f(x) = scale P(x) / (1 + |A(x)|) + offset on constant buffers."""

    channel_dim: int

    def __init__(self, module: nn.Module) -> None:
        super().__init__(module)
        self.channel_dim = int(module.channel_dim)
        for name in ("num", "den", "scale", "offset"):
            self._const(name, getattr(module, name))

    def forward(self, x: Tensor) -> Tensor:
        t = x.dtype
        return _rational.rational(x, self.num.to(t), self.den.to(t), self.scale.to(t),
                                  self.offset.to(t), self.channel_dim)


class FrozenSELUVariation(FrozenActivation):
    r"""f(x) = scale lam (x for x > 0, alpha (e^{beta x} - 1) + gamma sin(omega x) otherwise)
    + offset on constant buffers."""

    channel_dim: int
    per_channel: bool

    def __init__(self, module: nn.Module) -> None:
        super().__init__(module)
        self.channel_dim = int(module.channel_dim)
        # (7, C) or (7,): lam, alpha, beta, gamma, omega, scale, offset
        params = torch.stack([p.detach() for p in module._params()])
        self.per_channel = params.ndim == 2
        self._const("params", params)

    def forward(self, x: Tensor) -> Tensor:
        p = self.params.to(x.dtype)
        if self.per_channel:
            p = _along(p.t(), x.dim(), self.channel_dim)
        else:
            p = p.reshape(1, 7)
        la, al, be, ga, om, s, t = (p[..., 0], p[..., 1], p[..., 2], p[..., 3], p[..., 4],
                                    p[..., 5], p[..., 6])
        xn = torch.clamp(x, max=0.0)
        w = clipped_phase(xn, om)
        neg = al * torch.expm1(be * xn) + ga * torch.sin(w)
        return s * (la * torch.where(x > 0, x, neg)) + t


class FrozenPerlin(FrozenActivation):
    """base(x) + amplitude * noise(x) with the lattices as one constant buffer."""

    radius: float
    amplitude: float
    kind: str
    base: str
    sizes: list[int]

    def __init__(self, module: nn.Module) -> None:
        super().__init__(module)
        lats = [t.detach().reshape(-1) for t in module.lattices()]
        self.sizes = [int(t.numel()) for t in lats]
        self._const("lattice", torch.cat(lats))
        self.radius = float(module.radius)
        self.amplitude = float(module.amplitude)
        self.kind = str(module.kind)
        self.base = str(module.base)

    def forward(self, x: Tensor) -> Tensor:
        xx = x.to(_compute_dtype(x))
        lats: list[Tensor] = []
        start = 0
        for n in self.sizes:
            lats.append(self.lattice[start:start + n].to(xx.dtype))
            start += n
        if self.base == "identity":
            b = xx
        elif self.base == "relu":
            b = torch.relu(xx)
        elif self.base == "gelu":
            b = torch.nn.functional.gelu(xx)
        else:
            b = torch.zeros_like(xx)
        y = b + self.amplitude * _perlin.perlin(xx, lats, self.radius, self.kind)
        return y.to(x.dtype)


def _gate(x: Tensor, gate: str, alpha: float) -> Tensor:
    """DiTAC's gate s(x) (ops/cpab/common.gate_and_slope's values, in TorchScript's subset)."""
    if gate == "gelu":
        return 0.5 + 0.5 * torch.erf(x * (1.0 / math.sqrt(2.0)))
    if gate == "silu":
        return torch.sigmoid(x)
    if gate == "leaky_relu":
        return torch.where(x > 0, torch.ones_like(x), torch.full_like(x, alpha))
    return torch.ones_like(x)


class _FrozenDiTAC(FrozenActivation):
    """What the DiTAC table forms share: the gate and where the warp applies; subclasses
    define ``_read(z)`` (x~ at z)."""

    channel_dim: int
    per_channel: bool
    channels: int
    gate: str
    alpha: float
    warp_output: bool

    def __init__(self, module: nn.Module) -> None:
        super().__init__(module)
        self.channel_dim = int(module.channel_dim)
        self.per_channel = module.channels is not None
        self.channels = int(module.channels or 1)
        self.gate, self.alpha = str(module.gate), float(module.alpha)
        self.warp_output = module.warp == "output"

    def forward(self, x: Tensor) -> Tensor:
        xx = x.to(_compute_dtype(x))
        s = _gate(xx, self.gate, self.alpha)
        y = self._read(xx * s) if self.warp_output else self._read(xx) * s
        return y.to(x.dtype)


class FrozenDiTACTable(_FrozenDiTAC):
    """DiTAC by a table: x~ = lo + (hi - lo) T(u) with T read by linear interpolation on
    ``points`` equally spaced grid points of u = (x - lo)/(hi - lo) in [0, 1], x~ = x outside
    [lo, hi]; then the gate (``warp="input"``: x~ s(x); ``"output"``: the table applied to
    x s(x)). ``error_bound``: the largest deviation from the exact flow measured at freeze
    time on 8 points per grid step (float64)."""

    lo: float
    hi: float
    points: int

    def __init__(self, module: nn.Module, points: int) -> None:
        super().__init__(module)
        if not (isinstance(points, int) and 2 <= points <= 1 << 22):
            raise ValueError(f"points must be an integer in [2, 4194304], got {points!r}")
        self.lo, self.hi = float(module.a), float(module.b)
        self.points = points
        exact = _ditac_transform(module)
        grid = torch.linspace(self.lo, self.hi, points, dtype=torch.float64)
        table = exact(grid)  # (points,) or (C, points)
        self._const("table", table.to(module.theta.dtype))
        fine = torch.linspace(self.lo, self.hi, 8 * (points - 1) + 1, dtype=torch.float64)
        want = exact(fine)
        approx = self._interp(fine.expand_as(want) if self.per_channel else fine, table, True)
        dev = (approx - want).abs().max().item()
        # the gate multiplies x~ (|s| <= 1 for every gate; alpha <= 1 checked by the module),
        # warp="output" moves the point where x~ is read, not the bound
        self.error_bound = float(dev) * max(1.0, abs(self.alpha))

    def _interp(self, z: Tensor, table: Tensor, rows: bool) -> Tensor:
        """x~(z) by linear interpolation; rows: z (C, M) with one table row per channel."""
        n = self.points
        u = (z - self.lo) * ((n - 1) / (self.hi - self.lo))
        inside = (z >= self.lo) & (z <= self.hi)
        # NaN reads bin 0 (its value is z itself, below): a NaN index would be out of range
        i = torch.clamp(torch.nan_to_num(torch.floor(u), nan=0.0), 0.0, float(n - 2))
        w = torch.clamp(u - i, 0.0, 1.0)
        idx = i.to(torch.int64)
        if self.per_channel:
            c = self.channels
            if rows:
                base = torch.arange(c, device=z.device).reshape(c, 1) * n
            else:
                base = _along(torch.arange(c, device=z.device) * n, z.dim(), self.channel_dim)
            idx = idx + base
        flat = table.reshape(-1).to(z.dtype)
        t0 = torch.take(flat, idx)
        t1 = torch.take(flat, idx + 1)
        return torch.where(inside, t0 + w * (t1 - t0), z)

    def _read(self, z: Tensor) -> Tensor:
        return self._interp(z, self.table, False)


class FrozenDiTACLookup(_FrozenDiTAC):
    """A DiTAC trained with ``lut=N``, read exactly as its op reads it: the bin
    r = floor(off + k x) clamped to 0 .. N + 1, x~ = x + D[r] with D the padded displacement
    table of the module's own N-point grid (0 in the two outside bins), then the gate. Equal to
    the module's forward up to rounding (``error_bound`` 0); its own deviation from the exact
    flow is the lookup's (half a grid step times max |T' - 1|, ops/cpab/lut.py)."""

    n: int
    k: float
    off: float

    def __init__(self, module: nn.Module) -> None:
        super().__init__(module)
        from .ops.cpab import lut_tables
        from .ops.cpab.lut import _bin_rule, _lut_tables

        self.n = int(module.lut)
        lo, hi = float(module.a), float(module.b)
        self.k, self.off = _bin_rule(self.n, lo, hi)
        with torch.no_grad():
            table, dtable = lut_tables(*module._tables(), self.n)
            D, _ = _lut_tables(table, dtable, lo, hi, module.theta.dtype)
        self._const("D", D)

    def _read(self, z: Tensor) -> Tensor:
        # NaN reads the outside bin 0 (displacement 0: z + 0 stays NaN)
        r = torch.clamp(torch.nan_to_num(z * self.k + self.off, nan=0.0), 0.0,
                        self.n + 1.5).to(torch.int64)
        r = torch.clamp(r, 0, self.n + 1)
        if self.per_channel:
            c = self.channels
            r = r + _along(torch.arange(c, device=z.device) * (self.n + 2), z.dim(),
                           self.channel_dim)
        return z + torch.take(self.D.to(z.dtype), r)


class FrozenDiTACExact(FrozenActivation):
    """DiTAC by the closed-form flow in standard operators, its tables (from theta) as
    constant buffers: exact, for torch.export and ONNX. TorchScript cannot compile the
    flow's code: use ``freeze(model, ditac="table")`` for ``torch.jit.script``."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__(module)
        a2, b2, tau2 = module._tables()
        self._const("a2", a2)
        self._const("b2", b2)
        self._const("tau2", tau2)
        self.cfg = dict(lo=float(module.a), hi=float(module.b), gate=str(module.gate),
                        alpha=float(module.alpha), channel_dim=module._cd())
        self.warp_output = module.warp == "output"

    def forward(self, x: Tensor) -> Tensor:
        if torch.jit.is_tracing():
            raise TypeError("FrozenDiTACExact (DiTAC's exact closed form) cannot be traced by "
                            "torch.jit.trace (its graph depends on the input's shape); freeze "
                            "with ditac='table' for TorchScript, or use torch.export / "
                            "torch.onnx.export on this form")

        if self.warp_output:
            cfg = dict(self.cfg, gate="identity")
            return export_form(x * ditac_gate(x, self.cfg["gate"], self.cfg["alpha"]), self.a2,
                               self.b2, self.tau2, **cfg)
        return export_form(x, self.a2, self.b2, self.tau2, **self.cfg)

    def __prepare_scriptable__(self):
        raise TypeError("FrozenDiTACExact (DiTAC's exact closed form) cannot be compiled by "
                        "torch.jit.script; freeze with ditac='table' for TorchScript, or use "
                        "torch.export / torch.onnx.export / torch.jit.trace on this form")


def _ditac_transform(module: nn.Module):
    """z (M,) float64 -> x~(z) exactly ((M,) or (C, M)), by the module's own exact op."""
    m = copy.deepcopy(module).double().eval()
    m.lut = None

    def fn(z: Tensor) -> Tensor:
        with torch.no_grad():
            if module.channels is None:
                return m.transform(z)
            m.channel_dim = -1
            return m.transform(z.reshape(-1, 1).expand(-1, module.channels)).t().contiguous()

    return fn


class FrozenStaircase(FrozenActivation):
    """The staircase forward w (clamp(floor(x/w + n/2), 0, n) - n/2) (no surrogate
    derivative: inference only)."""

    steps: int
    width: float

    def __init__(self, module: nn.Module) -> None:
        super().__init__(module)
        self.steps, self.width = int(module.steps), float(module.width)

    def forward(self, x: Tensor) -> Tensor:
        return _surrogate.staircase(x, self.steps, self.width)


class FrozenCantor(FrozenActivation):
    """The Cantor staircase forward (no surrogate derivative: inference only)."""

    depth: int
    lo: float
    hi: float

    def __init__(self, module: nn.Module) -> None:
        super().__init__(module)
        self.depth, self.lo, self.hi = int(module.depth), float(module.lo), float(module.hi)

    def forward(self, x: Tensor) -> Tensor:
        return _surrogate.cantor_staircase(x, self.depth, self.lo, self.hi)


def _frozen_form(module: nn.Module, ditac: str, points: int) -> "nn.Module | None":
    """The inference form of one learnact module (None: not a learnact activation): the
    family hook ``inference_form`` of its class (docs/design.md, "The family contract")."""
    hook = getattr(type(module), "inference_form", None)
    if hook is None:
        return None
    return hook(module, ditac=ditac, points=points)


class FrozenDefined(FrozenActivation):
    """The inference form of a derived family (learnact.core.definition, e.g. PWLU): the
    module's own evaluation (``learnact.ops.defined.evaluate``: its eager kernel, or the
    definition's formula with ``torch`` as its array namespace) on constant buffers, float32
    for half inputs. torch.export, ONNX and torch.jit.trace record the formula's standard
    operators; torch.jit.script cannot compile a formula written for every array namespace and
    says so."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__(module)
        self.definition = module.definition
        self.config = dict(module._kw)
        self.tensor_names = tuple(module.tensor_names)
        for n in self.tensor_names:
            self._const(n, getattr(module, n))

    def forward(self, x: Tensor) -> Tensor:
        xt = x.to(_compute_dtype(x))
        p = {n: getattr(self, n).to(xt.dtype) for n in self.tensor_names}
        return evaluate(self.definition, xt, p, self.config).to(x.dtype)

    def __prepare_scriptable__(self) -> nn.Module:
        raise TypeError(
            f"torch.jit.script cannot compile the frozen {self.definition.class_name} (its "
            "formula is written once for numpy, JAX, Keras and torch); torch.jit.trace, "
            "torch.export and torch.onnx.export record it as standard operators")

    def extra_repr(self) -> str:
        return f"{self.definition.name}: {self.source}"


def freeze(model: nn.Module, *, ditac: Literal["table", "exact"] = "table",
           points: int = 4096, inplace: bool = False) -> nn.Module:
    """An inference copy of ``model`` with every learnact activation in its frozen form.

    Each learnable activation becomes a :class:`FrozenActivation` (standard operators on
    constant buffers: see the module doc for the form of each family); surrogate-derivative
    activations keep their forward only; everything else is untouched. The copy is in eval
    mode with ``requires_grad=False`` everywhere. A frozen model runs under ``torch.jit.script``
    (all forms but ``ditac="exact"``), ``torch.jit.trace``, ``torch.export`` and
    ``torch.onnx.export`` without learnact's custom ops.

    Args:
        model: any nn.Module (an activation module itself works too).
        ditac: ``"table"`` (linear interpolation on ``points`` grid points; the stated
            ``error_bound`` of each frozen DiTAC is measured at freeze time) or ``"exact"``
            (the closed-form flow: exact; not TorchScript-compilable).
        points: grid points of DiTAC tables (2 .. 2^22).
        inplace: change ``model`` itself instead of a deep copy.

    Returns:
        The frozen model (``model`` itself with ``inplace=True``).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    if ditac not in ("table", "exact"):
        raise ValueError(f"ditac must be 'table' or 'exact', got {ditac!r}")
    if not (isinstance(points, int) and not isinstance(points, bool) and 2 <= points <= 1 << 22):
        raise ValueError(f"points must be an integer in [2, 4194304], got {points!r}")
    out = model if inplace else copy.deepcopy(model)
    top = _frozen_form(out, ditac, points)
    if top is not None:
        return _finish(top)
    # every place a module is used (one instance may sit at several paths: one form for it,
    # installed at all of them), outermost first; a learnact module's own submodules (e.g. a
    # surrogate's base) go with it
    forms: dict[int, nn.Module | None] = {}
    pairs: list[tuple[str, nn.Module]] = []
    for name, mod in out.named_modules(remove_duplicate=False):
        if not name or any(name.startswith(p + ".") for p, _ in pairs):
            continue
        if id(mod) not in forms:
            forms[id(mod)] = _frozen_form(mod, ditac, points)
        if forms[id(mod)] is not None:
            pairs.append((name, forms[id(mod)]))
    _swap(out, pairs)
    for name, form in pairs:
        log.info("froze %s (%s) as %s", name, form.source if isinstance(
            form, FrozenActivation) else type(form).__name__, type(form).__name__)
    return _finish(out)


def _finish(model: nn.Module) -> nn.Module:
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model
