"""Where quota state lives, behind one small protocol: `take(asks)` decides a whole request.

A request may count against several buckets (several rules, a batch of calls); `take`
admits all of them or none, so a refused request consumes nothing. Two stores: `MemoryStore`
(this process, the default) and `RedisStore` (`redis_store.py`, shared by replicas).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import NamedTuple, Protocol

from ..errors import BastionError
from .gcra import admit

__all__ = ["Ask", "MemoryStore", "QuotaStore", "Refusal", "StoreUnavailable"]


class Ask(NamedTuple):
    """One bucket a request counts against: its key (a digest), the rule's interval and burst
    (microseconds, requests), and how many of the request's calls it counts."""

    key: str
    interval: int
    burst: int
    cost: int


class Refusal(NamedTuple):
    which: int  # the ask that refused (the one that would wait longest)
    retry_after_us: int


class StoreUnavailable(BastionError):
    """The store could not decide (Redis unreachable, timed out, answered garbage)."""

    status = 503
    error = "temporarily_unavailable"


class QuotaStore(Protocol):
    async def take(self, asks: Sequence[Ask]) -> Refusal | None:
        """Admit every ask (and record it) or none; the refusal that waits longest, if any.
        Raises StoreUnavailable when it cannot decide."""
        ...

    async def close(self) -> None: ...


def monotonic_us() -> int:
    return time.monotonic_ns() // 1000


class MemoryStore:
    """GCRA state in this process, at most `max_keys` keys.

    Keys whose TAT has passed are forgotten without loss (gcra.py). When the store is full
    of live keys, the least recently used one is dropped: its owner gets a fresh burst, which
    is the cost of bounded memory against callers that mint keys (tool names are chosen by
    the caller; docs/security.md). Decisions take no await, so they are atomic on the loop.
    """

    def __init__(self, max_keys: int, clock: Callable[[], int] = monotonic_us) -> None:
        self._max_keys = max_keys
        self._clock = clock
        self._tats: OrderedDict[str, int] = OrderedDict()
        self.evicted_live = 0  # live keys dropped because the store was full

    def __len__(self) -> int:
        return len(self._tats)

    async def take(self, asks: Sequence[Ask]) -> Refusal | None:
        now = self._clock()
        tats = self._tats
        news: list[int] = []
        refusal: Refusal | None = None
        for i, (key, interval, burst, cost) in enumerate(asks):
            admission = admit(tats.get(key), now, interval, burst, cost)
            if not admission.allowed and (
                refusal is None or admission.retry_after_us > refusal.retry_after_us
            ):
                refusal = Refusal(i, admission.retry_after_us)
            news.append(admission.tat)
        if refusal is not None:
            for ask in asks:  # refused keys are in use too: keep them from being evicted first
                if ask.key in tats:
                    tats.move_to_end(ask.key)
            return refusal
        for ask, tat in zip(asks, news, strict=True):
            tats[ask.key] = tat
            tats.move_to_end(ask.key)
        while len(tats) > self._max_keys:
            oldest, tat = next(iter(tats.items()))
            del tats[oldest]
            if tat > now:
                self.evicted_live += 1
        return None

    async def close(self) -> None:
        self._tats.clear()
