"""Telling operators: a definition that is not the approved one, as a log line and an audit event.

Each distinct definition is told once per process (`ToolPins` remembers what it told). The
audit event is the feed's usual record: `method` `tools/list` (how the gateway learned it),
`target` the tool, `decision` `deny` when enforce mode withholds the tool and `allow` when
it is only recorded, `status` 0 (no HTTP answer of its own), the caller whose list showed it
and that request's trace id, and a `reason` that starts with `tool definition`. Names and
member names come from the upstream: they reach the log line escaped (`ascii()`), and the
audit line through its JSON encoding.
"""

from __future__ import annotations

import logging
import time

from ..audit import AuditEvent, AuditSink
from ..auth.principal import Principal
from .pins import ToolChange
from .store import Reporter

__all__ = ["change_reporter", "describe"]

log = logging.getLogger("mcp_bastion.pinning")
MAX_FIELD_CHARS = 40


def describe(change: ToolChange) -> str:
    """The change in one sentence, the gateway's own words (digests and member names only)."""
    if change.status == "added":
        what = "tool definition added: the tool has no pin"
    elif change.status == "unpinnable":
        what = "tool definition cannot be pinned (nested too deeply, or not canonical JSON)"
    else:
        fields = ", ".join(_field(name) for name in change.fields) or "the definition"
        what = f"tool definition changed since it was pinned ({fields}): {change.pinned} -> {change.seen}"
    if change.withheld:
        return f"{what}; withheld until approved (mcp-bastion pin diff shows it)"
    if change.lowered:
        return f"{what}; recorded, and decided with the pinned annotations until approved"
    return f"{what}; recorded"


def change_reporter(server: str, sink: AuditSink) -> Reporter:
    """The `Reporter` a server's pins tell: a warning in the log and an event in the audit feed."""

    def report(change: ToolChange, principal: Principal | None, trace_id: str) -> None:
        reason = describe(change)
        log.warning("server %s: tool %a: %s", server, change.tool, reason)
        subject, client_id, issuer, token_hash = (
            (principal.subject, principal.client_id, principal.issuer, principal.token_hash)
            if principal is not None
            else (None, None, None, None)
        )
        sink.emit(
            AuditEvent(
                time.time(),
                trace_id,
                server,
                "tools/list",
                change.tool,
                "deny" if change.withheld else "allow",
                reason,
                0,
                0.0,
                subject,
                client_id,
                issuer,
                token_hash,
            )
        )

    return report


def _field(name: str) -> str:
    shown = name if name.isascii() and name.isprintable() else ascii(name)
    return shown if len(shown) <= MAX_FIELD_CHARS else shown[: MAX_FIELD_CHARS - 1] + "…"
