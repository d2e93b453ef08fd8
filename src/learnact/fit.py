"""Fit an activation to a target function, value and derivative, in well under a second.

Families that are linear in their parameters are fitted in closed form: weighted least squares
on value and derivative, solved in float64 by ``torch.linalg.lstsq`` (QR-based, not normal
equations):

* Hermite: f = sum_k c_k phi_k with phi_k = h_k (pure) or, with linear tails,
  phi_k(x) = h_k(xb) + h_{k-1}(xb)(x - xb), xb = clamp(x, lo, hi) - still linear in c;
  derivative columns h_{k-1}(xb).
* Fourier with its frequencies held: c cos(w x - phi) = a cos(w x) + b sin(w x), linear in
  (a_0, a, b); then c = |(a, b)|, phi = atan2(b, a).

Every other family (tropical, tropical rational, and anything with parameters) starts from a
closed-form fit of its output ``scale``/``offset`` (when it has them) and is refined by a short
deterministic L-BFGS on all parameters.

The domain is ``"normal"`` (N(0, sigma^2): Gauss-Hermite nodes and weights), an interval
``(lo, hi)`` (Gauss-Legendre, uniform weight), or a tensor of observed samples (the empirical
distribution, subsampled deterministically to ``max_points``).
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from .core.quadrature import fit_domain
from .modules.base import LearnableActivation
from .registry import create

log = logging.getLogger(__name__)

__all__ = ["FitReport", "fit", "resolve_target", "domain_points"]


@dataclass
class FitReport:
    """What a fit achieved, measured on the fitting domain (float64)."""

    method: str
    seconds: float
    max_error: float          # max |f - target| (normal: on [-3s, 3s]; interval; or the samples)
    rms_error: float          # sqrt(domain-weighted mean (f - target)^2)
    max_deriv_error: float    # max |f' - target'|
    rms_deriv_error: float
    domain: str
    points: int
    per_channel: list[dict[str, float]] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    #: max - min of the target over the points the max errors were taken on (the smallest
    #: over channels): the scale ``replace_activations(max_error="auto")`` compares with
    target_spread: float = math.nan

    def __str__(self) -> str:
        return (f"fit [{self.method}, {self.domain}, {self.points} points, {self.seconds * 1e3:.0f} ms]: "
                f"max|f-t| {self.max_error:.3g}, rms {self.rms_error:.3g}; "
                f"max|f'-t'| {self.max_deriv_error:.3g}, rms {self.rms_deriv_error:.3g}")

    def plot(self, path: str | None = None):
        """Target vs fit and both derivatives (matplotlib; needs the [plots] extra)."""
        from .viz.fit import plot_fit

        return plot_fit(self, path)


# ------------------------------------------------------------------------------------------
# targets and domains
# ------------------------------------------------------------------------------------------


def resolve_target(target: Any) -> Callable[[Tensor], Tensor]:
    """A registry name, an nn.Module or a callable on tensors -> a float64-capable callable."""
    if isinstance(target, str):
        mod = create(target).eval()
        return _module_fn(mod)
    if isinstance(target, nn.Module):
        return _module_fn(target)
    if callable(target):
        return target
    raise TypeError(f"target must be a registry name, an nn.Module or a callable on tensors, "
                    f"got {type(target).__name__}")


def _module_fn(mod: nn.Module) -> Callable[[Tensor], Tensor]:
    import copy

    m64 = copy.deepcopy(mod).to(torch.float64).eval()
    return lambda x: m64(x)


def _target_value_and_derivative(target: Callable[[Tensor], Tensor], x: Tensor
                                 ) -> tuple[Tensor, Tensor]:
    with torch.enable_grad():
        xx = x.detach().clone().requires_grad_(True)
        # a copy that is not a leaf: targets that work in place (nn.ReLU(inplace=True), timm's
        # and torchvision's activations) may modify it
        y = target(xx.clone())
        if not isinstance(y, Tensor) or y.shape != xx.shape:
            raise TypeError("target must map a tensor to a tensor of the same shape")
        # a target with no autograd graph (a step function, x > 0) is piecewise constant
        dy = (torch.autograd.grad(y.sum(), xx, allow_unused=True)[0] if y.requires_grad
              else None)
    if dy is None:
        dy = torch.zeros_like(xx)
    y, dy = y.detach().to(torch.float64), dy.detach().to(torch.float64)
    if not (torch.isfinite(y).all() and torch.isfinite(dy).all()):
        raise ValueError("target is not finite on the fitting domain")
    return y, dy


def report_range(domain: Any, sigma: float = 1.0) -> tuple[float, float] | None:
    """Where max errors are reported: +-3 sigma (normal), the interval, or None (samples)."""
    if isinstance(domain, str):
        return (-3.0 * sigma, 3.0 * sigma)
    if isinstance(domain, (tuple, list)):
        return (float(domain[0]), float(domain[1]))
    return None


def domain_points(domain: Any, *, sigma: float = 1.0, points: int | None = None,
                  max_points: int = 20000, seed: int = 0) -> tuple[Tensor, Tensor, str]:
    """(points, weights summing to 1, description) of a fitting domain, float64: "normal" and
    intervals by :func:`learnact.core.quadrature.fit_domain`, a tensor of samples here."""
    if isinstance(domain, Tensor):
        s = domain.detach().reshape(-1).to(torch.float64).cpu()
        s = s[torch.isfinite(s)]
        if s.numel() == 0:
            raise ValueError("domain samples are empty (or all non-finite)")
        spread = float(s.max() - s.min())
        if not spread > 1e-9 * max(1.0, float(s.abs().max())):
            raise ValueError(f"domain samples are constant (all {float(s[0]):g}, {s.numel()} "
                             f"values): a fit there says nothing about the function anywhere "
                             f"else; give samples with spread, an interval or 'normal'")
        if s.numel() > max_points:
            # deterministic subsample that keeps both extremes
            g = torch.Generator().manual_seed(seed)
            keep = torch.randperm(s.numel(), generator=g)[: max_points - 2]
            s = torch.cat([s[keep], s.min().reshape(1), s.max().reshape(1)])
        return s, torch.full_like(s, 1.0 / s.numel()), f"empirical ({domain.numel()} samples)"
    x, w, desc = fit_domain(domain, sigma, points, samples="a tensor of samples")
    return torch.from_numpy(x), torch.from_numpy(w), desc


# ------------------------------------------------------------------------------------------
# closed forms
# ------------------------------------------------------------------------------------------


def weighted_lstsq(cols_f: Tensor, cols_d: Tensor, y: Tensor, dy: Tensor, w: Tensor,
                    dw: float) -> Tensor:
    """argmin_c sum_i w_i [(F c - y)_i^2 + dw (D c - dy)_i^2] by QR least squares (float64)."""
    sw = torch.sqrt(w).unsqueeze(1)
    a = [cols_f * sw]
    b = [y.unsqueeze(1) * sw]
    if dw > 0:
        a.append(cols_d * sw * math.sqrt(dw))
        b.append(dy.unsqueeze(1) * sw * math.sqrt(dw))
    A, B = torch.cat(a), torch.cat(b)
    # column scaling keeps the QR well conditioned (Hermite columns span many magnitudes)
    scale = A.norm(dim=0).clamp_min(1e-300)
    sol = torch.linalg.lstsq(A / scale, B, driver="gels").solution[:, 0]
    return sol / scale


# ------------------------------------------------------------------------------------------
# generic: closed-form scale/offset, then L-BFGS
# ------------------------------------------------------------------------------------------


def _evaluate(act: nn.Module, x: Tensor, channel: int | None) -> tuple[Tensor, Tensor]:
    """f and f' of a module at 1-D float64 points (one channel of a per-channel module)."""
    if isinstance(act, LearnableActivation):
        f, df = act.function_and_derivative(x)
        if f.ndim == 2:
            c = channel or 0
            f, df = f[c], df[c]
        return f, df
    return _target_value_and_derivative(_module_fn(act), x)


def _objective(act: nn.Module, x: Tensor, y: Tensor, dy: Tensor, w: Tensor, dw: float,
               channel: int | None) -> float:
    f, df = _evaluate(act, x, channel)
    return float((w * (f - y) ** 2).sum() + dw * (w * (df - dy) ** 2).sum())


def _fit_generic(act: nn.Module, x: Tensor, y: Tensor, dy: Tensor, w: Tensor, dw: float,
                 channel: int | None, steps: int, seed: int) -> str:
    torch.manual_seed(seed)
    method = "lbfgs"
    if isinstance(act, LearnableActivation):
        act.fit_start(x, y, dy, w, channel)
    has_affine = isinstance(getattr(act, "scale", None), Tensor) and isinstance(
        getattr(act, "offset", None), Tensor)
    if has_affine:  # closed-form output scale/offset first: f = s g + t is linear in (s, t)
        s0 = act.scale.detach().to(torch.float64).reshape(-1)[channel or 0]
        t0 = act.offset.detach().to(torch.float64).reshape(-1)[channel or 0]
        f, df = _evaluate(act, x, channel)
        g, dg = (f - t0) / s0, df / s0
        F = torch.stack([g, torch.ones_like(g)], 1)
        D = torch.stack([dg, torch.zeros_like(dg)], 1)
        s, t = weighted_lstsq(F, D, y, dy, w, dw).tolist()
        with torch.no_grad():
            for name, v in (("scale", s), ("offset", t)):
                p = getattr(act, name)
                if channel is None or p.ndim == 0:
                    p.fill_(v)
                else:
                    p[channel] = v
        method = "closed-form scale/offset + lbfgs"
    params = [p for p in act.parameters() if p.requires_grad]
    if not params or steps <= 0:
        return method if params else "none (no parameters)"
    # optimise a float64 copy, one channel at a time for per-channel modules
    work = copy.deepcopy(act).to(torch.float64)
    names = [n for n, p in work.named_parameters() if p.requires_grad]
    wparams = [p for p in work.parameters() if p.requires_grad]
    cd = getattr(work, "channel_dim", 1)
    per_channel = getattr(work, "channels", None) is not None
    xin = x
    if per_channel:
        xin = x.reshape(-1, 1).expand(-1, work.channels).contiguous()
        work.channel_dim = -1
    opt = torch.optim.LBFGS(wparams, lr=1.0, max_iter=steps, history_size=20,
                            line_search_fn="strong_wolfe", tolerance_grad=1e-12,
                            tolerance_change=1e-14)

    def closure() -> Tensor:
        opt.zero_grad()
        xx = xin.detach().clone().requires_grad_(True)
        out = work(xx)
        (dout,) = torch.autograd.grad(out.sum(), xx, create_graph=True)
        if per_channel:
            out, dout = out[:, channel or 0], dout[:, channel or 0]
        loss = (w * (out - y) ** 2).sum() + dw * (w * (dout - dy) ** 2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    work.channel_dim = cd
    with torch.no_grad():
        dsts = dict(act.named_parameters())
        for n, p in zip(names, wparams):
            dst = dsts[n]
            if per_channel and channel is None and dst.ndim >= 1 and dst.shape[0] == act.channels:
                dst.copy_(p[0].to(dst.dtype).expand_as(dst))  # one shared domain: every channel
            else:
                dst.copy_(p.to(dst.dtype))
    return method


# ------------------------------------------------------------------------------------------
# entry point
# ------------------------------------------------------------------------------------------


def fit(act: nn.Module, target: Any, *, domain: Any = "normal", derivative_weight: float = 1.0,
        points: int | None = None, sigma: float = 1.0, steps: int = 30, seed: int = 0,
        max_points: int = 20000) -> FitReport:
    """Fit ``act``'s parameters in place so that f ~ target on the domain (value + derivative).

    Args:
        act: a learnact module (any family) or any nn.Module with parameters.
        target: a registry name (``"gelu"``), an nn.Module or a callable on tensors.
        domain: ``"normal"`` (N(0, sigma^2)), an interval ``(lo, hi)``, or a tensor of observed
            pre-activation samples (for a per-channel module: shape (..., C) with channels
            last, or 1-D for one shared sample set).
        derivative_weight: weight of the squared derivative error (0: values only).
        points: quadrature nodes for "normal"/interval domains (defaults 120 / 400).
        sigma: standard deviation of the "normal" domain.
        steps: L-BFGS iterations for families that are not linear in their parameters.
        seed: makes the nonlinear fits (and sample subsampling) deterministic.
    Returns:
        A :class:`FitReport`; two calls with the same arguments give bit-identical parameters.
    """
    if not isinstance(act, nn.Module):
        raise TypeError(f"act must be an nn.Module, got {type(act).__name__}")
    if not any(True for _ in act.parameters()):
        raise ValueError(f"{type(act).__name__} has no parameters to fit (fixed activation); "
                         "choose a learnable family, e.g. 'hermite:degree=8'")
    fn = resolve_target(target)
    if not (derivative_weight >= 0 and math.isfinite(derivative_weight)):
        raise ValueError(f"derivative_weight must be a finite number >= 0, got {derivative_weight}")
    if not (isinstance(sigma, (int, float)) and math.isfinite(sigma) and sigma > 0):
        raise ValueError(f"sigma must be a finite number > 0, got {sigma!r}")
    if points is not None and not (isinstance(points, int) and points >= 2):
        raise ValueError(f"points must be an integer >= 2 (or None), got {points!r}")
    if not (isinstance(steps, int) and steps >= 0):
        raise ValueError(f"steps must be an integer >= 0, got {steps!r}")
    if not (isinstance(max_points, int) and max_points >= 16):
        raise ValueError(f"max_points must be an integer >= 16, got {max_points!r}")
    before = copy.deepcopy(act.state_dict())
    twin = act.fit_twin() if isinstance(act, LearnableActivation) else None
    try:
        rep = _fit(act if twin is None else twin, fn, target, domain, derivative_weight,
                   points, sigma, steps, seed, max_points)
        if twin is not None:
            act.load_state_dict(twin.state_dict())
            rep.method += f" (fitted as {twin!r}: the same parameters)"
    except BaseException:
        act.load_state_dict(before)  # a failed fit leaves the module as it was
        raise
    bad = [n for n, p in act.named_parameters() if not bool(torch.isfinite(p).all())]
    errs = (rep.max_error, rep.rms_error, rep.max_deriv_error, rep.rms_deriv_error)
    if bad or not all(math.isfinite(e) for e in errs):
        act.load_state_dict(before)
        cause = (f"parameters {', '.join(bad)} are not finite" if bad
                 else "its errors are not finite")
        raise ValueError(f"fit of {type(act).__name__} to {rep.extra['target']} on "
                         f"{rep.domain} failed: {cause}; the module is left as it was")
    return rep


def _fit(act: nn.Module, fn: Callable[[Tensor], Tensor], target: Any, domain: Any,
         derivative_weight: float, points: int | None, sigma: float, steps: int, seed: int,
         max_points: int) -> FitReport:
    t0 = time.perf_counter()
    channels = getattr(act, "channels", None)
    per_channel_samples = (isinstance(domain, Tensor) and channels is not None
                           and domain.ndim >= 2 and domain.shape[-1] == channels)
    targets = range(channels) if (channels is not None and per_channel_samples) else [None]
    method = ""
    stats = []
    for ch in targets:
        dom = domain[..., ch] if ch is not None else domain
        x, w, desc = domain_points(dom, sigma=sigma, points=points, max_points=max_points,
                                   seed=seed)
        y, dy = _target_value_and_derivative(fn, x)
        closed = (act.closed_form_fit(x, y, dy, w, derivative_weight, ch)
                  if isinstance(act, LearnableActivation) else None)
        if closed is None:
            method = _fit_generic(act, x, y, dy, w, derivative_weight, ch, steps, seed)
        else:
            method = closed
            held = [getattr(act, n) for n in act.closed_form_held]
            if steps > 0 and any(p.requires_grad for p in held):
                # refine the held parameters too; kept only where that lowers the error
                before = _objective(act, x, y, dy, w, derivative_weight, ch)
                snapshot = copy.deepcopy(act.state_dict())
                _fit_generic(act, x, y, dy, w, derivative_weight, ch, steps, seed)
                if _objective(act, x, y, dy, w, derivative_weight, ch) < before:
                    method += " + lbfgs on all (" + ", ".join(act.closed_form_held) + " too)"
                else:
                    act.load_state_dict(snapshot)
        f, df = _evaluate(act, x, ch)
        e, de = (f - y).abs(), (df - dy).abs()
        rms, drms = float(torch.sqrt((w * e * e).sum())), float(torch.sqrt((w * de * de).sum()))
        rr = report_range(dom, sigma)
        if rr is not None:  # max errors on a dense grid of the report range
            x = torch.linspace(rr[0], rr[1], 2001, dtype=torch.float64)
            y, dy = _target_value_and_derivative(fn, x)
            f, df = _evaluate(act, x, ch)
            e, de = (f - y).abs(), (df - dy).abs()
            desc += f", max errors on [{rr[0]:g}, {rr[1]:g}]"
        stats.append({"spread": float(y.max() - y.min()),
                      "max_error": float(e.max()), "rms_error": rms,
                      "max_deriv_error": float(de.max()), "rms_deriv_error": drms,
                      "points": x.numel(), "desc": desc, "x": x, "f": f, "df": df, "y": y, "dy": dy})
    worst = {k: max(s[k] for s in stats) for k in ("max_error", "rms_error", "max_deriv_error",
                                                  "rms_deriv_error")}
    rep = FitReport(method=method, seconds=time.perf_counter() - t0, domain=stats[0]["desc"],
                    points=int(stats[0]["points"]), **worst,
                    per_channel=[{k: s[k] for k in worst} for s in stats] if len(stats) > 1 else None,
                    target_spread=min(s["spread"] for s in stats))
    s0 = stats[0]
    rep.extra = {"x": s0["x"], "f": s0["f"], "df": s0["df"], "y": s0["y"], "dy": s0["dy"],
                 "target": target if isinstance(target, str) else getattr(target, "__name__", "target"),
                 "act": repr(act)}
    log.debug("%s", rep)
    return rep
