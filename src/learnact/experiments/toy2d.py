"""2-D toy tasks: Gaussian-mixture classification and the 2-D sine-mixture regression.

    learnact bench toy2d                                   # both tasks, default activations
    learnact bench toy2d --task regression --seeds 0,1,2 --fourier-features 4

(a) GMM: K isotropic Gaussian components with known means, shared std and equal weights,
    assigned round-robin to classes; an MLP 2-H-σ-H-σ-classes. The Bayes-optimal accuracy
    E[max_c P(c | x)] is computed from the known mixture on 200k samples and shown beside
    every activation's test accuracy.
(b) Regression (the DiTAC paper's Fig. 1 task): y = sum_i w_i sin(A_i . x), x ~ U[-1, 1]^2,
    A = [[9,-7],[-9,11],[3,13],[9,9],[13,5],[3,19]], w = [.4,.1,.15,.15,.1,.1]; an MLP
    2-50-σ-1, Adam lr 5e-3, batch 98 (fresh samples every step). ``--fourier-features K``
    feeds sin/cos(pi k x_j), k = 1..K, instead of x (sine activations only "do Fourier" when
    they see the coordinates).

Runs on one process (the networks are tiny); outputs: results.json, gmm.png, regression.png,
summary.md.
"""

from __future__ import annotations

import argparse
import logging
import math
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data.toy import A_MATRIX, W_VECTOR
from ..params import activation_parameters
from ..registry import available, create
from .args import add_prior_flag, nonneg_int, positive_int, seeds, split_specs
from . import trainer
from .common import Dist, RunDir, model_filename, progress, save_model, require_plots
from .trainer import OptimConfig, Task

log = logging.getLogger(__name__)

__all__ = ["Toy2dConfig", "run_toy2d", "make_gmm", "bayes_accuracy", "sine_mixture"]



def default_toy_acts() -> list[str]:
    # every learnable family in its exact mode (all three DiTAC variants: 2 min 40 s in all,
    # within the 3-minute budget since the flow's small-call overhead went from 4.2 to 1.8 ms)
    learnable = [n for n in available(learnable=True) if n != "prelu"]
    return ["identity", "relu", "gelu", "silu", "tanh", "sin", "prelu"] + learnable


@dataclass
class Toy2dConfig:
    """Resolved configuration (saved as config.json)."""

    task: str = "both"                 # both | gmm | regression
    acts: list[str] = field(default_factory=default_toy_acts)
    seeds: list[int] = field(default_factory=lambda: [0])
    prior: bool = True                 # add learnact.regularization(model) to the loss
    # GMM classification
    components: int = 8
    classes: int = 3
    component_std: float = 0.5
    n_train: int = 2000
    n_test: int = 2000
    gmm_hidden: int = 64
    gmm_steps: int = 400
    gmm_lr: float = 5e-3
    gmm_batch: int = 128
    data_seed: int = 1234
    # regression
    reg_hidden: int = 50
    reg_steps: int = 6000
    reg_lr: float = 5e-3
    reg_batch: int = 98
    reg_test: int = 2500               # a 50 x 50 grid
    fourier_features: int = 0
    per_channel: bool = True           # one parameter set per hidden unit (learnable acts)
    threads: int | None = None
    out: str | None = None
    quiet: bool = False


def make_config(**overrides: Any) -> Toy2dConfig:
    known = {f.name for f in fields(Toy2dConfig)}
    bad = set(overrides) - known
    if bad:
        raise ValueError(f"unknown config key(s) {sorted(bad)}; known: {sorted(known)}")
    cfg = replace(Toy2dConfig(), **{k: v for k, v in overrides.items() if v is not None})
    if cfg.task not in ("both", "gmm", "regression"):
        raise ValueError(f"--task must be both, gmm or regression, got {cfg.task!r}")
    if not cfg.acts:
        raise ValueError("--acts is empty")
    for spec in cfg.acts:
        create(spec)
    for name in ("gmm_steps", "reg_steps", "components", "classes", "n_train", "n_test"):
        if getattr(cfg, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1")
    if cfg.classes > cfg.components:
        raise ValueError("--classes must be <= --components (every class needs a component)")
    if cfg.fourier_features < 0:
        raise ValueError("--fourier-features must be >= 0")
    return cfg


# ------------------------------------------------------------------------------------------
# data
# ------------------------------------------------------------------------------------------


@dataclass
class GMM:
    means: np.ndarray      # (K, 2)
    std: float
    labels: np.ndarray     # (K,) class of each component
    classes: int

    def sample(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        comp = rng.integers(0, len(self.means), n)
        x = self.means[comp] + self.std * rng.standard_normal((n, 2))
        return x.astype(np.float32), self.labels[comp]

    def posterior(self, x: np.ndarray) -> np.ndarray:
        """P(class | x) from the known mixture (equal component weights)."""
        d2 = ((x[:, None, :] - self.means[None]) ** 2).sum(-1)
        logp = -d2 / (2 * self.std**2)
        logp -= logp.max(1, keepdims=True)
        p = np.exp(logp)
        post = np.zeros((len(x), self.classes))
        for c in range(self.classes):
            post[:, c] = p[:, self.labels == c].sum(1)
        return post / post.sum(1, keepdims=True)


def make_gmm(components: int, classes: int, std: float, seed: int) -> GMM:
    rng = np.random.default_rng(seed)
    means = rng.uniform(-2.5, 2.5, (components, 2))
    return GMM(means, std, np.arange(components) % classes, classes)


def bayes_accuracy(gmm: GMM, n: int = 200_000, seed: int = 99) -> float:
    """E[max_c P(c | x)]: the accuracy of the Bayes classifier, from the known mixture."""
    x, _ = gmm.sample(n, np.random.default_rng(seed))
    return float(gmm.posterior(x.astype(np.float64)).max(1).mean())


def sine_mixture(x: Tensor) -> Tensor:
    a = torch.tensor(A_MATRIX, dtype=x.dtype, device=x.device)
    w = torch.tensor(W_VECTOR, dtype=x.dtype, device=x.device)
    return (torch.sin(x @ a.t()) * w).sum(-1, keepdim=True)


class FourierFeatures(nn.Module):
    """x -> [sin(pi k x_j), cos(pi k x_j)] for k = 1..K (4K features from 2 coordinates)."""

    def __init__(self, k: int) -> None:
        super().__init__()
        self.register_buffer("freqs", math.pi * torch.arange(1, k + 1, dtype=torch.float32))

    def forward(self, x: Tensor) -> Tensor:
        z = x.unsqueeze(-1) * self.freqs
        return torch.cat([torch.sin(z), torch.cos(z)], -1).flatten(1)


def _act(spec: str, width: int, per_channel: bool) -> nn.Module:
    # (N, width) inputs: the channel dim is 1 (what torch.nn.PReLU assumes too)
    return create(spec, channels=width, channel_dim=1) if per_channel else create(spec)


def build_mlp(spec: str, sizes: list[int], per_channel: bool, fourier: int = 0) -> nn.Sequential:
    """Linear(sizes[0], sizes[1]) σ Linear ... Linear(sizes[-2], sizes[-1])."""
    layers: list[nn.Module] = []
    if fourier:
        layers.append(FourierFeatures(fourier))
        sizes = [4 * fourier] + sizes[1:]
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(_act(spec, sizes[i + 1], per_channel))
    return nn.Sequential(*layers)


# ------------------------------------------------------------------------------------------
# training
# ------------------------------------------------------------------------------------------


def _train(cfg: Toy2dConfig, name: str, spec: str, seed: int, kwargs: dict[str, Any],
           stream, loss, evaluate, steps: int, lr: float) -> tuple[dict[str, Any], nn.Module,
                                                                  dict[str, Tensor]]:
    """One run by the shared training loop (experiments/trainer.py); (record, model, init)."""
    inits: list[dict[str, Tensor]] = []

    def build(spec: str) -> nn.Module:
        model = build_mlp(**{**kwargs, "spec": spec})
        inits.append({k: v.clone() for k, v in model.state_dict().items()})
        return model

    task = Task(name, {k: v for k, v in kwargs.items() if k != "spec"}, build, None, loss,
                evaluate, stream)
    run = trainer.train_one(task, spec, seed, OptimConfig.plain(steps, lr, steps), Dist(),
                            prior=cfg.prior)  # Adam, one evaluation at the end
    model = run.pop("_model")
    record = {"act": spec, "seed": seed, "diverged": run["diverged"],
              "seconds": run["seconds"], "params": run["params"],
              "act_params": sum(p.numel() for p in activation_parameters(model))}
    return record, model, inits[0]


def _train_gmm(cfg: Toy2dConfig, spec: str, seed: int, data: dict[str, Tensor]) -> dict[str, Any]:
    kwargs = {"spec": spec, "sizes": [2, cfg.gmm_hidden, cfg.gmm_hidden, cfg.classes],
              "per_channel": cfg.per_channel}
    xtr, ytr = data["xtr"], data["ytr"]

    def stream(seed: int, d: Dist):  # minibatches drawn with replacement, one generator per run
        g = torch.Generator().manual_seed(seed)
        while True:
            idx = torch.randint(0, xtr.shape[0], (cfg.gmm_batch,), generator=g)
            yield xtr[idx], ytr[idx]

    def accuracy(model: nn.Module, d: Dist) -> dict[str, float]:
        return {"test_accuracy": float((model(data["xte"]).argmax(1) == data["yte"]).float().mean())}

    record, model, init = _train(cfg, "toy2d_gmm", spec, seed, kwargs, stream,
                                 lambda net, x, y: F.cross_entropy(net(x), y), accuracy,
                                 cfg.gmm_steps, cfg.gmm_lr)
    with torch.no_grad():
        record["test_accuracy"] = accuracy(model, Dist())["test_accuracy"]
        grid_pred = model(data["grid"]).argmax(1).numpy().astype(np.int8)
    return {**record, "_grid": grid_pred, "_model": (model, kwargs, init)}


def _train_regression(cfg: Toy2dConfig, spec: str, seed: int, data: dict[str, Tensor]
                      ) -> dict[str, Any]:
    kwargs = {"spec": spec, "sizes": [2, cfg.reg_hidden, 1], "per_channel": cfg.per_channel,
              "fourier": cfg.fourier_features}

    def stream(seed: int, d: Dist):  # fresh samples every step
        g = torch.Generator().manual_seed(seed)
        while True:
            x = torch.rand(cfg.reg_batch, 2, generator=g) * 2 - 1
            yield x, sine_mixture(x)

    def test_mse(model: nn.Module, d: Dist) -> dict[str, float]:
        return {"test_mse": float(F.mse_loss(model(data["xreg"]), data["yreg"]))}

    record, model, init = _train(cfg, "toy2d_regression", spec, seed, kwargs, stream,
                                 lambda net, x, y: F.mse_loss(net(x), y), test_mse,
                                 cfg.reg_steps, cfg.reg_lr)
    with torch.no_grad():
        pred = model(data["xreg"])
        mse = float(F.mse_loss(pred, data["yreg"]))
        r2 = 1.0 - mse / float(data["yreg"].var(unbiased=False))
    return {**record, "test_mse": mse, "r2": r2, "_grid": pred.reshape(-1).numpy(),
            "_model": (model, kwargs, init)}


def _run_all(cfg: Toy2dConfig, train, data: dict[str, Tensor], grids: dict[str, np.ndarray],
             bar: Any, tag: str, metric: str, models: Path | None = None) -> list[dict[str, Any]]:
    """Train every (activation, seed); keep the first seed's grid prediction per activation
    (and save its model, with the init state, under ``models``)."""
    runs = []
    for spec in cfg.acts:
        for seed in cfg.seeds:
            r = train(cfg, spec, seed, data)
            grids.setdefault(spec, r.pop("_grid"))
            model, kwargs, init = r.pop("_model")
            if models is not None and seed == cfg.seeds[0]:
                save_model(models / model_filename(spec, task=tag, s=seed), model, "toy2d_mlp",
                           kwargs, init)
            runs.append(r)
            bar.update(1)
            bar.set_postfix_str(f"{tag} {spec} {metric} {r[metric]:.3f}")
    return runs


def run_toy2d(cfg: Toy2dConfig) -> Path:
    """Run the selected toy tasks for every activation and seed; returns the run directory."""
    require_plots("learnact bench toy2d")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    run = RunDir(cfg.out or RunDir.default("toy2d"), "toy2d")
    run.write_json("config.json", asdict(cfg))
    results: dict[str, Any] = {"task": "toy2d", "config": asdict(cfg), "gmm": None,
                               "regression": None}
    n_grid = 120
    lin = torch.linspace(-4, 4, n_grid)
    gy, gx = torch.meshgrid(lin, lin, indexing="ij")
    tasks = ["gmm", "regression"] if cfg.task == "both" else [cfg.task]
    grids: dict[str, dict[str, np.ndarray]] = {"gmm": {}, "regression": {}}
    total = len(tasks) * len(cfg.acts) * len(cfg.seeds)
    with progress(total, "toy2d", enabled=not cfg.quiet) as bar:
        if "gmm" in tasks:
            gmm = make_gmm(cfg.components, cfg.classes, cfg.component_std, cfg.data_seed)
            rng = np.random.default_rng(cfg.data_seed + 1)
            xtr, ytr = gmm.sample(cfg.n_train, rng)
            xte, yte = gmm.sample(cfg.n_test, rng)
            data = {"xtr": torch.from_numpy(xtr), "ytr": torch.from_numpy(ytr).long(),
                    "xte": torch.from_numpy(xte), "yte": torch.from_numpy(yte).long(),
                    "grid": torch.stack([gx.reshape(-1), gy.reshape(-1)], 1)}
            bayes = bayes_accuracy(gmm)
            bayes_test = float((gmm.posterior(xte.astype(np.float64)).argmax(1) == yte).mean())
            runs = _run_all(cfg, _train_gmm, data, grids["gmm"], bar, "gmm", "test_accuracy",
                            run.path / "models")
            results["gmm"] = {"bayes_accuracy": bayes, "bayes_accuracy_on_test_set": bayes_test,
                              "means": gmm.means.tolist(), "labels": gmm.labels.tolist(),
                              "std": gmm.std, "runs": runs}
            run.write_json("results.json", results)
            from ..viz.toy2d import plot_decision_regions

            plot_decision_regions(grids["gmm"], lin.numpy(), xte, yte, run.path / "gmm.png",
                                  accuracies=_mean_by_act(runs, "test_accuracy"), bayes=bayes)
        if "regression" in tasks:
            n = int(math.sqrt(cfg.reg_test))
            l1 = torch.linspace(-1, 1, n)
            ry, rx = torch.meshgrid(l1, l1, indexing="ij")
            xreg = torch.stack([rx.reshape(-1), ry.reshape(-1)], 1)
            data = {"xreg": xreg, "yreg": sine_mixture(xreg)}
            runs = _run_all(cfg, _train_regression, data, grids["regression"], bar, "reg", "r2",
                            run.path / "models")
            results["regression"] = {"runs": runs, "grid_size": n,
                                     "target_variance": float(data["yreg"].var(unbiased=False))}
            run.write_json("results.json", results)
            from ..viz.toy2d import plot_regression

            plot_regression(data["yreg"].reshape(n, n).numpy(),
                            {k: v.reshape(n, n) for k, v in grids["regression"].items()},
                            run.path / "regression.png", r2=_mean_by_act(runs, "r2"))
    _write_summary(run, results)
    return run.path


def _mean_by_act(runs: list[dict[str, Any]], key: str) -> dict[str, float]:
    out: dict[str, list[float]] = {}
    for r in runs:
        out.setdefault(r["act"], []).append(r[key])
    return {k: float(np.mean(v)) for k, v in out.items()}


def _write_summary(run: RunDir, results: dict[str, Any]) -> None:
    cfg = results["config"]
    lines = ["# 2-D toy tasks", ""]
    if results["gmm"]:
        g = results["gmm"]
        lines += [f"## Gaussian-mixture classification ({cfg['components']} components, "
                  f"{cfg['classes']} classes, std {cfg['component_std']})", "",
                  f"MLP 2-{cfg['gmm_hidden']}-σ-{cfg['gmm_hidden']}-σ-{cfg['classes']}, Adam lr "
                  f"{cfg['gmm_lr']:g}, {cfg['gmm_steps']} steps of batch {cfg['gmm_batch']}, "
                  f"{cfg['n_train']} training points, seeds {cfg['seeds']}.", "",
                  f"Bayes-optimal accuracy (known mixture): **{g['bayes_accuracy']:.4f}** "
                  f"(on this test set: {g['bayes_accuracy_on_test_set']:.4f}).", "",
                  "| rank | activation | test accuracy (mean ± std) | % of Bayes | params | diverged |",
                  "|---:|---|---:|---:|---:|---:|"]
        rows = _table(g["runs"], "test_accuracy", higher=True)
        for i, (act, m, s, p, d) in enumerate(rows, 1):
            lines.append(f"| {i} | `{act}` | {_pm(m, s, 4)} | {100 * m / g['bayes_accuracy']:.1f}% "
                         f"| {p} | {d} |")
        lines += ["", "![decision regions](gmm.png)", ""]
    if results["regression"]:
        ff = cfg["fourier_features"]
        lines += ["## 2-D sine-mixture regression (DiTAC Fig. 1 task)", "",
                  f"MLP 2-{cfg['reg_hidden']}-σ-1{f' on {4 * ff} Fourier features' if ff else ''}, "
                  f"Adam lr {cfg['reg_lr']:g}, batch {cfg['reg_batch']}, {cfg['reg_steps']} steps, "
                  f"{'per-unit' if cfg['per_channel'] else 'shared'} activation parameters; test on a "
                  f"{results['regression']['grid_size']}² grid of [-1, 1]², seeds {cfg['seeds']}.", "",
                  "| rank | activation | test MSE (mean ± std) | R² (mean) | params | diverged |",
                  "|---:|---|---:|---:|---:|---:|"]
        rows = _table(results["regression"]["runs"], "test_mse", higher=False)
        r2 = _mean_by_act(results["regression"]["runs"], "r2")
        for i, (act, m, s, p, d) in enumerate(rows, 1):
            lines.append(f"| {i} | `{act}` | {_pm(m, s, 5)} | {r2[act]:.4f} | {p} | {d} |")
        lines += ["", "![target and reconstructions](regression.png)", ""]
    run.write_text("summary.md", "\n".join(lines))


def _pm(m: float, s: float, digits: int) -> str:
    return f"{m:.{digits}f} ± {s:.{digits}f}" if s else f"{m:.{digits}f}"


def _table(runs: list[dict[str, Any]], key: str, higher: bool):
    acts: dict[str, list[dict[str, Any]]] = {}
    for r in runs:
        acts.setdefault(r["act"], []).append(r)
    rows = []
    for act, rs in acts.items():
        vals = [r[key] for r in rs if math.isfinite(r[key])]
        m = float(np.mean(vals)) if vals else float("nan")
        s = float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0
        rows.append((act, m, s, rs[0]["params"], sum(r["diverged"] for r in rs)))
    rows.sort(key=lambda r: (-r[1] if higher else r[1]) if math.isfinite(r[1]) else float("inf"))
    return rows


def _cmd(args: argparse.Namespace) -> int:
    if args.task == "regression1d":  # the DiTAC paper's Figure 3 (experiments/regression1d.py)
        from .regression1d import Regression1dConfig, run_regression1d

        over = {k: v for k, v in (("acts", split_specs(args.acts) if args.acts else None),
                                  ("seeds", args.seeds), ("steps", args.reg_steps),
                                  ("out", args.out), ("quiet", args.quiet or None),
                                  ("prior", False if args.no_prior else None)) if v is not None}
        if args.threads:
            torch.set_num_threads(args.threads)
        path = run_regression1d(Regression1dConfig(**over))
        print(f"results: {path}/results.json\nsummary: {path}/summary.md")
        return 0
    cfg = make_config(task=args.task, acts=split_specs(args.acts) if args.acts else None,
                      seeds=args.seeds,
                      gmm_steps=args.gmm_steps, reg_steps=args.reg_steps,
                      fourier_features=args.fourier_features, threads=args.threads,
                      out=args.out, quiet=args.quiet or None,
                      per_channel=False if args.shared else None,
                      prior=False if args.no_prior else None)
    path = run_toy2d(cfg)
    print(f"results: {path}/results.json\nsummary: {path}/summary.md")
    return 0


def add_subcommand(bench: argparse._SubParsersAction) -> None:
    p = bench.add_parser("toy2d", help="2-D GMM classification and sine-mixture regression; "
                         "1-D regression by a 1-3-1 MLP (--task regression1d)")
    p.add_argument("--task", default="both", choices=["both", "gmm", "regression", "regression1d"],
                   help="regression1d: the DiTAC paper's Figure 3 (ReLU vs DiTAC per node)")
    p.add_argument("--acts", help="comma list of registry specs")
    p.add_argument("--seeds", type=seeds, help="e.g. 0,1,2")
    p.add_argument("--gmm-steps", type=positive_int)
    p.add_argument("--reg-steps", type=positive_int, help="regression (and regression1d) steps")
    p.add_argument("--fourier-features", type=nonneg_int, help="feed sin/cos(pi k x), k=1..K")
    p.add_argument("--shared", action="store_true", help="shared (not per-unit) act. parameters")
    p.add_argument("--threads", type=positive_int)
    p.add_argument("--out")
    p.add_argument("--quiet", action="store_true")
    add_prior_flag(p)
    p.set_defaults(func=_cmd)
