"""The training loop of every experiment: ``learnact train charlm|convnext`` and the tasks of
``learnact bench autoencoder|toy2d`` (an epoch is an evaluation interval there).

One loop for one CPU, one GPU, N GPUs and several nodes (nanoGPT's habits):

* torchrun sets RANK/WORLD_SIZE/LOCAL_RANK -> DDP (gloo on CPU, nccl on CUDA); every rank
  draws its own batches (rank-offset, stateless: batch = f(seed, step, rank), so a resumed run
  sees exactly the batches an uninterrupted one would); gradient accumulation runs the first
  micro-steps under ``no_sync``; rank 0 alone writes; ``destroy_process_group`` at exit.
* bf16 autocast on CUDA (``--amp``), ``torch.compile`` (``--compile``).
* Batches either stateless per step (``Task.batch``: the trainers) or one deterministic stream
  per run drawn from the seed (``Task.stream``: an epoch of a shuffled set, fresh samples).
* AdamW (or Adam, SGD with momentum 0.9) on ``learnact.param_groups``; linear warm-up then
  cosine decay to ``min_lr`` at ``steps`` (or a constant rate); gradient clipping (or none).
* Evaluation every ``eval_every`` steps (val batches sharded over ranks, all-reduced);
  a checkpoint at every evaluation (atomic write; model, optimiser, step, history, the task's
  config): an interrupted run loses at most one evaluation interval, ``--resume`` continues it,
  and a checkpoint from a different configuration is refused with the differing keys named.
* ``check_sync``: at the end every rank's parameters are compared bit for bit.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable, Iterator
import copy
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn

from .._files import write_atomic
from ..params import param_groups, with_prior
from . import tensor_parallel as _tp
from .common import (Dist, RunDir, model_filename, progress, read_torch_file, save_model,
                     seed_everything, setup_distributed, teardown_distributed)

log = logging.getLogger(__name__)

__all__ = ["OptimConfig", "RunOptions", "Task", "train_one", "CHECKPOINT_FORMAT", "lr_at", "configure",
           "launch", "run_comparison", "print_summary", "TRAINER_ACTS"]

CHECKPOINT_FORMAT = "learnact-ckpt-1"

# what both trainers (charlm, convnext) compare by default; SPEC@TARGET fits SPEC to TARGET first
TRAINER_ACTS = ("gelu", "hermite:degree=8", "hermite:degree=8@gelu", "fourier:degree=4",
                "tropical:degree=4", "ditac", "ditac:lut=2048")


OPTIMIZERS = ("adamw", "adam", "sgd")
SCHEDULES = ("cosine", "constant")


@dataclass
class OptimConfig:
    steps: int = 600
    lr: float = 1e-3
    min_lr: float = 1e-4
    warmup: int = 50
    weight_decay: float = 0.1
    beta2: float = 0.99
    grad_clip: float = 1.0  # 0: no clipping
    grad_accum: int = 1
    eval_every: int = 100
    amp: bool = True        # bf16 autocast when on CUDA (ignored on CPU)
    compile: bool = False
    stop_after: int | None = None  # stop (as if interrupted) after this many steps
    optimizer: str = "adamw"       # adamw | adam | sgd (momentum 0.9)
    schedule: str = "cosine"       # cosine (warm-up, then to min_lr) | constant
    decay: str = "matrices"        # weight decay on: "matrices" (>= 2-D) or "all" (every
    #                                non-activation parameter); param_groups' rule

    @classmethod
    def plain(cls, steps: int, lr: float, eval_every: int, optimizer: str = "adam",
              weight_decay: float = 0.0) -> OptimConfig:
        """The small experiments' setting (autoencoder, toy2d): a constant rate, torch's
        default betas, weight decay (if any) on every non-activation parameter, no clipping,
        no autocast."""
        return cls(steps=steps, lr=lr, weight_decay=weight_decay, beta2=0.999, grad_clip=0.0,
                   eval_every=eval_every, amp=False, optimizer=optimizer, schedule="constant",
                   decay="all")

    def validate(self) -> None:
        for k in ("steps", "grad_accum", "eval_every"):
            if getattr(self, k) < 1:
                raise ValueError(f"{k} must be >= 1, got {getattr(self, k)}")
        if not (self.lr > 0 and self.min_lr >= 0):
            raise ValueError(f"lr must be > 0 and min_lr >= 0, got {self.lr}, {self.min_lr}")
        for k, allowed in (("optimizer", OPTIMIZERS), ("schedule", SCHEDULES),
                           ("decay", ("matrices", "all"))):
            if getattr(self, k) not in allowed:
                raise ValueError(f"{k} must be one of {allowed}, got {getattr(self, k)!r}")


@dataclass
class RunOptions:
    """Run-level options every trainer config has (its own fields come after these)."""

    device: str | None = None
    threads: int | None = None
    out: str | None = None
    check_sync: bool = False      # verify bit-identical parameters on every rank at the end
    record: bool = False          # activation-input / loss-derivative histograms (viz.Recorder)
    record_every: int = 8         # ... of one training batch in this many
    quiet: bool = False
    prior: bool = True            # add learnact.regularization(model) (DiTAC's prior) to the loss
    tp: int = 1                   # tensor-parallel group size under torchrun (task's tp_plan)


Batch = tuple[Tensor, Tensor]


@dataclass
class Task:
    """What the training loop needs from a task.

    Batches come from ``batch`` (stateless: micro-step index and a generator seeded from
    (seed, step, micro, rank), so a resumed run sees the batches an uninterrupted one would) or
    from ``stream`` (``stream(seed, dist)`` yields a run's batches in order; a resumed run
    skips the ones already used). Exactly one of them is given."""

    name: str
    config: dict[str, Any]                       # saved in checkpoints, compared on resume
    build: Callable[[str], nn.Module]            # activation spec -> fresh model
    batch: Callable[[int, torch.Generator], Batch] | None  # (micro index, generator) -> x, y
    loss: Callable[[nn.Module, Tensor, Tensor], Tensor]
    evaluate: Callable[[nn.Module, Dist], dict[str, float]]  # all-reduced metrics
    stream: Callable[[int, Dist], Iterator[Batch]] | None = None
    # model -> parallelize_module plan (module name -> ParallelStyle), for --tp
    tp_plan: Callable[[nn.Module], dict[str, Any]] | None = None
    # model -> its repeated blocks: one FSDP2 unit each when --tp leaves > 1 data-parallel group
    blocks: Callable[[nn.Module], list[nn.Module]] | None = None

    def __post_init__(self) -> None:
        if (self.batch is None) == (self.stream is None):
            raise ValueError(f"task {self.name!r}: give exactly one of batch and stream")


def lr_at(step: int, o: OptimConfig) -> float:
    if o.schedule == "constant":
        return o.lr
    if step < o.warmup:
        return o.lr * (step + 1) / o.warmup
    t = (step - o.warmup) / max(1, o.steps - o.warmup)
    return o.min_lr + 0.5 * (o.lr - o.min_lr) * (1 + math.cos(math.pi * min(1.0, t)))


def _optimizer(model: nn.Module, o: OptimConfig, device: torch.device) -> torch.optim.Optimizer:
    # learnact.param_groups: activation parameters never decay; of the rest, o.decay decides
    groups = param_groups(model, weight_decay=o.weight_decay, decay=o.decay)
    if o.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=o.lr, momentum=0.9)
    fused = (device.type == "cuda") or None
    cls = torch.optim.AdamW if o.optimizer == "adamw" else torch.optim.Adam
    return cls(groups, lr=o.lr, betas=(0.9, o.beta2), fused=fused)


def _micro_seed(seed: int, step: int, micro: int, rank: int) -> int:
    return (seed * 1_000_003 + step * 9_973 + micro * 101 + rank * 7 + 1) % (2**63 - 1)


def _diff(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    keys = sorted(set(a) | set(b))
    return [f"{k}: checkpoint {b.get(k)!r} vs now {a.get(k)!r}" for k in keys if a.get(k) != b.get(k)]


def _run_config(task: Task, spec: str, seed: int, o: OptimConfig, world: int,
                prior: bool, tp: int = 1) -> dict[str, Any]:
    """What a checkpoint must match to be resumed (run-time switches excluded)."""
    optim = {k: v for k, v in asdict(o).items() if k not in ("stop_after", "compile", "amp")}
    if (o.optimizer, o.schedule, o.decay) == ("adamw", "cosine", "matrices"):
        for k in ("optimizer", "schedule", "decay"):  # the defaults: checkpoints written
            optim.pop(k)                               # before these options still resume
    return {"task": task.name, **task.config, "act": spec, "seed": seed, "world": world,
            "prior": prior, **optim, **({"tp": tp} if tp > 1 else {})}


def load_checkpoint(path: Path, run_config: dict[str, Any]) -> dict[str, Any]:
    """The checkpoint at ``path`` (read with ``weights_only=True``: nothing in it runs), checked
    to be a learnact checkpoint of exactly ``run_config``; a clear error otherwise (naming
    the file, and for a corrupt one the fix: delete it to restart that run)."""
    ck = read_torch_file(path, "learnact checkpoint")
    if not isinstance(ck, dict) or ck.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path}: not a learnact checkpoint ({CHECKPOINT_FORMAT})")
    missing = [k for k in ("run_config", "model", "optim", "step", "record") if k not in ck]
    if missing or not isinstance(ck["run_config"], dict) or not isinstance(ck["step"], int):
        raise ValueError(f"{path}: incomplete learnact checkpoint (missing or malformed: "
                         f"{', '.join(missing) or 'run_config/step'}); delete it to restart "
                         f"that run from the beginning")
    diffs = _diff(run_config, ck["run_config"])
    if diffs:
        raise ValueError(f"{path} was written with a different configuration; refusing to "
                         f"resume. Differences: " + "; ".join(diffs))
    return ck


def _save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    write_atomic(path, lambda f: torch.save(payload, f))


def train_one(task: Task, spec: str, seed: int, o: OptimConfig, d: Dist,
              ckpt: Path | None = None, resume: bool = False, bar: Any = None,
              check_sync: bool = False, record_every: int = 0, prior: bool = True
              ) -> dict[str, Any]:
    """Train ``task`` with activation ``spec``; returns the run record (history, final metrics).

    ``ckpt``: checkpoint file (rank 0 writes it at every evaluation); ``resume``: continue from it.
    ``record_every`` > 0: a :class:`learnact.viz.Recorder` (one training batch in that many)
    keeps activation-input and loss-derivative histograms per evaluation interval
    (``record["recorder"]``; an interval plays the role of an epoch).
    ``prior``: train on the loss plus ``learnact.regularization(model)`` (DiTAC's prior).
    """
    o.validate()
    tp = d.tp > 1
    if tp and task.tp_plan is None:
        raise ValueError(f"--tp {d.tp}: the {task.name} task has no tensor-parallel plan")
    seed_everything(seed)
    model = task.build(spec).to(d.device)
    run_config = _run_config(task, spec, seed, o, d.world, prior, d.tp)
    record: dict[str, Any] = {"act": spec, "seed": seed, "evals": [], "train_loss": [],
                              "params": sum(p.numel() for p in model.parameters()),
                              "diverged": False, "seconds": 0.0}
    start = 0
    ck = None
    if resume and ckpt is not None and ckpt.exists():
        ck = load_checkpoint(ckpt, run_config)
        model.load_state_dict(ck["model"])  # full tensors, before any sharding
    if tp:
        model = _tp.parallelize(model, task.tp_plan(model), d,
                                task.blocks(model) if task.blocks else ())
    opt = _optimizer(model, o, d.device)
    if ck is not None:
        (_tp.load_optim_state if tp else type(opt).load_state_dict)(opt, ck["optim"])
        start = ck["step"]
        record.update(ck["record"])
        log.info("resumed %s seed %d at step %d", spec, seed, start)
    recorder = None
    if record_every > 0:
        from ..viz.recorder import Recorder

        recorder = Recorder(model, every=record_every)
    net: nn.Module = model
    if o.compile:
        net = torch.compile(net)
    if d.enabled and not tp:
        net = nn.parallel.DistributedDataParallel(
            net, device_ids=[d.device.index] if d.device.type == "cuda" else None)
    amp = (torch.autocast("cuda", dtype=torch.bfloat16) if o.amp and d.device.type == "cuda"
           else contextlib.nullcontext())
    t0 = time.perf_counter() - record["seconds"]
    t_eval = time.perf_counter()
    end = o.steps if o.stop_after is None else min(o.steps, o.stop_after)
    stream = None
    if task.stream is not None:
        stream = task.stream(seed, d)
        for _ in range(start * o.grad_accum):  # a resumed run: the batches already used
            next(stream)
    model.train()
    for step in range(start, end):
        lr = lr_at(step, o)
        for g in opt.param_groups:
            g["lr"] = lr
        total = 0.0
        for micro in range(o.grad_accum):
            if stream is not None:
                x, y = next(stream)
            else:
                gen = torch.Generator().manual_seed(_micro_seed(seed, step, micro, d.dp_rank))
                x, y = task.batch(micro, gen)
            x, y = x.to(d.device, non_blocking=True), y.to(d.device, non_blocking=True)
            last = micro == o.grad_accum - 1
            if tp and hasattr(model, "set_requires_gradient_sync"):  # FSDP2 over "dp"
                model.set_requires_gradient_sync(last)
            sync = (contextlib.nullcontext() if (last or not d.enabled or tp)
                    else net.no_sync())
            with sync, amp:
                loss = task.loss(net, x, y) / o.grad_accum
                objective = with_prior(loss, model, prior, 1.0 / o.grad_accum)
            with sync:
                objective.backward()
            total += float(loss.detach())
        if not math.isfinite(total):  # stop at once: no step on a non-finite loss
            record["diverged"] = True
            record["diverged_step"] = step
            log.warning("%s seed %d diverged at step %d", spec, seed, step)
            break
        if o.grad_clip > 0 and tp:
            _tp.clip_grad_norm(list(model.parameters()), o.grad_clip)
        elif o.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), o.grad_clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
        record["train_loss"].append(total)
        record["step"] = step + 1
        if bar is not None:
            bar.update(1)
        if (step + 1) % o.eval_every == 0 or step + 1 == o.steps:
            if recorder is not None:
                recorder.end_epoch()
            model.eval()
            with torch.no_grad(), amp:
                metrics = task.evaluate(model, d)
            model.train()
            since = step + 1 - (record["evals"][-1]["step"] if record["evals"] else 0)
            record["evals"].append({"step": step + 1, **metrics,
                                    "train_loss": _interval_mean(record["train_loss"],
                                                                 since, d),
                                    "seconds": time.perf_counter() - t_eval})
            t_eval = time.perf_counter()
            record["seconds"] = time.perf_counter() - t0
            if bar is not None:
                bar.set_postfix_str(f"{spec} s{seed} step {step + 1} " + " ".join(
                    f"{k} {v:.4f}" for k, v in metrics.items()))
            if ckpt is not None and tp:  # gathered on every rank (collectives), rank 0 writes
                state, optim = _tp.full_state_dict(model), _tp.full_optim_state(opt)
            elif ckpt is not None and d.main:
                state, optim = model.state_dict(), opt.state_dict()
            if ckpt is not None and d.main:
                _save_checkpoint(ckpt, {"format": CHECKPOINT_FORMAT, "run_config": run_config,
                                        "model": state, "optim": optim,
                                        "step": step + 1, "record": record})
    record["seconds"] = time.perf_counter() - t0
    record["completed"] = (not record["diverged"]) and record.get("step", 0) == o.steps
    if recorder is not None:
        record["recorder"] = recorder.state()
        recorder.remove()
    if check_sync:
        record["ranks_identical"] = ranks_identical(model, d)
    if tp:  # the saved and returned model: the plain one, with the gathered weights
        state = _tp.full_state_dict(model)
        model = task.build(spec).to(d.device)
        model.load_state_dict(state)
    record["_model"] = model
    return record


def _interval_mean(losses: list[float], every: int, d: Dist) -> float:
    """Mean training loss of the last evaluation interval over every rank (float64)."""
    last = losses[-every:]
    stats = torch.tensor([sum(last), float(len(last))], dtype=torch.float64, device=d.device)
    d.all_reduce_sum(stats)
    return float(stats[0] / stats[1])


@torch.no_grad()
def ranks_identical(model: nn.Module, d: Dist) -> bool:
    """True when every rank holds bit-identical parameters and buffers."""
    if not d.enabled:
        return True
    flat = torch.cat([(t.full_tensor() if _tp.is_dtensor(t) else t).detach().reshape(-1)
                      .double().cpu() for t in list(model.parameters()) + list(model.buffers())])
    ref = flat.clone().to(d.device)
    dist.broadcast(ref, src=0)
    same = torch.tensor([float(torch.equal(flat.to(d.device), ref))], device=d.device)
    dist.all_reduce(same, op=dist.ReduceOp.MIN)
    return bool(same.item() == 1.0)


# -- what charlm and convnext share around train_one -------------------------------------------
def configure(cls: type, presets: dict[str, dict[str, Any]], preset: str, **overrides: Any):
    """``cls(preset=..., **presets[preset])``, then the non-None overrides; keys of
    :class:`OptimConfig` go to ``cfg.optim``. Unknown presets and keys are errors."""
    if preset not in presets:
        raise ValueError(f"unknown preset {preset!r}; choose from {sorted(presets)}")
    cfg = cls(preset=preset, **copy.deepcopy(presets[preset]))
    names = {f.name for f in fields(cls)}
    optim_names = {f.name for f in fields(OptimConfig)}
    for k, v in overrides.items():
        if v is None:
            continue
        if k in names:
            setattr(cfg, k, v)
        elif k in optim_names:
            setattr(cfg.optim, k, v)
        else:
            raise ValueError(f"unknown configuration key {k!r}")
    return cfg


def launch(device: str | None, body: Callable[[Dist], Path | None]) -> Path | None:
    """Set up DDP if torchrun launched us, run ``body(dist)``, leave together, tear down."""
    d = setup_distributed(device)
    try:
        path = body(d)
        d.barrier()  # a rank that tears gloo down while rank 0 still writes aborts at exit
        return path  # ("terminate called without an active exception")
    finally:
        teardown_distributed(d)


def finished_runs(results: Any, where: Path) -> list[dict[str, Any]]:
    """The runs of a results.json read for ``--resume``, checked: a list of objects with
    ``act`` (a string), ``seed`` (an integer) and ``completed`` (true/false); anything else is a
    ValueError naming the file and the field (a hand-edited or foreign file must not turn into
    a traceback in the middle of a resume)."""
    if not isinstance(results, dict):
        raise ValueError(f"{where}: expected a JSON object, got {type(results).__name__}")
    runs = results.get("runs", [])
    if not isinstance(runs, list):
        raise ValueError(f"{where}: 'runs' must be a list, got {type(runs).__name__}")
    for k, r in enumerate(runs):
        if not isinstance(r, dict):
            raise ValueError(f"{where}: runs[{k}] must be an object, got {type(r).__name__}")
        for field, kind in (("act", str), ("seed", int), ("completed", bool)):
            v = r.get(field)
            if not isinstance(v, kind) or (kind is int and isinstance(v, bool)):
                raise ValueError(f"{where}: runs[{k}].{field} must be a {kind.__name__}, got "
                                 f"{v!r}")
    return runs


def run_comparison(task: Task, cfg: Any, d: Dist, resume: str | None, results: dict[str, Any],
                   model_kwargs: Callable[[str], dict[str, Any]],
                   write_report: Callable[[RunDir, dict[str, Any]], None],
                   after_train: Callable[[nn.Module, dict[str, Any]], None] | None = None
                   ) -> Path | None:
    """Train every (activation, seed) of ``cfg.acts`` x ``cfg.seeds`` (``cfg`` has out, acts,
    seeds, optim, quiet, check_sync, record, record_every). Rank 0 writes config.json,
    results.json after every run, checkpoints/ and models/ (builder ``task.name``), then the
    report. ``--resume``: finished runs are kept, an unfinished one continues from its
    checkpoint. Returns the run directory on rank 0 (None elsewhere)."""
    d = _tp.with_tp(d, getattr(cfg, "tp", 1))  # the (dp, tp) mesh, or a clear error, first
    out = resume or cfg.out or str(RunDir.default(task.name))
    run = RunDir(out, task.name, resume=bool(resume)) if d.main else None
    path = Path(out)
    if resume and run is not None:
        prev = run.read_json("results.json") or {}
        results["runs"] = [r for r in finished_runs(prev, run.path / "results.json")
                           if r["completed"]]
    results["runs"] = d.broadcast_object(results.get("runs", []))
    done = {(r["act"], r["seed"]) for r in results["runs"]}
    if run is not None:
        run.write_json("config.json", asdict(cfg))
        (path / "checkpoints").mkdir(parents=True, exist_ok=True)
    d.barrier()
    todo = [(a, s) for a in cfg.acts for s in cfg.seeds if (a, s) not in done]
    with progress(len(todo) * cfg.optim.steps, task.name,
                  enabled=d.main and not cfg.quiet) as bar:
        for spec, seed in todo:
            name = model_filename(spec, s=seed)
            rec = train_one(task, spec, seed, cfg.optim, d, path / "checkpoints" / name,
                            resume=bool(resume), bar=bar, check_sync=cfg.check_sync,
                            record_every=cfg.record_every if cfg.record else 0,
                            prior=cfg.prior)
            model = rec.pop("_model")
            if after_train is not None and d.main:
                after_train(model, rec)
            results["runs"].append(rec)
            if run is not None:
                save_model(path / "models" / name, model, task.name,
                           {"spec": spec, **model_kwargs(spec)})
                run.write_json("results.json", results)
            if not rec["completed"] and not rec["diverged"]:
                log.info("stopped early (stop_after): resume with --resume %s", path)
                return path if d.main else None
    if run is None:
        return None
    write_report(run, results)
    return run.path


def print_summary(path: Path | None) -> None:
    """CLI output after a run: where the files are, and the summary's table rows (rank 0)."""
    if path is None or not (path / "summary.md").exists():
        return
    print(f"results: {path}/results.json\nsummary: {path}/summary.md")
    print("\n".join(ln for ln in (path / "summary.md").read_text().splitlines()
                    if ln.startswith("|")))
