"""Shared plumbing of every experiment: run directories, distributed set-up, progress, seeds.

Distributed runs follow nanoGPT's habits: DDP is detected from the environment that
``torchrun`` sets (RANK, WORLD_SIZE, LOCAL_RANK); gloo on CPU, nccl on CUDA; rank 0 alone logs,
writes and draws progress; ``destroy_process_group()`` at exit.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import logging
import math
import os
import random
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, is_dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from .._files import write_atomic

log = logging.getLogger(__name__)

__all__ = ["Dist", "setup_distributed", "RunDir", "read_run_marker", "seed_everything", "progress",
           "check_writable", "resolve_device", "save_model", "load_model", "read_torch_file",
           "model_filename", "state_shape_difference"]


@dataclass
class Dist:
    """Process-group facts (world size 1 outside torchrun)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    tp: int = 1                   # tensor-parallel group size (--tp; experiments/tensor_parallel.py)
    mesh: Any = None              # the (dp, tp) DeviceMesh when tp > 1

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def dp_rank(self) -> int:
        """This rank's data-parallel index: the ranks of one tensor-parallel group share it
        (and so their batches)."""
        return self.rank // self.tp

    @property
    def dp_world(self) -> int:
        return self.world // self.tp

    def dp_share(self, n: int) -> range:
        """This data-parallel rank's indices of ``n`` evaluation items (the ranks of a
        tensor-parallel group: the same ones), padded so that every rank runs as many
        forwards (under FSDP2 each is a collective): an index ``i >= n`` stands for item
        ``i % n`` and is not counted."""
        return range(self.dp_rank, -(-n // self.dp_world) * self.dp_world, self.dp_world)

    @property
    def main(self) -> bool:
        return self.rank == 0

    def all_reduce_sum(self, t: torch.Tensor) -> torch.Tensor:
        if self.enabled:
            dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return t

    def broadcast_buffers(self, model: torch.nn.Module) -> None:
        """Copy rank 0's buffers (BatchNorm running statistics) to every rank.

        DDP broadcasts buffers at the start of each forward, but the last training step still
        updates them with each rank's own shard; evaluation and the saved model must agree.
        """
        if self.enabled:
            for b in model.buffers():
                dist.broadcast(b, src=0)

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def broadcast_object(self, obj: Any) -> Any:
        if not self.enabled:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]


def resolve_device(name: str | None) -> torch.device:
    if name in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {name}: CUDA is not available on this machine")
    return dev


def setup_distributed(device: str | None = None) -> Dist:
    """Initialise the process group when launched by torchrun; a no-op otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist(device=resolve_device(device))
    rank = int(os.environ["RANK"])
    local = int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(device)
    if dev.type == "cuda":
        dev = torch.device("cuda", local)
        torch.cuda.set_device(dev)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo",
                                timeout=_dt.timedelta(minutes=30))
    return Dist(rank=rank, world=world, local_rank=local, device=dev)


def teardown_distributed(d: Dist) -> None:
    if d.enabled and dist.is_initialized():
        dist.destroy_process_group()


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def check_writable(path: str | os.PathLike) -> Path:
    """Create the directory (and parents) or fail now, before any training starts."""
    p = Path(path)
    try:
        p.mkdir(parents=True, exist_ok=True)
        probe = p / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise PermissionError(f"--out {p}: directory is not writable ({exc.strerror})") from None
    return p


def _jsonable(obj: Any) -> Any:
    if is_dataclass(obj) and not isinstance(obj, type):
        return _jsonable(asdict(obj))
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None if math.isnan(obj) else ("inf" if obj > 0 else "-inf")
    if isinstance(obj, (Path, torch.device, torch.dtype)):
        return str(obj)
    return obj


#: the run directories this process opened (the CLI names the last one when interrupted)
OPENED: list[str] = []

RUN_MARKER = "learnact-run.json"
RUN_FORMAT = "learnact-run-1"


class RunDir:
    """A run directory: config.json, results.json (rewritten after every finished run, so an
    interrupted comparison loses at most the run in progress), figures and summary.md.

    It is marked as learnact's by ``learnact-run.json`` ({"format": "learnact-run-1", "task":
    ...}). A new run writes into a new or empty folder, or into an earlier run of the same
    task; ``resume=True`` needs a marked run of the same task. Anything else (a folder of
    someone else's files, a run of another task, a missing folder to resume) is a
    ``ValueError`` before any file is written.
    """

    def __init__(self, path: str | os.PathLike, task: str | None = None,
                 resume: bool = False) -> None:
        p = Path(path)
        flag = "--resume" if resume else "--out"
        if resume and not p.is_dir():
            raise ValueError(f"--resume {p}: no such run directory")
        if p.exists() and not p.is_dir():
            raise ValueError(f"{flag} {p}: exists and is not a directory")
        marker = read_run_marker(p)
        if resume and marker is None:
            raise ValueError(
                f"--resume {p}: not a learnact run directory (no valid {RUN_MARKER}); refusing "
                f"to write into it. A run written before learnact marked its runs can be resumed "
                f"after adding {p / RUN_MARKER} with "
                f"{json.dumps({'format': RUN_FORMAT, 'task': task})}")
        if not resume and marker is None and p.is_dir() and any(p.iterdir()):
            raise ValueError(f"--out {p}: the folder holds files that are not a learnact run "
                             f"(no {RUN_MARKER}); choose a new or empty folder")
        if task is not None and marker is not None and marker["task"] != task:
            raise ValueError(f"{flag} {p}: holds a {marker['task']!r} run, not {task!r}")
        self.path = check_writable(p)
        self.task = task
        OPENED.append(str(p))
        if marker is None and task is not None:
            self.write_json(RUN_MARKER, {"format": RUN_FORMAT, "task": task})

    @staticmethod
    def default(task: str, root: str | os.PathLike = "runs") -> Path:
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        return Path(root) / f"{task}-{stamp}"

    def write_json(self, name: str, obj: Any) -> Path:
        return write_atomic(self.path / name, json.dumps(_jsonable(obj), indent=1))

    def read_json(self, name: str) -> Any:
        """The JSON file ``name`` of the run, None if there is none; a file that is not JSON
        (or not UTF-8) is a ValueError naming it."""
        p = self.path / name
        if not p.exists():
            return None
        try:
            return json.loads(p.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise ValueError(f"{p}: not a valid JSON file ({exc})") from None

    def write_text(self, name: str, text: str) -> Path:
        return write_atomic(self.path / name, text)


def read_run_marker(path: str | os.PathLike) -> dict[str, str] | None:
    """The run directory's ``learnact-run.json`` ({"format", "task"}), or None when the folder
    has none or it is not one of ours."""
    p = Path(path) / RUN_MARKER
    if not p.is_file():
        return None
    try:
        data = json.loads(p.read_text())
    except (OSError, ValueError):
        return None
    if (not isinstance(data, dict) or data.get("format") != RUN_FORMAT
            or not isinstance(data.get("task"), str)):
        return None
    return data


@contextlib.contextmanager
def progress(total: int, desc: str, enabled: bool = True) -> Iterator[Any]:
    """A tqdm bar (or a silent stand-in when disabled or tqdm is missing)."""
    bar = None
    if enabled:
        try:
            from tqdm import tqdm

            bar = tqdm(total=total, desc=desc, leave=False, dynamic_ncols=True)
        except ImportError:
            bar = None

    class _Null:
        def update(self, n: int = 1) -> None:
            pass

        def set_postfix_str(self, s: str) -> None:
            pass

    try:
        yield bar if bar is not None else _Null()
    finally:
        if bar is not None:
            bar.close()


# -- saved models: enough to rebuild the module and load both its final and its init state ----
MODEL_FORMAT = "learnact-model-1"
_BUILDERS = {
    "autoencoder": ("learnact.experiments.autoencoder", "build_autoencoder"),
    "toy2d_mlp": ("learnact.experiments.toy2d", "build_mlp"),
    "charlm": ("learnact.experiments.charlm", "build_model"),
    "convnext": ("learnact.experiments.convnext", "build_model"),
}


def spec_slug(spec: str) -> str:
    """A file-system-safe form of a spec, e.g. 'hermite_degree-8' for 'hermite:degree=8'."""
    import re

    return re.sub(r"[^A-Za-z0-9.]+", "-", spec.replace(":", "_").replace("=", "-")).strip("-")


def model_filename(spec: str, **tags: Any) -> str:
    """A file-system-safe name for (spec, tags), e.g. 'hermite_degree-8-s0.pt'."""
    return spec_slug(spec) + "".join(f"-{k}{v}" for k, v in tags.items()) + ".pt"


def save_model(path: str | Path, model: torch.nn.Module, builder: str, kwargs: dict[str, Any],
               init_state: dict[str, torch.Tensor] | None = None,
               extra: dict[str, Any] | None = None) -> Path:
    """Save {builder, kwargs, state_dict, init_state_dict}: load_model rebuilds the module."""
    if builder not in _BUILDERS:
        raise ValueError(f"unknown builder {builder!r}; known: {sorted(_BUILDERS)}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"format": MODEL_FORMAT, "builder": builder, "kwargs": kwargs,
               "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
               "init_state_dict": init_state, "extra": extra or {}}
    return write_atomic(path, lambda f: torch.save(payload, f))


def read_torch_file(path: str | Path, what: str) -> Any:
    """``torch.load(path, weights_only=True)`` with errors that name the file and the fix.

    Only tensors and plain containers/numbers/strings are unpickled: a file that holds any
    other Python object (a planted pickle, or a file not written by learnact) is refused
    before anything in it runs. A truncated or corrupt file is a ``ValueError`` too.
    """
    import pickle
    import zipfile

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such {what}")
    if not zipfile.is_zipfile(path):  # torch.save writes a zip archive; the end is missing
        raise ValueError(f"{path}: not a readable {what} (truncated or corrupt: not a "
                         f"torch.save archive); delete it or restore it from a copy")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        first = next((ln for ln in lines if "GLOBAL" in ln or "global" in ln),
                     lines[0] if lines else type(exc).__name__)
        raise ValueError(
            f"{path}: refusing to load this {what}: it holds Python objects other than tensors "
            f"and plain data, which learnact files never do (weights_only=True: {first}). "
            f"Only load it with weights_only=False if you trust whoever wrote it") from None
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        raise ValueError(f"{path}: not a readable {what} (truncated or corrupt: "
                         f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}); "
                         f"delete it or restore it from a copy") from None


def _check_state(path: Path, name: str, state: Any) -> None:
    if state is None:
        return
    if not isinstance(state, dict) or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise ValueError(f"{path}: {name} is not a state dict of named tensors")


def _check_header_size(path: Path, builder: str, build: Any, kwargs: dict[str, Any],
                       state: dict[str, torch.Tensor]) -> None:
    """The header's model, built on the meta device (no memory), must have exactly the
    state's tensor shapes: a header cannot make the loader allocate more than the file holds."""
    try:
        with torch.device("meta"):
            probe = build(**kwargs)
    except Exception as exc:  # any failure of the builder on the header's values (a negative
        # size is a RuntimeError, a wrong type an AttributeError): the file's fault, named
        raise ValueError(f"{path}: its header's kwargs do not build the {builder} model: "
                         f"{type(exc).__name__}: {exc}") from None
    diff = state_shape_difference(probe, state)
    if diff is not None:
        key, want, have, size = diff
        raise ValueError(f"{path}: the model its header describes ({size} numbers) does not "
                         f"match its stored state ({sum(v.numel() for v in state.values())} "
                         f"numbers; first difference: {key!r} {want} in the header, "
                         f"{have} stored); nothing was built")


def state_shape_difference(probe: torch.nn.Module, state: dict[str, torch.Tensor]
                           ) -> tuple[str, tuple | None, tuple | None, int] | None:
    """None where ``probe`` (a module, typically built on the meta device) has exactly
    ``state``'s tensor names and shapes; else (first differing name, its shape in the probe,
    its shape in the state, the probe's number count). The loaders' size check: a file cannot
    make them allocate more than it holds."""
    want = {k: tuple(v.shape) for k, v in probe.state_dict().items()}
    have = {k: tuple(v.shape) for k, v in state.items()}
    if want == have:
        return None
    key = next(iter(sorted(set(want) ^ set(have)) or
                    [k for k in sorted(want) if want[k] != have[k]]))
    return key, want.get(key), have.get(key), sum(math.prod(v) for v in want.values())


def load_model(path: str | Path, which: str = "final") -> tuple[torch.nn.Module, dict[str, Any]]:
    """(module, payload) from :func:`save_model`; ``which="init"`` loads the state at init.

    The file is read with ``weights_only=True`` and its header checked (format, a known
    builder, keyword arguments as plain data, state dicts of tensors) before a module is
    built from it."""
    import importlib

    if which not in ("final", "init"):
        raise ValueError(f"which must be 'final' or 'init', got {which!r}")
    path = Path(path)
    payload = read_torch_file(path, "learnact saved model")
    if not isinstance(payload, dict) or payload.get("format") != MODEL_FORMAT:
        raise ValueError(f"{path} is not a learnact saved model (format {MODEL_FORMAT})")
    builder, kwargs = payload.get("builder"), payload.get("kwargs")
    if not isinstance(builder, str) or builder not in _BUILDERS:
        raise ValueError(f"{path}: unknown builder {builder!r:.80}; known: {sorted(_BUILDERS)}")
    if not isinstance(kwargs, dict) or not all(isinstance(k, str) for k in kwargs):
        raise ValueError(f"{path}: kwargs must be a dict with string keys")
    _check_state(path, "state_dict", payload.get("state_dict"))
    _check_state(path, "init_state_dict", payload.get("init_state_dict"))
    mod, fn = _BUILDERS[builder]
    build = getattr(importlib.import_module(mod), fn)
    state = payload.get("state_dict") if which == "final" else payload.get("init_state_dict")
    if state is None:
        raise ValueError(f"{path} holds no {which} state")
    _check_header_size(path, builder, build, kwargs, state)
    model = build(**kwargs)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise ValueError(f"{path}: its {which} state does not fit the model its header "
                         f"describes: {str(exc).splitlines()[0]}") from None
    return model.eval(), payload


def require_plots(task: str) -> None:
    """Fail before any training when matplotlib (the ``[plots]`` extra) is missing: every
    experiment ends by drawing its figures, and a run that crashes there loses its summary."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ImportError(f"{task} draws its figures with matplotlib, which is not installed: "
                          "pip install 'learnact[plots]' (nothing has run yet)") from None
