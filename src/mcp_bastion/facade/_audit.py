"""The facade's own endpoints in the gateway's audit feed.

Every sign-in, consent decision, token issued or refused, refresh-token reuse, revocation,
client registration (DCR and Client ID Metadata Documents) and ID-JAG verdict becomes one
:class:`~mcp_bastion.audit.AuditEvent` in the same sink as the MCP requests, with an
``event`` of its own (``docs/audit.md`` "Authorization facade events"). An event names the
user, the client, the resource and, for a token, its SHA-256 prefix (the ``token_hash`` the
gateway's request events carry for the same token); never a token, code, secret or cookie.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

from ..audit import AuditEvent, AuditSink
from ..devidp import IdpEvent

__all__ = ["FACADE_EVENTS", "FacadeAudit"]

#: The ``event`` of each kind of thing the facade records.
FACADE_EVENTS: Mapping[str, str] = {
    "sign_in": "facade.sign_in",
    "consent": "facade.consent",
    "token": "facade.token",
    "refresh_reuse": "facade.refresh_token_reuse",
    "revocation": "facade.revocation",
    "registration": "facade.registration",
    "assertion": "facade.id_jag",
}
#: A refreshed token is its own event, so a SIEM can count refreshes without parsing `method`.
REFRESHED = "facade.token_refresh"
_MAX_FIELD_CHARS = 2048  # a CIMD client id is a URL; nothing recorded needs more


class FacadeAudit:
    """The devidp core's :class:`~mcp_bastion.devidp.IdpEvents`, writing to the gateway's sink."""

    def __init__(self, sink: AuditSink, server: str, issuer: str, clock: Callable[[], float]) -> None:
        self._sink = sink
        self._server = server  # the identity provider's name
        self._issuer = issuer
        self._clock = clock

    def record(self, event: IdpEvent) -> None:
        kind = FACADE_EVENTS[event.kind]
        if event.kind == "token" and event.action == "refresh_token":
            kind = REFRESHED
        self._sink.emit(
            AuditEvent(
                self._clock(),
                os.urandom(16).hex(),  # no trace context crosses a browser redirect
                self._server,
                _capped(event.action) or "",
                _capped(event.resource),
                "allow" if event.allowed else "deny",
                event.reason,
                event.status,
                0.0,
                _capped(event.subject),
                _capped(event.client_id),
                self._issuer,
                event.token_hash,
                event=kind,
            )
        )


def _capped(value: str | None) -> str | None:
    return None if value is None else value[:_MAX_FIELD_CHARS]
