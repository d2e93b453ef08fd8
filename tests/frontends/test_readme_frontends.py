"""The JAX/Keras code blocks of the README and of the documentation run as written (in the
torch-free venv); the PyTorch blocks run in tests/test_docs_blocks.py."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"


def _frontend_blocks() -> list[tuple[str, str]]:
    pages = [README] + sorted((README.parent / "docs").rglob("*.md"))
    return [(str(page.relative_to(README.parent)), b) for page in pages
            for b in re.findall(r"```python\n(.*?)```", page.read_text(), flags=re.S)
            if "learnact.jax" in b or "learnact.keras" in b]


def test_the_readme_and_the_jax_keras_guide_have_frontend_blocks() -> None:
    pages = [p for p, _ in _frontend_blocks()]
    assert pages.count("README.md") == 2 and "docs/guides/jax-keras.md" in pages


@pytest.mark.parametrize("page,code", _frontend_blocks(), ids=lambda v: v if v.endswith(".md") else "")
def test_frontend_block_runs(page: str, code: str, tmp_path) -> None:
    env = dict(os.environ, KERAS_BACKEND=os.environ.get("KERAS_BACKEND", "jax"))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=tmp_path, timeout=600, env=env)
    assert done.returncode == 0, (page, done.stderr[-3000:])


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
