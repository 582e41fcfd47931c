"""What the authorization server did, told to whoever listens: the seam for an audit feed.

The development IdP alone listens to nothing (:class:`NoEvents`); the authorization facade
turns each :class:`IdpEvent` into a gateway audit event. An event never holds a token, code,
secret or cookie: an issued or revoked token appears only as :func:`token_hash`, the same
SHA-256 prefix the gateway's request events carry, so the two feeds can be joined.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import orjson

EventKind = Literal["sign_in", "consent", "token", "refresh_reuse", "revocation", "registration", "assertion"]


@dataclass(frozen=True)
class IdpEvent:
    """One thing the authorization server decided."""

    kind: EventKind
    allowed: bool
    #: The grant type (token events), ``dcr`` or ``cimd`` (registrations), else the endpoint.
    action: str
    #: The server's own words: ``ok``, or the OAuth error code and the server's description.
    reason: str
    #: The HTTP status answered (0 when the event is not tied to one answer).
    status: int
    client_id: str | None = None
    subject: str | None = None
    resource: str | None = None
    token_hash: str | None = None


class IdpEvents(Protocol):
    """Where events go. ``record`` must not block or raise: it runs on the request path."""

    def record(self, event: IdpEvent) -> None: ...


class NoEvents:
    """The development IdP's default: nobody listens."""

    def record(self, event: IdpEvent) -> None:
        return None


def token_hash(token: str) -> str:
    """The id under which a token may be named: a SHA-256 prefix, as the gateway's events use."""
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()[:32]


def own_token_claims(token: str) -> dict[str, Any]:
    """The claims of an access token this server has just signed (read, not verified)."""
    try:
        payload = token.split(".")[1]
        claims = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, binascii.Error, ValueError):
        return {}
    return claims if isinstance(claims, dict) else {}


def error_reason(error: str, message: str) -> str:
    """An OAuth refusal in the server's words (its descriptions never quote what was presented)."""
    return f"{error}: {message}"
