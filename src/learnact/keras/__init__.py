"""learnact for Keras 3: layers written with ``keras.ops`` only, so one implementation runs on
the TensorFlow, JAX and PyTorch backends.

Same families, argument names, inits and spec strings as the PyTorch API, built from the
framework-neutral core (``learnact.core``)::

    import keras
    import learnact.keras as lk

    model = keras.Sequential([keras.layers.Dense(64), lk.create("hermite:degree=8,channels=64"),
                              keras.layers.Dense(1)])

Layers serialise (``get_config``; ``model.save("m.keras")`` and ``keras.saving.load_model``
round-trip, registered under the package name "learnact"). ``channel_dim`` defaults to -1
(channels last); dtypes follow the layer's dtype policy (under "mixed_bfloat16" the formula is
evaluated in float32 and the output returned in bfloat16); random inits draw from ``seed``.
Importing this module never imports torch (with the torch backend, Keras itself does).
Install: ``pip install 'learnact[keras]'`` plus a backend (tensorflow-cpu, jax or torch).
"""

from __future__ import annotations

try:
    import keras  # noqa: F401
except ModuleNotFoundError as exc:  # exercised in tests/frontends/test_keras_install.py
    from ._install import missing_keras

    raise missing_keras(exc) from exc

from .layers import (DERIVED, Activation, Cantor, Cantor2, DiTAC, Fixed, GEDiTAC,
                     LeakyDiTAC, LeftRight, NoisyDerivative, Perlin,
                     Staircase, SurrogateActivation, available,
                     create)

__all__ = ["Activation", "Fixed", "Perlin", "DiTAC", "LeakyDiTAC", "GEDiTAC",
           "SurrogateActivation", "Staircase", "Cantor", "Cantor2", "LeftRight",
           "NoisyDerivative", "create", "available"]

# the classes generated from the definitions (Hermite, ..., PWLU), by class name
globals().update({c.__name__: c for c in DERIVED.values()})
__all__ += [c.__name__ for c in DERIVED.values()]
