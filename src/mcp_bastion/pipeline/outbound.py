"""The request the upstream receives: an allow-list of headers and the gateway's credential.

Only the headers below go upstream. The client's Authorization, cookies and session id
never do (TS-08, "Token Passthrough"); the upstream session id travels only as the gateway
unsealed it, and the credential is the route's own (`credentials/`), carrying only the
scopes this request's calls need.
"""

from __future__ import annotations

from typing import Final

from ..asgi import Headers
from .exchange import Exchange

__all__ = ["USER_AGENT", "Outbound", "outbound_request"]

USER_AGENT: Final = b"mcp-bastion/0.1"
_PASSED_REQUEST_HEADERS: Final = tuple(
    (name, name.encode())
    for name in ("mcp-protocol-version", "mcp-method", "mcp-name", "last-event-id", "tracestate")
)


class Outbound:
    """The headers to send, and the secret among them an upstream must not quote back (SL-02)."""

    __slots__ = ("headers", "secret")

    def __init__(self, headers: Headers, secret: bytes | None) -> None:
        self.headers = headers
        self.secret = secret


async def outbound_request(ex: Exchange) -> Outbound:
    source = ex.headers
    headers: Headers = [
        (b"accept", (source.get("accept") or "application/json, text/event-stream").encode("latin-1")),
        (b"accept-encoding", b"identity"),  # relay bytes as they are; no re-compression
        (b"user-agent", USER_AGENT),
        (b"traceparent", ex.trace.header()),
    ]
    if ex.http_method == "POST":
        headers.append((b"content-type", b"application/json"))
    for name, encoded in _PASSED_REQUEST_HEADERS:
        value = source.get(name)
        if value is not None:
            headers.append((encoded, value.encode("latin-1")))
    headers.extend(source.params)
    if ex.upstream_session is not None:
        headers.append((b"mcp-session-id", ex.upstream_session.encode("ascii")))
    assert ex.principal is not None
    credential = await ex.route.credential.header(ex.principal, call_scopes(ex.required))
    if credential is None:
        return Outbound(headers, None)
    headers.append(credential)
    secret = credential[1]
    # The secret part of the header value: what an upstream could quote back (SL-02).
    return Outbound(headers, secret.split(b" ", 1)[1] if secret[:7].lower() == b"bearer " else secret)


def call_scopes(required: tuple[tuple[str, ...], ...]) -> tuple[str, ...]:
    """The scopes an upstream credential carries: what this request's calls need, nothing more."""
    if len(required) == 1:
        return required[0]
    return tuple(dict.fromkeys(scope for needed in required for scope in needed))
