"""W3C Trace Context (`traceparent`): accept a valid one, else start a trace; always send one on."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

__all__ = ["TraceContext"]

_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
_INVALID_TRACE = "0" * 32
_INVALID_SPAN = "0" * 16


@dataclass(frozen=True, slots=True)
class TraceContext:
    trace_id: str
    span_id: str  # the gateway's own span: the parent of the upstream request
    flags: str

    @classmethod
    def from_header(cls, value: str | None) -> TraceContext:
        span = os.urandom(8).hex()
        if value is not None:
            match = _TRACEPARENT.match(value.strip())
            if match and match.group(1) != _INVALID_TRACE and match.group(2) != _INVALID_SPAN:
                return cls(match.group(1), span, match.group(3))
        return cls(os.urandom(16).hex(), span, "01")

    def header(self) -> bytes:
        return f"00-{self.trace_id}-{self.span_id}-{self.flags}".encode("ascii")
