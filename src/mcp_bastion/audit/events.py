"""The audit event: one per MCP message decided, serialized as one JSON line.

Every string field goes through orjson, so a CR/LF or escape sequence in a tool name or a
subject cannot forge a second line (SL-03). The token appears only as a hash.
"""

from __future__ import annotations

import functools
import time
from typing import Literal, NamedTuple

import orjson

__all__ = ["AuditEvent"]


class AuditEvent(NamedTuple):
    time: float
    trace_id: str
    server: str
    method: str
    target: str | None
    decision: Literal["allow", "deny", "error"]
    reason: str
    status: int
    latency_ms: float
    subject: str | None = None
    client_id: str | None = None
    issuer: str | None = None
    token_hash: str | None = None
    protocol_version: str | None = None
    scopes_required: tuple[str, ...] = ()

    def to_json(self) -> bytes:
        # Whole milliseconds first: `time % 1 * 1000` truncates 1700000000.123 to .122.
        millis = round(self.time * 1000)
        record = dict(zip(_KEYS, (_EVENT, *self), strict=True))  # in C: runs once per request
        record["time"] = f"{_second_text(millis // 1000)}.{millis % 1000:03d}Z"
        line = orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE)
        if b"\xe2\x80" in line:
            # orjson leaves U+2028/U+2029 raw; some line splitters (str.splitlines) break on them.
            line = line.replace(b"\xe2\x80\xa8", b"\\u2028").replace(b"\xe2\x80\xa9", b"\\u2029")
        return line


_EVENT = "mcp.request"
_KEYS = ("event", *AuditEvent._fields)


@functools.lru_cache(maxsize=4)
def _second_text(second: int) -> str:
    """The date and time of a whole second (events of one second share it)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
