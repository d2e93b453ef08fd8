"""Spec strings -> modules for the JAX and Keras frontends (framework-neutral)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from ._spec import parse_spec, signature, typed_kwargs, unknown
from ._validate import suggest

__all__ = ["FIXED_NAMES", "ALIASES", "fixed_signature", "from_spec", "names", "derived_init"]

#: the classical baselines both frontends build by their PyTorch names
FIXED_NAMES = ("elu", "gelu", "identity", "leaky_relu", "relu", "selu", "sigmoid", "silu",
               "softplus", "tanh")
ALIASES = {"pau": "rational"}


def fixed_signature(approximate: str = "none", negative_slope: float = 0.01) -> None:
    """Keyword arguments of the fixed activations: gelu's ``approximate`` ("none", exact as in
    PyTorch, or "tanh") and leaky_relu's ``negative_slope``."""


def names(classes: dict[str, type], learnable: bool | None,
          fixed_classes: dict[str, type] | None = None) -> list[str]:
    """Sorted names: the learnable classes, and the fixed baselines plus ``fixed_classes``
    (e.g. the surrogate-derivative activations)."""
    out = [] if learnable is False else list(classes)
    out += [] if learnable is True else [*FIXED_NAMES, *(fixed_classes or {})]
    return sorted(out)


#: keyword overrides a fixed function accepts and ignores (as learnact.create's registry)
FIXED_IGNORES = ("channels", "channel_dim")


def from_spec(spec: str, classes: dict[str, type], fixed: Callable[..., Any], frontend: str,
              reserved: tuple[str, ...], build: dict[str, Any], overrides: dict[str, Any],
              surrogates: dict[str, type] | None = None, layer: dict[str, Any] | None = None
              ) -> Any:
    """Parse ``spec`` (learnact.create's strings), check every key against the class's
    signature (``reserved``: frontend-only keywords a spec may not set) and build it with the
    frontend's ``build`` keywords (learnable ``classes``) or ``layer`` keywords (``surrogates``
    and the fixed names, which go to ``fixed(name, **kw)``)."""
    name, raw = parse_spec(spec)
    key = name.strip().lower()
    key = ALIASES.get(key, key)
    surrogates = surrogates or {}
    if key in FIXED_NAMES:
        target: Callable[..., Any] = fixed_signature
    elif key in classes or key in surrogates:
        target = classes.get(key) or surrogates[key]
        if key in surrogates:
            build = layer or {}
    else:
        every = names(classes, None, surrogates)
        raise ValueError(f"unknown activation {name!r}{suggest(key, every)} "
                         f"(available in {frontend}: {', '.join(every)})")
    params = {k: v for k, v in signature(target).items() if k not in reserved}
    if key in FIXED_NAMES:  # as learnact.create: a fixed function takes (and ignores) the
        # channel keywords as overrides, so code can pass them to whatever spec it is given
        overrides = {k: v for k, v in overrides.items() if k not in FIXED_IGNORES}
    for k in [*raw, *overrides]:
        if k not in params:
            unknown(key, k, params)
    kw = typed_kwargs(key, raw, target) | dict(overrides)
    if key in FIXED_NAMES:
        return fixed(key, **kw, **(layer or {}))
    return target(**kw, **build)


def derived_init(definition: Any, channel_dim: int, extra: tuple[inspect.Parameter, ...],
                 build: Callable[[Any, dict[str, Any], dict[str, Any]], None]
                 ) -> Callable[..., None]:
    """The ``__init__`` of a frontend class generated from a family's definition
    (learnact.core.definition ``arguments``): the definition's arguments, with
    ``channels=None, channel_dim=<the frontend's default>`` where the definition places them
    (after its own arguments if it does not), then the frontend's own ``extra`` parameters; it
    calls ``build(self, family_kwargs, extra_kwargs)``. Its signature and annotations are
    real, so spec strings are typed against it."""
    P = inspect.Parameter
    params = [P("self", P.POSITIONAL_OR_KEYWORD)]
    annotations: dict[str, Any] = {}
    channel_params = {
        "channels": P("channels", P.POSITIONAL_OR_KEYWORD, default=None, annotation=int | None),
        "channel_dim": P("channel_dim", P.POSITIONAL_OR_KEYWORD, default=channel_dim,
                         annotation=int)}
    names = [a[0] for a in definition.arguments]
    for name, typ, default in definition.arguments:
        if name in channel_params:  # a placeholder: the frontend's own default
            params.append(channel_params[name])
            continue
        params.append(P(name, P.POSITIONAL_OR_KEYWORD, default=default, annotation=typ))
        annotations[name] = typ
    params += [p for n, p in channel_params.items() if n not in names] + list(extra)
    annotations |= {"channels": int | None, "channel_dim": int, "return": None}
    annotations |= {p.name: p.annotation for p in extra if p.annotation is not P.empty}
    sig = inspect.Signature(params)
    own = [p.name for p in extra]

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        bound = sig.bind(self, *args, **kwargs)
        bound.apply_defaults()
        kw = dict(bound.arguments)
        kw.pop("self")
        extras = {n: kw.pop(n) for n in own}
        build(self, kw, extras)

    __init__.__signature__ = sig  # type: ignore[attr-defined]
    __init__.__annotations__ = annotations
    __init__.__qualname__ = f"{definition.class_name}.__init__"
    return __init__
