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

log = logging.getLogger(__name__)

__all__ = ["register_transformers", "register_timm", "is_learnact_spec"]


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
            if dict.__contains__(self, key):
                return super().__getitem__(key)
            if is_learnact_spec(key):
                return create(key)
            return super().__getitem__(key)

        def __contains__(self, key: Any) -> bool:
            return dict.__contains__(self, key) or is_learnact_spec(key)

    mapping.__class__ = LearnactInstantier
    log.info("transformers ACT2FN now resolves learnact specs (%s)", ", ".join(available(True)))
    return True


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
