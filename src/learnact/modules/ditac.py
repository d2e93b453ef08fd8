"""DiTAC: diffeomorphism-warped activations (CPAB flow of the input, gated like GELU)."""

from __future__ import annotations

import copy
from typing import ClassVar

import torch
from torch import Tensor, nn

from .._tensor import canonical_dim
from ..functional import cpab
from ..ops import _dtensor
from ..ops._library import _forward_mode_active
from ..ops.cpab import cpab_lut_padded_op, ditac_op, lut_grid, native_lut_grid
from ..ops.cpab import gate as ditac_gate

MAX_LUT = 1 << 20  # table points per channel (2048 is the released code's)
from .base import LearnableActivation

__all__ = ["DiTAC", "LeakyDiTAC", "GEDiTAC"]



class _ReleasedPrior(torch.autograd.Function):
    """Identity on theta; backward returns d g + 2 lambda theta * colsum(P), the released
    code's effective update (see DiTAC's ``prior`` argument)."""

    @staticmethod
    def forward(ctx, theta: Tensor, colsum: Tensor, lam: float) -> Tensor:
        ctx.save_for_backward(theta, colsum)
        ctx.lam = lam
        return theta.view_as(theta)

    @staticmethod
    def backward(ctx, g: Tensor):
        theta, colsum = ctx.saved_tensors
        d = theta.shape[-1]
        return d * g + 2.0 * ctx.lam * theta * colsum.to(theta), None, None


class DiTAC(LearnableActivation):
    r"""DiTAC: a CPAB diffeomorphism T_theta of the input on [a, b], gated like GELU.

    .. math::

        \tilde x = \begin{cases} a + (b-a)\,T_\theta\!\bigl(\tfrac{x-a}{b-a}\bigr) & a \le x \le b\\
                   x & \text{otherwise}\end{cases},\qquad f(x) = \tilde x\, s(x)

    with the gate s = Phi (standard normal CDF) by default, so f = GELU outside [a, b] and at
    theta = 0. T_theta is the time-1 flow of a continuous piecewise-affine velocity field with
    ``cells`` cells and zero velocity at both ends (so T(a) = a, T(b) = b and f is continuous),
    integrated in closed form (functional/cpab.py); theta in R^(cells-1) (or (C, cells-1)).

    Args:
        a: left end of the warped interval (default ``default_a``: -0.5 for DiTAC and
            Leaky-DiTAC, 0 for GE-DiTAC; a < b).
        b: right end of the warped interval (default 2.0).
        cells: N_P >= 1 (default 10).
        channels: None (one theta shared) or C (one theta per channel).
        channel_dim: the input's channel dimension (1: (N, C, ...); -1: channels last).
        init: ``"prior"`` (default): one draw from the released code's init covariance (difw's,
            length scale 5, output variance 2, on the cell centres), from torch's generator;
            ``"zeros"``: exactly GELU.
        gate: ``"gelu"`` (DiTAC's default, ``default_gate``), ``"leaky_relu"`` (s = 1 for x > 0, ``alpha`` else: our
            Leaky-DiTAC), ``"silu"`` (s = sigmoid), ``"identity"`` (s = 1).
        warp: ``"input"`` (x~ s(x), the paper's DiTAC) or ``"output"`` (T applied to the base
            activation x s(x) on [a, b]).
        lut: None (exact) or 2 <= n <= 2^20: the released code's training path, n = 2048. T is
            tabulated on an n-point grid of [a, b], rebuilt whenever theta's values change
            (memoised by those values, so never stale: ops/cpab/lut.py ``cpab_grid``) and read as
            a displacement: x~ = x + (b - a)(T(u_r) - u_r) for the grid point u_r nearest to x
            (x~ = x outside the table), so the error against exact mode is at most half a
            grid step times max |T' - 1| and x~ = x outside [a, b] as in exact mode. Backward
            straight-through with the exact T'(u_r) (ops/cpab/lut.py ``cpab_lut_op``). Both
            modes run fused C kernels on the CPU (native/cpab.c). The LUT is the faster
            one with shared theta; per channel it flows C x n grid points whenever theta
            changes, so with many channels use exact mode (speeds: the documentation's
            Benchmarks page).
        lambda_reg: weight of the prior ``prior_loss()`` = lambda_reg theta^T P theta,
            P = (B^T K B + eps I)^-1. An explicit loss term (learnact.regularization), not a
            side effect in backward (``prior="explicit"``, the default).
        lambda_smooth: the kernel's length scale l.
        lambda_var: the kernel's output scale (lambda_var D)^2.
        kernel: ``"released"`` (the released code's exp(-2|d|/l) (lambda_var D)^2),
            ``"exponential"`` or ``"squared_exponential"``.
        prior: ``"explicit"`` (above) or ``"released"``: reproduce the released code instead,
            whose backward (in training mode, at every forward) turns theta's gradient into
            d * dL/dtheta + 2 lambda_reg theta * colsum(P) (d = cells - 1: its elementwise
            ``P.mul(theta)`` broadcasts to (d, d) and autograd sums it back); ``prior_loss()``
            is then 0. For reproducing published numbers only.
        alpha: the leaky gate's negative slope (default 0.01).

    Source: I. Chelly, S. E. Finder, S. Ifergane, O. Freifeld, "Trainable Highly-expressive
    Activation Functions", ECCV 2024 (arXiv:2407.07564).
    """

    family = "ditac"
    #: per-channel tensors and their number of dimensions (tensor parallelism shards them)
    channel_tensors: ClassVar[dict[str, int]] = {"theta": 2}
    #: the variants differ in these defaults only (LeakyDiTAC: the gate; GEDiTAC: a)
    default_a: ClassVar[float] = -0.5
    default_gate: ClassVar[str] = "gelu"

    def __init__(self, a: float | None = None, b: float = 2.0, cells: int = 10,
                 channels: int | None = None, channel_dim: int = 1, init: str = "prior",
                 gate: str | None = None, warp: str = "input", lut: int | None = None,
                 lambda_reg: float = 0.1, lambda_smooth: float = 5.0, lambda_var: float = 2.0,
                 kernel: str = "released", alpha: float = 0.01, prior: str = "explicit") -> None:
        super().__init__(channels, channel_dim)
        kw = self._configure(a=a, b=b, cells=cells, init=init, gate=gate, warp=warp, lut=lut,
                             lambda_reg=lambda_reg, lambda_smooth=lambda_smooth,
                             lambda_var=lambda_var, kernel=kernel, alpha=alpha, prior=prior)
        lambda_smooth, lambda_var = kw["lambda_smooth"], kw["lambda_var"]
        basis = cpab.cpa_basis(self.cells, True)
        self._basis64 = basis  # plain attribute: .float()/.half() must not round it
        d = basis.shape[1]
        cov = cpab.prior_covariance(self.cells, lambda_smooth, lambda_var, True, self.kernel)
        eps = float(torch.finfo(torch.float32).eps)
        # plain attribute, like the basis: derived from the configuration (never saved), so a
        # module materialised from the meta device (to_empty + load_state_dict) still has it
        self._precision = torch.linalg.inv(cov + eps * torch.eye(d, dtype=torch.float64)).float()
        self.theta = nn.Parameter(torch.zeros(self._param_shape(d)))
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        if self.init == "zeros" or self.theta.shape[-1] == 0:
            self.theta.zero_()
            return
        cov = cpab.init_covariance(self.cells)
        chol = torch.linalg.cholesky(cov + 1e-12 * torch.eye(cov.shape[0], dtype=torch.float64))
        z = torch.randn(self.theta.shape, dtype=torch.float64)
        self.theta.copy_((z @ chol.t()).to(self.theta.dtype))

    # -- the transformation -----------------------------------------------------------------
    @property
    def precision(self) -> Tensor:
        """The prior's precision matrix (float32) on theta's device."""
        if self._precision.device != self.theta.device:
            self._precision = self._precision.to(self.theta.device)
        return self._precision

    @property
    def basis(self) -> Tensor:
        """B in float64 on theta's device (not a buffer: .float()/.half() must not round it)."""
        if self._basis64.device != self.theta.device:
            self._basis64 = self._basis64.to(self.theta.device)
        return self._basis64

    def _theta64(self, theta: Tensor | None = None) -> Tensor:
        # small per-cell tables in float64 (e^{t a} overflows float32 for large theta);
        # the per-element work runs in the input's precision inside the op
        theta = self.theta if theta is None else theta
        if self.prior == "released" and self.training and torch.is_grad_enabled():
            theta = _ReleasedPrior.apply(theta, self.precision.sum(0), self.lambda_reg)
        return theta.to(torch.float64)

    def _tables(self, theta: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
        return cpab.flow_tables(self._theta64(theta), self.basis)

    def _cd(self) -> int | None:
        return None if self.channels is None else self.channel_dim

    def _warped(self, x: Tensor, gate: str, theta: Tensor | None = None) -> Tensor:
        """x~(x) s(x) for the given gate, exact or LUT, fused in one op. The lookup table on
        CPU: straight from the cells' a, b (``lut_grid``: one native call each way) instead
        of flow_tables + ditac_op's grid (~60 small autograd operations, ~1.4 ms a step)."""
        if (self.lut and x.device == self.theta.device and native_lut_grid(self.theta)
                and not torch.compiler.is_exporting()
                and not _forward_mode_active()):
            ta, tb = cpab.cell_coefficients(self._theta64(theta), self.basis)
            D, S = lut_grid(ta, tb, self.lut, float(self.a), float(self.b))
            return cpab_lut_padded_op(x, D, S, n=self.lut, lo=self.a, hi=self.b, gate=gate,
                                      alpha=self.alpha, channel_dim=self._cd())
        return ditac_op(x, *self._tables(theta), lo=self.a, hi=self.b, gate=gate,
                        alpha=self.alpha, channel_dim=self._cd(), lut=self.lut)

    def _local_forward(self, x: Tensor, theta: Tensor) -> Tensor:
        if self.warp == "input":
            return self._warped(x, self.gate, theta)
        return self._warped(x * self._gate(x), "identity", theta)

    def transform(self, x: Tensor) -> Tensor:
        """x~: T_theta on [a, b] (mapped to [0, 1]), identity outside."""
        self._check_input(x)
        return self._warped(x, "identity")

    def velocity(self, x: Tensor) -> Tensor:
        """The CPA field at x in input units ((b - a) v((x - a)/(b - a)) on [a, b], 0 outside)."""
        theta = self.theta.to(torch.float64)
        xx = x.to(torch.float64)
        if self.channels is not None:
            d = canonical_dim(x.ndim, self.channel_dim)
            moved = xx.movedim(d, 0)
            flat = moved.reshape(moved.shape[0], -1)
        else:
            flat = xx
        inside = (flat >= self.a) & (flat <= self.b)
        u = torch.where(inside, (flat - self.a) / (self.b - self.a), torch.zeros_like(flat))
        v = (self.b - self.a) * cpab.velocity(u, theta, self.basis)
        v = torch.where(inside, v, torch.zeros_like(v))
        if self.channels is not None:
            v = v.reshape(moved.shape).movedim(0, d)
        return v.to(x.dtype)

    def _gate(self, x: Tensor) -> Tensor:
        return ditac_gate(x, self.gate, self.alpha)

    def forward(self, x: Tensor) -> Tensor:
        self._check_input(x)
        if _dtensor.involved(x, [self.theta]):  # tensor parallel: each rank its shard
            return _dtensor.local_apply(self.family, self._local_forward, x,
                                        [("theta", self.theta, self.channels is not None)],
                                        self._cd())
        return self._local_forward(x, self.theta)

    def prior_loss(self) -> Tensor:
        """lambda_reg * theta^T P theta (summed over channels); 0 with ``prior="released"``
        (the prior then acts inside backward)."""
        if self.prior == "released":
            return torch.zeros((), dtype=self.theta.dtype, device=self.theta.device)
        if _dtensor.involved(self.theta, []):  # tensor parallel / FSDP2: a sharded theta,
            # gathered (differentiably: each rank's gradient comes back to its shard), so
            # every rank has the one replicated value
            return self._prior_sum(self.theta.full_tensor())
        return self._prior_sum(self.theta)

    def _prior_sum(self, theta: Tensor) -> Tensor:
        th = theta.reshape(-1, theta.shape[-1])
        return self.lambda_reg * torch.einsum("ci,ij,cj->", th, self.precision.to(th), th)

    def fit_twin(self) -> DiTAC | None:
        """lut=N has first derivatives only (the fit's derivative term needs second ones): fit
        the exact mode, which reads the same theta; the table then follows theta."""
        if not self.lut:
            return None
        twin = copy.deepcopy(self)
        twin.lut = None
        return twin

    def function_and_derivative(self, z: Tensor) -> tuple[Tensor, Tensor]:
        m = copy.deepcopy(self).double()
        m.channel_dim = -1
        with torch.enable_grad():
            zz = z.to(torch.float64).clone().requires_grad_(True)
            if self.channels is None:
                y = m(zz)
                (dy,) = torch.autograd.grad(y.sum(), zz)
                return y.detach(), dy
            y = m(zz.reshape(-1, 1).expand(-1, self.channels))
            ds = [torch.autograd.grad(y[:, c].sum(), zz, retain_graph=True)[0]
                  for c in range(self.channels)]
        return y.detach().t().contiguous(), torch.stack(ds)

    def kinks(self, channel: int | None = None) -> Tensor:
        knots = self.a + (self.b - self.a) * torch.arange(self.cells + 1, dtype=torch.float64) / self.cells
        return knots

    def inference_form(self, *, ditac: str = "table", points: int = 4096) -> nn.Module:
        """``ditac="table"``: the table read (the module's own table with ``lut``, else T
        sampled on ``points`` grid points); ``"exact"``: the closed-form flow."""
        from ..freeze import FrozenDiTACExact, FrozenDiTACLookup, FrozenDiTACTable

        if ditac == "exact":
            return FrozenDiTACExact(self)
        return FrozenDiTACLookup(self) if self.lut else FrozenDiTACTable(self, points)

    def extra_repr(self) -> str:
        lut = (f", lut={self.lut}" if self.lut else "") + (
            ", prior='released'" if self.prior == "released" else "")
        return (f"a={self.a:g}, b={self.b:g}, cells={self.cells}, {self._channel_repr()}, "
                f"init={self.init!r}, gate={self.gate!r}, warp={self.warp!r}{lut}")


class LeakyDiTAC(DiTAC):
    r"""Leaky-DiTAC, two readings (the released code raises NotImplementedError for it; the
    paper's Figure 4(c) draws "a Leaky DiTAC (solid line) versus the identity function
    (dashed line)"):

    * default, gated: f(x) = x~ s(x) with the leaky-ReLU gate s = 1 (x > 0), alpha (x <= 0):
      a leaky ReLU at theta = 0 (the network stays nonlinear at init; specs and checkpoints
      made before keep their meaning);
    * ``gate="identity"``, the figure's reading: f(x) = x~, the CPAB warp T on [a, b] and
      the identity outside (exactly the identity at theta = 0).

    See :class:`DiTAC` for every argument and ``docs/guides/ditac.md`` for the choice."""

    family = "leaky_ditac"
    # for time, one DiTAC variant in the main job (each costs ~40 s on the quick preset)
    default_gate = "leaky_relu"


class GEDiTAC(DiTAC):
    r"""GE-DiTAC (our reading of the paper's variant; the released code lists a transform on
    [0, b] with GELU elsewhere): x~ = T on [0, b], f = x~ Phi(x), so f = GELU for x < 0.
    Documented as a reading, not the paper's text. See :class:`DiTAC` for the arguments."""

    family = "ge_ditac"
    default_a = 0.0
