"""A small incremental Server-Sent Events splitter: each event's data may be kept, replaced
or dropped (a `tools/list` result to filter, a response for another request to drop).

Event framing (`event:`, `id:`, comments) is kept byte for byte. The rewrite is synchronous;
an event whose new data needs awaiting (a result the safety filters screen) is answered
with HOLD: the rewriter stops at that event, `held` is true, and `resume(data)` emits it
with the data the caller settled on, then goes on with what is buffered after it, so events
leave in the order they came.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from ..errors import UpstreamError

__all__ = ["DROP", "HOLD", "Rewrite", "SseRewriter"]


class _Drop:
    """The answer that removes an event from the stream."""

    def __repr__(self) -> str:
        return "DROP"


class _Hold:
    """The answer that stops the stream at an event until `resume` gives its data."""

    def __repr__(self) -> str:
        return "HOLD"


DROP = _Drop()
HOLD = _Hold()
Rewrite = bytes | None | _Drop | _Hold  # replacement data, None to keep, DROP to remove, HOLD to wait

_BOUNDARY = re.compile(rb"\r\n\r\n|\n\n|\r\r")


class SseRewriter:
    """Feeds bytes in, gets bytes out; each complete event's data may be replaced."""

    def __init__(self, rewrite_data: Callable[[bytes], Rewrite], *, max_event_bytes: int) -> None:
        self._rewrite = rewrite_data
        self._max = max_event_bytes
        self._buffer = b""
        self._scanned = 0  # bytes of the buffer already searched for a boundary
        self._held: tuple[list[bytes], bytes] | None = None  # an event's other lines, its boundary

    @property
    def held(self) -> bool:
        return self._held is not None

    def feed(self, chunk: bytes) -> bytes:
        self._buffer += chunk
        return self._drain()

    def resume(self, data: bytes | _Drop) -> bytes:
        """Emit the held event with `data` (or drop it), then carry on with the buffer."""
        assert self._held is not None
        kept, boundary = self._held
        self._held = None
        out = b"" if isinstance(data, _Drop) else b"\n".join([*kept, b"data: " + data]) + boundary
        return out + self._drain()

    def _drain(self) -> bytes:
        out: list[bytes] = []
        # Resume the search just before where the last one stopped (a boundary is at most 4
        # bytes and may straddle chunks), so a big event in many small chunks stays linear.
        start = max(0, self._scanned - 3)
        while self._held is None and (match := _BOUNDARY.search(self._buffer, start)):
            start = 0
            if match.start() > self._max:
                # A whole event can arrive in the chunk that completes it: the cap applies to it too.
                raise UpstreamError("upstream sent an oversized event")
            event, self._buffer = self._buffer[: match.start()], self._buffer[match.end() :]
            kept = self._event(event, match.group())
            if kept is not None:
                out.append(kept + match.group())
        if self._held is not None:
            self._scanned = 0  # what follows the held event is searched afresh on resume
            return b"".join(out)
        # Up to 3 buffered bytes may be the start of the boundary that ends an event of exactly
        # the cap: counting them would make the verdict depend on where TCP cut the stream.
        if len(self._buffer) > self._max + 3:
            raise UpstreamError("upstream sent an oversized event")
        self._scanned = len(self._buffer)
        return b"".join(out)

    def finish(self) -> bytes:
        """The last event, unterminated (when `held` afterwards, `resume` emits it)."""
        rest, self._buffer = self._buffer, b""
        return (self._event(rest, b"") or b"") if rest.strip() else rest

    def _event(self, event: bytes, boundary: bytes) -> bytes | None:
        lines = re.split(rb"\r\n|\n|\r", event)
        data = [line[5:].removeprefix(b" ") for line in lines if line.startswith(b"data:")]
        if not data:
            return event
        replaced = self._rewrite(b"\n".join(data))
        if replaced is None:
            return event
        kept = [line for line in lines if not line.startswith(b"data:")]
        if isinstance(replaced, _Drop):
            return None
        if isinstance(replaced, _Hold):
            self._held = (kept, boundary)
            return None
        return b"\n".join([*kept, b"data: " + replaced])
