"""``learnact plot shapes|sampling|atlas`` and ``learnact atlas serve`` (argparse wiring).

Inputs are run directories written by the experiments (``models/*.pt`` saved by
:func:`learnact.experiments.common.save_model`, ``results.json`` with Recorder states when
the run used ``--record``) or a single saved model file.
"""

from __future__ import annotations

import argparse
import fnmatch
from pathlib import Path

from ..experiments.args import bounded_int, finite_float, port, positive_int

_resolution = bounded_int(8, 1024)  # grid points per axis of a decision-boundary figure

__all__ = ["add_plot_subcommands", "add_atlas_subcommands"]


def _models(source: str, pattern: str | None) -> list[Path]:
    p = Path(source)
    if p.is_file():
        return [p]
    if not p.is_dir():
        raise FileNotFoundError(f"{source}: no such run directory or model file")
    files = sorted((p / "models").glob("*.pt"))
    if pattern:
        files = [f for f in files if fnmatch.fnmatch(f.stem, pattern)]
    if not files:
        raise FileNotFoundError(f"{source}: no saved models (models/*.pt"
                                f"{' matching ' + pattern if pattern else ''})")
    return files


def _out_dir(args: argparse.Namespace, source: str) -> Path:
    out = Path(args.out) if args.out else (Path(source) if Path(source).is_dir()
                                           else Path(source).parent) / "figures"
    out.mkdir(parents=True, exist_ok=True)
    return out


def _cmd_shapes(args: argparse.Namespace) -> int:
    from ..experiments.common import load_model
    from .shapes import plot_shapes

    out = _out_dir(args, args.source)
    for f in _models(args.source, args.match):
        model, payload = load_model(f)
        init, _ = load_model(f, "init") if payload.get("init_state_dict") else (None, None)
        path = plot_shapes(model, out / f"shapes-{f.stem}.png", init=init,
                           reference=args.reference or None, lo=args.lo, hi=args.hi,
                           title=f"{payload['kwargs'].get('spec', f.stem)}: learned (colour) vs "
                                 f"init (dashed)")
        print(path)
    return 0


def _cmd_sampling(args: argparse.Namespace) -> int:
    from ..experiments.common import load_model, model_filename
    from .sampling import plot_sampling

    from ..experiments.schema import load_autoencoder_results

    run = Path(args.source)
    results, _ = load_autoencoder_results(run, task_error=(
        f"{run}: no recorder state in results.json (a {{task}} run: histograms come from "
        f"`learnact bench autoencoder` or `bench sampling`; train with --record)"))
    recorded = [r for r in results["runs"] if r.get("recorder")]
    if not recorded:
        raise ValueError(f"{run}: no recorder state in results.json (train with --record)")
    out = _out_dir(args, args.source)
    models = {p.stem: p for p in (run / "models").glob("*.pt")} if (run / "models").is_dir() else {}
    kinds = ["inputs", "grads"] if args.kind == "both" else [args.kind]
    for r in recorded:
        if args.match and not fnmatch.fnmatch(r["act"], args.match):
            continue
        tags = {"s": r["seed"], **{k: r[key] for k, key in (("w", "width"), ("lr", "lr"))
                                   if r.get(key) is not None}}
        stem = Path(model_filename(r["act"], **tags)).stem
        shapes = None
        if stem in models:
            model, _ = load_model(models[stem])
            shapes = dict(model.named_modules())
        for kind in kinds:
            path = plot_sampling(r["recorder"], out / f"sampling-{kind}-{stem}.png", kind=kind,
                                 shapes=shapes, title=f"{r['act']} (seed {r['seed']})")
            print(path)
    return 0


def _cmd_atlas(args: argparse.Namespace) -> int:
    from ..experiments.common import load_model
    from .atlas import atlas, plot_atlas

    out = _out_dir(args, args.source)
    for f in _models(args.source, args.match):
        model, payload = load_model(f)
        try:
            layers = atlas(model, args.lo, args.hi, args.res)
        except TypeError as e:
            print(f"skip {f.name}: {e}")
            continue
        path = plot_atlas(layers, out / f"atlas-{f.stem}.png", lo=args.lo, hi=args.hi,
                          max_units=args.max_units,
                          title=f"{payload['kwargs'].get('spec', f.stem)} on [{args.lo:g}, "
                                f"{args.hi:g}]²")
        print(path)
    return 0


def _window(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be WIDTHxHEIGHT, got {text!r}") from None
    if not (200 <= w <= 4000 and 200 <= h <= 8000):
        raise argparse.ArgumentTypeError(f"must be in [200, 4000] x [200, 8000], got {text!r}")
    return w, h


def _cmd_serve(args: argparse.Namespace) -> int:
    from .atlas_server import require_browser, screenshot, serve

    if args.screenshot:
        require_browser()  # before the server starts
        width, height = args.window
        print(screenshot(args.screenshot, width, height, query=args.query or "",
                         element=args.element))
        return 0
    if args.query or args.element:
        raise ValueError("--query and --element: only with --screenshot (in the browser, the page's "
                         "address holds its state)")
    serve(args.host, args.port)
    return 0


def add_plot_subcommands(sub: argparse._SubParsersAction) -> None:
    plot = sub.add_parser("plot", help="figures from a run directory or a saved model"
                          ).add_subparsers(dest="plot", required=True)
    p = plot.add_parser("shapes", help="learned f and f' per activation (init dashed)")
    p.add_argument("source", help="run directory (its models/*.pt) or one saved model .pt")
    p.add_argument("--match", help="glob on model file names, e.g. 'hermite*'")
    p.add_argument("--lo", type=finite_float, default=-4.0)
    p.add_argument("--hi", type=finite_float, default=4.0)
    p.add_argument("--reference", default="gelu", help="reference activation ('' for none)")
    p.add_argument("--out", help="output directory (default: <run>/figures)")
    p.set_defaults(func=_cmd_shapes)
    p = plot.add_parser("sampling", help="where activations were sampled / loss derivatives")
    p.add_argument("source", help="run directory trained with --record")
    p.add_argument("--kind", choices=["inputs", "grads", "both"], default="both")
    p.add_argument("--match", help="glob on activation specs")
    p.add_argument("--out")
    p.set_defaults(func=_cmd_sampling)
    p = plot.add_parser("atlas", help="every unit of every layer over the 2-D input plane")
    p.add_argument("source", help="run directory (toy2d) or one saved model .pt")
    p.add_argument("--match", help="glob on model file names, e.g. '*task-reg*'")
    p.add_argument("--lo", type=finite_float, default=-2.0)
    p.add_argument("--hi", type=finite_float, default=2.0)
    p.add_argument("--res", type=_resolution, default=96)
    p.add_argument("--max-units", type=positive_int, default=12)
    p.add_argument("--out")
    p.set_defaults(func=_cmd_atlas)


def add_atlas_subcommands(sub: argparse._SubParsersAction) -> None:
    atlas = sub.add_parser("atlas", help="interactive atlas in the browser"
                           ).add_subparsers(dest="atlas", required=True)
    p = atlas.add_parser("serve", help="local web server with sliders (127.0.0.1 only unless "
                                       "--host is given)")
    p.add_argument("--host", default=None, help="bind address; giving one also admits "
                                                "non-loopback clients")
    p.add_argument("--port", type=port, default=8765)
    p.add_argument("--screenshot", help="open the page in headless Chromium, save a PNG, exit")
    p.add_argument("--query", help="with --screenshot: the page state as its address shows it, "
                                   "e.g. 'w=3,3&act0=hermite&data=gmm&steps=200'")
    p.add_argument("--window", type=_window, default=(900, 1080),
                   help="with --screenshot: browser window WIDTHxHEIGHT in pixels")
    p.add_argument("--element", help="with --screenshot: capture only the page element with "
                                     "this id (layer0, layer1, ..., outsec, deriv)")
    p.set_defaults(func=_cmd_serve)
