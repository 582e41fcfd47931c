"""The one bounded cache: a dict that never grows past its bound.

Everything the gateway remembers between requests (verified tokens, minted tokens, opened
session ids, scope expansions, parsed header values) is keyed by something a client
chooses, so every such memory has a bound, or a client could grow it until the process
dies. When full, the oldest entry goes first (dicts keep insertion order), which costs
nothing per hit, unlike an LRU that reorders on every lookup.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator
from typing import Generic, TypeVar

__all__ = ["BoundedCache"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class BoundedCache(Generic[K, V]):
    __slots__ = ("_data", "max_entries")

    def __init__(self, max_entries: int) -> None:
        if max_entries < 1:
            raise ValueError("a bounded cache needs room for at least one entry")
        self._data: dict[K, V] = {}
        self.max_entries = max_entries

    def get(self, key: K) -> V | None:
        return self._data.get(key)

    def put(self, key: K, value: V) -> None:
        data = self._data
        if len(data) >= self.max_entries and key not in data:
            del data[next(iter(data))]  # the oldest: insertion order
        data[key] = value

    def pop(self, key: K) -> V | None:
        return self._data.pop(key, None)

    def clear(self) -> None:
        self._data.clear()

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __len__(self) -> int:
        return len(self._data)

    def __iter__(self) -> Iterator[K]:
        return iter(self._data)
