"""Ecosystem hooks: learnact names inside Hugging Face ``ACT2FN`` and timm's ``create_act``.

    learnact.integrations.register_transformers()
    config.hidden_act = "hermite:degree=8"      # any learnact spec
    model = AutoModel.from_config(config)        # its MLPs build learnact activations

This also covers models that call their activation functionally through ``ACT2FN[...]``,
which module surgery cannot reach. Neither package is imported by learnact otherwise.
"""

from __future__ import annotations

import logging
from typing import Any

from .registry import available, create, lookup, parse_spec
from .surgery import HF_HINT, HF_MARK

log = logging.getLogger(__name__)

__all__ = ["register_transformers", "register_timm", "is_learnact_spec",
           "apply_recorded_activations"]


def is_learnact_spec(key: Any) -> bool:
    """True if ``key`` is a learnact registry spec (name or ``name:key=value,...``)."""
    if not isinstance(key, str):
        return False
    try:
        name, _ = parse_spec(key)
        lookup(name)
    except (ValueError, TypeError):
        return False
    return True


def register_transformers() -> bool:
    """Make ``transformers.activations.ACT2FN[spec]`` build ``learnact.create(spec)``.

    Existing ACT2FN names keep their Hugging Face meaning ("gelu" stays HF's GELU); every
    other learnact spec resolves through the registry. Returns False if transformers is not
    installed. Idempotent.
    """
    try:
        from transformers import activations as hf
    except ImportError:
        return False
    mapping = hf.ACT2FN
    base = type(mapping)
    if getattr(base, "_learnact", False):
        return True

    class LearnactInstantier(base):  # type: ignore[misc, valid-type]
        _learnact = True

        def __getitem__(self, key: Any) -> Any:
            key = _unmarked(key)
            if dict.__contains__(self, key):
                return super().__getitem__(key)
            if is_learnact_spec(key):
                return create(key)
            return super().__getitem__(key)

        def __contains__(self, key: Any) -> bool:
            key = _unmarked(key)
            return dict.__contains__(self, key) or is_learnact_spec(key)

    mapping.__class__ = LearnactInstantier
    _hook_post_init()
    log.info("transformers ACT2FN now resolves learnact specs (%s)", ", ".join(available(True)))
    return True


def _unmarked(key: Any) -> Any:
    """A config activation name that surgery marked (``learnact:gelu (load with ...)``; older
    configs: ``learnact:gelu``) means the activation it named; the replaced places are rebuilt
    from config.learnact_activations (post_init)."""
    if isinstance(key, str) and key.startswith(HF_MARK):
        key = key[len(HF_MARK):]
        return key[:-len(HF_HINT)] if key.endswith(HF_HINT) else key
    return key


def _hook_post_init() -> None:
    """Every Hugging Face model calls ``self.post_init()`` at the end of its ``__init__``
    (``from_pretrained`` too, before the weights load): run :func:`apply_recorded_activations`
    there first, so the recorded learnact modules exist when the checkpoint's parameters
    load."""
    from transformers import PreTrainedModel

    original = PreTrainedModel.post_init
    if getattr(original, "_learnact", False):
        return

    def post_init(self, *args: Any, **kwargs: Any) -> Any:
        apply_recorded_activations(self)
        return original(self, *args, **kwargs)

    post_init._learnact = True  # type: ignore[attr-defined]
    post_init.__wrapped__ = original  # type: ignore[attr-defined]
    PreTrainedModel.post_init = post_init


def apply_recorded_activations(model: Any) -> list[str]:
    """Install ``create(spec)`` at every path of ``model.config.learnact_activations`` (what
    :func:`learnact.replace_activations` recorded) that holds something else; paths are tried
    as recorded and with the model's ``base_model_prefix`` removed or added (a checkpoint
    saved from ``BertModel`` loaded as ``BertForSequenceClassification`` and the reverse).
    Called by ``post_init`` once :func:`register_transformers` ran; returns the paths
    installed. Idempotent."""
    from .surgery import _swap

    config = getattr(model, "config", None)
    recorded = getattr(config, "learnact_activations", None) or {}
    if not isinstance(recorded, dict):
        raise ValueError("config.learnact_activations must map module paths to learnact specs, "
                         f"got {type(recorded).__name__}")
    prefix = getattr(model, "base_model_prefix", "") or ""
    pairs = []
    for path, spec in recorded.items():
        candidates = [path]
        if prefix and path.startswith(prefix + "."):
            candidates.append(path[len(prefix) + 1:])
        elif prefix:
            candidates.append(f"{prefix}.{path}")
        for where in candidates:
            try:
                now = model.get_submodule(where)
            except AttributeError:
                continue
            if getattr(now, "_learnact_spec", None) != spec:  # installed here already
                new = create(spec)
                new._learnact_spec = spec
                pairs.append((where, new))
            break
    _swap(model, pairs)
    if pairs:
        log.info("installed %d recorded learnact activations (%s)", len(pairs),
                 ", ".join(sorted({s for s in recorded.values()})))
    return [p for p, _ in pairs]


class _TimmActTable(dict):
    """timm's activation-layer table, extended: a key that is not in it but is a learnact spec
    string (``"hermite:degree=8"``; timm lower-cases names) gives a factory that accepts timm's
    ``inplace`` keyword, added to the table on first use."""

    def __missing__(self, key: object):
        if not isinstance(key, str):
            raise KeyError(key)
        try:
            create(key)  # unknown names and bad parameters: a KeyError timm users expect
        except (ValueError, TypeError) as exc:
            raise KeyError(f"{key!r}: not a timm activation and not a learnact spec ({exc})") from None

        def factory(inplace: bool = False, **kwargs):
            return create(key, **kwargs)

        factory.__name__ = f"learnact[{key}]"
        self[key] = factory
        return factory


def register_timm() -> bool:
    """Make learnact's activations timm ``act_layer`` values (``get_act_layer`` /
    ``create_act_layer``): registry names and whole spec strings (``act_layer="hermite:degree=8"``)
    resolve to factories that accept and ignore ``inplace``; learnact classes
    (``act_layer=learnact.Hermite``) accept ``inplace`` themselves.

    Returns False if timm is not importable. Tested against a stand-in module with timm's table
    and lookup (tests/test_integrations.py): timm requires torchvision, whose wheels do not match
    the pinned CPU torch of this project's CI.
    """
    try:
        from timm.layers import create_act as ta  # type: ignore[import-not-found]
    except ImportError:
        return False
    table = getattr(ta, "_ACT_LAYER_DEFAULT", None)
    if not isinstance(table, dict):
        return False
    if not isinstance(table, _TimmActTable):
        table = _TimmActTable(table)
        ta._ACT_LAYER_DEFAULT = table  # get_act_layer reads the module global at call time
    for name in available(learnable=True):
        if name not in table:
            table.__missing__(name)  # stores the factory under the name
    return True
