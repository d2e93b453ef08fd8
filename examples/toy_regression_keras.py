"""The 2-D sine-mixture regression (the DiTAC paper's Fig. 1 task, as `learnact bench toy2d
--task regression`) in Keras 3 with ``model.fit``: learnable activations against GELU, on any
backend (KERAS_BACKEND=tensorflow | jax | torch).

MLP 2-50-act-1 (per-channel activation parameters), PyTorch's default Linear init, Adam at a
constant 5e-3, batches of 98 fresh points from U[-1, 1]^2 (one pass over steps x 98 points),
6000 steps; test MSE and R^2 on the 50 x 50 grid.

    KERAS_BACKEND=tensorflow python examples/toy_regression_keras.py
    KERAS_BACKEND=tensorflow python examples/toy_regression_keras.py --steps 200 --seeds 0
"""

from __future__ import annotations

import math
import os
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import learnact.keras as lk  # noqa: E402
from learnact.data import sine_mixture  # noqa: E402
from learnact.data.toy import grid  # noqa: E402

from _toy import run  # noqa: E402  (examples/_toy.py)



def torch_like_dense(fan_in: int, units: int, seed: int) -> keras.layers.Dense:
    """nn.Linear's default init: weight and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    bound = 1.0 / math.sqrt(fan_in)
    return keras.layers.Dense(
        units, kernel_initializer=keras.initializers.VarianceScaling(
            1 / 3, "fan_in", "uniform", seed=seed),
        bias_initializer=keras.initializers.RandomUniform(-bound, bound, seed=seed + 1))


def build(act: str, width: int, seed: int) -> keras.Model:
    learnable = act.split(":")[0] in lk.available(learnable=True)
    return keras.Sequential([
        keras.Input((2,)), torch_like_dense(2, width, 2 * seed),
        lk.create(act, channels=width, seed=seed) if learnable else lk.create(act),
        torch_like_dense(width, 1, 2 * seed + 100)])


def train(act: str, seed: int, steps: int, lr: float, batch: int, width: int) -> dict:
    keras.utils.set_random_seed(seed)
    model = build(act, width, seed)
    model.compile(optimizer=keras.optimizers.Adam(lr), loss="mse")
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, size=(steps * batch, 2)).astype(np.float32)
    t0 = time.perf_counter()
    model.fit(x, sine_mixture(x), batch_size=batch, epochs=1, shuffle=False, verbose=0)
    xt = grid(50)
    yt = sine_mixture(xt)
    mse = float(np.mean((model.predict(xt, verbose=0) - yt) ** 2))
    return {"act": act, "seed": seed, "test_mse": mse, "r2": 1.0 - mse / float(yt.var()),
            "seconds": time.perf_counter() - t0}


def main(argv: list[str] | None = None) -> int:
    return run(__doc__, lk.create, train, f"keras {keras.__version__} on {keras.backend.backend()}", argv)


if __name__ == "__main__":
    raise SystemExit(main())
