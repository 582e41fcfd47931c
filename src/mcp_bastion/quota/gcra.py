"""GCRA, the generic cell rate algorithm (ITU-T I.371), in integer microseconds.

Per key one number is kept: the theoretical arrival time (TAT) of the next request at the
sustained rate. A request of `cost` is admitted when the new TAT stays within `burst`
intervals of now; admitting it moves the TAT on. It admits exactly what a token bucket of
capacity `burst` refilled one token per `interval` admits, with one number instead of two.
A key whose TAT is in the past is the same as a key never seen, so forgetting it loses
nothing (the stores rely on this: Redis keys expire then, the memory store drops them).

Integers, so Python and the Redis script (`redis_store.py`) compute the same thing.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["Admission", "admit", "retry_seconds"]


class Admission(NamedTuple):
    allowed: bool
    tat: int  # the key's new TAT when allowed, its unchanged TAT otherwise
    retry_after_us: int  # when refused: how long until the same request would be admitted


def admit(tat: int | None, now: int, interval: int, burst: int, cost: int = 1) -> Admission:
    """Decide one request of `cost` against a key whose TAT is `tat` (None: never seen).

    A clock that steps back cannot admit more: the TAT never moves back with it.
    """
    start = now if tat is None or tat < now else tat
    new_tat = start + interval * cost
    over = new_tat - now - interval * burst
    if over > 0:
        return Admission(False, start if tat is not None else now, over)
    return Admission(True, new_tat, 0)


def retry_seconds(retry_after_us: int) -> int:
    """Retry-After in whole seconds (RFC 9110 §10.2.3), rounded up and at least 1."""
    return max(1, -(-retry_after_us // 1_000_000))
