"""A network with polynomial activations is a multivariate polynomial of its input.

    poly = learnact.expand(nn.Sequential(nn.Linear(2, 8), learnact.Hermite(3), nn.Linear(8, 1)))
    poly(x)                 # (N, 2) -> (N, 1), equal to the network in float64
    print(poly)             # terms: exponents -> coefficient, per output
    poly.to_sympy()         # if sympy is installed

Supported layers: ``nn.Linear``, ``nn.Identity``, ``nn.Flatten`` on (N, F) inputs, and pure
polynomial :class:`~learnact.Hermite` (shared or per channel along the last dimension, no
linear tails). Polynomials are sparse dicts {exponent tuple: coefficient} in float64, built by
the same three-term recurrence as the op (h_{k+1} = (y h_k - h_{k-1})/(k+1)), so the expansion
is exact up to float64 rounding. Sizes grow fast (degree = product of the Hermite degrees);
this is for small stacks, e.g. the 2-D toy networks.
"""

from __future__ import annotations

from collections import defaultdict

import torch
from torch import Tensor, nn

from .modules.hermite import Hermite

__all__ = ["expand", "Polynomial"]

Poly = dict[tuple[int, ...], float]


def _add(a: Poly, b: Poly, s: float = 1.0) -> Poly:
    out = dict(a)
    for k, v in b.items():
        out[k] = out.get(k, 0.0) + s * v
    return out


def _scale(a: Poly, s: float) -> Poly:
    return {k: v * s for k, v in a.items()}


def _mul(a: Poly, b: Poly) -> Poly:
    out: dict[tuple[int, ...], float] = defaultdict(float)
    for ka, va in a.items():
        for kb, vb in b.items():
            out[tuple(i + j for i, j in zip(ka, kb))] += va * vb
    return dict(out)


class Polynomial:
    """Outputs as multivariate polynomials of the n inputs; callable on (N, n) tensors."""

    def __init__(self, polys: list[Poly], n_inputs: int) -> None:
        self.polys = [{k: v for k, v in p.items() if v != 0.0} for p in polys]
        self.n_inputs = n_inputs

    @property
    def degree(self) -> int:
        return max((sum(k) for p in self.polys for k in p), default=0)

    def terms(self, output: int = 0) -> list[tuple[tuple[int, ...], float]]:
        """(exponents, coefficient) of one output, highest total degree first."""
        return sorted(self.polys[output].items(), key=lambda kv: (-sum(kv[0]), kv[0]))

    def __call__(self, x: Tensor) -> Tensor:
        if x.ndim != 2 or x.shape[1] != self.n_inputs:
            raise ValueError(f"expected an (N, {self.n_inputs}) tensor, got {tuple(x.shape)}")
        xd = x.to(torch.float64)
        cols = []
        for p in self.polys:
            acc = torch.zeros(x.shape[0], dtype=torch.float64, device=x.device)
            for exps, c in p.items():
                term = torch.full_like(acc, c)
                for i, e in enumerate(exps):
                    if e:
                        term = term * xd[:, i] ** e
                acc = acc + term
            cols.append(acc)
        return torch.stack(cols, 1)

    def __repr__(self) -> str:
        lines = [f"Polynomial({self.n_inputs} inputs -> {len(self.polys)} outputs, "
                 f"degree {self.degree})"]
        for o in range(len(self.polys)):
            body = " + ".join(f"{c:.6g}*" + "*".join(f"x{i}^{e}" for i, e in enumerate(k) if e)
                              if any(k) else f"{c:.6g}" for k, c in self.terms(o)[:12])
            more = len(self.polys[o]) - 12
            lines.append(f"  y{o} = {body}" + (f" + ... ({more} more terms)" if more > 0 else ""))
        return "\n".join(lines)

    def to_sympy(self):
        """The outputs as sympy expressions in x0..x{n-1} (needs sympy)."""
        import sympy

        xs = sympy.symbols(f"x0:{self.n_inputs}")
        return [sum(sympy.Float(c) * sympy.prod([xs[i] ** e for i, e in enumerate(k)])
                    for k, c in p.items()) for p in self.polys]


def _hermite(y: Poly, coeffs: list[float]) -> Poly:
    zero_key = tuple(0 for _ in next(iter(y)))
    h_prev, h = {zero_key: 1.0}, dict(y)
    out = _scale(h_prev, coeffs[0])
    if len(coeffs) > 1:
        out = _add(out, h, coeffs[1])
    for k in range(1, len(coeffs) - 1):
        h_prev, h = h, _scale(_add(_mul(y, h), h_prev, -1.0), 1.0 / (k + 1))
        out = _add(out, h, coeffs[k + 1])
    return out


def expand(model: nn.Module) -> Polynomial:
    """The polynomial computed by a small Linear/Hermite stack (see the module docstring)."""
    layers = list(model) if isinstance(model, nn.Sequential) else [model]
    first = next((m for m in layers if isinstance(m, nn.Linear)), None)
    if first is None:
        raise ValueError("expand needs an nn.Linear to know the number of inputs")
    n = first.in_features
    polys: list[Poly] = [{tuple(int(i == j) for i in range(n)): 1.0} for j in range(n)]
    for m in layers:
        if isinstance(m, (nn.Identity, nn.Flatten)):
            continue
        if isinstance(m, nn.Linear):
            w = m.weight.detach().double().cpu().tolist()
            b = m.bias.detach().double().cpu().tolist() if m.bias is not None else [0.0] * len(w)
            new = []
            for j, row in enumerate(w):
                acc: Poly = {tuple(0 for _ in range(n)): b[j]}
                for i, wi in enumerate(row):
                    if wi:
                        acc = _add(acc, polys[i], wi)
                new.append(acc)
            polys = new
        elif isinstance(m, Hermite):
            if m.tails != "polynomial":
                raise ValueError("expand needs pure polynomial Hermite (tails='polynomial')")
            c = m.coeffs.detach().double().cpu()
            if m.channels is not None and m.channel_dim not in (-1, 1):
                raise ValueError("expand supports per-channel Hermite on (N, C) inputs only")
            polys = [_hermite(p, (c[j] if c.ndim == 2 else c).tolist()) for j, p in enumerate(polys)]
        else:
            raise ValueError(f"expand cannot expand {type(m).__name__}: only Linear, Hermite "
                             "(pure polynomial), Identity and Flatten")
    return Polynomial(polys, n)



