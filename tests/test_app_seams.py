"""build_gateway's seams: each injected object is the one the composed gateway uses.

The verifier (`auth.verifier.TokenVerifier`), the upstream transport per server
(`upstream.transport.UpstreamTransport`), the credential per server
(`credentials.UpstreamCredential`, async), the audit sink and the clock are passed in; one
request is then driven through the ASGI app in-process (scope, receive and send dicts), and
each fake shows it was asked, with what, and that its answer is what went on.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from mcp_bastion.app import build_gateway
from mcp_bastion.asgi import Message
from mcp_bastion.audit import MemorySink
from mcp_bastion.auth.principal import Principal
from mcp_bastion.config import LoadedConfig
from mcp_bastion.config.model import ServerConfig
from mcp_bastion.credentials import UpstreamCredential
from mcp_bastion.pipeline.gateway import Gateway

from .pipeline.fakes import (
    ISSUER,
    POST_HEADERS,
    SESSION_KEY,
    CannedResponse,
    CannedTransport,
    Received,
    Sent,
    body_messages,
    config,
    json_response,
)

CLIENT_TOKEN = "client.token.value"
CALL = {"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "search"}}
RESULT = {"jsonrpc": "2.0", "id": 7, "result": {"content": [{"type": "text", "text": "found"}]}}
CALLER = Principal("alice", ISSUER, "client-1", frozenset({"tools.read"}), "hash-of-client-token", 2e9)


class FakeVerifier:
    def __init__(self) -> None:
        self.verified: list[tuple[str, str, frozenset[str]]] = []

    def remembered(self, authorization: str, resource: str, allowed_issuers: frozenset[str]) -> None:
        return None

    async def verify(self, token: str, resource: str, allowed_issuers: frozenset[str]) -> Principal:
        self.verified.append((token, resource, allowed_issuers))
        return CALLER


class FakeCredential:
    def __init__(self, value: bytes) -> None:
        self.value = value
        self.asked: list[tuple[Principal, tuple[str, ...]]] = []

    async def header(self, principal: Principal, scopes: tuple[str, ...]) -> tuple[bytes, bytes] | None:
        self.asked.append((principal, scopes))
        await asyncio.sleep(0)  # an IdP round trip, in a real one: the stage must await it
        return (b"authorization", self.value)


class Seams:
    """One fake of each seam, for a gateway of two servers `a` and `b`."""

    def __init__(
        self, *responses_for_b: CannedResponse, clock: list[float] | None = None, **cfg: Any
    ) -> None:
        self.verifier = FakeVerifier()
        self.transports = {
            "a": CannedTransport(target="http://a.test/mcp"),
            "b": CannedTransport(*responses_for_b),
        }
        self.credentials = {
            "a": FakeCredential(b"Bearer cred-for-a"),
            "b": FakeCredential(b"Bearer cred-for-b"),
        }
        self.transport_calls: list[str] = []
        self.credential_calls: list[tuple[str, int]] = []
        self.audit = MemorySink()
        self.now = clock if clock is not None else [1_700_000_000.0]
        servers = [
            {
                "name": name,
                "upstream": f"http://{name}.test/mcp",
                "tools": {"search": {"scopes": ["tools.read"]}},
            }
            for name in ("a", "b")
        ]
        self.gateway = build_gateway(
            LoadedConfig(config(*servers, **cfg), {"sessions.key": SESSION_KEY}),
            clock=lambda: self.now[0],
            audit=self.audit,
            verifier=self.verifier,
            transport_for=self._transport_for,
            credential_for=self._credential_for,
        )

    def _transport_for(self, server: ServerConfig) -> CannedTransport:
        self.transport_calls.append(server.name)
        return self.transports[server.name]

    def _credential_for(self, server: ServerConfig, index: int) -> UpstreamCredential:
        self.credential_calls.append((server.name, index))
        return self.credentials[server.name]


async def _request(app: Gateway, path: str, body: Any, method: str = "POST", **headers: str) -> Sent:
    raw = orjson.dumps(body) if body is not None else b""
    given = {**POST_HEADERS, "authorization": f"Bearer {CLIENT_TOKEN}", **headers}
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "https",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [(k.encode(), v.encode()) for k, v in given.items()],
        "client": ("203.0.113.9", 50000),
        "server": ("gw.example", 443),
    }
    sent = Sent()
    messages: list[Message] = body_messages(raw)
    await app(scope, Received(*messages), sent)
    return sent


async def test_one_request_uses_every_injected_seam() -> None:
    seams = Seams(json_response(200, RESULT))
    # Built once per server, in config order, each with its index (for secret key paths).
    assert seams.transport_calls == ["a", "b"]
    assert seams.credential_calls == [("a", 0), ("b", 1)]

    sent = await _request(seams.gateway, "/b/mcp", CALL)

    assert (sent.status, sent.json()) == (200, RESULT)
    # The verifier: the client's token, for this server's resource and issuers.
    assert seams.verifier.verified == [(CLIENT_TOKEN, "https://gw.example/b/mcp", frozenset({ISSUER}))]
    # The credential: awaited for the verified caller, with the scopes the call needs.
    assert seams.credentials["b"].asked == [(CALLER, ("tools.read",))]
    assert seams.credentials["a"].asked == []
    # The transport: b's only, with b's credential and never the client's token.
    assert seams.transports["a"].opened == []
    (upstream,) = seams.transports["b"].opened
    assert upstream.method == "POST"
    assert orjson.loads(upstream.body) == CALL
    assert upstream.header(b"authorization") == [b"Bearer cred-for-b"]
    assert not any(CLIENT_TOKEN.encode() in value for _, value in upstream.headers)
    assert len(seams.transports["b"].closed) == 1
    # The audit sink: the caller the verifier named, the call, the outcome.
    (event,) = seams.audit.events
    assert (event.server, event.method, event.target, event.decision, event.status) == (
        "b",
        "tools/call",
        "search",
        "allow",
        200,
    )
    assert (event.subject, event.token_hash) == ("alice", "hash-of-client-token")


async def test_the_catalog_refresh_uses_the_injected_transport_and_credential() -> None:
    listing = {
        "jsonrpc": "2.0",
        "id": "mcp-bastion-tools",  # upstream/tool_list.py's request id
        "result": {"tools": [{"name": "lookup", "annotations": {"readOnlyHint": True}}]},
    }
    answer = {"jsonrpc": "2.0", "id": 8, "result": {"content": []}}
    seams = Seams(json_response(200, listing), json_response(200, answer))
    call = {"jsonrpc": "2.0", "id": 8, "method": "tools/call", "params": {"name": "lookup"}}

    sent = await _request(seams.gateway, "/b/mcp", call)

    # Unknown to the gateway: its tool list is fetched first, through b's transport, with b's
    # credential for the caller (no call scopes); the read-only hint then lets a read token call it.
    assert sent.status == 200
    fetch, forwarded = seams.transports["b"].opened
    assert orjson.loads(fetch.body)["method"] == "tools/list"
    assert fetch.header(b"authorization") == [b"Bearer cred-for-b"]
    assert orjson.loads(forwarded.body) == call
    assert seams.credentials["b"].asked == [(CALLER, ()), (CALLER, ("tools.read",))]
    assert len(seams.transports["b"].closed) == 2


async def test_the_injected_clock_seals_and_expires_sessions() -> None:
    now = [1_700_000_000.0]
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "t", "version": "1"},
        },
    }
    init_result = {"jsonrpc": "2.0", "id": 1, "result": {"protocolVersion": "2025-11-25"}}
    seams = Seams(
        json_response(200, init_result, (b"mcp-session-id", b"upstream-session-1")),
        json_response(200, RESULT),
        clock=now,
        sessions={"ttl_seconds": 60},
    )
    first = await _request(seams.gateway, "/b/mcp", initialize)
    sealed = first.headers[b"mcp-session-id"].decode()
    assert "upstream-session-1" not in sealed

    legacy = {"mcp-protocol-version": "2025-11-25", "mcp-session-id": sealed}
    now[0] += 60  # the last second of the session's life, by the gateway's clock
    second = await _request(seams.gateway, "/b/mcp", CALL, **legacy)
    assert second.status == 200
    assert seams.transports["b"].opened[1].header(b"mcp-session-id") == [b"upstream-session-1"]

    now[0] += 1  # one second past it: the session id no longer opens, nothing goes upstream
    third = await _request(seams.gateway, "/b/mcp", CALL, **legacy)
    assert third.status == 404
    assert len(seams.transports["b"].opened) == 2


async def test_the_composed_gateway_serves_each_servers_metadata() -> None:
    seams = Seams()
    sent = Sent()
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/.well-known/oauth-protected-resource/b/mcp",
        "headers": [],
    }
    await seams.gateway(scope, Received(), sent)
    assert sent.status == 200
    document = sent.json()
    assert document["resource"] == "https://gw.example/b/mcp"
    assert document["authorization_servers"] == [ISSUER]
