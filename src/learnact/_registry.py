"""The registry's store (internal): name/spec string -> activation module.

The modules register into it as they are imported (modules/__init__.py, classical.py) and
use it (the surrogates' ``base`` specs); :mod:`learnact.registry`, the public face, imports
the modules first so that every built-in name is there. No module of learnact.modules
imports learnact.registry (no import cycle).



A spec is ``"name"`` or ``"name:key=value,key=value"``, e.g. ``"hermite:degree=8,channels=64"``.
Values are parsed against the type annotations (or defaults) of the factory's signature, so
``degree=8.5`` is an error rather than a silent truncation. Module classes and instances pass
through :func:`create` unchanged (classes are instantiated with the overrides), so configs can
hold strings while code can hand over objects.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from torch import nn

from ._spec import parse_spec, signature, typed_kwargs, unknown
from ._validate import suggest

__all__ = ["register", "create", "available", "parse_spec", "spec_kwargs", "lookup",
           "is_learnable_name"]

T = TypeVar("T")


@dataclass
class _Entry:
    name: str
    factory: Callable[..., nn.Module]
    signature_of: Callable[..., Any]
    learnable: bool
    aliases: tuple[str, ...] = field(default_factory=tuple)
    ignores: tuple[str, ...] = ()  # keywords accepted and ignored (channels for fixed functions)


_REGISTRY: dict[str, _Entry] = {}
_ALIASES: dict[str, str] = {}


def register(name: str, *, aliases: tuple[str, ...] | list[str] = ()) -> Callable[[T], T]:
    """Class decorator: make a module class reachable as ``create(name)``."""

    def deco(cls: T) -> T:
        # a learnable family class: it has the family hooks (read by name, never isinstance)
        learnable = (isinstance(cls, type) and hasattr(cls, "function_and_derivative")
                     and getattr(cls, "learnable_by_default", True))
        _add(_Entry(name, cls, cls, learnable, tuple(aliases)))  # type: ignore[arg-type]
        return cls

    return deco


def _add(entry: _Entry) -> None:
    key = entry.name.lower()
    if key in _REGISTRY or key in _ALIASES:
        raise ValueError(f"activation name {entry.name!r} is already registered")
    _REGISTRY[key] = entry
    for a in entry.aliases:
        _ALIASES[a.lower()] = key


def register_factory(name: str, factory: Callable[..., nn.Module], *,
                     signature_of: Callable[..., Any] | None = None, learnable: bool = False,
                     aliases: tuple[str, ...] = (), ignores: tuple[str, ...] = ()) -> None:
    """Register a factory function (used for the classical torch activations)."""
    _add(_Entry(name, factory, signature_of or factory, learnable, aliases, ignores))


def available(learnable: bool | None = None) -> list[str]:
    """Sorted registry names (optionally only the learnable or only the fixed ones)."""
    return sorted(n for n, e in _REGISTRY.items() if learnable is None or e.learnable == learnable)


def is_learnable_name(spec: str) -> bool:
    name, _ = parse_spec(spec)
    return lookup(name).learnable


def lookup(name: str) -> _Entry:
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in _REGISTRY:
        raise ValueError(f"unknown activation {name!r}{suggest(key, list(_REGISTRY) + list(_ALIASES))}"
                         f" (available: {', '.join(available())})")
    return _REGISTRY[key]


def create(spec: Any, **overrides: Any) -> nn.Module:
    """Build an activation module from a spec string, a module class or a module instance.

    Args:
        spec: ``"name"`` / ``"name:key=value,..."``; an ``nn.Module`` subclass (instantiated with
            ``overrides``); or an ``nn.Module`` instance (returned as is; overrides not allowed).
        overrides: keyword arguments that take precedence over the spec's values.
    """
    if isinstance(spec, nn.Module):
        if overrides:
            raise TypeError("overrides cannot be applied to an already built module instance")
        return spec
    if isinstance(spec, type) and issubclass(spec, nn.Module):
        return spec(**overrides)
    name, kwargs = spec_kwargs(spec)
    entry = lookup(name)
    params = signature(entry.signature_of)
    for key, value in overrides.items():
        if key not in params and key not in entry.ignores:
            unknown(entry.name, key, params)
        kwargs[key] = value
    for key in entry.ignores:
        kwargs.pop(key, None)
    module = entry.factory(**kwargs)
    recorded = _recorded_spec(spec, overrides)
    if recorded is not None and isinstance(module, nn.Module):
        # what learnact.save writes, so that learnact.load rebuilds the same module
        module.learnact_spec = recorded
    return module


def _recorded_spec(spec: str, overrides: dict[str, Any]) -> str | None:
    """``spec`` with ``overrides`` merged in, as one spec string; None where an override has no
    spec form (a tensor, a callable, a string with ',' or '=')."""
    name, raw = parse_spec(spec)
    for key, value in overrides.items():
        if not (value is None or isinstance(value, (bool, int, float, str))):
            return None
        text = str(value)
        if not text or "," in text or "=" in text:
            return None
        raw[key] = text
    return name + (":" + ",".join(f"{k}={v}" for k, v in raw.items()) if raw else "")


def spec_kwargs(spec: str) -> tuple[str, dict[str, Any]]:
    """The registry name and the typed keyword arguments of a spec string:
    ``spec_kwargs("hermite:degree=8")`` -> ``("hermite", {"degree": 8})``."""
    name, raw = parse_spec(spec)
    entry = lookup(name)
    return entry.name, typed_kwargs(entry.name, raw, entry.signature_of)


