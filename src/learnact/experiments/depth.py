"""Depth stability at init: ``learnact bench depth``.

For each (family, init) and the GELU/ReLU references, build two stacks of ``depth`` layers of
width ``width`` with fan-in-scaled weights (std 1/sqrt(width)) and measure, at init, the std of
every layer's post-activation values (forward) and of the gradient w.r.t. every layer's input
(backward, seeded with an N(0, 1) gradient at the top):

* ``prenorm``: pre-norm residual blocks x + W2 f(W1 LayerNorm(x)), W2 scaled by 1/sqrt(depth)
  (the transformer/ConvNeXt shape; the issue's claim: every family with ``init="unit"`` keeps
  both stds in [0.5, 2] at block 50);
* ``plain``: x_{l+1} = f(W x_l) without normalisation. Its variance map q -> E[f(sqrt(q) z)^2]
  has the fixed point q = 1 under a unit init, and the slope V'(1) there decides: V'(1) > 1
  drifts away from 1 (explodes or collapses to another fixed point), V'(1) < 1 returns to it.

Inits: ``unit`` (exact unit second moments), ``paper`` (the family's published init), ``naive``
(every activation parameter drawn from N(0, 1)). Run manual (one CPU, minutes):

    learnact bench depth                                   # width 512, depth 50, all families
    learnact bench depth --specs hermite:degree=8 --inits unit,naive --width 256
"""

from __future__ import annotations

import argparse
import logging
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..moments import moments
from ..registry import create, lookup, parse_spec
from .args import nonneg_int, positive_int, split_specs
from .common import RunDir, progress, seed_everything, require_plots

log = logging.getLogger(__name__)

__all__ = ["DepthConfig", "run_depth", "measure_stack", "build_act"]

DEFAULT_SPECS = ("hermite:degree=8", "fourier:degree=4", "tropical:degree=4",
                 "tropical_rational:degree=3", "rational", "selu_variation")
REFERENCES = ("gelu", "relu")


@dataclass
class DepthConfig:
    specs: list[str] = field(default_factory=lambda: list(DEFAULT_SPECS))
    inits: list[str] = field(default_factory=lambda: ["unit", "paper", "stable", "naive"])
    references: list[str] = field(default_factory=lambda: list(REFERENCES))
    width: int = 512
    depth: int = 50
    batch: int = 256
    seed: int = 0
    out: str | None = None
    threads: int | None = None
    quiet: bool = False


def build_act(spec: str, init: str | None, seed: int) -> nn.Module:
    """create(spec, init=...) ; ``naive``: unit init, then every parameter <- N(0, 1)."""
    if init is None:
        return create(spec)
    name, _ = parse_spec(spec)
    inits = getattr(lookup(name).factory, "inits", ())
    if init == "naive":
        act = create(spec, init="unit") if "unit" in inits else create(spec)
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for p in act.parameters():
                p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype))
        return act
    if init not in inits:
        raise ValueError(f"{name} has no init {init!r}; it has {inits}")
    return create(spec, init=init)


def measure_stack(make_act, kind: str, width: int, depth: int, batch: int, seed: int
                  ) -> dict[str, list[float]]:
    """Per-layer std of post-activations and of d(loss)/d(layer input), at init."""
    if kind not in ("prenorm", "plain"):
        raise ValueError(f"kind must be 'prenorm' or 'plain', got {kind!r}")
    seed_everything(seed)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, width, generator=g)
    inputs: list[Tensor] = []
    acts: list[Tensor] = []
    with torch.enable_grad():
        h = x.requires_grad_(True)
        for layer in range(depth):
            act = make_act(layer)
            w1 = torch.randn(width, width, generator=g) / math.sqrt(width)
            h.retain_grad()
            inputs.append(h)
            if kind == "prenorm":
                w2 = torch.randn(width, width, generator=g) / math.sqrt(width * depth)
                a = act(nn.functional.layer_norm(h, (width,)) @ w1.t())
                h = h + a @ w2.t()
            else:
                a = act(h @ w1.t())
                h = a
            acts.append(a.detach())
        top = torch.randn(h.shape, generator=g)
        if torch.isfinite(h).all():
            h.backward(top)
    fwd = [_std(a) for a in acts]
    bwd = [_std(t.grad) if t.grad is not None else float("nan") for t in inputs]
    return {"forward": fwd, "backward": bwd}


def _std(t: Tensor) -> float:
    v = float(t.double().std())
    return v if math.isfinite(v) else float("inf")


def _cases(cfg: DepthConfig) -> list[tuple[str, str | None]]:
    out: list[tuple[str, str | None]] = []
    for spec in cfg.specs:
        name, _ = parse_spec(spec)
        inits = getattr(lookup(name).factory, "inits", ())
        for init in cfg.inits:
            if init == "naive" or init in inits:
                out.append((spec, init))
    return out + [(r, None) for r in cfg.references]


def run_depth(cfg: DepthConfig) -> Path:
    """Measure every case in both stacks; writes results.json, depth.png, summary.md."""
    require_plots("learnact bench depth")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    if cfg.depth < 1 or cfg.width < 2 or cfg.batch < 2:
        raise ValueError(f"need depth >= 1, width >= 2, batch >= 2; got {cfg.depth}, "
                         f"{cfg.width}, {cfg.batch}")
    run = RunDir(cfg.out or RunDir.default("depth"), "depth")
    run.write_json("config.json", asdict(cfg))
    cases = _cases(cfg)
    rows: list[dict[str, Any]] = []
    with progress(len(cases) * 2, "depth", enabled=not cfg.quiet) as bar:
        for spec, init in cases:
            label = spec if init is None else f"{spec} [{init}]"
            probe = build_act(spec, init, cfg.seed)
            m = moments(probe)
            row: dict[str, Any] = {"case": label, "spec": spec, "init": init,
                                   "second": float(m.second), "vprime": float(m.vprime)}
            for kind in ("prenorm", "plain"):
                def make_act(layer: int, spec=spec, init=init) -> nn.Module:
                    return build_act(spec, init, cfg.seed + layer)

                row[kind] = measure_stack(make_act, kind, cfg.width, cfg.depth, cfg.batch,
                                          cfg.seed)
                bar.update(1)
            rows.append(row)
            run.write_json("results.json", {"task": "depth", "config": asdict(cfg), "rows": rows})
    from ..viz.depth import plot_depth

    plot_depth(rows, run.path / "depth.png", depth=cfg.depth, width=cfg.width)
    (run.path / "summary.md").write_text(summary(rows, cfg))
    return run.path


def _fmt(v: float) -> str:
    if not math.isfinite(v):
        return "inf/NaN"
    return f"{v:.3g}"


def summary(rows: list[dict[str, Any]], cfg: DepthConfig) -> str:
    lines = [f"# Depth stability at init (width {cfg.width}, depth {cfg.depth}, batch "
             f"{cfg.batch}, seed {cfg.seed})", "",
             "std of the last layer's post-activations (fwd) and of the gradient at the first "
             "layer's input (bwd); 'ok' = both within [0.5, 2]. V'(1) and E[f²] are exact "
             "(Gaussian quadrature) for the case's first layer.", "",
             "| case | E[f²] | V'(1) | prenorm fwd | prenorm bwd | prenorm | plain fwd | "
             "plain bwd | plain |", "|---|---:|---:|---:|---:|---|---:|---:|---|"]
    for r in rows:
        cells = [f"`{r['case']}`", _fmt(r["second"]), _fmt(r["vprime"])]
        for kind in ("prenorm", "plain"):
            f, b = r[kind]["forward"][-1], r[kind]["backward"][0]
            ok = all(math.isfinite(v) and 0.5 <= v <= 2.0 for v in (f, b))
            cells += [_fmt(f), _fmt(b), "ok" if ok else "**out**"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _cmd(args: argparse.Namespace) -> int:
    cfg = DepthConfig()
    if args.specs:
        cfg.specs = split_specs(args.specs)
    if args.inits:
        cfg.inits = [s.strip() for s in args.inits.split(",") if s.strip()]
    if args.references is not None:
        cfg.references = [s.strip() for s in args.references.split(",") if s.strip()]
    for k in ("width", "depth", "batch", "seed", "out", "threads", "quiet"):
        v = getattr(args, k)
        if v is not None and v is not False:
            setattr(cfg, k, v)
    path = run_depth(cfg)
    print(f"results: {path}/results.json\nfigure:  {path}/depth.png")
    print((path / "summary.md").read_text())
    return 0


def add_subcommand(bench: argparse._SubParsersAction) -> None:
    p = bench.add_parser("depth", help="forward/backward std through deep stacks at init")
    p.add_argument("--specs", help="comma list of registry specs (default: one per family)")
    p.add_argument("--inits", help="comma list among unit,paper,naive")
    p.add_argument("--references", help="fixed activations drawn for reference (gelu,relu)")
    p.add_argument("--width", type=positive_int)
    p.add_argument("--depth", type=positive_int)
    p.add_argument("--batch", type=positive_int)
    p.add_argument("--seed", type=nonneg_int)
    p.add_argument("--threads", type=positive_int)
    p.add_argument("--out")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_cmd)
