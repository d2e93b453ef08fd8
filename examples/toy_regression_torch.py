"""The 2-D sine-mixture regression (the DiTAC paper's Fig. 1 task) in plain PyTorch: a short
training loop a user can copy, with DiTAC's prior in the loss, learnable activations against
GELU. The same task as `learnact bench toy2d --task regression` and as the JAX and Keras
examples beside this file.

MLP 2-50-act-1 (per-channel activation parameters), Adam at a constant 5e-3, batches of 98
fresh points from U[-1, 1]^2 every step, 6000 steps; test MSE and R^2 on the 50 x 50 grid.

    python examples/toy_regression_torch.py --acts ditac gelu          # DiTAC against GELU
    python examples/toy_regression_torch.py --steps 200 --seeds 0 --acts ditac:lut=2048
"""

from __future__ import annotations

import time

import numpy as np
import torch

import learnact
from learnact.data import sine_mixture
from learnact.data.toy import grid

from _toy import run  # examples/_toy.py (this folder is on sys.path when run as a script)


def make_act(spec: str, width: int) -> torch.nn.Module:
    learnable = spec.split(":")[0] in learnact.available(learnable=True)
    return learnact.create(spec, channels=width, channel_dim=-1) if learnable else learnact.create(spec)


def train(act: str, seed: int, steps: int, lr: float, batch: int, width: int) -> dict:
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(2, width), make_act(act, width), torch.nn.Linear(width, 1))
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    for _ in range(steps):
        x = rng.uniform(-1, 1, size=(batch, 2)).astype(np.float32)
        xb, yb = torch.from_numpy(x), torch.from_numpy(sine_mixture(x)).float()
        # the task loss + DiTAC's smoothness prior (lambda theta^T P theta; 0 for other families)
        loss = torch.nn.functional.mse_loss(model(xb), yb) + learnact.regularization(model)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    xt = grid(50)
    yt = sine_mixture(xt)
    with torch.no_grad():
        mse = float(((model(torch.from_numpy(xt).float()).numpy() - yt) ** 2).mean())
    return {"act": act, "seed": seed, "test_mse": mse, "r2": 1.0 - mse / float(yt.var()),
            "seconds": time.perf_counter() - t0}


def main(argv: list[str] | None = None) -> int:
    return run(__doc__, learnact.create, train, f"torch {torch.__version__}, plain training loop", argv)


if __name__ == "__main__":
    raise SystemExit(main())
