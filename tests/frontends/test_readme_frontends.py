"""The README's JAX/Keras code block runs as written (in the torch-free venv)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_jax_keras_block_runs(tmp_path) -> None:
    blocks = [b for b in re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
              if "learnact.jax" in b]
    assert len(blocks) == 1
    env = dict(os.environ, KERAS_BACKEND=os.environ.get("KERAS_BACKEND", "jax"))
    done = subprocess.run([sys.executable, "-c", blocks[0]], capture_output=True, text=True,
                          cwd=tmp_path, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-3000:]


def test_the_toy_regression_examples_run(tmp_path) -> None:
    """examples/toy_regression_{jax,keras}.py run end to end (few steps) and write records."""
    import json

    root = README.parent
    for name in ("toy_regression_jax.py", "toy_regression_keras.py"):
        out = tmp_path / f"{name}.json"
        done = subprocess.run([sys.executable, str(root / "examples" / name), "--acts", "gelu",
                               "hermite:degree=4", "ditac:cells=4", "--seeds", "0", "--steps",
                               "30", "--json", str(out)], capture_output=True, text=True,
                              timeout=600, cwd=tmp_path)
        assert done.returncode == 0, (name, done.stderr[-3000:])
        records = json.loads(out.read_text())
        assert len(records) == 3, records
