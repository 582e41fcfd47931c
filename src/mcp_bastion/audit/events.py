"""The audit event: one per MCP message decided, serialized as one JSON line.

Every string field goes through orjson, so a CR/LF or escape sequence in a tool name or a
subject cannot forge a second line (SL-03). The token appears only as a hash.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, fields
from typing import Literal

import orjson

__all__ = ["AuditEvent"]


@dataclass(frozen=True, slots=True)
class AuditEvent:
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
        record = {
            "event": "mcp.request",
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(millis // 1000))
            + f".{millis % 1000:03d}Z",
            # Field by field rather than dataclasses.asdict: this runs once per request.
            **{name: getattr(self, name) for name in _FIELDS[1:]},
        }
        # orjson leaves U+2028/U+2029 raw; some line splitters (str.splitlines) break on them.
        line = orjson.dumps(record).replace(b"\xe2\x80\xa8", b"\\u2028").replace(b"\xe2\x80\xa9", b"\\u2029")
        return line + b"\n"


_FIELDS = tuple(f.name for f in fields(AuditEvent))
