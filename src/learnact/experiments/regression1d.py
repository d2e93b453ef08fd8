"""The DiTAC paper's Figure 3 experiment, in our reading: 1-D regression by a 1-3-1 MLP.

    learnact bench toy2d --task regression1d                      # ReLU vs DiTAC, 5 seeds
    learnact bench toy2d --task regression1d --acts relu,ditac,gelu --seeds 0,1,2

The figure shows, for a network with three hidden nodes, each node before and after its
activation (ReLU vs DiTAC) and the learned regression curves. Its target function and training
details were not at hand (the released code has only the 2-D Fig. 1 regression), so this is our
reading, stated as such: target y = sin(3x) + 0.5 x on x ~ U[-2, 2] (a curve three ReLU kinks
cannot follow), 256 training points, 1000 test points on a grid, full-batch Adam (lr 0.01,
3000 steps), one parameter set per hidden node (``channels=3``), DiTAC with its prior in the
loss. Per seed: train and test MSE; per activation: the mean with a 95% t interval; against
the first activation (ReLU by default) the paired difference and its verdict.

Outputs: results.json, regression1d.png (rows: activations, seed of the first run; columns:
the three nodes, pre-activation z dashed and post-activation h solid, then the fitted curve
over the target and the training points), summary.md.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ..params import regularization
from ..registry import create
from .common import RunDir, progress, require_plots, seed_everything
from .stats import interval, paired

log = logging.getLogger(__name__)

__all__ = ["Regression1dConfig", "run_regression1d", "target"]


def target(x: Tensor) -> Tensor:
    """y = sin(3x) + 0.5 x (our choice: the paper's Figure 3 does not state its target)."""
    return torch.sin(3.0 * x) + 0.5 * x


@dataclass
class Regression1dConfig:
    """Resolved configuration (saved as config.json)."""

    acts: list[str] = field(default_factory=lambda: ["relu", "ditac"])
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2, 3, 4])
    hidden: int = 3
    steps: int = 3000
    lr: float = 0.01
    n_train: int = 256
    n_test: int = 1000
    lo: float = -2.0
    hi: float = 2.0
    prior: bool = True
    data_seed: int = 1234
    out: str | None = None
    quiet: bool = False

    def __post_init__(self) -> None:
        for name in ("hidden", "steps", "n_train", "n_test"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not self.acts:
            raise ValueError("--acts is empty")
        if not self.seeds:
            raise ValueError("--seeds is empty")
        for spec in self.acts:
            create(spec)  # a bad spec fails before any training


class Net(nn.Module):
    """1 -> hidden -> activation (one parameter set per node where it learns) -> 1."""

    def __init__(self, spec: str, hidden: int) -> None:
        super().__init__()
        self.inp = nn.Linear(1, hidden)
        probe = create(spec)
        self.act = (create(spec, channels=hidden, channel_dim=-1)
                    if any(True for _ in probe.parameters()) else probe)
        self.out = nn.Linear(hidden, 1)

    def nodes(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(pre-activations z, post-activations h), each (n, hidden)."""
        z = self.inp(x)
        return z, self.act(z)

    def forward(self, x: Tensor) -> Tensor:
        return self.out(self.nodes(x)[1])


def _data(cfg: Regression1dConfig) -> dict[str, Tensor]:
    gen = torch.Generator().manual_seed(cfg.data_seed)
    xtr = cfg.lo + (cfg.hi - cfg.lo) * torch.rand(cfg.n_train, 1, generator=gen)
    xte = torch.linspace(cfg.lo, cfg.hi, cfg.n_test).unsqueeze(1)
    return {"xtr": xtr, "ytr": target(xtr), "xte": xte, "yte": target(xte)}


def train_one(cfg: Regression1dConfig, spec: str, seed: int, data: dict[str, Tensor]
              ) -> tuple[Net, dict[str, Any]]:
    seed_everything(seed)
    net = Net(spec, cfg.hidden)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    for _ in range(cfg.steps):
        opt.zero_grad()
        loss = torch.mean((net(data["xtr"]) - data["ytr"]) ** 2)
        if cfg.prior:
            loss = loss + regularization(net)
        loss.backward()
        opt.step()
    net.eval()
    with torch.no_grad():
        train = float(torch.mean((net(data["xtr"]) - data["ytr"]) ** 2))
        test = float(torch.mean((net(data["xte"]) - data["yte"]) ** 2))
    return net, {"act": spec, "seed": seed, "train_mse": train, "test_mse": test,
                 "diverged": not math.isfinite(test),
                 "params": sum(p.numel() for p in net.parameters())}


def run_regression1d(cfg: Regression1dConfig) -> Path:
    """Train every activation on every seed; returns the run directory."""
    require_plots("learnact bench toy2d --task regression1d")
    run = RunDir(cfg.out or RunDir.default("regression1d"), "regression1d")
    run.write_json("config.json", asdict(cfg))
    data = _data(cfg)
    runs: list[dict[str, Any]] = []
    curves: dict[str, dict[str, np.ndarray]] = {}
    with progress(len(cfg.acts) * len(cfg.seeds), "regression1d", enabled=not cfg.quiet) as bar:
        for spec in cfg.acts:
            for seed in cfg.seeds:
                net, rec = train_one(cfg, spec, seed, data)
                runs.append(rec)
                if seed == cfg.seeds[0]:
                    with torch.no_grad():
                        z, h = net.nodes(data["xte"])
                        curves[spec] = {"z": z.numpy(), "h": h.numpy(),
                                        "y": net(data["xte"]).numpy()[:, 0]}
                run.write_json("results.json", {"task": "regression1d", "config": asdict(cfg),
                                                "runs": runs})
                bar.update(1)
    results = {"task": "regression1d", "config": asdict(cfg), "runs": runs,
               "summary": summarize(runs, cfg.acts)}
    run.write_json("results.json", results)
    plot(curves, data, run.path / "regression1d.png")
    run.write_text("summary.md", summary_markdown(results))
    return run.path


def summarize(runs: list[dict[str, Any]], acts: list[str]) -> list[dict[str, Any]]:
    """Per activation: mean test MSE with its 95% interval, and the paired difference to the
    first activation (seed by seed; negative: lower MSE than it)."""
    by = {a: {r["seed"]: r["test_mse"] for r in runs if r["act"] == a} for a in acts}
    out = []
    for a in acts:
        m, lo, hi = interval(list(by[a].values()))
        row: dict[str, Any] = {"act": a, "mean": m, "low": lo, "high": hi,
                               "seeds": len(by[a])}
        if a != acts[0]:
            p = paired(by[a], by[acts[0]])
            row.update(vs=acts[0], diff=p.mean, diff_low=p.low, diff_high=p.high,
                       verdict=p.verdict)
        out.append(row)
    return sorted(out, key=lambda r: r["mean"] if math.isfinite(r["mean"]) else math.inf)


def _num(v: float) -> str:
    return f"{v:.4f}" if math.isfinite(v) else "–"


def summary_markdown(results: dict[str, Any]) -> str:
    cfg, rows = results["config"], results["summary"]
    base = cfg["acts"][0]
    lines = ["# 1-D regression, a 1-3-1 MLP (the DiTAC paper's Figure 3, our reading)", "",
             f"Target y = sin(3x) + 0.5 x on [{cfg['lo']}, {cfg['hi']}] (ours: the figure does "
             f"not state its target), {cfg['n_train']} training points, {cfg['n_test']} test "
             f"points on a grid, {cfg['hidden']} hidden nodes with one parameter set each, "
             f"full-batch Adam lr {cfg['lr']}, {cfg['steps']} steps, prior "
             f"{'on' if cfg['prior'] else 'off'}, seeds {cfg['seeds']}.", "",
             f"| rank | activation | test MSE: mean [95% interval] | per seed | vs `{base}` | "
             "params |", "|---:|---|---:|---|---|---:|"]
    per_seed = {a: [r["test_mse"] for r in results["runs"] if r["act"] == a]
                for a in cfg["acts"]}
    params = {r["act"]: r["params"] for r in results["runs"]}
    for i, r in enumerate(rows, 1):
        vs = "–" if "verdict" not in r else (
            f"{r['verdict']} ({r['diff']:+.4f} [{r['diff_low']:+.4f}, {r['diff_high']:+.4f}])"
            if math.isfinite(r["diff_low"]) else f"{r['verdict']} ({r['diff']:+.4f})")
        lines.append(f"| {i} | `{r['act']}` | {_num(r['mean'])} [{_num(r['low'])}, "
                     f"{_num(r['high'])}] | {', '.join(_num(v) for v in per_seed[r['act']])} "
                     f"| {vs} | {params[r['act']]} |")
    lines += ["", "![nodes and fits](regression1d.png)", ""]
    return "\n".join(lines)


def plot(curves: dict[str, dict[str, np.ndarray]], data: dict[str, Tensor], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    acts = list(curves)
    hidden = next(iter(curves.values()))["z"].shape[1]
    fig, axes = plt.subplots(len(acts), hidden + 1, figsize=(3.2 * (hidden + 1), 2.6 * len(acts)),
                             squeeze=False)
    x = data["xte"].numpy()[:, 0]
    for i, a in enumerate(acts):
        c = curves[a]
        for j in range(hidden):
            ax = axes[i, j]
            ax.plot(x, c["z"][:, j], "--", color="0.5", label="before (z)")
            ax.plot(x, c["h"][:, j], color="C0" if i == 0 else "C1", label="after (h)")
            ax.set_title(f"{a}: node {j + 1}", fontsize=9)
            if i == 0 and j == 0:
                ax.legend(fontsize=7)
        ax = axes[i, hidden]
        ax.plot(data["xtr"].numpy()[:, 0], data["ytr"].numpy()[:, 0], ".", ms=2, color="0.6")
        ax.plot(x, data["yte"].numpy()[:, 0], color="k", lw=1, label="target")
        ax.plot(x, c["y"], color="C3", label="fit")
        ax.set_title(f"{a}: regression", fontsize=9)
        if i == 0:
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
