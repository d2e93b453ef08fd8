"""Fit learnable activations to a target activation, in closed form where the family is linear
in its parameters (Hermite, Fourier) and by a short deterministic L-BFGS otherwise.

    python examples/fitting.py                          # every learnable family -> GELU
    python examples/fitting.py --target silu --plot fit.png

Prints each fit's errors (value and derivative, max on [-3, 3], RMS under N(0, 1)); with
``--plot`` (needs matplotlib: ``pip install 'learnact[plots]'``) draws the first fit.
"""

from __future__ import annotations

import argparse

import learnact

SPECS = ["hermite:degree=8", "hermite:degree=16", "fourier:degree=4", "tropical:degree=8",
         "tropical_rational:degree=4", "rational", "selu_variation", "ditac"]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", default="gelu", help="registry name of the target activation")
    ap.add_argument("--specs", nargs="+", default=SPECS, help="activation specs to fit")
    ap.add_argument("--plot", default=None, help="draw the first fit into this PNG")
    args = ap.parse_args(argv)
    if args.plot:  # fail before any work if plotting is unavailable
        import matplotlib  # noqa: F401
    acts = [learnact.create(spec) for spec in args.specs]  # bad specs fail before fitting
    reports = []
    for spec, act in zip(args.specs, acts):
        report = learnact.fit(act, args.target)
        reports.append(report)
        print(f"{spec:28s} -> {args.target}: max|f-t| {report.max_error:.2e}, "
              f"max|f'-t'| {report.max_deriv_error:.2e}")
    if args.plot:
        from learnact.viz.fit import plot_fit
        plot_fit(reports[0], args.plot)
        print("wrote", args.plot)


if __name__ == "__main__":
    main()
