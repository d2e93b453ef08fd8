"""Spec strings, framework-neutral: ``"name:key=value,..."`` parsed and typed against a
factory's signature. Used by the PyTorch registry and by the JAX and Keras frontends (no
framework import here)."""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable
from typing import Any, Literal, Union

from ._validate import suggest

__all__ = ["parse_spec", "typed_kwargs"]


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


def typed_kwargs(family: str, raw: dict[str, str], signature_of: Callable[..., Any]
                 ) -> dict[str, Any]:
    """The raw string values of a spec converted by the annotations of ``signature_of``'s
    keyword parameters (a class: its ``__init__``); unknown keys are a TypeError."""
    params = signature(signature_of)
    return {key: _parse_value(family, key, text, params) for key, text in raw.items()}


def signature(fn: Callable[..., Any]) -> dict[str, tuple[Any, Any]]:
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


def unknown(family: str, key: str, params: dict[str, Any]) -> typing.NoReturn:
    raise TypeError(f"{family!r} has no parameter {key!r}{suggest(key, params)} "
                    f"(parameters: {', '.join(params) or 'none'})")


def _parse_value(family: str, key: str, text: str, params: dict[str, tuple[Any, Any]]) -> Any:
    if key not in params:
        unknown(family, key, params)
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
