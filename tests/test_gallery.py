"""docs/gallery.md shows only figures that a group of benchmarks/gallery.py regenerates."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_every_gallery_figure_has_a_group(tmp_path: Path) -> None:
    gallery, shots = _load("gallery"), _load("docs_shots")
    cheap, full = gallery.groups(tmp_path)
    made: set[str] = set()
    for steps in [*cheap.values(), *full.values()]:
        for cmd, figures in steps:
            made |= set(figures.values())
            made |= {Path(a).name for a in cmd if a.startswith(str(gallery.DOCS) + "/")}
            if cmd[-1].endswith("docs_shots.py"):
                made |= {name for _, name, *_ in shots.SHOTS}
    # the sampling group's three figures are copied by name after its runs (gallery.main)
    made |= {"sampling-inputs-autoencoder-tropical.png", "sampling-grads-autoencoder-tropical.png",
             "shapes-autoencoder-tropical.png"}
    shown = set(re.findall(r"\]\(([\w.-]+\.png)\)", (ROOT / "docs" / "gallery.md").read_text()))
    assert shown, "no figures found in docs/gallery.md"
    assert shown <= made, f"figures without a group: {sorted(shown - made)}"
    assert all((ROOT / "docs" / name).is_file() for name in shown)
    assert gallery.main(["--dry-run", "--only", "docs-site"]) == 0
