"""Run by tests/frontends/test_sharding.py in a process of its own (4 host devices must be set
before JAX starts): every family kernel under ``jax.jit`` on a (2, 2) device mesh, inside
``shard_map``, and Keras 3's DataParallel and ModelParallel. Writes one JSON line per case to
the file named by argv[1]; the test asserts on them."""

from __future__ import annotations

import json
import os
import re
import sys

os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"
os.environ["KERAS_BACKEND"] = "jax"

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from flax import nnx  # noqa: E402
from jax.sharding import NamedSharding  # noqa: E402
from jax.sharding import PartitionSpec as P  # noqa: E402

import learnact.jax as lj  # noqa: E402
from learnact import xla_native  # noqa: E402

SHAPE = (8, 16, 32)
# (x's sharding, channels or None): shared parameters with x sharded on one and on two axes;
# per channel (channels last) with the channel dimension sharded (tensor parallel), and not
CASES = [(P("dp"), None), (P(("dp", "tp")), None), (P("dp", None, "tp"), 32),
         (P(None, "dp", None), 32)]


# DiTAC's kernels (xla_native/cpab.cc), exact and by the lookup table
DITAC = ["ditac", "ditac:lut=256"]


def _relative(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / (1.0 + np.max(np.abs(b))))


def _calls(hlo: str) -> list[str]:
    """The operand shapes of the learnact custom calls in compiled HLO text."""
    return [m.group(1) for m in re.finditer(r"= \(?(f32\[[0-9,]*\])[^\n]*custom_call_target=\"learnact_", hlo)]


def jit_cases(out) -> None:
    mesh = jax.make_mesh((2, 2), ("dp", "tp"))
    rng = np.random.default_rng(0)
    x0 = rng.standard_normal(SHAPE).astype(np.float32)
    g0 = rng.standard_normal(SHAPE).astype(np.float32)
    for name in [*sorted(xla_native.FAMILIES), *DITAC]:
        for spec, channels in CASES:
            kw = {} if channels is None else {"channels": channels, "channel_dim": -1}
            act = lj.create(name, rngs=nnx.Rngs(0), **kw)
            gdef, state = nnx.split(act)

            def loss(state, x, g, gdef=gdef):
                return jnp.sum(nnx.merge(gdef, state)(x) * g)

            f = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))
            want = f(state, x0, g0)
            xs = jax.device_put(x0, NamedSharding(mesh, spec))
            gs = jax.device_put(g0, NamedSharding(mesh, spec))
            got = f(state, xs, gs)
            hlo = f.lower(state, xs, gs).compile().as_text()
            local = NamedSharding(mesh, spec).shard_shape(SHAPE)
            out.write(json.dumps({
                "case": f"jit {name} {spec} channels={channels}",
                "error": max(_relative(a, b) for a, b in zip(jax.tree.leaves(got),
                                                              jax.tree.leaves(want))),
                "all_gather": "all-gather" in hlo,
                "calls": _calls(hlo),
                "local": "f32[" + ",".join(map(str, local)) + "]",
            }) + "\n")


def shard_map_case(out) -> None:
    mesh = jax.make_mesh((4,), ("d",))
    x0 = np.random.default_rng(1).standard_normal(SHAPE).astype(np.float32)
    act = lj.create("hermite:degree=6", rngs=nnx.Rngs(0))
    want = act(x0)
    f = jax.jit(jax.shard_map(lambda x: act(x), mesh=mesh, in_specs=P("d"), out_specs=P("d")))
    xs = jax.device_put(x0, NamedSharding(mesh, P("d")))
    out.write(json.dumps({"case": "shard_map hermite", "error": _relative(f(xs), want),
                          "calls": _calls(f.lower(xs).compile().as_text())}) + "\n")


def keras_cases(out) -> None:
    import keras

    import learnact.keras as lk

    def train(distribution):
        keras.distribution.set_distribution(distribution)
        try:
            keras.utils.set_random_seed(0)
            act = lk.create("tropical:degree=4", channels=16, channel_dim=-1)
            model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, name="up"),
                                      act, keras.layers.Dense(1, name="down")])
            model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse")
            rng = np.random.default_rng(0)
            x = rng.standard_normal((64, 8)).astype("float32")
            y = rng.standard_normal((64, 1)).astype("float32")
            hist = model.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
            specs = {v.path.split("/")[-1]: str(getattr(v.value.sharding, "spec", None))
                     for v in act.weights}
            return hist.history["loss"], model.get_weights(), specs
        finally:
            keras.distribution.set_distribution(None)

    losses, weights, _ = train(None)
    mesh = keras.distribution.DeviceMesh((2, 2), ("batch", "model"), jax.devices())
    layout = keras.distribution.LayoutMap(mesh)
    layout["up/kernel"] = (None, "model")
    layout[".*coeffs"] = ("model", None)  # the activation's rows: one per channel
    layout[".*scale"] = ("model",)
    layout[".*offset"] = ("model",)
    for label, dist in (("DataParallel", keras.distribution.DataParallel(devices=jax.devices())),
                        ("ModelParallel", keras.distribution.ModelParallel(
                            layout_map=layout, batch_dim_name="batch"))):
        got_losses, got_weights, specs = train(dist)
        out.write(json.dumps({
            "case": f"keras {label}", "specs": specs,
            "loss_error": _relative(got_losses, losses),
            "error": max(_relative(a, b) for a, b in zip(got_weights, weights)),
        }) + "\n")


if __name__ == "__main__":
    assert len(jax.devices()) == 4 and xla_native.available()
    with open(sys.argv[1], "w") as fh:
        jit_cases(fh)
        shard_map_case(fh)
        keras_cases(fh)
