"""The PyTorch examples in examples/ run end to end (with small settings) and produce what they
promise; the JAX/Keras toy regressions run in tests/frontends/test_readme_frontends.py and the
quickstart also against the built wheel (make test-wheel)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


def _run(name: str, *args: str, cwd: Path) -> str:
    done = subprocess.run([sys.executable, str(EXAMPLES / name), *args], capture_output=True,
                          text=True, cwd=cwd, timeout=900)
    assert done.returncode == 0, (name, done.stderr[-3000:])
    return done.stdout


def test_every_example_is_tested() -> None:
    here = Path(__file__).read_text() + (ROOT / "tests/frontends/test_readme_frontends.py").read_text()
    for path in EXAMPLES.glob("*.py"):
        if not path.name.startswith("_"):
            assert path.name in here, f"{path.name} has no test"


def test_quickstart(tmp_path: Path) -> None:
    assert "quickstart ok" in _run("quickstart.py", cwd=tmp_path)


def test_hf_surgery(tmp_path: Path) -> None:
    out = _run("hf_surgery.py", cwd=tmp_path)
    assert "activation(s), applied" in out and "hf_surgery ok" in out
    cosine = float(out.split("min cosine to the original ")[1].split()[0])
    assert cosine > 0.999


def test_fitting(tmp_path: Path) -> None:
    out = _run("fitting.py", "--specs", "hermite:degree=8", "hermite:degree=16", "--plot",
               "fit.png", cwd=tmp_path)
    errors = [float(line.split("max|f-t| ")[1].split(",")[0]) for line in out.splitlines() if "max|f-t|" in line]
    assert len(errors) == 2 and errors[0] < 0.05 and errors[1] < errors[0] / 5  # degree 16 fits better
    assert (tmp_path / "fit.png").stat().st_size > 10_000


def test_fitting_rejects_a_bad_spec_before_fitting(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, str(EXAMPLES / "fitting.py"), "--specs", "hermite:degree=8",
                           "nosuchfamily"], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert done.returncode != 0 and "nosuchfamily" in done.stderr and "max|f-t|" not in done.stdout


def test_toy_regression_torch(tmp_path: Path) -> None:
    out = _run("toy_regression_torch.py", "--acts", "gelu", "ditac:cells=4", "--seeds", "0",
               "--steps", "40", "--json", "runs.json", cwd=tmp_path)
    records = json.loads((tmp_path / "runs.json").read_text())
    assert [r["act"] for r in records] == ["gelu", "ditac:cells=4"]
    from learnact.data import sine_mixture
    from learnact.data.toy import grid

    var = float(sine_mixture(grid(50)).var())
    for r in records:  # a finite test error on the target's scale, R^2 computed from it
        assert 0.0 < r["test_mse"] < 1.0 and abs(r["r2"] - (1 - r["test_mse"] / var)) < 1e-6
    assert "| `ditac:cells=4` |" in out


def test_atlas(tmp_path: Path) -> None:
    out = _run("atlas.py", "--out", "figs", "--steps", "20", cwd=tmp_path)
    assert "trained 20 steps" in out
    for name in ("atlas-init.png", "atlas-trained.png", "atlas-derivative.png"):
        assert (tmp_path / "figs" / name).stat().st_size > 5_000
