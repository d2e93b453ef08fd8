"""learnact.save / learnact.load: every family round-trips through a file (values and the
spec), `learnact fit --save` files load, and hostile files fail with errors naming the file
before anything is built."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

import learnact
from learnact.saving import ACTIVATION_FORMAT, spec_of
from learnact.registry import available

from .conftest import LEARNABLE, perturb_


def _spec(name: str, kwargs: dict) -> str:
    return name + (":" + ",".join(f"{k}={v}" for k, v in kwargs.items()) if kwargs else "")


def _input(act: torch.nn.Module) -> torch.Tensor:
    g = torch.Generator().manual_seed(3)
    channels = getattr(act, "channels", None)
    if channels is None:
        return torch.randn(4, 6, generator=g)
    shape = [3, 5, 2]
    shape[getattr(act, "channel_dim", 1)] = channels
    return torch.randn(shape, generator=g)


@pytest.mark.parametrize("name,kwargs", LEARNABLE, ids=lambda v: str(v))
def test_every_learnable_family_round_trips(name, kwargs, tmp_path) -> None:
    act = perturb_(learnact.create(_spec(name, kwargs))).eval()
    path = learnact.save(act, tmp_path / "act.pt")
    back = learnact.load(path)
    assert type(back) is type(act) and not back.training
    assert back.learnact_spec == act.learnact_spec
    for k, v in act.state_dict().items():
        assert torch.equal(back.state_dict()[k], v), k
    x = _input(act)
    with torch.no_grad():
        torch.testing.assert_close(back(x), act(x), rtol=0, atol=0)


@pytest.mark.parametrize("name", [n for n in available() if not any(n == m for m, _ in LEARNABLE)])
def test_every_other_registry_name_round_trips(name, tmp_path) -> None:
    act = learnact.create(name).eval()
    back = learnact.load(learnact.save(act, tmp_path / "a.pt"))
    assert type(back) is type(act)
    x = torch.linspace(-3, 3, 13)
    with torch.no_grad():
        if name == "rrelu":  # random in training only; eval is fixed
            assert torch.equal(back(x), act(x))
        else:
            torch.testing.assert_close(back(x), act(x), rtol=0, atol=0)


def test_the_spec_of_create_keeps_its_overrides_and_a_constructed_family_has_one() -> None:
    act = learnact.create("hermite:degree=8", channels=4, tails="linear")
    assert act.learnact_spec == "hermite:degree=8,channels=4,tails=linear"
    # an override of a key in the spec replaces it (no 'given twice')
    assert learnact.create("hermite:degree=8", degree=4).learnact_spec == "hermite:degree=4"
    built = learnact.Hermite(6, channels=2, tails="linear", bound=2.0)
    spec = spec_of(built)
    again = learnact.create(spec)
    assert (again.degree, again.channels, again.tails, again.bound) == (6, 2, "linear", 2.0)
    with pytest.raises(ValueError, match="pass spec= to learnact.save"):
        spec_of(learnact.Perlin())


def test_save_with_a_spec_that_does_not_match_is_refused(tmp_path) -> None:
    act = learnact.Hermite(8)
    with pytest.raises(ValueError, match=r"'hermite:degree=4' has .* numbers .*first difference"):
        learnact.save(act, tmp_path / "a.pt", spec="hermite:degree=4")
    assert not (tmp_path / "a.pt").exists()
    learnact.save(act, tmp_path / "a.pt")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        learnact.save(act, tmp_path / "a.pt", overwrite=False)


def test_fit_save_files_load(tmp_path) -> None:
    """What `learnact fit --save` writes (now and before the format key existed)."""
    path = tmp_path / "h.pt"
    done = subprocess.run([sys.executable, "-m", "learnact", "fit", "hermite:degree=4",
                           "--save", str(path)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "learnact.load(" in done.stdout
    act = learnact.load(path)
    want = learnact.fit(learnact.Hermite(4), "gelu").max_error  # the same deterministic fit
    x = torch.linspace(-3, 3, 601, dtype=torch.float64)
    err = (act.double()(x) - torch.nn.functional.gelu(x)).abs().max().item()
    assert err == pytest.approx(want, rel=1e-3)
    old = tmp_path / "old.pt"
    torch.save({"spec": "hermite:degree=4", "state_dict": act.float().state_dict()}, old)
    assert torch.equal(learnact.load(old).coeffs, act.float().coeffs)


def _write(path, obj) -> None:
    torch.save(obj, path)


@pytest.mark.parametrize("payload,message", [
    ([1, 2], "not a learnact saved activation"),
    ({"format": "learnact-model/1", "spec": "relu", "state_dict": {}}, "load_model reads it"),
    ({"format": "other", "spec": "relu", "state_dict": {}}, "format 'other' is not"),
    ({"spec": 3, "state_dict": {}}, "'spec' must be a spec string"),
    ({"spec": "relu", "state_dict": [1]}, "'state_dict' must be a dict of named tensors"),
    ({"spec": "nonsense:x=1", "state_dict": {}}, "does not build an activation"),
    # a header that asks for 9 million numbers with a small state: refused on the meta device
    ({"spec": "hermite:degree=8,channels=1000000", "state_dict": {
        "coeffs": torch.zeros(9)}}, r"\d+ numbers in its tensors, stored state 9"),
])
def test_hostile_files_are_refused_naming_the_file(payload, message, tmp_path) -> None:
    path = tmp_path / "bad.pt"
    _write(path, payload)
    with pytest.raises(ValueError, match=message) as info:
        learnact.load(path)
    assert str(path) in str(info.value)


def test_a_pickled_object_never_runs(tmp_path) -> None:
    path = tmp_path / "evil.pt"
    torch.save({"spec": "relu", "state_dict": {}, "x": _Planted()}, path)
    with pytest.raises(ValueError, match="refusing to load"):
        learnact.load(path)
    (tmp_path / "short.pt").write_bytes(path.read_bytes()[:50])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        learnact.load(tmp_path / "short.pt")
    assert ACTIVATION_FORMAT == "learnact-activation/1"



class _Planted:
    pass
