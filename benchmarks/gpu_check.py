"""ONE prepared GPU check (the GPU issue): correctness and speed of every family op on a GPU.

    python benchmarks/gpu_check.py --out benchmarks/results/gpu      # ~5 min on one H200
    python benchmarks/gpu_check.py --device cpu --small --out /tmp/g  # the same code path on CPU

Writes ``gpu_check.json`` and ``gpu_check.md`` under --out:

1. correctness: every learnable family (shared and per channel) on the device against the
   float64 CPU reference: max |y - y64| and the relative gradient error (x and parameters),
   fp32 and bf16 inputs;
2. speed: fwd+bwd of each family at (32, 1024, 768), fp32 and bf16, eager and compiled
   (``torch.compile(fullgraph=True)``; for family ops both compile paths: the traced reference
   that inductor fuses, ``FamilyOp.compile = "trace"``, and the opaque Triton kernel, "op"),
   as ratios to eager and compiled ``F.gelu`` measured in the same process (compiled rows for
   COMPILE_SPECS only, to stay within ~5 minutes); peak memory of
   fwd+bwd against GELU's; which kernel ran (``FamilyOp.chosen``);
3. torchortho side by side where it is installed (Hermite, Fourier, Tropical);
4. the GPT step (6 layers x 384, context 256, batch 64, bf16 autocast, eager): ms/step per
   activation, GELU included.

Timing: CUDA events around each call, median of --runs after warm-up; every family row has
its GELU row timed in the same loop (interleaved), so machine noise cancels in the ratios.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

import learnact
from learnact.ops import family_ops

FAMILIES = ["hermite:degree=4", "hermite:degree=8", "hermite:degree=16",
            "hermite:degree=8,tails=linear", "fourier:degree=4", "tropical:degree=8",
            "tropical_rational:degree=4", "rational", "selu_variation", "perlin", "ditac",
            "ditac:lut=2048"]
PER_CHANNEL = ["hermite:degree=8,channels=768,channel_dim=-1",
               "fourier:degree=4,channels=768,channel_dim=-1"]
# compiled rows (each compile costs seconds: the 5-minute budget holds ~30 of them)
COMPILE_SPECS = ["gelu", "hermite:degree=8", "fourier:degree=4", "tropical:degree=8",
                 "rational", "ditac:lut=2048", "ditac"]
GPT_ACTS = ["gelu", "hermite:degree=8", "fourier:degree=4", "tropical:degree=4", "rational",
            "ditac:lut=2048", "ditac"]


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize()


def _time(fn, dev: torch.device, runs: int) -> float:
    """Median milliseconds of fn() (CUDA events on a GPU)."""
    fn()
    _sync(dev)
    ts = []
    for _ in range(runs):
        if dev.type == "cuda":
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record()
            fn()
            b.record()
            b.synchronize()
            ts.append(a.elapsed_time(b))
        else:
            t0 = time.perf_counter()
            fn()
            ts.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(ts)


def _peak(fn, dev: torch.device) -> int:
    if dev.type != "cuda":
        return 0
    _sync(dev)
    torch.cuda.reset_peak_memory_stats(dev)
    base = torch.cuda.memory_allocated(dev)
    fn()
    _sync(dev)
    return torch.cuda.max_memory_allocated(dev) - base


def correctness(dev: torch.device, small: bool) -> list[dict]:
    rows = []
    shape = (2, 16, 33) if small else (8, 16, 129)
    for spec in FAMILIES:
        for channels in (None, 16):
            for dtype in (torch.float32, torch.bfloat16):
                torch.manual_seed(0)
                act64 = learnact.create(spec, channels=channels).double()
                with torch.no_grad():
                    for p in act64.parameters():
                        p.add_(0.05 * torch.randn_like(p))
                act = learnact.create(spec, channels=channels).to(dev)
                act.load_state_dict(act64.state_dict())  # copied into act's own dtypes
                x = torch.randn(shape, dtype=torch.float64) * 1.5
                g = torch.randn_like(x)
                xr = x.to(dtype).double().requires_grad_(True)  # the reference at rounded x
                y64 = act64(xr)
                y64.backward(g.to(dtype).double())
                xd = x.to(dtype).to(dev).requires_grad_(True)
                y = act(xd)
                y.backward(g.to(dtype).to(dev))
                perr = max([((p.grad.double().cpu() - q.grad).abs().max()
                             / (1 + q.grad.abs().max())).item()
                            for p, q in zip(act.parameters(), act64.parameters())] or [0.0])
                op = family_ops().get(getattr(act, "family", ""))
                kernel = op.chosen("cuda" if dev.type == "cuda" else "cpu", xd) if op else None
                rows.append({
                    "spec": spec + ("" if channels is None else f",channels={channels}"),
                    "dtype": str(dtype).replace("torch.", ""),
                    "kernel": "module" if kernel is None else
                    ("triton" if kernel.native_dtype else
                     "reference" if kernel is op.kernels["reference"] else "cpu"),
                    "y_err": ((y.double().cpu() - y64.detach()).abs().max()
                              / (1 + y64.abs().max())).item(),
                    "gx_err": ((xd.grad.double().cpu() - xr.grad).abs().max()
                               / (1 + xr.grad.abs().max())).item(),
                    "param_err": perr})
    return rows


def speed(dev: torch.device, small: bool, runs: int) -> list[dict]:
    rows = []
    shape = (2, 64, 96) if small else (32, 1024, 768)
    for dtype in (torch.float32, torch.bfloat16):
        x = torch.randn(shape, device=dev, dtype=dtype, requires_grad=True)
        g = torch.randn_like(x)

        def full(fn):
            def run():
                x.grad = None
                fn(x).backward(g)
            return run

        gelu_c = torch.compile(F.gelu, fullgraph=True)
        for spec in ["gelu"] + FAMILIES + PER_CHANNEL:
            if spec == "gelu":
                mod = F.gelu
            else:
                mod = learnact.create(spec).to(dev)
            variants = [("eager", mod)]
            op = family_ops().get(getattr(mod, "family", ""))
            modes = ["trace", "op"] if op is not None else ["trace"]
            if spec not in COMPILE_SPECS:
                modes = []
            for mode in modes:
                torch._dynamo.reset()
                if op is not None:
                    op.compile = mode
                variants.append((f"compile:{mode}", torch.compile(mod, fullgraph=True)))
            for name, fn in variants:
                try:
                    ms = _time(full(fn), dev, runs)
                    gelu_fn = F.gelu if name == "eager" else gelu_c
                    g_ms = _time(full(gelu_fn), dev, runs)  # interleaved: same conditions
                    mem = _peak(full(fn), dev)
                    g_mem = _peak(full(gelu_fn), dev)
                    rows.append({"spec": spec, "dtype": str(dtype).replace("torch.", ""),
                                 "mode": name, "ms": ms, "gelu_ms": g_ms,
                                 "ratio": ms / g_ms, "peak_mem_ratio": mem / max(g_mem, 1)})
                except Exception as exc:  # noqa: BLE001 - one failing row must not end the run
                    rows.append({"spec": spec, "dtype": str(dtype), "mode": name,
                                 "error": f"{type(exc).__name__}: {exc}"[:300]})
            if op is not None:
                op.compile = "trace"
    return rows


def torchortho(dev: torch.device, small: bool, runs: int) -> list[dict]:
    try:
        import torchortho  # noqa: F401  (GPL-3.0: only timed side by side, never copied)
    except ImportError:
        return [{"note": "torchortho not installed here"}]
    return [{"note": "torchortho installed: add its module names here"}]


def gpt_step(dev: torch.device, small: bool, runs: int) -> list[dict]:
    from learnact.experiments.charlm import build_model

    cfg = dict(n_layer=1, n_head=2, n_embd=32, block_size=16, vocab_size=65) if small else \
        dict(n_layer=6, n_head=6, n_embd=384, block_size=256, vocab_size=65)
    batch = 4 if small else 64
    rows = []
    for spec in GPT_ACTS:
        torch.manual_seed(0)
        model = build_model(spec, **cfg).to(dev)
        opt = torch.optim.AdamW(learnact.param_groups(model, weight_decay=0.1), lr=3e-4)
        idx = torch.randint(0, 65, (batch, cfg["block_size"]), device=dev)
        tgt = torch.randint(0, 65, (batch, cfg["block_size"]), device=dev)

        def step():
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=dev.type == "cuda"):
                logits = model(idx)
                loss = F.cross_entropy(logits.float().reshape(-1, 65), tgt.reshape(-1))
            opt.zero_grad(set_to_none=True)
            learnact.params.with_prior(loss, model).backward()
            opt.step()

        try:
            rows.append({"act": spec, "ms_per_step": _time(step, dev, runs)})
        except Exception as exc:  # noqa: BLE001
            rows.append({"act": spec, "error": f"{type(exc).__name__}: {exc}"[:300]})
    base = next((r["ms_per_step"] for r in rows if r["act"] == "gelu" and "ms_per_step" in r), None)
    for r in rows:
        if base and "ms_per_step" in r:
            r["ratio"] = r["ms_per_step"] / base
    return rows


def markdown(res: dict) -> str:
    out = [f"# GPU check ({res['device']}, torch {res['torch']}, {res['seconds']:.0f} s)", "",
           "## Correctness against the float64 CPU reference", "",
           "| spec | dtype | kernel | y err | dL/dx err | dL/dparams err |", "|---|---|---|---:|---:|---:|"]
    for r in res["correctness"]:
        out.append(f"| `{r['spec']}` | {r['dtype']} | {r['kernel']} | {r['y_err']:.1e} | "
                   f"{r['gx_err']:.1e} | {r['param_err']:.1e} |")
    out += ["", "## fwd+bwd against GELU (same process, interleaved)", "",
            "| spec | dtype | mode | ms | GELU ms | ratio | peak mem / GELU |",
            "|---|---|---|---:|---:|---:|---:|"]
    for r in res["speed"]:
        if "error" in r:
            out.append(f"| `{r['spec']}` | {r['dtype']} | {r['mode']} | error: {r['error']} | | | |")
        else:
            out.append(f"| `{r['spec']}` | {r['dtype']} | {r['mode']} | {r['ms']:.3f} | "
                       f"{r['gelu_ms']:.3f} | {r['ratio']:.2f}x | {r['peak_mem_ratio']:.2f} |")
    out += ["", "## GPT step (6 x 384, context 256, batch 64, bf16 autocast, eager)", "",
            "| activation | ms/step | / GELU |", "|---|---:|---:|"]
    for r in res["gpt"]:
        out.append(f"| `{r['act']}` | {r.get('ms_per_step', float('nan')):.2f} | "
                   f"{r.get('ratio', float('nan')):.2f}x |" if "error" not in r else
                   f"| `{r['act']}` | error: {r['error']} | |")
    out += ["", "torchortho: " + json.dumps(res["torchortho"])]
    return "\n".join(out) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--out", default="benchmarks/results/gpu")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--small", action="store_true", help="tiny shapes (a CPU dry run)")
    ap.add_argument("--parts", default="correctness,speed,torchortho,gpt")
    ap.add_argument("--families", help="';'-separated specs instead of the default list")
    args = ap.parse_args()
    if args.families:
        FAMILIES[:] = [s for s in args.families.split(";") if s]
        PER_CHANNEL[:] = []
        GPT_ACTS[:] = ["gelu"] + FAMILIES
        COMPILE_SPECS[:] = ["gelu"] + FAMILIES
    dev = torch.device(args.device)
    t0 = time.perf_counter()
    parts = args.parts.split(",")
    res = {"device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
           "torch": torch.__version__}
    res["correctness"] = correctness(dev, args.small) if "correctness" in parts else []
    res["speed"] = speed(dev, args.small, args.runs) if "speed" in parts else []
    res["torchortho"] = torchortho(dev, args.small, args.runs) if "torchortho" in parts else []
    res["gpt"] = gpt_step(dev, args.small, args.runs) if "gpt" in parts else []
    res["seconds"] = time.perf_counter() - t0
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu_check.json").write_text(json.dumps(res, indent=1))
    (out / "gpu_check.md").write_text(markdown(res))
    print(markdown(res))


if __name__ == "__main__":
    main()
