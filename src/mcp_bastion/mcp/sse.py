"""A small incremental Server-Sent Events splitter: each event's data may be kept, replaced
or dropped (a `tools/list` result to filter, a response for another request to drop).

Event framing (`event:`, `id:`, comments) is kept byte for byte.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from ..errors import UpstreamError

__all__ = ["DROP", "Rewrite", "SseRewriter"]


class _Drop:
    """The answer that removes an event from the stream."""

    def __repr__(self) -> str:
        return "DROP"


DROP = _Drop()
Rewrite = bytes | None | _Drop  # replacement data, None to keep, DROP to remove

_BOUNDARY = re.compile(rb"\r\n\r\n|\n\n|\r\r")


class SseRewriter:
    """Feeds bytes in, gets bytes out; each complete event's data may be replaced."""

    def __init__(self, rewrite_data: Callable[[bytes], Rewrite], *, max_event_bytes: int) -> None:
        self._rewrite = rewrite_data
        self._max = max_event_bytes
        self._buffer = b""
        self._scanned = 0  # bytes of the buffer already searched for a boundary

    def feed(self, chunk: bytes) -> bytes:
        self._buffer += chunk
        out: list[bytes] = []
        # Resume the search just before where the last one stopped (a boundary is at most 4
        # bytes and may straddle chunks), so a big event in many small chunks stays linear.
        start = max(0, self._scanned - 3)
        while match := _BOUNDARY.search(self._buffer, start):
            start = 0
            if match.start() > self._max:
                # A whole event can arrive in the chunk that completes it: the cap applies to it too.
                raise UpstreamError("upstream sent an oversized event")
            event, self._buffer = self._buffer[: match.start()], self._buffer[match.end() :]
            kept = self._event(event)
            if kept is not None:
                out.append(kept + match.group())
        # Up to 3 buffered bytes may be the start of the boundary that ends an event of exactly
        # the cap: counting them would make the verdict depend on where TCP cut the stream.
        if len(self._buffer) > self._max + 3:
            raise UpstreamError("upstream sent an oversized event")
        self._scanned = len(self._buffer)
        return b"".join(out)

    def finish(self) -> bytes:
        rest, self._buffer = self._buffer, b""
        return (self._event(rest) or b"") if rest.strip() else rest

    def _event(self, event: bytes) -> bytes | None:
        lines = re.split(rb"\r\n|\n|\r", event)
        data = [line[5:].removeprefix(b" ") for line in lines if line.startswith(b"data:")]
        if not data:
            return event
        replaced = self._rewrite(b"\n".join(data))
        if replaced is None:
            return event
        if isinstance(replaced, _Drop):
            return None
        kept = [line for line in lines if not line.startswith(b"data:")]
        return b"\n".join([*kept, b"data: " + replaced])
