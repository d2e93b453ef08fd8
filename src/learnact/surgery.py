"""Replace the activation modules inside an existing model, fitted to what they replace.

    report = learnact.replace_activations(model, "hermite:degree=8", calibrate=batches)
    print(report)                      # module path, old type, new spec, range, fit errors
    learnact.restore(model, report)    # undo

What is found: torch.nn activation modules, Hugging Face ``transformers.activations`` classes
and timm's activation layers (matched by class name, so neither package is imported), and
learnact's own modules. Activations called functionally inside ``forward`` (``F.gelu(x)``) are
not modules and cannot be swapped by surgery; for Hugging Face models set
``config.hidden_act = "hermite:degree=8"`` after :func:`learnact.integrations.register_transformers`.

Calibration: ``calibrate`` is an iterable of batches, each run as ``model(**b)`` (mapping),
``model(*b)`` (tuple/list) or ``model(b)``; forward pre-hooks record every activation's inputs
(a bounded, deterministic subsample plus the exact min/max), and each new activation is
fitted on that empirical distribution. A real transformer feeds its GELUs values from about
-17 to +25; a polynomial cannot follow GELU over that range, so families with a ``tails``
option get ``tails="linear"`` (unless the spec sets it) with the polynomial range [lo, hi]
chosen among sample quantiles by the fitted error on the samples.

Nothing in the model changes until every replacement has been built and fitted; a failure
half-way leaves the model as it was.
"""

from __future__ import annotations

import copy
import fnmatch
import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from .fit import FitReport
from .fit import fit as _fit
from .kinds import HF_ACTIVATIONS, TIMM_ACTIVATIONS, TORCH_ACTIVATIONS, is_activation
from .modules.base import LearnableActivation
from .registry import create, parse_spec

log = logging.getLogger(__name__)

__all__ = ["replace_activations", "restore", "SurgeryReport", "SurgeryEntry", "find_activations"]

TargetSpec = Any  # "auto" | iterable of class names / path globs | callable(path, module) -> bool


def find_activations(model: nn.Module, targets: TargetSpec = "auto") -> list[tuple[str, nn.Module]]:
    """(path, module) of every activation module that ``targets`` selects, in model order."""
    if targets == "auto" or targets is None:
        def keep(path: str, m: nn.Module) -> bool:
            return True
    elif callable(targets):
        keep = targets  # type: ignore[assignment]
    elif isinstance(targets, (str, list, tuple, set, frozenset)):
        pats = [targets] if isinstance(targets, str) else list(targets)

        def keep(path: str, m: nn.Module) -> bool:
            return any(type(m).__name__ == p or fnmatch.fnmatchcase(path, p) for p in pats)
    else:
        raise TypeError("targets must be 'auto', a class name / path glob, a list of them, or a "
                        f"callable(path, module) -> bool; got {type(targets).__name__}")
    return [(p, m) for p, m in model.named_modules() if p and is_activation(m) and keep(p, m)]


@dataclass
class SurgeryEntry:
    path: str
    old_type: str
    new_spec: str
    old: nn.Module
    new: nn.Module
    samples: int = 0
    observed_range: tuple[float, float] | None = None
    bounds: tuple[float, float] | None = None
    fit: FitReport | None = None


@dataclass
class SurgeryReport:
    """What :func:`replace_activations` changed (or would change, with ``dry_run``)."""

    spec: str
    entries: list[SurgeryEntry] = field(default_factory=list)
    dry_run: bool = False
    applied: bool = False

    def __len__(self) -> int:
        return len(self.entries)

    def table(self) -> str:
        head = (f"{'module':40s} {'old':22s} {'new':26s} {'range':>17s} {'max|f-t|':>9s} "
                f"{'rms':>9s} {'max|df|':>9s}")
        rows = [head, "-" * len(head)]
        for e in self.entries:
            rng = (f"[{e.observed_range[0]:.2f}, {e.observed_range[1]:.2f}]"
                   if e.observed_range else "N(0,1)")
            fr = e.fit
            errs = (f"{fr.max_error:9.2e} {fr.rms_error:9.2e} {fr.max_deriv_error:9.2e}" if fr
                    else f"{'-':>9s} {'-':>9s} {'-':>9s}")
            rows.append(f"{e.path[-40:]:40s} {e.old_type[:22]:22s} {e.new_spec[:26]:26s} "
                        f"{rng:>17s} {errs}")
        state = "dry run, nothing changed" if self.dry_run else (
            "applied" if self.applied else "not applied")
        rows.append(f"{len(self.entries)} activation(s), {state}")
        return "\n".join(rows)

    __str__ = table


def _call(model: nn.Module, batch: Any) -> Any:
    if isinstance(batch, dict) or (hasattr(batch, "keys") and hasattr(batch, "__getitem__")
                                   and not isinstance(batch, Tensor)):
        return model(**batch)
    if isinstance(batch, (tuple, list)):
        return model(*batch)
    return model(batch)


class _Sampler:
    """Bounded, deterministic record of a module's inputs: a reservoir and the exact range."""

    def __init__(self, capacity: int, seed: int) -> None:
        self.capacity = capacity
        self.gen = torch.Generator().manual_seed(seed)
        self.chunks: list[Tensor] = []
        self.count = 0
        self.lo = math.inf
        self.hi = -math.inf

    def __call__(self, module: nn.Module, args: tuple[Any, ...]) -> None:
        if not args or not isinstance(args[0], Tensor):
            return
        x = args[0].detach().reshape(-1)
        if x.numel() == 0:
            return
        x = x.float()
        finite = x[torch.isfinite(x)]
        if finite.numel():
            self.lo = min(self.lo, float(finite.min()))
            self.hi = max(self.hi, float(finite.max()))
        per_call = max(1, self.capacity // 8)
        if finite.numel() > per_call:
            idx = torch.randint(0, finite.numel(), (per_call,), generator=self.gen)
            finite = finite[idx.to(finite.device)]
        self.chunks.append(finite.cpu())
        self.count += x.numel()

    def samples(self) -> Tensor:
        s = torch.cat(self.chunks) if self.chunks else torch.empty(0)
        if s.numel() > self.capacity:
            s = s[torch.randperm(s.numel(), generator=self.gen)[: self.capacity]]
        # keep the exact extremes: the tails are where a bad continuation hurts
        ext = torch.tensor([self.lo, self.hi]) if math.isfinite(self.lo) else torch.empty(0)
        return torch.cat([s, ext]).double()


def _calibrate(model: nn.Module, found: list[tuple[str, nn.Module]], batches: Iterable[Any],
               capacity: int, seed: int) -> dict[str, _Sampler]:
    samplers = {p: _Sampler(capacity, seed + i) for i, (p, _) in enumerate(found)}
    handles = [m.register_forward_pre_hook(samplers[p]) for p, m in found]
    was_training = model.training
    model.eval()
    n = 0
    try:
        with torch.no_grad():
            for n, batch in enumerate(batches, 1):
                try:
                    _call(model, batch)
                except Exception as exc:  # noqa: BLE001 - re-raised with context
                    raise RuntimeError(f"calibration batch {n} failed when run as "
                                       f"{_call_form(batch)}: {type(exc).__name__}: {exc}") from exc
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    if n == 0:
        raise ValueError("calibrate is empty: give at least one batch")
    unused = [p for p, s in samplers.items() if s.count == 0]
    if unused:
        log.warning("calibration never reached %d activation(s): %s (fitted on N(0,1))",
                    len(unused), ", ".join(unused[:5]))
    return samplers


def _call_form(batch: Any) -> str:
    if isinstance(batch, dict):
        return "model(**batch)"
    if isinstance(batch, (tuple, list)):
        return "model(*batch)"
    return "model(batch)"


def _device_dtype(module: nn.Module, fallback: nn.Module) -> tuple[torch.device, torch.dtype]:
    for src in (module, fallback):
        for t in list(src.parameters()) + list(src.buffers()):
            if t.is_floating_point():
                return t.device, t.dtype
    return torch.device("cpu"), torch.float32


def _fit_with_bounds(new: nn.Module, old: nn.Module, samples: Tensor,
                     derivative_weight: float, seed: int) -> tuple[FitReport, tuple[float, float] | None]:
    """Fit on samples; with linear tails, choose [lo, hi] among quantiles by the sample error."""
    if getattr(new, "tails", None) != "linear":
        return _fit(new, old, domain=samples, derivative_weight=derivative_weight, seed=seed), None
    s = samples[torch.isfinite(samples)]
    lo_all, hi_all = float(s.min()), float(s.max())
    cands = set()
    for q in (0.0, 1e-4, 1e-3, 1e-2, 5e-2):
        lo_q = float(torch.quantile(s.float(), q))
        hi_q = float(torch.quantile(s.float(), 1 - q))
        cands.add((lo_q, hi_q))
    for b in (2.0, 3.0, 4.0, 6.0):
        cands.add((max(-b, lo_all), min(b, hi_all)))
    best: tuple[float, FitReport, tuple[float, float]] | None = None
    state0 = copy.deepcopy(new.state_dict())
    for lo, hi in sorted(cands):
        if not hi - lo > 1e-6:
            continue
        new.load_state_dict(state0)
        new.set_bounds(lo, hi)  # type: ignore[operator]
        rep = _fit(new, old, domain=s, derivative_weight=derivative_weight, seed=seed)
        score = rep.rms_error**2 + derivative_weight * rep.rms_deriv_error**2
        if best is None or score < best[0]:
            best = (score, rep, (lo, hi))
    if best is None:  # degenerate samples (a single value): keep the default bounds
        return _fit(new, old, domain=s, derivative_weight=derivative_weight, seed=seed), None
    _, rep, (lo, hi) = best
    new.load_state_dict(state0)
    new.set_bounds(lo, hi)  # type: ignore[operator]
    rep = _fit(new, old, domain=s, derivative_weight=derivative_weight, seed=seed)
    return rep, (lo, hi)


def replace_activations(model: nn.Module, spec: str, *, targets: TargetSpec = "auto",
                        fit: bool = True, calibrate: Iterable[Any] | None = None,
                        dry_run: bool = False, derivative_weight: float = 1.0,
                        samples_per_activation: int = 20000, seed: int = 0) -> SurgeryReport:
    """Swap every selected activation of ``model`` for a fresh ``create(spec)``.

    Args:
        model: any nn.Module (pretrained or not); modified in place unless ``dry_run``.
        spec: registry spec of the new activations, e.g. ``"hermite:degree=8"``.
        targets: ``"auto"`` (every activation module), class names / module-path globs, or a
            callable(path, module) -> bool.
        fit: fit each new activation to the function it replaces (needs a learnable spec).
        calibrate: batches to record the real pre-activation distribution (see module doc);
            without it the fit uses N(0, 1).
        dry_run: compute everything (calibration, fits, the report) but change nothing.
        derivative_weight: weight of the derivative term of the fit.
        samples_per_activation: size of the recorded sample per activation.
        seed: determinism of sampling and nonlinear fits.
    Returns:
        A :class:`SurgeryReport` (printable table); pass it to :func:`restore` to undo.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    name, raw = parse_spec(spec)
    probe = create(spec)  # unknown names and bad parameters fail here
    if fit and not any(True for _ in probe.parameters()):
        raise ValueError(f"fit=True needs a learnable activation, but {spec!r} has no "
                         "parameters; use fit=False to swap in a fixed function, or a learnable "
                         f"family ({', '.join(n for n in ('hermite', 'fourier', 'tropical'))}, ...)")
    found = find_activations(model, targets)
    if not found:
        raise ValueError("no activation module matched in this model "
                         f"(targets={targets!r}). Activations called functionally inside "
                         "forward (e.g. F.gelu(x)) are not modules and cannot be swapped by "
                         "surgery; for Hugging Face models call "
                         "learnact.integrations.register_transformers() and set "
                         f"config.hidden_act = {spec!r} before building the model.")
    overrides: dict[str, Any] = {}
    if "tails" not in raw and "tails" in _init_params(type(probe)) and (fit or calibrate):
        overrides["tails"] = "linear"  # polynomials need a defined continuation (module doc)
    samplers = _calibrate(model, found, calibrate, samples_per_activation, seed) if calibrate else {}
    report = SurgeryReport(spec=spec, dry_run=dry_run)
    ref = next((t for t in list(model.parameters()) + list(model.buffers())), None)
    fallback = nn.Module() if ref is None else model
    for i, (path, old) in enumerate(found):
        new = create(spec, **overrides)
        entry = SurgeryEntry(path=path, old_type=type(old).__name__, new_spec=spec, old=old,
                             new=new)
        sampler = samplers.get(path)
        if sampler is not None and sampler.count:
            entry.samples = sampler.count
            entry.observed_range = (sampler.lo, sampler.hi)
        if fit:
            target = copy.deepcopy(old).float().eval()
            if entry.samples:
                entry.fit, entry.bounds = _fit_with_bounds(new, target, sampler.samples(),
                                                           derivative_weight, seed + i)
            else:
                entry.fit = _fit(new, target, derivative_weight=derivative_weight, seed=seed + i)
        device, dtype = _device_dtype(old, fallback)
        entry.new = new.to(device=device, dtype=dtype)
        report.entries.append(entry)
    if not dry_run:
        _swap(model, [(e.path, e.new) for e in report.entries])
        report.applied = True
        for e in report.entries:
            log.info("replaced %s (%s) by %s%s", e.path, e.old_type, e.new_spec,
                     f"; fit max|f-t| {e.fit.max_error:.2e}" if e.fit else "")
    return report


def _init_params(cls: type) -> set[str]:
    import inspect

    return set(inspect.signature(cls.__init__).parameters)


def _swap(model: nn.Module, pairs: list[tuple[str, nn.Module]]) -> None:
    parents = []
    for path, _ in pairs:
        parent_path, _, attr = path.rpartition(".")
        parents.append((model.get_submodule(parent_path) if parent_path else model, attr))
    for (parent, attr), (_, new) in zip(parents, pairs):
        if isinstance(parent, (nn.Sequential, nn.ModuleList)) and attr.isdigit():
            parent[int(attr)] = new
        elif isinstance(parent, nn.ModuleDict):
            parent[attr] = new
        else:
            setattr(parent, attr, new)


def restore(model: nn.Module, report: SurgeryReport) -> None:
    """Put back the modules that :func:`replace_activations` replaced."""
    if report.dry_run or not report.applied:
        return
    _swap(model, [(e.path, e.old) for e in report.entries])
    report.applied = False

