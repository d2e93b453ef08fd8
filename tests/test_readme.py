"""The README's Python code blocks run as written (PyTorch blocks here, each in a fresh
process; the JAX/Keras block in tests/frontends/test_readme_frontends.py), so no snippet rots."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def _torch_blocks() -> list[str]:
    return [b for b in python_blocks(README.read_text()) if "learnact.jax" not in b]


def test_the_readme_has_blocks_for_both_runners() -> None:
    blocks = python_blocks(README.read_text())
    assert len(blocks) >= 4 and len(_torch_blocks()) == len(blocks) - 1


@pytest.mark.parametrize("index", range(len(_torch_blocks())))
def test_readme_python_block_runs(index: int, tmp_path) -> None:
    code = _torch_blocks()[index]
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=tmp_path, timeout=600)
    assert done.returncode == 0, f"README block {index}:\n{code}\n{done.stderr[-3000:]}"
