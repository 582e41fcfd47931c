"""In-process stand-ins for the pipeline's seams, and a way to build one Exchange by hand.

The stages are driven one at a time, with no socket: an upstream is a `CannedTransport`
answering with `CannedResponse`s (the `UpstreamTransport` / `UpstreamResponse` protocols),
the client is an ASGI `receive` fed from a list and a `send` that records every message.
Routes are the real ones, built by `build_gateway` from a config with these seams injected.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any

import orjson

from mcp_bastion.app import build_gateway
from mcp_bastion.asgi import Headers, Message
from mcp_bastion.audit import MemorySink
from mcp_bastion.auth.principal import Principal
from mcp_bastion.config import BastionConfig, LoadedConfig, parse_config
from mcp_bastion.config.model import ServerConfig
from mcp_bastion.credentials import NoCredential, UpstreamCredential
from mcp_bastion.pipeline.exchange import Exchange, read_headers
from mcp_bastion.pipeline.gateway import Gateway
from mcp_bastion.route import ServerRoute
from mcp_bastion.trace import TraceContext
from mcp_bastion.upstream.transport import ResponseHeaders, UpstreamResponse

PUBLIC = "https://gw.example"
ISSUER = "https://idp.example"
RESOURCE = f"{PUBLIC}/demo/mcp"
POST_HEADERS = {
    "host": "gw.example",
    "content-type": "application/json",
    "accept": "application/json, text/event-stream",
}
SESSION_KEY = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWY="  # 32 bytes, base64


class CannedResponse:
    """An upstream answer with a fixed status, headers and body (given whole or in chunks)."""

    def __init__(
        self, status: int, headers: Iterable[tuple[bytes, bytes]] = (), body: bytes | list[bytes] = b""
    ) -> None:
        self._status = status
        self._headers = ResponseHeaders(list(headers))
        self._chunks = list(body) if isinstance(body, list) else [body]

    @property
    def status(self) -> int:
        return self._status

    @property
    def headers(self) -> ResponseHeaders:
        return self._headers

    async def chunks(self) -> AsyncIterator[bytes]:
        for chunk in self._chunks:
            yield chunk

    async def read_all(self, cap: int) -> bytes | None:
        body = b"".join(self._chunks)
        return None if len(body) > cap else body


def json_response(status: int, doc: Any, *extra: tuple[bytes, bytes]) -> CannedResponse:
    return CannedResponse(status, [(b"content-type", b"application/json"), *extra], orjson.dumps(doc))


class Opened:
    """One request a CannedTransport received."""

    def __init__(self, method: str, headers: Headers, body: bytes, read_timeout: float | None) -> None:
        self.method = method
        self.headers = headers
        self.body = body
        self.read_timeout = read_timeout

    def header(self, name: bytes) -> list[bytes]:
        return [value for header, value in self.headers if header == name]


class CannedTransport:
    """An upstream that answers each request with the next canned response, and remembers
    every request and every `close()`."""

    def __init__(self, *responses: UpstreamResponse, target: str = "http://upstream.test/mcp") -> None:
        self._responses = list(responses)
        self._target = target
        self.opened: list[Opened] = []
        self.closed: list[UpstreamResponse] = []

    @property
    def target(self) -> str:
        return self._target

    async def open(
        self, method: str, headers: Headers, body: bytes, read_timeout: float | None
    ) -> UpstreamResponse:
        self.opened.append(Opened(method, headers, body, read_timeout))
        assert self._responses, "the upstream was asked more often than the test expected"
        return self._responses.pop(0)

    def close(self, response: UpstreamResponse) -> None:
        self.closed.append(response)


class Sent:
    """An ASGI `send` that keeps every message."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def __call__(self, message: Message) -> None:
        self.messages.append(message)

    @property
    def status(self) -> int:
        starts = [m for m in self.messages if m["type"] == "http.response.start"]
        assert len(starts) == 1, self.messages
        status: int = starts[0]["status"]
        return status

    @property
    def headers(self) -> dict[bytes, bytes]:
        start = next(m for m in self.messages if m["type"] == "http.response.start")
        return dict(start["headers"])

    @property
    def header_names(self) -> list[bytes]:
        start = next(m for m in self.messages if m["type"] == "http.response.start")
        return [name for name, _ in start["headers"]]

    @property
    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.messages if m["type"] == "http.response.body")

    @property
    def finished(self) -> bool:
        last = self.messages[-1] if self.messages else {}
        return last.get("type") == "http.response.body" and not last.get("more_body", False)

    def json(self) -> Any:
        return orjson.loads(self.body)


class Received:
    """An ASGI `receive` handing out the given messages, then waiting forever (as a client
    that neither sends more nor goes away)."""

    def __init__(self, *messages: Message) -> None:
        self._messages = list(messages)
        self.calls = 0

    async def __call__(self) -> Message:
        self.calls += 1
        if self._messages:
            return self._messages.pop(0)
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


def body_messages(*chunks: bytes) -> list[Message]:
    """The `http.request` messages of a body arriving in these chunks."""
    if not chunks:
        return [{"type": "http.request", "body": b"", "more_body": False}]
    last = len(chunks) - 1
    return [{"type": "http.request", "body": c, "more_body": i < last} for i, c in enumerate(chunks)]


def principal(*scopes: str, subject: str = "alice", token_hash: str = "h-alice") -> Principal:
    return Principal(subject, ISSUER, "client-1", frozenset(scopes), token_hash, 2e9)


def config(*servers: Mapping[str, Any], **overrides: Any) -> BastionConfig:
    doc: dict[str, Any] = {
        "public_base_url": PUBLIC,
        "identity_providers": [{"name": "corp", "issuer": ISSUER}],
        "servers": list(servers) or [{"name": "demo", "upstream": "http://upstream.test/mcp"}],
        "audit": {"sink": "none"},
    }
    doc.update(overrides)
    return parse_config(doc)


def gateway(
    cfg: BastionConfig,
    *,
    transport: CannedTransport | None = None,
    credential: UpstreamCredential | None = None,
    audit: MemorySink | None = None,
    verifier: Any = None,
) -> Gateway:
    """The real gateway for `cfg`, with every seam in-process: no socket, no IdP."""
    chosen = transport if transport is not None else CannedTransport()
    chosen_credential = credential if credential is not None else NoCredential()

    def transport_for(server: ServerConfig) -> CannedTransport:
        return chosen

    def credential_for(server: ServerConfig, index: int) -> UpstreamCredential:
        return chosen_credential

    return build_gateway(
        LoadedConfig(cfg, {"sessions.key": SESSION_KEY}),
        audit=audit if audit is not None else MemorySink(),
        verifier=verifier if verifier is not None else RefusingVerifier(),
        transport_for=transport_for,
        credential_for=credential_for,
    )


def route(
    *,
    transport: CannedTransport | None = None,
    credential: UpstreamCredential | None = None,
    **server: Any,
) -> ServerRoute:
    """The route of one server named `demo` (server config keys as keyword arguments)."""
    cfg = config({"name": "demo", "upstream": "http://upstream.test/mcp", **server})
    return gateway(cfg, transport=transport, credential=credential).routes["/demo/mcp"]


def exchange(
    target: ServerRoute,
    method: str = "POST",
    headers: Mapping[str, str] | None = None,
    *,
    raw: Iterable[tuple[bytes, bytes]] = (),
    receive: Received | None = None,
    send: Sent | None = None,
    client: str = "203.0.113.9",
) -> Exchange:
    """An Exchange as the gateway opens one, before any stage ran."""
    given = POST_HEADERS if headers is None else headers
    header_list = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in given.items()] + list(raw)
    scope = {
        "type": "http",
        "method": method,
        "path": target.path,
        "headers": header_list,
        "client": (client, 50000),
    }
    headers = read_headers(header_list, 1 << 20)
    return Exchange(
        scope,
        receive if receive is not None else Received(),
        send if send is not None else Sent(),
        target,
        headers,
        TraceContext.from_header(headers.get("traceparent")),  # as the gateway opens one
    )


class RefusingVerifier:
    """A TokenVerifier for tests that never reach authentication: any use is a test failure."""

    def remembered(self, authorization: str, resource: str, allowed_issuers: frozenset[str]) -> None:
        raise AssertionError("this test does not authenticate")

    async def verify(self, token: str, resource: str, allowed_issuers: frozenset[str]) -> Principal:
        raise AssertionError("this test does not authenticate")
