"""W3C Trace Context (`traceparent`): accept a valid one, else start a trace; always send one on."""

from __future__ import annotations

import os
import re
from typing import NamedTuple

__all__ = ["TraceContext"]

_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
_INVALID_TRACE = "0" * 32
_INVALID_SPAN = "0" * 16


class TraceContext(NamedTuple):
    trace_id: str
    span_id: str  # the gateway's own span: the parent of the upstream request
    flags: str

    @classmethod
    def from_header(cls, value: str | None) -> TraceContext:
        span = _random_hex(8)
        if value is not None:
            match = _TRACEPARENT.match(value.strip())
            if match and match.group(1) != _INVALID_TRACE and match.group(2) != _INVALID_SPAN:
                return cls(match.group(1), span, match.group(3))
        return cls(_random_hex(16), span, "01")

    def header(self) -> bytes:
        return f"00-{self.trace_id}-{self.span_id}-{self.flags}".encode("ascii")


class _RandomBytes:
    """Random bytes from the OS, fetched 4 KiB at a time: a request needs 8 or 24 of them, and a
    system call per request is measurable on the hot path. Refilled from scratch in a forked
    worker, so no two processes hand out the same ids."""

    SIZE = 4096

    def __init__(self) -> None:
        self._buffer = b""
        self._offset = 0

    def take(self, count: int) -> bytes:
        end = self._offset + count
        if end > len(self._buffer):
            self._buffer, self._offset, end = os.urandom(self.SIZE), 0, count
        chunk = self._buffer[self._offset : end]
        self._offset = end
        return chunk

    def forget(self) -> None:
        self._buffer, self._offset = b"", 0


_RANDOM = _RandomBytes()
os.register_at_fork(after_in_child=_RANDOM.forget)


def _random_hex(count: int) -> str:
    return _RANDOM.take(count).hex()
