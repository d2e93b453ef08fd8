"""Save and load one activation module: :func:`save` and :func:`load`.

A saved activation is ``{"format": "learnact-activation/1", "spec": ..., "state_dict": ...}``
written by ``torch.save`` (atomically, never through a symbolic link): the spec string rebuilds
the module, the state dict holds its learned values. ``learnact fit --save`` writes the same
(files it wrote before the format key existed, ``{"spec", "state_dict"}``, load too).

Loading reads with ``weights_only=True`` (tensors and plain data only: nothing in the file
runs), builds the spec's module on the meta device first and compares every tensor's shape
with the file's, so a file cannot make the loader allocate more than it holds; every error
names the file.

For whole models use PyTorch's own ``model.state_dict()`` / ``load_state_dict`` (the model
code builds the activations), Hugging Face ``save_pretrained`` after
:func:`learnact.integrations.register_transformers`, or :func:`learnact.freeze` plus ONNX /
``torch.export`` for deployment: see the "Save and load" guide.
"""

from __future__ import annotations

from pathlib import Path
import torch
from torch import nn

__all__ = ["save", "load", "spec_of", "ACTIVATION_FORMAT"]

#: the ``format`` entry of a saved activation
ACTIVATION_FORMAT = "learnact-activation/1"


def spec_of(act: nn.Module) -> str:
    """The spec string that rebuilds ``act``: the one :func:`learnact.create` built it from
    (with its keyword overrides), else, for a family whose definition lists its arguments
    (Hermite, Fourier, tropical, tropical rational, rational, SELU variation, PWLU), the
    module's own arguments. Anything else is a ValueError asking for ``spec=``."""
    spec = getattr(act, "learnact_spec", None)
    if isinstance(spec, str):
        return spec
    family = getattr(act, "family", None)
    if isinstance(family, str):
        from .core.families import FAMILIES

        d = FAMILIES.get(family)
        if d is not None and d.arguments:
            parts = []
            for name, _, default in d.arguments:
                if name == "init":  # the init only shapes the starting values: the state
                    continue        # dict holds the values themselves
                value = getattr(act, name, None)
                if value is not None and value != default:
                    parts.append(f"{name}={value}")
            return family + (":" + ",".join(parts) if parts else "")
    raise ValueError(f"cannot tell which spec builds this {type(act).__name__}: build it with "
                     "learnact.create(spec) or pass spec= to learnact.save")


def save(act: nn.Module, path: str | Path, *, spec: str | None = None,
         overwrite: bool = True) -> Path:
    """Write ``act`` (an activation module) to ``path``: its spec string and its state dict.

    Args:
        act: the module; its spec comes from :func:`spec_of` unless ``spec`` is given.
        path: the file to write (atomically; its folder is created; never through a link).
        spec: the spec string that rebuilds ``act`` (checked: it must build a module with the
            same tensors).
        overwrite: False refuses an existing file (a ``FileExistsError``) before writing.

    Returns:
        The path written. :func:`load` reads it back.
    """
    from ._files import write_atomic

    if not isinstance(act, nn.Module):
        raise TypeError(f"act must be a torch.nn.Module, got {type(act).__name__}")
    path = Path(path)
    if not overwrite and path.exists():
        raise FileExistsError(f"{path} exists: choose a new file or pass overwrite=True")
    spec = spec_of(act) if spec is None else spec
    state = {k: v.detach().cpu() for k, v in act.state_dict().items()}
    _check_shapes(f"spec {spec!r}", spec, state, "the module's")
    payload = {"format": ACTIVATION_FORMAT, "spec": spec, "state_dict": state}
    return write_atomic(path, lambda f: torch.save(payload, f))


def load(path: str | Path) -> nn.Module:
    """The activation module saved at ``path`` by :func:`save` (or ``learnact fit --save``),
    in eval mode on the CPU: ``act.to(device)`` moves it."""
    from .experiments.common import read_torch_file

    path = Path(path)
    payload = read_torch_file(path, "learnact saved activation")
    if not isinstance(payload, dict):
        raise ValueError(f"{path}: not a learnact saved activation (a {type(payload).__name__}, "
                         "expected a dict with 'spec' and 'state_dict')")
    fmt = payload.get("format", ACTIVATION_FORMAT)
    if fmt != ACTIVATION_FORMAT:
        hint = (" (a whole experiment model: learnact.experiments.common.load_model reads it)"
                if isinstance(fmt, str) and "model" in fmt else "")
        raise ValueError(f"{path}: format {fmt!r:.60} is not {ACTIVATION_FORMAT!r}{hint}")
    spec, state = payload.get("spec"), payload.get("state_dict")
    if not isinstance(spec, str):
        raise ValueError(f"{path}: 'spec' must be a spec string, got {type(spec).__name__}")
    if not isinstance(state, dict) or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise ValueError(f"{path}: 'state_dict' must be a dict of named tensors")
    _check_shapes(str(path), spec, state, "stored")
    from .registry import create

    act = create(spec)
    try:
        act.load_state_dict(state)
    except RuntimeError as exc:
        raise ValueError(f"{path}: its state does not fit {spec!r}: "
                         f"{str(exc).splitlines()[0]}") from None
    return act.eval()


def _check_shapes(where: str, spec: str, state: dict[str, torch.Tensor], whose: str) -> None:
    """``spec`` built on the meta device (no memory) must have exactly ``state``'s shapes."""
    from .experiments.common import state_shape_difference
    from .registry import create

    try:
        with torch.device("meta"):
            probe = create(spec)
    except Exception as exc:  # the spec's fault, whatever the family raised: named
        raise ValueError(f"{where}: the spec {spec!r:.200} does not build an activation: "
                         f"{type(exc).__name__}: {exc}") from None
    diff = state_shape_difference(probe, state)
    if diff is not None:
        key, want, have, size = diff
        raise ValueError(f"{where}: {spec!r:.200} has {size} numbers in its tensors, "
                         f"{whose} state {sum(v.numel() for v in state.values())} (first "
                         f"difference: {key!r}, {want} by the spec, {have} {whose}); "
                         "nothing was built")

