"""Concurrency caps per subject: POSTs in flight and GET (SSE) streams held open.

Counted in this process: a cap is per replica (docs/quotas.md). Only subjects with something
open have an entry, so memory follows what is open, never who has called.
"""

from __future__ import annotations

from ..auth.principal import Principal
from ..errors import QuotaExceeded

__all__ = ["ConcurrencyCaps", "Held"]

Held = tuple[dict[tuple[str, str], int], tuple[str, str]]


class ConcurrencyCaps:
    def __init__(self, max_in_flight: int | None, max_streams: int | None) -> None:
        self._caps = {False: max_in_flight, True: max_streams}
        self._open: dict[bool, dict[tuple[str, str], int]] = {False: {}, True: {}}

    def enter(self, principal: Principal, stream: bool) -> Held | None:
        """Count one more open request of this subject, or refuse it (429)."""
        cap = self._caps[stream]
        if cap is None:
            return None
        counts = self._open[stream]
        key = (principal.issuer, principal.subject)
        held = counts.get(key, 0)
        if held >= cap:
            what = "streams" if stream else "calls in flight"
            raise QuotaExceeded(
                f"too many {what} for this caller (at most {cap})",
                quota="concurrency.streams" if stream else "concurrency.in_flight",
                retry_after=1,
            )
        counts[key] = held + 1
        return counts, key

    @staticmethod
    def leave(held: Held) -> None:
        counts, key = held
        left = counts[key] - 1
        if left:
            counts[key] = left
        else:
            del counts[key]

    def open_count(self, principal: Principal, stream: bool) -> int:
        return self._open[stream].get((principal.issuer, principal.subject), 0)
