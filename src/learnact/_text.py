"""Docstrings as plain text for command-line help (internal)."""

from __future__ import annotations

import re

__all__ = ["plain"]


def plain(doc: str | None) -> str:
    """``doc`` without reStructuredText markup: ````x```` and ``:role:`x``` become ``x``."""
    text = re.sub(r":[a-z]+:`~?([^`]+)`", r"\1", doc or "")
    return text.replace("``", "")
