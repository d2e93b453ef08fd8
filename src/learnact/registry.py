"""Name/spec string -> activation module.

A spec is ``"name"`` or ``"name:key=value,key=value"``, e.g. ``"hermite:degree=8,channels=64"``.
Values are parsed against the type annotations (or defaults) of the factory's signature, so
``degree=8.5`` is an error rather than a silent truncation. Module classes and instances pass
through :func:`create` unchanged (classes are instantiated with the overrides), so configs can
hold strings while code can hand over objects.
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar, Union

from torch import nn

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
        from .modules.base import LearnableActivation

        learnable = (isinstance(cls, type) and issubclass(cls, LearnableActivation)
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


def parse_spec(spec: str) -> tuple[str, dict[str, str]]:
    """Split ``"name:key=value,..."`` into the name and raw string values."""
    if not isinstance(spec, str):
        raise TypeError(f"spec must be a string, got {type(spec).__name__}")
    name, sep, rest = spec.strip().partition(":")
    name = name.strip()
    if not name:
        raise ValueError(f"malformed spec {spec!r}: expected 'name' or 'name:key=value,...'")
    raw: dict[str, str] = {}
    if sep and not rest.strip():
        raise ValueError(f"malformed spec {spec!r}: nothing after ':' (expected key=value,...)")
    if rest.strip():
        for item in rest.split(","):
            key, eq, value = item.partition("=")
            key, value = key.strip(), value.strip()
            if not eq or not key or not value:
                raise ValueError(f"malformed spec {spec!r}: {item.strip()!r} is not key=value")
            if not key.isidentifier():
                raise ValueError(f"malformed spec {spec!r}: {key!r} is not a valid keyword")
            if key in raw:
                raise ValueError(f"malformed spec {spec!r}: {key!r} given twice")
            raw[key] = value
    return name, raw


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
    params = _signature(entry.signature_of)
    for key, value in overrides.items():
        if key not in params and key not in entry.ignores:
            _unknown(entry.name, key, params)
        kwargs[key] = value
    for key in entry.ignores:
        kwargs.pop(key, None)
    return entry.factory(**kwargs)


def spec_kwargs(spec: str) -> tuple[str, dict[str, Any]]:
    """The registry name and the typed keyword arguments of a spec string:
    ``spec_kwargs("hermite:degree=8")`` -> ``("hermite", {"degree": 8})``."""
    name, raw = parse_spec(spec)
    entry = lookup(name)
    params = _signature(entry.signature_of)
    return entry.name, {key: _parse_value(entry.name, key, text, params)
                        for key, text in raw.items()}


def _signature(fn: Callable[..., Any]) -> dict[str, tuple[Any, Any]]:
    """name -> (annotation, default) of the keyword parameters of fn (or cls.__init__)."""
    target = fn.__init__ if isinstance(fn, type) else fn
    try:
        hints = typing.get_type_hints(target)
    except Exception:  # torch classes may carry unresolvable annotations
        hints = {}
    out = {}
    for p in inspect.signature(target).parameters.values():
        if p.name == "self" or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        out[p.name] = (hints.get(p.name, p.annotation), p.default)
    return out


def _unknown(family: str, key: str, params: dict[str, Any]) -> typing.NoReturn:
    raise TypeError(f"{family!r} has no parameter {key!r}{suggest(key, params)} "
                    f"(parameters: {', '.join(params) or 'none'})")


def _parse_value(family: str, key: str, text: str, params: dict[str, tuple[Any, Any]]) -> Any:
    if key not in params:
        _unknown(family, key, params)
    ann, default = params[key]
    if ann is inspect.Parameter.empty:
        ann = type(default) if default not in (None, inspect.Parameter.empty) else str
    try:
        return _convert(text, ann)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{family}: cannot parse {key}={text!r}: {exc}") from None


def _convert(text: str, ann: Any) -> Any:
    origin = typing.get_origin(ann)
    if origin is Union or origin is types.UnionType:
        args = typing.get_args(ann)
        if type(None) in args and text.lower() == "none":
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _convert(text, a)
            except (TypeError, ValueError) as exc:
                errors.append(str(exc))
        raise ValueError("; ".join(errors))
    if origin is Literal:
        choices = typing.get_args(ann)
        value = text.strip("'\"")
        for c in choices:
            if str(c) == value:
                return c
        raise ValueError(f"expected one of {list(choices)}")
    if ann is bool:
        low = text.lower()
        if low in ("true", "1", "yes", "on"):
            return True
        if low in ("false", "0", "no", "off"):
            return False
        raise ValueError("expected true/false")
    if ann is int:
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"expected an integer, got {text!r}") from None
    if ann is float:
        return float(text)
    if ann is str or ann is Any:
        return text.strip("'\"")
    if ann is type(None):
        if text.lower() == "none":
            return None
        raise ValueError("expected None")
    # unknown annotation: try int, float, then string
    for conv in (int, float):
        try:
            return conv(text)
        except ValueError:
            pass
    return text
