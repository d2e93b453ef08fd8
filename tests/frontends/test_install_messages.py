"""What a user without the right packages is told (each in a child process, so that the
modules this suite already imported do not hide the failure)."""

from __future__ import annotations

import os
import subprocess
import sys


def _run(code: str, **env: str) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    full.update(env)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=full, timeout=300)


def test_keras_without_its_backend_names_the_backend_and_the_alternatives() -> None:
    """This venv has no torch: Keras set to the torch backend cannot load."""
    done = _run("import learnact.keras", KERAS_BACKEND="torch")
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: learnact.keras: Keras is installed but its backend is "
                           "not: Keras is set to 'torch'"), last
    assert "Install torch, or use another backend: tensorflow-cpu" in last
    assert "jax with KERAS_BACKEND=jax" in last


def test_without_keras_or_jax_the_message_names_the_extra() -> None:
    done = _run("import sys; sys.modules['keras'] = None; import learnact.keras")
    assert done.stderr.strip().splitlines()[-1] == (
        "ImportError: learnact.keras needs Keras 3 and one backend: pip install "
        "'learnact[keras]' tensorflow-cpu (or jax, or torch, with KERAS_BACKEND=jax / torch)")
    done = _run("import sys; sys.modules['flax'] = None; import learnact.jax")
    assert done.stderr.strip().splitlines()[-1] == (
        "ImportError: learnact.jax needs jax and flax: pip install 'learnact[jax]'")
