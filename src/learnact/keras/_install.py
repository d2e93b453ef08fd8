"""What to install when ``import keras`` fails (no framework import here)."""

from __future__ import annotations

import json
import os
from pathlib import Path

#: Keras 3's backends and the package that provides each
BACKEND_PACKAGES = {"tensorflow": "tensorflow-cpu (or tensorflow)", "jax": "jax",
                    "torch": "torch"}


def keras_backend() -> str:
    """The backend Keras would load: $KERAS_BACKEND, else keras.json's, else tensorflow."""
    name = os.environ.get("KERAS_BACKEND")
    if name:
        return name
    home = os.environ.get("KERAS_HOME") or str(Path.home() / ".keras")
    try:
        return str(json.loads((Path(home) / "keras.json").read_text()).get("backend",
                                                                           "tensorflow"))
    except (OSError, ValueError, AttributeError):
        return "tensorflow"


def missing_keras(exc: ModuleNotFoundError) -> ImportError:
    """The ImportError for ``import keras`` failing with ``exc``: Keras itself missing, or
    installed without the backend it is set to load."""
    missing = (exc.name or "").split(".")[0]
    if missing in ("keras", ""):
        return ImportError("learnact.keras needs Keras 3 and one backend: pip install "
                           "'learnact[keras]' tensorflow-cpu (or jax, or torch, with "
                           "KERAS_BACKEND=jax / torch)")
    backend = keras_backend()
    others = ", ".join(f"{pkg} with KERAS_BACKEND={b}" for b, pkg in BACKEND_PACKAGES.items()
                       if b != backend)
    return ImportError(
        f"learnact.keras: Keras is installed but its backend is not: Keras is set to "
        f"{backend!r} (KERAS_BACKEND or ~/.keras/keras.json) and importing it failed on "
        f"{missing!r}. Install {BACKEND_PACKAGES.get(backend, backend)}, or use another "
        f"backend: {others}")
