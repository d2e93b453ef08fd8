#!/usr/bin/env python3
"""Exact E[f^2], E[f'^2] and V'(1) per family, init and degree (markdown, for the README).

V(q) = E[f(sqrt(q) z)^2] is the variance map of a plain (un-normalised) layer; unit moments
make q = 1 a fixed point, and V'(1) <= 1 makes it attracting. Run: python benchmarks/moments_table.py
"""

from __future__ import annotations

import learnact

ROWS = [
    ("hermite", "unit", (1, 2, 3, 4, 8, 16, 32)),
    ("hermite", "paper", (2, 4, 8, 16)),
    ("hermite", "stable", (2, 3, 4, 8, 16, 32)),
    ("fourier", "unit", (1, 2, 4, 8)),
    ("fourier", "paper", (2, 5, 8)),
    ("tropical", "unit", (2, 4, 8, 16)),
    ("tropical", "paper", (2, 5, 8)),
    ("tropical_rational", "unit", (2, 3, 4, 5)),
]


def main() -> None:
    print("| family | init | degree | E[f²] | E[f'²] | V'(1) |")
    print("|---|---|---:|---:|---:|---:|")
    for fam, init, degrees in ROWS:
        for d in degrees:
            m = learnact.moments(learnact.create(f"{fam}:degree={d},init={init}"))
            print(f"| {fam} | {init} | {d} | {m.second:.4f} | {m.deriv_second:.4f} | {m.vprime:.4f} |")
    for name in ("relu", "gelu", "silu", "tanh", "sin"):
        m = learnact.moments(learnact.create(name))
        print(f"| {name} | – | – | {m.second:.4f} | {m.deriv_second:.4f} | {m.vprime:.4f} |")


if __name__ == "__main__":
    main()
