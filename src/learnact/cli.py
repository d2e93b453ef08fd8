"""``learnact`` command line: a thin layer over typed library functions (argparse).

    learnact list                         registry names
    learnact fit SPEC --target gelu       fit an activation (closed form where possible)
    learnact moments SPEC [SPEC ...]      exact E[f^2], E[f'^2], V'(1)
    learnact build [--torch] [--jax]      build the native CPU kernels ahead of first use
    learnact bench ops [...]              op speed/memory vs GELU (benchmarks/bench_ops.py)
    learnact bench autoencoder [...]      the main job (Fashion-MNIST conv autoencoder)
    learnact bench toy2d [...]            2-D toy tasks
    learnact bench depth [...]            forward/backward std through deep stacks at init
    learnact train charlm|convnext [...]  character-level GPT, ConvNeXt classifier (torchrun)
    learnact plot shapes|sampling|atlas   figures from a run directory or a saved model
    learnact atlas serve                  interactive atlas (local web server)
"""

from __future__ import annotations

import argparse
import logging
import re
import shlex
import sys
from pathlib import Path
from collections.abc import Sequence

from .experiments.args import device, new_file, nonneg_float, positive_float, positive_int
from ._text import plain

__all__ = ["main", "build_parser"]


def _cmd_list(args: argparse.Namespace) -> int:
    from . import available

    for name in available(learnable=True if args.learnable else None):
        print(name)
    return 0


def _cmd_moments(args: argparse.Namespace) -> int:
    from . import create, moments

    heads = ("E[f]", "E[f^2]", "E[f'^2]", "V'(1)")
    print(f"{'spec':40s} " + " ".join(f"{h:>9s}" for h in heads))
    for spec in args.specs:
        m = moments(create(spec))
        vals = [m.mean, m.second, m.deriv_second, m.vprime]
        vals = [float(v.mean()) if hasattr(v, "mean") else float(v) for v in vals]
        print(f"{spec:40s} " + " ".join(f"{v:9.4f}" for v in vals))
    return 0


def _fit_domain(text: str) -> object:
    """'normal' or 'lo,hi' with finite ends, |lo|, |hi| <= 1e6, lo < hi (an argparse type)."""
    from ._validate import check_float

    if text == "normal":
        return text
    try:
        lo, hi = (float(v) for v in text.split(","))
        lo, hi = check_float("lo", lo), check_float("hi", hi)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"--domain must be 'normal' or 'lo,hi' with finite "
                                         f"ends of magnitude <= 1e6, got {text!r} ({exc})"
                                         ) from None
    if not lo < hi:
        raise argparse.ArgumentTypeError(f"--domain needs lo < hi, got {text!r}")
    return (lo, hi)


_FIGURE_SUFFIXES = (".png", ".pdf", ".svg", ".jpg", ".jpeg")


def _figure_file(text: str) -> str:
    """A new-file path whose suffix is a figure format (an argparse type)."""
    from pathlib import Path

    if Path(text).suffix.lower() not in _FIGURE_SUFFIXES:
        raise argparse.ArgumentTypeError(f"--plot {text!r}: the file name must end in one of "
                                         f"{', '.join(_FIGURE_SUFFIXES)}")
    return new_file(text)


def _cmd_fit(args: argparse.Namespace) -> int:
    from pathlib import Path

    from . import create, fit

    for flag, path in (("--plot", args.plot), ("--save", args.save)):
        if path and Path(path).exists() and not args.overwrite:
            raise ValueError(f"{flag} {path!r} exists: choose a new file or pass --overwrite "
                             "(checked before the fit runs)")
    act = create(args.spec)
    domain = args.domain
    rep = fit(act, args.target, domain=domain, derivative_weight=args.derivative_weight,
              sigma=args.sigma)
    print(rep)
    if args.plot:
        print(f"figure: {rep.plot(args.plot)}")
    if args.save:
        from .saving import save

        save(act, args.save, spec=args.spec)
        print(f"saved: {args.save} (learnact.load({str(args.save)!r}) reads it back)")
    return 0


def _cmd_build(args: argparse.Namespace) -> int:
    """Build (or find in the cache) every native kernel library of the chosen frameworks;
    without a flag, those whose framework is installed."""
    import importlib.util
    import time

    from . import _build

    if not _build.enabled():
        raise ValueError("LEARNACT_NATIVE turns the native kernels off: nothing to build")
    want_torch = args.torch or not (args.torch or args.jax)
    want_jax = args.jax or not (args.torch or args.jax)
    todo = []
    if want_torch and (args.torch or importlib.util.find_spec("torch")):
        todo += [("PyTorch", "families"), ("PyTorch", "cpab")]
    if want_jax and (args.jax or importlib.util.find_spec("jax")):
        todo += [("JAX", "xla"), ("JAX", "xla_ditac")]
    if not todo:
        raise ImportError("neither torch nor jax is installed: no kernels to build")
    print(f"native kernels cache: {_build.cache_dir()}")
    failed = 0
    for framework, name in todo:
        start = time.perf_counter()
        if name == "xla":
            from . import xla_native

            ok = xla_native.available()
            what = "xla_native/families.cc"
        elif name == "xla_ditac":
            from .xla_native import ditac

            ok = ditac.available()
            what = "xla_native/cpab.cc"
        else:
            from .ops import _native

            ok = _native.library(name) is not None
            what = f"native/{name}.{'cc' if name == 'families' else 'c'}"
        failed += not ok
        print(f"{framework:8s} {what:26s} {'ready' if ok else 'FAILED (see the warning above)'}"
              f" ({time.perf_counter() - start:.1f} s)")
    return 1 if failed else 0


def _cmd_bench_ops(args: argparse.Namespace) -> int:
    import torch

    from .speed import (DEFAULT_SPECS, benchmark_ops, markdown_table, results_section,
                        write_csv, write_section)

    shape = tuple(int(s) for s in args.shape.split("x"))
    rows = benchmark_ops(args.specs or DEFAULT_SPECS, shape=shape,
                         dtype=getattr(torch, args.dtype), device=args.device, runs=args.runs,
                         backends=args.backends, threads=args.threads,
                         progress=not args.quiet, timing=args.timing,
                         step_params=args.step_params, malloc=args.malloc)
    if args.csv:
        write_csv(rows, args.csv)
    print(markdown_table(rows))
    if args.results_md:
        # the command as it timed the table (where it wrote it is not part of the result)
        command = re.sub(r" --results-md \S+", "", args.command_line)
        write_section(args.results_md, "ops-table", results_section(rows, command))
        print(f"wrote the ops table into {args.results_md}")
    return 0


def _add_bench_ops(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ops", help="speed/memory of every family vs F.gelu, same run")
    p.add_argument("--specs", nargs="*", default=None, help="registry specs (default: a set)")
    p.add_argument("--shape", default="16x256x768", help="input shape, e.g. 16x256x768")
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    p.add_argument("--device", default="cpu", type=device)
    p.add_argument("--runs", type=positive_int, default=25, help="timed runs per row (median reported)")
    p.add_argument("--backends", default="eager,compile", type=_backends,
                   help="comma list of eager and compile, or both (default: eager,compile)")
    p.add_argument("--threads", type=positive_int, default=2)
    p.add_argument("--timing", default="interleaved", choices=["interleaved", "blocks"],
                   help="alternate GELU and op runs, or time each in a block of its own "
                        "(steadier next to a much slower op)")
    p.add_argument("--step-params", action="store_true",
                   help="move the parameters in place before every op run (the training-step "
                        "cost: tables derived from parameters are rebuilt)")
    p.add_argument("--malloc", default="steady", choices=["steady", "default"],
                   help="steady (default): glibc keeps freed memory, so fresh outputs' page "
                        "faults do not decide the medians (GELU and ops alike); default: as is")
    p.add_argument("--csv", default=None, help="append rows to this CSV")
    p.add_argument("--results-md", default=None, type=_results_md,
                   help="also write the table (with the command, commit, machine and issue "
                        "#33's goals) between the <!-- ops-table:start/end --> markers of this "
                        "file, e.g. benchmarks/RESULTS.md")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_cmd_bench_ops)


def _results_md(text: str) -> str:
    """A markdown file holding the ops-table markers (checked before anything is timed)."""
    p = Path(text)
    if not p.is_file() or "<!-- ops-table:start -->" not in p.read_text():
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a file holding <!-- ops-table:start --> and <!-- ops-table:end -->")
    return text


def _backends(text: str) -> list[str]:
    """"eager", "compile", "eager,compile" or "both" (an argparse type)."""
    names = ["eager", "compile"] if text.strip() == "both" else [
        t.strip() for t in text.split(",") if t.strip()]
    bad = [n for n in names if n not in ("eager", "compile")]
    if bad or not names:
        raise argparse.ArgumentTypeError(f"backends are eager and/or compile (or both), got {text!r}")
    return names


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(prog="learnact", description=plain(__doc__),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}",
                        help="print the version and exit")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("list", help="registry names")
    p.add_argument("--learnable", action="store_true")
    p.set_defaults(func=_cmd_list)
    p = sub.add_parser("moments", help="exact Gaussian moments and V'(1) of specs")
    p.add_argument("specs", nargs="+")
    p.set_defaults(func=_cmd_moments)
    p = sub.add_parser("fit", help="fit an activation to a target (value and derivative)")
    p.add_argument("spec", help="learnable activation spec, e.g. hermite:degree=8")
    p.add_argument("--target", default="gelu", help="registry name of the target (default gelu)")
    p.add_argument("--domain", default="normal", type=_fit_domain,
                   help="'normal' or an interval 'lo,hi' (finite, |lo|, |hi| <= 1e6, lo < hi)")
    p.add_argument("--sigma", type=positive_float, default=1.0, help="std of the normal domain")
    p.add_argument("--derivative-weight", type=nonneg_float, default=1.0)
    p.add_argument("--plot", type=_figure_file,
                   help="write target vs fit (and derivatives) to this new .png/.pdf/.svg file")
    p.add_argument("--save", type=new_file,
                   help="save the fitted module to this new file (learnact.load reads it)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace existing --plot/--save files (refused otherwise)")
    p.set_defaults(func=_cmd_fit)
    p = sub.add_parser("build", help="build the native CPU kernels now (else: on first use)",
                       description="Build the native CPU kernels (C/C++, with the system "
                       "compiler) into the user cache directory ($LEARNACT_CACHE, default "
                       "~/.cache/learnact), shared by every virtual environment; without a flag, "
                       "for every installed framework.")
    p.add_argument("--torch", action="store_true", help="the PyTorch kernels")
    p.add_argument("--jax", action="store_true", help="the JAX (XLA FFI) kernels")
    p.set_defaults(func=_cmd_build)
    bench = sub.add_parser("bench", help="benchmarks").add_subparsers(dest="bench", required=True)
    _add_bench_ops(bench)
    try:
        from .experiments import cli as exp_cli
    except ImportError:  # experiments need the [exp] extra
        exp_cli = None
    if exp_cli is not None:
        exp_cli.add_subcommands(bench)
        train = sub.add_parser("train", help="trainers (torchrun-ready)").add_subparsers(
            dest="train", required=True)
        exp_cli.add_train_subcommands(train)
    from .viz import cli as viz_cli  # argparse wiring only; matplotlib loads when a figure is drawn

    viz_cli.add_plot_subcommands(sub)
    viz_cli.add_atlas_subcommands(sub)
    _fill_help(parser)
    return parser


# help for the arguments that several commands share, by destination name; the command's
# preset supplies a default of None (tests/test_cli_help.py: every argument has help)
_HELP = {
    "batch": "batch size", "batch_size": "batch size", "block_size": "context length (tokens)",
    "check_sync": "check after each epoch that every rank holds the same parameters (DDP)",
    "compile": "torch.compile the model", "data_dir": "folder of the data files",
    "depth": "number of layers", "derivative_weight": "weight of the f' term of the fit",
    "device": "cpu, cuda or cuda:N (checked before anything runs)",
    "dtype": "input dtype of the timed ops", "epochs": "training epochs",
    "eval_every": "evaluate every this many steps", "gmm_steps": "training steps of the GMM task",
    "grad_accum": "gradient accumulation steps per optimiser step",
    "hi": "right end of the plotted input range", "kind": "what to draw",
    "latent": "latent channels of the autoencoder", "learnable": "list learnable families only",
    "lo": "left end of the plotted input range", "loss": "reconstruction loss",
    "lr": "peak learning rate", "max_chars": "use at most this many characters of the corpus",
    "max_units": "draw at most this many units per layer", "n_embd": "embedding width",
    "n_head": "attention heads", "n_layer": "transformer blocks",
    "optimizer": "optimiser (activation parameters get their own group, no weight decay)",
    "out": "output folder (new, empty, or a learnact run of the same task)",
    "port": "TCP port to listen on (loopback unless --host)",
    "preset": "named configuration; the other arguments override its values",
    "quiet": "no progress bars", "reg_steps": "training steps of the regression task",
    "res": "image resolution (pixels per side)",
    "resume": "continue the marked learnact run in this folder from its checkpoint",
    "seed": "random seed", "seeds": "comma-separated seeds, e.g. 0,1,2",
    "specs": "learnact specs, e.g. hermite:degree=8 tropical",
    "steps": "optimiser steps", "task": "which task(s) to run",
    "test_limit": "evaluate on at most this many test images",
    "threads": "torch CPU threads", "vocab_size": "vocabulary size (byte-pair merges)",
    "width": "hidden width",
}


def _fill_help(parser: argparse.ArgumentParser) -> None:
    """Give every argument without a help text the shared one (with its default)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                _fill_help(sub)
        elif not action.help and action.dest in _HELP:
            text = _HELP[action.dest]
            if action.option_strings and not isinstance(action.const, bool):
                text += (" (default: the preset's)" if action.default is None
                         else " (default: %(default)s)")
            action.help = text


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    args.command_line = "learnact " + shlex.join(argv)  # what results pages record
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    # OSError: a busy port, an unwritable path; ImportError: a missing extra
    except (ValueError, TypeError, OSError, ImportError) as exc:
        print(f"learnact: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        opened = sys.modules.get("learnact.experiments.common")
        where = opened.OPENED[-1] if opened is not None and opened.OPENED else None
        hint = (f"; the finished runs and the last checkpoint are kept: add --resume {where} "
                "to continue") if where else ""
        print(f"learnact: interrupted{hint}", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
