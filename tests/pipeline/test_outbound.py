"""What goes upstream: an allow-list of headers and the gateway's own credential (TS-08).

The client's Authorization, cookies and sealed session id never leave the gateway (MCP
authorization, "Token Passthrough"); the upstream session id goes only as the gateway
unsealed it; the credential asked for carries only the scopes this request's calls need.
"""

from __future__ import annotations

import asyncio

import pytest

from mcp_bastion.auth.principal import Principal
from mcp_bastion.pipeline.exchange import Exchange
from mcp_bastion.pipeline.outbound import call_scopes, outbound_request

from .fakes import exchange, principal, route

CLIENT_TOKEN = "client-token-must-stay-here"
TRACE = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
EVERYTHING = {
    "host": "gw.example",
    "origin": "https://gw.example",
    "authorization": f"Bearer {CLIENT_TOKEN}",
    "cookie": "sid=client-cookie",
    "content-type": "application/json; charset=utf-8",
    "content-length": "42",
    "accept": "application/json, text/event-stream",
    "mcp-protocol-version": "2025-11-25",
    "mcp-method": "tools/call",
    "mcp-name": "search",
    "mcp-session-id": "sealed-id-the-upstream-never-sees",
    "last-event-id": "ev-9",
    "traceparent": TRACE,
    "tracestate": "vendor=abc",
    "x-forwarded-host": "gw.example",
    "x-forwarded-proto": "https",
    "x-forwarded-for": "198.51.100.7",
    "x-api-key": "client-api-key",
    "proxy-authorization": "Basic cHJveHk6cHc=",
    "mcp-param-region": "eu-west",
}


class FakeCredential:
    """An async credential that yields to the loop before answering, and records its asks."""

    def __init__(self, header: tuple[bytes, bytes] | None) -> None:
        self._header = header
        self.asked: list[tuple[Principal, tuple[str, ...]]] = []

    async def header(self, who: Principal, scopes: tuple[str, ...]) -> tuple[bytes, bytes] | None:
        await asyncio.sleep(0)  # a real one fetches from an IdP: it must be awaited, not called
        self.asked.append((who, scopes))
        return self._header


def _exchange(
    credential: FakeCredential, method: str = "POST", headers: dict[str, str] | None = None
) -> Exchange:
    ex = exchange(route(credential=credential), method, EVERYTHING if headers is None else headers)
    ex.principal = principal("tools.read")
    return ex


async def test_exactly_the_allow_listed_headers_go_out_with_the_credential_last() -> None:
    credential = FakeCredential((b"authorization", b"Bearer minted.jwt.value"))
    ex = _exchange(credential)
    ex.upstream_session = "upstream-session-7"
    out = await outbound_request(ex)
    names = [name for name, _ in out.headers]
    assert sorted(names) == sorted(
        [
            b"accept",
            b"accept-encoding",
            b"user-agent",
            b"traceparent",
            b"content-type",
            b"mcp-protocol-version",
            b"mcp-method",
            b"mcp-name",
            b"last-event-id",
            b"tracestate",
            b"mcp-param-region",
            b"mcp-session-id",
            b"authorization",
        ]
    )
    assert out.headers[-1] == (b"authorization", b"Bearer minted.jwt.value")
    sent = dict(out.headers)
    assert sent[b"accept"] == b"application/json, text/event-stream"
    assert sent[b"accept-encoding"] == b"identity"  # bytes relayed as they are, never re-compressed
    assert sent[b"user-agent"].startswith(b"mcp-bastion/")
    assert sent[b"content-type"] == b"application/json"  # ours, not the client's parameters
    assert sent[b"mcp-protocol-version"] == b"2025-11-25"
    assert sent[b"mcp-method"] == b"tools/call"
    assert sent[b"mcp-name"] == b"search"
    assert sent[b"last-event-id"] == b"ev-9"
    assert sent[b"tracestate"] == b"vendor=abc"
    assert sent[b"mcp-param-region"] == b"eu-west"  # forwarded untouched (transports §Custom Headers)
    assert sent[b"mcp-session-id"] == b"upstream-session-7"  # the unsealed one, never the client's
    # The same trace, the gateway's own span as the parent of the upstream request.
    trace = sent[b"traceparent"].decode()
    assert trace.startswith("00-0af7651916cd43dd8448eb211c80319c-")
    assert trace.split("-")[2] != "b7ad6b7169203331"


async def test_the_clients_credentials_never_go_out() -> None:
    ex = _exchange(FakeCredential(None))
    out = await outbound_request(ex)
    blob = b"\n".join(name + b": " + value for name, value in out.headers)
    for secret in (CLIENT_TOKEN, "client-cookie", "client-api-key", "cHJveHk6cHc=", "sealed-id"):
        assert secret.encode() not in blob
    assert not {name for name, _ in out.headers} & {
        b"authorization",
        b"cookie",
        b"proxy-authorization",
        b"host",
        b"origin",
        b"content-length",
        b"mcp-session-id",
        b"x-forwarded-for",
    }
    assert out.secret is None


async def test_a_get_has_no_content_type_and_a_missing_accept_gets_the_mcp_default() -> None:
    ex = _exchange(FakeCredential(None), "GET", {"host": "gw.example"})
    out = await outbound_request(ex)
    sent = dict(out.headers)
    assert b"content-type" not in sent
    assert sent[b"accept"] == b"application/json, text/event-stream"


async def test_the_credential_is_asked_for_the_caller_and_the_calls_scopes() -> None:
    credential = FakeCredential((b"x-api-key", b"upstream-static-secret"))
    ex = _exchange(credential)
    ex.required = (("tools.read",), (), ("tools.write", "tools.read"))
    await outbound_request(ex)
    assert credential.asked == [(ex.principal, ("tools.read", "tools.write"))]


@pytest.mark.parametrize(
    ("value", "secret"),
    [
        (b"Bearer eyJhbGciOi.payload.sig", b"eyJhbGciOi.payload.sig"),
        (b"bearer eyJhbGciOi.payload.sig", b"eyJhbGciOi.payload.sig"),  # scheme names are case-insensitive
        (b"BEARER abc def", b"abc def"),
        (b"Token 0123456789abcdef", b"Token 0123456789abcdef"),  # not bearer: the whole value
        (b"0123456789abcdef", b"0123456789abcdef"),
        (b"Bearer", b"Bearer"),  # no space: no scheme to strip
    ],
)
async def test_the_secret_is_what_follows_bearer_or_the_whole_value(value: bytes, secret: bytes) -> None:
    out = await outbound_request(_exchange(FakeCredential((b"authorization", value))))
    assert out.secret == secret
    assert out.headers[-1] == (b"authorization", value)


@pytest.mark.parametrize(
    ("required", "union"),
    [
        ((), ()),
        ((("a",),), ("a",)),
        ((("b", "a"),), ("b", "a")),  # one call: its own order
        ((("a", "b"), ("b", "c"), ()), ("a", "b", "c")),
        (((), ("c",), ("a", "c"), ("b",)), ("c", "a", "b")),  # first appearance decides the order
    ],
)
def test_call_scopes_is_the_union_in_order(
    required: tuple[tuple[str, ...], ...], union: tuple[str, ...]
) -> None:
    assert call_scopes(required) == union
