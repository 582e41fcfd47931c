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
    # The policies that refused the call (`@id` or `file#n`); empty when none did.
    policy_ids: tuple[str, ...] = ()
    # One entry per safety filter asked (`result:secrets:redact:jwt`): rule ids, never the text.
    filters: tuple[str, ...] = ()
    # The quota rule or cap that refused the request (docs/quotas.md); null when none did.
    quota: str | None = None
    # The kind of event: `mcp.request`, or one of the authorization facade's (facade/_audit.py).
    event: str = "mcp.request"

    def to_json(self) -> bytes:
        # Unpacked, then a dict literal: the cheapest way to a dict here (this runs per request);
        # a field added to the class and not here fails the unpacking at once.
        (
            when,
            trace_id,
            server,
            method,
            target,
            decision,
            reason,
            status,
            latency_ms,
            subject,
            client_id,
            issuer,
            token_hash,
            protocol_version,
            scopes_required,
            policy_ids,
            filters,
            quota,
            event,
        ) = self
        # Whole milliseconds first: `time % 1 * 1000` truncates 1700000000.123 to .122.
        millis = round(when * 1000)
        record = {
            "event": event,
            "time": f"{_second_text(millis // 1000)}.{millis % 1000:03d}Z",
            "trace_id": trace_id,
            "server": server,
            "method": method,
            "target": target,
            "decision": decision,
            "reason": reason,
            "status": status,
            "latency_ms": latency_ms,
            "subject": subject,
            "client_id": client_id,
            "issuer": issuer,
            "token_hash": token_hash,
            "protocol_version": protocol_version,
            "scopes_required": scopes_required,
            "policy_ids": policy_ids,
            "filters": filters,
            "quota": quota,
        }
        line = orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE)
        if not line.isascii():
            # orjson leaves U+2028/U+2029 raw; some line splitters (str.splitlines) break on them.
            line = line.replace(b"\xe2\x80\xa8", b"\\u2028").replace(b"\xe2\x80\xa9", b"\\u2029")
        return line


@functools.lru_cache(maxsize=4)
def _second_text(second: int) -> str:
    """The date and time of a whole second (events of one second share it)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
