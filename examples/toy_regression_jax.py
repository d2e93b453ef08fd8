"""The 2-D sine-mixture regression (the DiTAC paper's Fig. 1 task, as `learnact bench toy2d
--task regression`) in JAX: Flax NNX + optax, learnable activations against GELU.

MLP 2-50-act-1 (per-channel activation parameters), PyTorch's default Linear init, Adam at a
constant 5e-3, batches of 98 fresh points from U[-1, 1]^2 every step, 6000 steps; test MSE and
R^2 on the 50 x 50 grid. No torch is imported.

    python examples/toy_regression_jax.py                       # 9 activations x 3 seeds
    python examples/toy_regression_jax.py --steps 200 --seeds 0 --acts gelu hermite
"""

from __future__ import annotations

import math
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

import learnact.jax as lj
from learnact.data import sine_mixture
from learnact.data.toy import grid

from _toy import run  # examples/_toy.py (this folder is on sys.path when run as a script)



def torch_like_linear(fan_in: int, fan_out: int, rngs: nnx.Rngs) -> nnx.Linear:
    """nn.Linear's default init: weight and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    bound = 1.0 / math.sqrt(fan_in)
    return nnx.Linear(fan_in, fan_out, rngs=rngs,
                      kernel_init=nnx.initializers.variance_scaling(1 / 3, "fan_in", "uniform"),
                      bias_init=lambda key, shape, dtype=jnp.float32: jax.random.uniform(
                          key, shape, dtype, -bound, bound))


class MLP(nnx.Module):
    def __init__(self, act: str, width: int, rngs: nnx.Rngs) -> None:
        self.inp = torch_like_linear(2, width, rngs)
        learnable = act.split(":")[0] in lj.available(learnable=True)
        self.act = lj.create(act, channels=width, rngs=rngs) if learnable else lj.create(act)
        self.out = torch_like_linear(width, 1, rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.out(self.act(self.inp(x)))


def train(act: str, seed: int, steps: int, lr: float, batch: int, width: int) -> dict:
    model = MLP(act, width, nnx.Rngs(seed))
    opt = nnx.Optimizer(model, optax.adam(lr), wrt=nnx.Param)

    @nnx.jit
    def step(model, opt, x, y):
        # + DiTAC's prior (lambda theta^T P theta; 0 without a DiTAC), as PyTorch's toy2d
        loss, grads = nnx.value_and_grad(
            lambda m: jnp.mean((m(x) - y) ** 2) + lj.regularization(m))(model)
        opt.update(model, grads)
        return loss

    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    for _ in range(steps):
        x = rng.uniform(-1, 1, size=(batch, 2)).astype(np.float32)
        loss = step(model, opt, x, sine_mixture(x))
    jax.block_until_ready(loss)
    xt = grid(50)
    yt = sine_mixture(xt)
    mse = float(jnp.mean((model(xt) - yt) ** 2))
    return {"act": act, "seed": seed, "test_mse": mse, "r2": 1.0 - mse / float(yt.var()),
            "seconds": time.perf_counter() - t0}


def main(argv: list[str] | None = None) -> int:
    return run(__doc__, lambda spec: lj.create(spec, rngs=nnx.Rngs(0)), train,
               f"jax {jax.__version__}, Flax NNX + optax", argv)


if __name__ == "__main__":
    raise SystemExit(main())
