"""The audit step: what one exchange decided, as one event per JSON-RPC message, to the sink.

It runs after the answer, whatever happened (the gateway calls it in a `finally`), and
reads only what the stages recorded on the Exchange: the token appears as its hash, never
itself; a reason is the gateway's own words, never an upstream's or a token's.
"""

from __future__ import annotations

import time

from ..audit import AuditEvent, AuditSink
from ..mcp.calls import Call
from ..mcp.era import LEGACY_VERSIONS
from .exchange import Exchange

__all__ = ["AuditStep"]


class AuditStep:
    def __init__(self, sink: AuditSink) -> None:
        self.sink = sink

    def __call__(self, ex: Exchange) -> None:
        latency = round((time.perf_counter() - ex.started) * 1000, 3)
        now = time.time()
        principal = ex.principal
        decision = ex.outcome or "allow"
        reason = ex.reason or ("ok" if decision == "allow" else "")
        version = ex.era.version if ex.era else None
        subject, client_id, issuer, token_hash = (
            (principal.subject, principal.client_id, principal.issuer, principal.token_hash)
            if principal
            else (None, None, None, None)
        )
        required = ex.required
        policy_ids = ex.policy_ids
        filters = ex.filters or {}
        # One event per message of the request; one for the HTTP exchange when none was read.
        calls = ex.calls or (Call(ex.http_method, None, None),)
        emit = self.sink.emit
        for i, call in enumerate(calls):
            emit(
                AuditEvent(
                    now,
                    ex.trace.trace_id,
                    ex.route.name,
                    call.method or "response",
                    call.name,
                    decision,
                    reason,
                    ex.status,
                    latency,
                    subject,
                    client_id,
                    issuer,
                    token_hash,
                    _spoken(call, version),
                    required[i] if i < len(required) else (),
                    policy_ids[i] if i < len(policy_ids) else (),
                    filters.get(i, ()),
                    ex.quota,
                )
            )


def _spoken(call: Call, version: str | None) -> str | None:
    """The version a message speaks: an `initialize` carries no version header (so the
    transport assumes 2025-03-26) but names the one it asks for; a known one is recorded."""
    if call.method == "initialize" and call.params is not None:
        asked = call.params.get("protocolVersion")
        if isinstance(asked, str) and asked in LEGACY_VERSIONS:
            return asked
    return version
