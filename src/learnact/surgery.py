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

Atomic: nothing in the model changes until every replacement has been built and fitted, and a
fit that fails (an error, non-finite parameters or errors, an error above ``max_error``)
aborts with the module's path and the cause, leaving the model as it was. An activation
instance used at several places (one ``nn.GELU()`` shared by many blocks) gets one
replacement installed at every place. :func:`restore` checks that the model still holds what
the surgery installed before it puts anything back.
"""

from __future__ import annotations

import copy
import dataclasses
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
from .kinds import is_activation
from .registry import create, parse_spec

log = logging.getLogger(__name__)

__all__ = ["replace_activations", "restore", "SurgeryReport", "SurgeryEntry", "find_activations",
           "activation_kinds"]

TargetSpec = Any  # "auto" | iterable of class names / path globs | callable(path, module) -> bool


#: bounded "squashing" activations: poolers, gates (squeeze-excitation), output heads; ``targets=
#: "auto"`` leaves them unless the model has no other kind
SQUASHING = frozenset({"Tanh", "Sigmoid", "Hardtanh", "Hardsigmoid", "HardSigmoid",
                       "HardSigmoidMe", "Softsign", "LogSigmoid"})
#: ``max_error="auto"``: a fit may miss its target by this fraction of the target's spread
#: (max - min) over the fitted range
AUTO_MAX_ERROR = 0.1
#: with ``calibrate``: the relative change of the model's outputs on the calibration data
#: (``SurgeryReport.output_change``) above which surgery logs a warning
OUTPUT_CHANGE_WARN = 0.05
#: the most output numbers kept to measure that change (beyond: not measured, said so)
MAX_OUTPUT_NUMBERS = 20_000_000


def activation_kinds(model: nn.Module) -> tuple[dict[str, int], dict[str, int]]:
    """({class name: places} that ``targets="auto"`` selects, {class name: places} it leaves):
    the most used activation class(es) (ties kept), counted per place (a shared instance at
    every place it is used), among the non-squashing ones (:data:`SQUASHING`: a
    transformer's GELUs, not its pooler's Tanh; a ResNet's ReLUs, not its SE gates'
    Sigmoids); among all of them when the model has only squashing ones."""
    counts: dict[str, int] = {}
    for p, m in model.named_modules(remove_duplicate=False):
        if p and is_activation(m):
            counts[type(m).__name__] = counts.get(type(m).__name__, 0) + 1
    pool = {k: v for k, v in counts.items() if k not in SQUASHING} or counts
    top = max(pool.values(), default=0)
    chosen = {k: v for k, v in pool.items() if v == top}
    return chosen, {k: v for k, v in counts.items() if k not in chosen}


def find_activations(model: nn.Module, targets: TargetSpec = "auto") -> list[tuple[str, nn.Module]]:
    """(path, module) of every activation module that ``targets`` selects, in model order; an
    instance registered at several paths appears once per path. ``"auto"``: the dominant
    activation kind(s) (:func:`activation_kinds`); ``"all"``: every activation module."""
    if targets == "all":
        def keep(path: str, m: nn.Module) -> bool:
            return True
    elif targets == "auto" or targets is None:
        chosen, _ = activation_kinds(model)

        def keep(path: str, m: nn.Module) -> bool:
            return type(m).__name__ in chosen
    elif callable(targets):
        keep = targets  # type: ignore[assignment]
    elif isinstance(targets, (str, list, tuple, set, frozenset)):
        pats = [targets] if isinstance(targets, str) else list(targets)

        def keep(path: str, m: nn.Module) -> bool:
            return any(type(m).__name__ == p or fnmatch.fnmatchcase(path, p) for p in pats)
    else:
        raise TypeError("targets must be 'auto', 'all', a class name / path glob, a list of them, or a "
                        f"callable(path, module) -> bool; got {type(targets).__name__}")
    # remove_duplicate=False: an instance used at several places is listed at each of them
    return [(p, m) for p, m in model.named_modules(remove_duplicate=False)
            if p and is_activation(m) and keep(p, m)]


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
    #: a Hugging Face model's config attributes as they were before (restore puts them back)
    config_before: dict[str, Any] | None = None
    #: with ``targets="auto"``: {class: places} replaced and {class: places} left as they were
    chosen: dict[str, int] | None = None
    left: dict[str, int] | None = None
    #: with ``calibrate``: ||y_new - y_old|| / ||y_old|| of the model's outputs on the
    #: calibration data (every floating tensor it returns), None when not measured
    output_change: float | None = None

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
        if self.output_change is not None:
            rows.append(f"model outputs on the calibration data changed by "
                        f"{100 * self.output_change:.3g}% (relative rms)")
        if self.chosen is not None:
            kinds = ", ".join(f"{k} x{v}" for k, v in self.chosen.items())
            rows.append(f"targets='auto' chose {kinds}" + (
                "; left " + ", ".join(f"{k} x{v}" for k, v in self.left.items())
                + " (targets='all' or a class name to include them)" if self.left else ""))
        return "\n".join(rows)

    __str__ = table


def _call(model: nn.Module, batch: Any) -> Any:
    if isinstance(batch, dict) or (hasattr(batch, "keys") and hasattr(batch, "__getitem__")
                                   and not isinstance(batch, Tensor)):
        return model(**batch)
    if isinstance(batch, (tuple, list)):
        return model(*batch)
    return model(batch)


def _tensors(out: Any) -> list[Tensor]:
    """The floating tensors (and numpy arrays) in a model's output, in a fixed order: a
    tensor, a mapping (a Hugging Face ModelOutput), a tuple/list of them."""
    import numpy as np

    if isinstance(out, Tensor):
        return [out.detach()] if out.is_floating_point() else []
    if isinstance(out, np.ndarray):
        return [torch.from_numpy(out)] if out.dtype.kind == "f" else []
    if hasattr(out, "keys") and hasattr(out, "__getitem__"):
        return [t for k in out.keys() for t in _tensors(out[k])]
    if isinstance(out, (tuple, list)):
        return [t for v in out for t in _tensors(v)]
    return []


class _Replay:
    """The calibration run's outputs, and the batches to run again after the swap: the
    relative change of the model's outputs (bounded: at most MAX_OUTPUT_NUMBERS kept)."""

    def __init__(self) -> None:
        self.batches: list[Any] = []
        self.outputs: list[Tensor] = []
        self.numbers = 0
        self.complete = True

    def keep(self, out: Any) -> None:
        ts = [t.to("cpu", torch.float64) for t in _tensors(out)]
        self.numbers += sum(t.numel() for t in ts)
        if self.numbers > MAX_OUTPUT_NUMBERS:
            self.complete, self.outputs = False, []
        elif self.complete:
            self.outputs.extend(ts)

    def change(self, model: nn.Module, runs_model: bool) -> float | None:
        if not self.complete or not self.outputs:
            return None
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                outs = [b(model) if runs_model else _call(model, b) for b in self.batches]
        finally:
            model.train(was_training)
        new = [t.to("cpu", torch.float64) for o in outs for t in _tensors(o)]
        if [t.shape for t in new] != [t.shape for t in self.outputs]:
            return None
        diff = sum(float(((a - b) ** 2).sum()) for a, b in zip(new, self.outputs))
        ref = sum(float((b ** 2).sum()) for b in self.outputs)
        return math.sqrt(diff / ref) if ref > 0 else None


class _Sampler:
    """Bounded, deterministic record of a module's inputs: a reservoir and the exact range."""

    def __init__(self, capacity: int, seed: int) -> None:
        self.capacity = capacity
        self.gen = torch.Generator().manual_seed(seed)
        self.chunks: list[Tensor] = []
        self.count = 0
        self.finite = 0
        self.lo = math.inf
        self.hi = -math.inf
        self.shapes: set[tuple[int, ...]] = set()  # the input shapes seen (a few)

    def __call__(self, module: nn.Module, args: tuple[Any, ...]) -> None:
        if not args or not isinstance(args[0], Tensor):
            return
        if len(self.shapes) < 8:
            self.shapes.add(tuple(args[0].shape))
        x = args[0].detach().reshape(-1)
        if x.numel() == 0:
            return
        x = x.float()
        finite = x[torch.isfinite(x)]
        self.finite += finite.numel()
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
               capacity: int, seed: int, replay: _Replay) -> dict[int, _Sampler]:
    """One sampler per activation instance (keyed by id: a shared instance records the
    inputs of every place it is used); ``replay`` keeps the batches and the model's outputs.
    Errors name the batch or the module."""
    unique = list({id(m): m for _, m in found}.values())
    samplers = {id(m): _Sampler(capacity, seed + i) for i, m in enumerate(unique)}
    handles = [m.register_forward_pre_hook(samplers[id(m)]) for m in unique]
    was_training = model.training
    model.eval()
    n = 0
    try:
        with torch.no_grad():
            if _runs_model(batches):
                n = 1
                try:
                    replay.keep(batches(model))  # type: ignore[operator]
                except Exception as exc:  # noqa: BLE001 - re-raised with context
                    raise RuntimeError(f"calibrate({type(model).__name__}) failed: "
                                       f"{type(exc).__name__}: {exc}") from exc
                replay.batches.append(batches)
                batches = ()
            for n, batch in enumerate(batches, 1):
                replay.batches.append(batch)
                try:
                    replay.keep(_call(model, batch))
                except Exception as exc:  # noqa: BLE001 - re-raised with context
                    raise RuntimeError(f"calibration batch {n} failed when run as "
                                       f"{_call_form(batch)}: {type(exc).__name__}: {exc}") from exc
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    if n == 0:
        raise ValueError("calibrate is empty: give at least one batch")
    paths: dict[int, list[str]] = {}
    for p, m in found:
        paths.setdefault(id(m), []).append(p)
    unused = [paths[k][0] for k, s in samplers.items() if s.count == 0]
    if unused:
        log.warning("calibration never reached %d activation(s): %s (fitted on N(0,1))",
                    len(unused), ", ".join(unused[:5]))
    for k, smp in samplers.items():
        where = " and ".join(paths[k][:3])
        if smp.count and smp.finite == 0:
            raise ValueError(f"calibration: every input of {where} was NaN or inf "
                             f"({smp.count} values); check the calibration batches")
        if smp.count and smp.finite < 2:
            raise ValueError(f"calibration: {where} saw {smp.finite} finite input value(s); a "
                             f"fit needs at least 2: give more or larger batches")
        if smp.count and not smp.hi - smp.lo > 1e-9 * max(1.0, abs(smp.hi), abs(smp.lo)):
            raise ValueError(f"calibration: the inputs of {where} are constant (all "
                             f"{smp.lo:g}, e.g. after a zeroed layer): a fit there says nothing "
                             f"about the function elsewhere; calibrate on data that varies, or "
                             f"target other modules")
    return samplers


def _runs_model(calibrate: Any) -> bool:
    """A calibrate= that is a callable(model) and not an iterable of batches."""
    return callable(calibrate) and not hasattr(calibrate, "__iter__") and not isinstance(
        calibrate, nn.Module)


def _check_calibrate(calibrate: Any) -> None:
    what = ("an iterable of batches (a list or a DataLoader) or a callable(model) that runs "
            "the model (e.g. lambda m: m.encode(sentences))")
    if isinstance(calibrate, Tensor):
        raise TypeError(f"calibrate must be {what}, got a Tensor; for one batch pass "
                        "calibrate=[x]")
    if _runs_model(calibrate):
        return
    if isinstance(calibrate, (str, bytes)) or not hasattr(calibrate, "__iter__"):
        raise TypeError(f"calibrate must be {what}, got {type(calibrate).__name__}")


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
                        samples_per_activation: int = 20000, seed: int = 0,
                        max_error: float | str | None = "auto",
                        max_output_change: float | None = None) -> SurgeryReport:
    """Swap every selected activation of ``model`` for a fresh ``create(spec)``.

    Atomic: every replacement is built and fitted first; if any fails (an error, parameters or
    errors that are not finite, a fit error above ``max_error``) a ``ValueError`` names the
    module and the cause and the model is exactly as it was. An activation instance used at
    several places gets one replacement, installed at all of them (sharing kept).

    Args:
        model: any nn.Module (pretrained or not); modified in place unless ``dry_run``.
        spec: registry spec of the new activations, e.g. ``"hermite:degree=8"``.
        targets: ``"auto"`` (the dominant activation kind(s): the most used class, leaving
            bounded squashing ones such as a pooler's Tanh or SE gates' Sigmoids; the report
            says what it chose and left: :func:`activation_kinds`), ``"all"`` (every activation
            module), class names / module-path globs, or a callable(path, module) -> bool.
        fit: fit each new activation to the function it replaces (needs a learnable spec).
        calibrate: an iterable of batches (a list, a DataLoader) to record the real
            pre-activation distribution (see module doc), or a callable(model) that runs the
            model itself (``lambda m: m.encode(sentences)`` for sentence-transformers);
            ``None``: the fit uses N(0, 1). A per-channel spec (``channels=C``) needs it: the
            recorded input shapes are checked against C before anything changes.
        dry_run: compute everything (calibration, fits, the report) but change nothing.
        derivative_weight: weight of the derivative term of the fit.
        samples_per_activation: size of the recorded sample per activation (>= 16).
        seed: determinism of sampling and nonlinear fits.
        max_error: abort when any fit's max |f - target| (on its domain) exceeds this
            number; ``"auto"`` (default): ``AUTO_MAX_ERROR`` (10%) of the target's spread
            (max - min) there; ``None``: never.
        max_output_change: with ``calibrate``, the model is run again on the calibration data
            after the swap and ``report.output_change`` = ||y_new - y_old|| / ||y_old|| over
            every floating tensor it returns (a fit can be close on each activation and still
            move a deep model: errors compound). Above this number the surgery is undone and
            a ``ValueError`` says by how much; ``None`` (default): a warning above
            ``OUTPUT_CHANGE_WARN`` (5%).
    Returns:
        A :class:`SurgeryReport` (printable table); pass it to :func:`restore` to undo.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    if calibrate is not None:
        _check_calibrate(calibrate)
    if not (isinstance(samples_per_activation, int) and samples_per_activation >= 16):
        raise ValueError(f"samples_per_activation must be an integer >= 16, got "
                         f"{samples_per_activation!r}")
    if max_error is not None and max_error != "auto" and not (
            isinstance(max_error, (int, float)) and not isinstance(max_error, bool)
            and max_error > 0):
        raise ValueError(f"max_error must be a number > 0, 'auto' or None, got {max_error!r}")
    if max_output_change is not None and not (
            isinstance(max_output_change, (int, float)) and not isinstance(max_output_change, bool)
            and max_output_change > 0):
        raise ValueError(f"max_output_change must be a number > 0 or None, got "
                         f"{max_output_change!r}")
    if max_output_change is not None and calibrate is None:
        raise ValueError("max_output_change needs calibrate= (the data the outputs are "
                         "compared on)")
    name, raw = parse_spec(spec)
    probe = create(spec)  # unknown names and bad parameters fail here
    if fit and not any(True for _ in probe.parameters()):
        raise ValueError(f"fit=True needs a learnable activation, but {spec!r} has no "
                         "parameters; use fit=False to swap in a fixed function, or a learnable "
                         f"family ({', '.join(n for n in ('hermite', 'fourier', 'tropical'))}, ...)")
    found = find_activations(model, targets)
    channels = getattr(probe, "channels", None)
    if channels is not None and calibrate is None:
        raise ValueError(f"{spec!r} has per-channel parameters (channels={channels}): pass "
                         "calibrate= (one batch is enough) so that each layer's width is "
                         "checked before anything changes, or use a shared spec")
    if not found:
        raise ValueError("no activation module matched in this model "
                         f"(targets={targets!r}). Activations called functionally inside "
                         "forward (e.g. F.gelu(x)) are not modules and cannot be swapped by "
                         "surgery; for Hugging Face models call "
                         "learnact.integrations.register_transformers() and set "
                         f"config.hidden_act = {spec!r} before building the model.")
    overrides: dict[str, Any] = {}
    if ("tails" not in raw and "tails" in _init_params(type(probe))
            and (fit or calibrate is not None)):
        overrides["tails"] = "linear"  # polynomials need a defined continuation (module doc)
    replay = _Replay()
    samplers = (_calibrate(model, found, calibrate, samples_per_activation, seed, replay)
                if calibrate is not None else {})
    report = SurgeryReport(spec=spec, dry_run=dry_run)
    if targets == "auto" or targets is None:
        report.chosen, report.left = activation_kinds(model)
    ref = next((t for t in list(model.parameters()) + list(model.buffers())), None)
    fallback = nn.Module() if ref is None else model
    built: dict[int, SurgeryEntry] = {}  # one replacement per old instance
    for i, (path, old) in enumerate(found):
        first = built.get(id(old))
        if first is not None:  # the same instance at another place: the same replacement
            report.entries.append(dataclasses.replace(first, path=path))
            continue
        try:
            entry = _build(path, old, spec, overrides, samplers.get(id(old)), fit,
                           derivative_weight, seed + i, fallback)
        except (ValueError, RuntimeError, TypeError) as exc:
            raise ValueError(f"surgery aborted at {path} ({type(old).__name__}): {exc}; the "
                             f"model is unchanged") from exc
        limit = (AUTO_MAX_ERROR * entry.fit.target_spread if max_error == "auto"
                 and entry.fit is not None else max_error)
        if fit and entry.fit is not None and limit is not None and not (
                entry.fit.max_error <= limit):
            how = (f"max_error='auto' ({AUTO_MAX_ERROR:g} of the target's spread "
                   f"{entry.fit.target_spread:.3g})" if max_error == "auto"
                   else f"max_error={max_error:g}")
            raise ValueError(f"surgery aborted at {path} ({type(old).__name__}): the fit's max "
                             f"error {entry.fit.max_error:.3g} on {entry.fit.domain} is above "
                             f"{how}; the model is unchanged (a larger degree, another family, "
                             f"calibration data, a higher max_error, or max_error=None)")
        built[id(old)] = entry
        report.entries.append(entry)
    if calibrate is not None:  # the model's outputs before and after, on the calibration data
        _swap(model, [(e.path, e.new) for e in report.entries])
        try:
            report.output_change = replay.change(model, _runs_model(calibrate))
        finally:
            _swap(model, [(e.path, e.old) for e in report.entries])
        change = report.output_change
        if change is None:
            log.info("surgery: the model's outputs were not compared (no floating output, "
                     "over %d numbers, or shapes that changed)", MAX_OUTPUT_NUMBERS)
        elif max_output_change is not None and not change <= max_output_change:
            raise ValueError(f"surgery undone: the model's outputs on the calibration data "
                             f"changed by {100 * change:.3g}% (relative rms), above "
                             f"max_output_change={max_output_change:g}; the model is unchanged "
                             f"(a larger degree, another family, or fewer targets)")
        elif change > OUTPUT_CHANGE_WARN:
            log.warning("surgery: the model's outputs on the calibration data changed by "
                        "%.3g%% (relative rms; each fit's error is in the report): check the "
                        "model before use, or pass max_output_change= to refuse this",
                        100 * change)
    if not dry_run:
        _swap(model, [(e.path, e.new) for e in report.entries])
        report.applied = True
        report.config_before = _record_in_hf_config(model, report.entries, overrides)
        for e in report.entries:
            log.info("replaced %s (%s) by %s%s", e.path, e.old_type, e.new_spec,
                     f"; fit max|f-t| {e.fit.max_error:.2e}" if e.fit else "")
    return report


def _build(path: str, old: nn.Module, spec: str, overrides: dict[str, Any],
           sampler: _Sampler | None, fit: bool, derivative_weight: float, seed: int,
           fallback: nn.Module) -> SurgeryEntry:
    """The replacement of one activation instance, fitted (nothing in the model changes)."""
    new = create(spec, **overrides)
    entry = SurgeryEntry(path=path, old_type=type(old).__name__, new_spec=spec, old=old,
                         new=new)
    if sampler is not None and sampler.count:
        entry.samples = sampler.count
        entry.observed_range = (sampler.lo, sampler.hi)
    channels = getattr(new, "channels", None)
    if channels is not None and sampler is not None:
        cd = new.channel_dim  # type: ignore[attr-defined]
        bad = sorted(sh for sh in sampler.shapes
                     if not -len(sh) <= cd < len(sh) or sh[cd] != channels)
        if bad:
            raise ValueError(f"channels={channels} along channel_dim={cd} does not fit the "
                             f"inputs this activation saw (shape {bad[0]}); give each width "
                             f"its own targets, or a shared spec")
    if fit:
        target = copy.deepcopy(old).float().eval()
        if entry.samples:
            entry.fit, entry.bounds = _fit_with_bounds(new, target, sampler.samples(),
                                                       derivative_weight, seed)
        else:
            entry.fit = _fit(new, target, derivative_weight=derivative_weight, seed=seed)
    device, dtype = _device_dtype(old, fallback)
    entry.new = new.to(device=device, dtype=dtype)
    return entry


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
    """Put back the modules that :func:`replace_activations` replaced.

    Checks first that every replaced place still holds the module the surgery installed
    (the same object); if any does not (the model was changed since, or the report belongs
    to another model) a ``ValueError`` names it and nothing is changed."""
    if report.dry_run or not report.applied:
        return
    wrong = []
    for e in report.entries:
        try:
            now = model.get_submodule(e.path)
        except AttributeError:
            now = None
        if now is not e.new:
            wrong.append(f"{e.path} holds {type(now).__name__ if now is not None else 'nothing'}"
                         f", not the {e.new_spec} the surgery installed")
    if wrong:
        raise ValueError("restore: this report does not describe the model as it is now: "
                         + "; ".join(wrong[:5]) + ". Nothing was changed")
    _swap(model, [(e.path, e.old) for e in report.entries])
    if report.config_before is not None:
        config = model.config
        for key, value in report.config_before.items():
            if value is _ABSENT:
                if hasattr(config, key):
                    delattr(config, key)
            else:
                setattr(config, key, value)
    report.applied = False


# -- Hugging Face: what surgery did, written into the model's config ----------------------------
#: config attributes through which Hugging Face models name their activation (ACT2FN keys)
HF_ACT_KEYS = ("hidden_act", "activation_function", "hidden_activation", "act_fn")
#: prefix of a config activation name that only learnact's ACT2FN resolves
HF_MARK = "learnact:"
#: ... and the suffix that makes transformers' bare KeyError say what to call
HF_HINT = " (load with learnact.integrations.register_transformers() first)"
_ABSENT = object()


def full_spec(spec: str, overrides: dict[str, Any]) -> str:
    """``spec`` with the keyword overrides surgery added (e.g. ``tails=linear``); an override
    replaces a key the spec already gives (a spec never names a key twice)."""
    if not overrides:
        return spec
    name, raw = parse_spec(spec)
    raw.update({k: str(v) for k, v in overrides.items()})
    return f"{name}:" + ",".join(f"{k}={v}" for k, v in raw.items())


def _record_in_hf_config(model: nn.Module, entries: list[SurgeryEntry],
                         overrides: dict[str, Any]) -> dict[str, Any] | None:
    """On a Hugging Face model (a ``config`` with ``to_dict`` and a ``post_init``): record
    ``config.learnact_activations = {path: spec}`` (saved in config.json by
    ``save_pretrained``; :func:`learnact.integrations.register_transformers` makes
    ``from_pretrained`` rebuild them, so the learned parameters load into them) and mark the
    config's activation names ``learnact:<name>``, so that a process without learnact set up
    fails loudly (KeyError in ACT2FN) instead of loading GELU and dropping the parameters.
    Returns the attributes' previous values (None: not a Hugging Face model)."""
    config = getattr(model, "config", None)
    if config is None or not hasattr(config, "to_dict") or not hasattr(model, "post_init"):
        return None
    before: dict[str, Any] = {}
    recorded = dict(getattr(config, "learnact_activations", None) or {})
    before["learnact_activations"] = (config.learnact_activations
                                      if hasattr(config, "learnact_activations") else _ABSENT)
    spec = full_spec(entries[0].new_spec, overrides) if entries else ""
    # paths relative to the base model (without "bert." etc.), so that a head model and its
    # base model name one module by one key (the loader tries both forms)
    prefix = getattr(model, "base_model_prefix", "") or ""
    for e in entries:
        path = e.path[len(prefix) + 1:] if prefix and e.path.startswith(prefix + ".") else e.path
        recorded[path] = spec
    config.learnact_activations = recorded
    for key in HF_ACT_KEYS:
        value = getattr(config, key, None)
        if isinstance(value, str) and not value.startswith(HF_MARK):
            before[key] = value
            setattr(config, key, HF_MARK + value + HF_HINT)
    log.info("recorded %d replaced activations in the model's config (learnact_activations); "
             "reload with learnact.integrations.register_transformers() before from_pretrained",
             len(entries))
    return before
