#!/usr/bin/env python3
"""Run the README's Python blocks for one install, verbatim, each in a fresh process in an
empty folder (`make test-wheel`, in fresh venvs that hold the built wheel and one extra):

    python .ci/readme_blocks.py torch    # blocks without learnact.jax / learnact.keras
    python .ci/readme_blocks.py jax      # blocks that use learnact.jax (not learnact.keras)
    python .ci/readme_blocks.py keras    # blocks that use learnact.keras (not learnact.jax)

Fails if no block of that kind exists, or if any block fails."""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def kind(code: str) -> str:
    jax, keras = "learnact.jax" in code, "learnact.keras" in code
    return "both" if jax and keras else "jax" if jax else "keras" if keras else "torch"


def main(argv: list[str]) -> int:
    want = argv[0]
    blocks = [b for b in re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
              if kind(b) == want]
    if not blocks:
        print(f"readme_blocks: no {want} block in {README}", file=sys.stderr)
        return 1
    for i, code in enumerate(blocks):
        with tempfile.TemporaryDirectory() as d:
            done = subprocess.run([sys.executable, "-c", code], cwd=d, capture_output=True,
                                  text=True, timeout=900)
        if done.returncode:
            print(f"readme_blocks: {want} block {i} failed:\n{code}\n{done.stderr[-3000:]}",
                  file=sys.stderr)
            return 1
    print(f"readme_blocks: {len(blocks)} {want} block(s) of the README ran")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
