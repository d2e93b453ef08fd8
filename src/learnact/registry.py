"""Name/spec string -> activation module: :func:`create`, :func:`available`, :func:`register`.

A spec is ``"name"`` or ``"name:key=value,key=value"``, e.g. ``"hermite:degree=8,channels=64"``.
Values are parsed against the type annotations (or defaults) of the factory's signature, so
``degree=8.5`` is an error rather than a silent truncation. Module classes and instances pass
through :func:`create` unchanged (classes are instantiated with the overrides), so configs can
hold strings while code can hand over objects.

Importing this module imports learnact.modules, which registers every built-in family, the
surrogates and the classical activations into the store (learnact._registry).
"""

from __future__ import annotations

from . import modules as _modules  # noqa: F401  (registers the built-in names)
from ._registry import (_ALIASES, _REGISTRY, _Entry, available, create,  # noqa: F401
                        is_learnable_name, lookup, parse_spec, register, register_factory,
                        spec_kwargs)

__all__ = ["register", "create", "available", "parse_spec", "spec_kwargs", "lookup",
           "is_learnable_name"]
