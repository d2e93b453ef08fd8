#!/usr/bin/env python3
"""Fit errors per family, degree and target on N(0,1) (max errors over [-3, 3]); markdown.

    python benchmarks/fit_table.py
"""

from __future__ import annotations

import learnact

ROWS = ([(f"hermite:degree={d}", "gelu") for d in (3, 4, 6, 8, 12, 16)]
        + [("hermite:degree=8", t) for t in ("silu", "tanh", "relu")]
        + [(f"fourier:degree={d}", "gelu") for d in (2, 4, 8)]
        + [(f"tropical:degree={d}", "gelu") for d in (2, 4, 8, 16)]
        + [(f"tropical_rational:degree={d}", "gelu") for d in (2, 3, 4, 5)])


def main() -> None:
    print("| activation | target | method | max \\|f−t\\| on [−3,3] | max \\|f′−t′\\| | RMS f (N(0,1)) | RMS f′ | ms |")
    print("|---|---|---|---:|---:|---:|---:|---:|")
    for spec, target in ROWS:
        rep = learnact.fit(learnact.create(spec), target)
        method = (rep.method.replace("closed-form weighted least squares (QR)", "closed form")
                  .replace(", frequencies held", "").replace(" on all (frequencies too)", "")
                  .replace("closed-form scale/offset", "scale/offset").replace("lbfgs", "L-BFGS"))
        print(f"| `{spec}` | {target} | {method} | {rep.max_error:.2e} | {rep.max_deriv_error:.2e} | "
              f"{rep.rms_error:.2e} | {rep.rms_deriv_error:.2e} | {rep.seconds * 1e3:.0f} |")


if __name__ == "__main__":
    main()
