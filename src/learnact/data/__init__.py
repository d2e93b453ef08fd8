"""Readers for data that ships in packages (no downloads at run time), and the synthetic 2-D
sine mixture (``sine_mixture``, numpy only: the JAX and Keras examples use it too).

The Fashion-MNIST reader returns torch tensors and loads torch on first use."""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["load_fashion_mnist", "read_idx", "INSTALL_COMMAND", "sine_mixture"]

_LAZY = {"load_fashion_mnist": "fashion_mnist", "read_idx": "fashion_mnist",
         "INSTALL_COMMAND": "fashion_mnist", "sine_mixture": "toy"}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'learnact.data' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
