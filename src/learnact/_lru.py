"""A least-recently-used map bounded in bytes (and optionally in entries), thread-safe: the
atlas server's rendered responses and DiTAC's lookup-table memo (ops/cpab/lut.py) share it."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")

__all__ = ["ByteLRU"]


class ByteLRU(Generic[V]):
    """Values with a size in bytes (``size(value)``): a value above a quarter of ``max_bytes``
    is not kept, and the least recently used go while the total exceeds ``max_bytes`` or the
    count ``max_items`` (None: no cap). The total is a running count, so a call costs O(1)
    whatever the number of entries (summing them per insert made a cache that gains an entry
    per training step slower at every step)."""

    def __init__(self, max_bytes: int, size: Callable[[V], int],
                 max_items: int | None = None) -> None:
        self.max_bytes, self.max_items = max_bytes, max_items
        self.nbytes = 0
        self._size = size
        self._items: OrderedDict[Hashable, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> V | None:
        """The value at ``key`` (now the most recently used), or None."""
        with self._lock:
            hit = self._items.get(key)
            if hit is not None:
                self._items.move_to_end(key)
            return hit

    def put(self, key: Hashable, value: V) -> None:
        """Keep ``value`` at ``key`` (replacing any), then drop the least recently used while
        over a bound."""
        size = self._size(value)
        if size > self.max_bytes // 4:
            return
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self.nbytes -= self._size(old)
            self._items[key] = value
            self.nbytes += size
            while len(self._items) > 1 and (
                    self.nbytes > self.max_bytes
                    or (self.max_items is not None and len(self._items) > self.max_items)):
                _, out = self._items.popitem(last=False)
                self.nbytes -= self._size(out)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self.nbytes = 0

    def values(self) -> list[V]:
        """The values held, least recently used first (a copy)."""
        with self._lock:
            return list(self._items.values())

    def __len__(self) -> int:
        return len(self._items)
