"""Every Python code block of the README and of the documentation (docs/**/*.md) runs as
written, each in a fresh process in an empty folder, so no snippet rots. Blocks that use the
JAX or Keras frontends run in the torch-free venv (tests/frontends/test_readme_frontends.py)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PAGES = [README] + sorted((ROOT / "docs").rglob("*.md"))


def python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def frontend_block(code: str) -> bool:
    return "learnact.jax" in code or "learnact.keras" in code


def _torch_blocks() -> list[tuple[str, int, str]]:
    out = []
    for page in PAGES:
        for i, code in enumerate(python_blocks(page.read_text())):
            if not frontend_block(code):
                out.append((str(page.relative_to(ROOT)), i, code))
    return out


BLOCKS = _torch_blocks()


def test_the_pages_have_blocks_for_both_runners() -> None:
    readme = python_blocks(README.read_text())
    assert len(readme) >= 3 and sum(map(frontend_block, readme)) == 2  # JAX, Keras
    pages = {page for page, _, _ in BLOCKS}
    assert {"README.md", "docs/index.md", "docs/guides/quickstart.md", "docs/guides/fit-surgery.md",
            "docs/guides/deploy.md", "docs/guides/ditac.md", "docs/guides/init-depth.md",
            "docs/guides/seeing-inside.md"} <= pages


@pytest.mark.parametrize("page,index,code", BLOCKS, ids=[f"{p}#{i}" for p, i, _ in BLOCKS])
def test_python_block_runs(page: str, index: int, code: str, tmp_path) -> None:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=tmp_path, timeout=600)
    assert done.returncode == 0, f"{page}, block {index}:\n{code}\n{done.stderr[-3000:]}"
