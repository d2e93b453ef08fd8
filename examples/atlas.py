"""The 2-D atlas: every unit of every layer of a small network drawn over the input plane,
before and after training on the sine-mixture regression, plus d(unit)/d(parameter).

    pip install 'learnact[plots]'
    python examples/atlas.py --out atlas-example          # writes three PNGs into that folder
    learnact atlas serve                                  # the interactive page (then open the URL)

The page shows the same views live (sliders for every parameter, training in the browser);
``learnact atlas serve --screenshot P --query "w=8,8&act0=hermite&act1=ditac&data=reg&steps=400"``
saves a view of it without a browser window.
"""

from __future__ import annotations

import argparse
import copy
from pathlib import Path

import numpy as np
import torch

import learnact
from learnact.data import sine_mixture
from learnact.viz.atlas import atlas, parameter_derivative, plot_atlas


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="atlas-example", help="output folder for the PNGs")
    ap.add_argument("--steps", type=int, default=800, help="Adam steps on the regression task")
    args = ap.parse_args(argv)
    if args.steps < 0:
        ap.error("--steps must be >= 0")
    import matplotlib  # noqa: F401  (fail before training if plotting is unavailable)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(2, 8), learnact.create("hermite:degree=6,channels=8,channel_dim=-1"),
        torch.nn.Linear(8, 8), learnact.create("ditac:channels=8,channel_dim=-1"),
        torch.nn.Linear(8, 1))
    at_init = copy.deepcopy(model)
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    rng = np.random.default_rng(0)
    for _ in range(args.steps):
        x = rng.uniform(-1, 1, size=(128, 2)).astype(np.float32)
        y = torch.from_numpy(sine_mixture(x)).float()
        loss = torch.nn.functional.mse_loss(model(torch.from_numpy(x)), y) + learnact.regularization(model)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    print(f"trained {args.steps} steps, last loss {loss.item():.4f}")

    plot_atlas(atlas(at_init, lo=-1, hi=1, res=64), out / "atlas-init.png", lo=-1, hi=1, title="at init")
    plot_atlas(atlas(model, lo=-1, hi=1, res=64), out / "atlas-trained.png", lo=-1, hi=1,
               title=f"after {args.steps} steps")
    # how the network's output moves with theta[0, 4] of the DiTAC layer (module 3)
    d = parameter_derivative(model, layer=4, unit=0, param="3.theta", index=(0, 4), lo=-1, hi=1, res=64)
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(3.6, 3.2), dpi=100)
    lim = float(np.abs(d).max()) or 1.0
    im = ax.imshow(d, origin="lower", extent=(-1, 1, -1, 1), cmap="RdBu_r", vmin=-lim, vmax=lim)
    fig.colorbar(im, ax=ax)
    ax.set_title("d out / d theta[0, 4]", fontsize=9)
    fig.savefig(out / "atlas-derivative.png", bbox_inches="tight")
    plt.close(fig)
    for name in ("atlas-init.png", "atlas-trained.png", "atlas-derivative.png"):
        print("wrote", out / name)


if __name__ == "__main__":
    main()
