"""One property over real HTTP: whatever a client sends, the gateway never answers 500.

A real gateway on loopback (uvicorn, httptools) in front of a real upstream, with a real JWKS
server; random methods, paths, headers and bodies written byte for byte on a socket, some with
a valid token or session id so the later stages (parse, authorize, forward) see them too. Also:
the upstream is never reached by a request without the valid token, and never sees the client's
token (TS-08).
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from ..support.gateway import RunningGateway, running_gateway
from ..support.issuer import LocalIssuer, running_issuer
from ..support.recording_upstream import TOOLS
from ..support.servers import read_body, serve_asgi
from .strategies import SCALE, json_ish_bytes, json_values

ACCEPT = "application/json, text/event-stream"
MODERN = "2026-07-28"
META = "io.modelcontextprotocol/protocolVersion"


@dataclass
class SturdyUpstream:
    """An upstream that answers anything with a well-formed reply and never fails itself, so a
    5xx seen by the client can only be the gateway's own."""

    authorizations: list[str | None] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = await read_body(receive)
        headers = dict(scope["headers"])
        with self.lock:
            auth = headers.get(b"authorization")
            self.authorizations.append(auth.decode("latin-1") if auth is not None else None)
        try:
            doc = orjson.loads(body) if body else None
        except orjson.JSONDecodeError:
            doc = None
        messages = doc if isinstance(doc, list) else [doc]
        answers = [self._answer(m) for m in messages if isinstance(m, dict) and "id" in m and "method" in m]
        extra = [(b"mcp-session-id", b"sturdy-session-1")]
        if not answers:
            await send({"type": "http.response.start", "status": 202, "headers": extra})
            await send({"type": "http.response.body", "body": b""})
            return
        out = orjson.dumps(answers if isinstance(doc, list) else answers[0])
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), *extra],
            }
        )
        await send({"type": "http.response.body", "body": out})

    @staticmethod
    def _answer(message: dict[str, Any]) -> dict[str, Any]:
        method = message.get("method")
        result: dict[str, Any] = {}
        if method == "tools/list":
            result = {"tools": TOOLS}
        elif method == "initialize":
            result = {
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "serverInfo": {"name": "s", "version": "1"},
            }
        elif method == "tools/call":
            result = {"content": [{"type": "text", "text": "ok"}]}
        return {"jsonrpc": "2.0", "id": message["id"], "result": result}


@dataclass
class Stack:
    gateway: RunningGateway
    upstream: SturdyUpstream
    issuer: LocalIssuer
    token: str
    session: str

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.gateway.base_url.removeprefix("http://").split(":")
        return host, int(port)

    @property
    def host(self) -> str:
        return self.gateway.base_url.removeprefix("http://")


def exchange(address: tuple[str, int], request: bytes) -> bytes:
    """Write the request and read the whole answer (the server closes: Connection: close).

    No half-close: uvicorn takes EOF as a disconnect, and the gateway would rightly not answer.
    """
    with socket.create_connection(address, timeout=10) as sock:
        with contextlib.suppress(OSError):  # the server may answer (and close) before reading it all
            sock.sendall(request)
        chunks = []
        with contextlib.suppress(OSError):
            while chunk := sock.recv(65536):
                chunks.append(chunk)
    return b"".join(chunks)


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    upstream = SturdyUpstream()
    with running_issuer() as issuer, serve_asgi(upstream) as up:
        overrides = {"servers": [{"name": "rec", "upstream": f"{up.base_url}/mcp", "timeout_seconds": 5}]}
        with running_gateway(issuer.issuer, {}, **overrides) as gw:
            token = issuer.token(audience=gw.url("rec"), scopes="tools.read tools.write")
            init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}}
            answer = exchange(
                (gw.server.host, gw.server.port),
                _request("POST", "/rec/mcp", _headers(gw.base_url, token), orjson.dumps(init)),
            )
            session = next(
                line.split(b":", 1)[1].strip().decode()
                for line in answer.split(b"\r\n")
                if line.lower().startswith(b"mcp-session-id:")
            )
            yield Stack(gw, upstream, issuer, token, session)


def _headers(base_url: str, token: str | None) -> list[tuple[str, bytes]]:
    headers = [
        ("host", base_url.removeprefix("http://").encode()),
        ("content-type", b"application/json"),
        ("accept", ACCEPT.encode()),
    ]
    if token is not None:
        headers.append(("authorization", f"Bearer {token}".encode()))
    return headers


def _request(method: str, path: str, headers: list[tuple[str, bytes]], body: bytes) -> bytes:
    head = f"{method} {path} HTTP/1.1\r\n".encode("latin-1")
    lines = b"".join(name.encode("latin-1") + b": " + value + b"\r\n" for name, value in headers)
    return head + lines + b"content-length: %d\r\nconnection: close\r\n\r\n" % len(body) + body


# --- what a hostile client sends --------------------------------------------------------------------


def _mostly(common: st.SearchStrategy[Any], rare: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """`common` nine times in ten: most requests should get past the edge to the later stages."""
    return st.integers(0, 9).flatmap(lambda n: rare if n == 9 else common)  # 0 is what it shrinks to


methods = _mostly(
    st.just("POST"),
    st.one_of(
        st.sampled_from(["GET", "DELETE", "PUT", "OPTIONS", "HEAD", "PATCH"]),
        st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1, max_size=8),
    ),
)
paths = _mostly(
    st.sampled_from(["/rec/mcp", "/rec/mcp?access_token=x"]),
    st.sampled_from(
        [
            "/rec/mcp/",
            "/REC/mcp",
            "/.well-known/oauth-protected-resource/rec/mcp",
            "/.well-known/jwks.json",
            "/healthz",
            "/",
            "/rec/mcp/../mcp",
            "/%2e%2e/rec/mcp",
        ]
    ),
)
header_value = st.one_of(
    st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40).map(str.encode),
    st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40).map(str.encode),
    st.binary(max_size=40).filter(lambda b: b"\r" not in b and b"\n" not in b),
)
extra_headers = st.lists(
    st.tuples(
        st.sampled_from(
            [
                "origin",
                "mcp-protocol-version",
                "mcp-method",
                "mcp-name",
                "mcp-session-id",
                "mcp-param-x",
                "traceparent",
                "x-forwarded-host",
                "x-forwarded-for",
                "cookie",
                "accept",
                "content-type",
                "authorization",
                "last-event-id",
            ]
        ),
        st.one_of(
            header_value,
            st.sampled_from(
                [
                    MODERN.encode(),
                    b"2025-11-25",
                    b"2099-01-01",
                    b"tools/call",
                    b"tools/list",
                    b"read_thing",
                    b"=?base64?cmVhZF90aGluZw==?=",
                    b"null",
                    b"https://evil.example",
                    b"Bearer x.y.z",
                ]
            ),
        ),
    ),
    max_size=3,
).flatmap(lambda extra: _mostly(st.just([]), st.just(extra)))


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["message", "message", "batch", "json", "json-ish", "bytes"]))
    if kind in ("message", "batch"):
        method = draw(
            st.sampled_from(
                [
                    "tools/call",
                    "tools/list",
                    "ping",
                    "initialize",
                    "resources/read",
                    "x/y",
                    "notifications/initialized",
                ]
            )
        )
        params: dict[str, Any] = {}
        if method == "tools/call":
            params["name"] = draw(st.sampled_from([t["name"] for t in TOOLS] + ["unknown", ""]))
            params["arguments"] = draw(json_values(4))
        if draw(st.booleans()):
            params["_meta"] = {META: draw(st.sampled_from([MODERN, "2025-11-25"]))}
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "params": params}
        if draw(st.integers(0, 4)):
            message["id"] = draw(st.one_of(st.integers(-5, 5), st.text(max_size=5), json_values(2)))
        return orjson.dumps([message] * draw(st.integers(1, 3)) if kind == "batch" else message)
    if kind == "json":
        return orjson.dumps(draw(json_values(8)))
    if kind == "json-ish":
        return draw(json_ish_bytes)
    return draw(st.binary(max_size=200))


@given(
    method=methods,
    path=paths,
    auth=st.sampled_from(["valid", "valid", "none", "garbage", "other-audience"]),
    session=st.booleans(),
    extra=extra_headers,
    body=bodies(),
    drop_required=_mostly(
        st.just(set()), st.sets(st.sampled_from(["host", "content-type", "accept"]), max_size=1)
    ),
)
@settings(
    max_examples=max(1, int(200 * SCALE)),
    deadline=None,  # network round trips on a shared CI machine: the 10 s socket timeout bounds time
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_no_request_makes_the_gateway_answer_500(
    stack: Stack,
    caplog: pytest.LogCaptureFixture,
    method: str,
    path: str,
    auth: str,
    session: bool,
    extra: list[tuple[str, bytes]],
    body: bytes,
    drop_required: set[str],
) -> None:
    token = {
        "valid": stack.token,
        "none": None,
        "garbage": "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.",
        "other-audience": stack.issuer.token(audience="https://other.example/mcp"),
    }[auth]
    headers = [h for h in _headers(stack.gateway.base_url, token) if h[0] not in drop_required]
    if session:
        headers.append(("mcp-session-id", stack.session.encode()))
    headers += extra
    seen_before = len(stack.upstream.authorizations)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="mcp_bastion"):
        answer = exchange(stack.address, _request(method, path, headers, body))
    status_line = answer.split(b"\r\n", 1)[0]
    assert status_line.startswith(b"HTTP/1.1 "), answer[:200]
    status = int(status_line.split()[1])
    event(f"HTTP {status}")  # --hypothesis-show-statistics: how far requests got
    assert status != 500, answer[:500]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    forwarded = stack.upstream.authorizations[seen_before:]
    if auth != "valid" or any(name == "authorization" for name, _ in extra):
        assert forwarded == []  # nothing reaches the upstream without the one valid token
    assert all(stack.token not in (seen or "") for seen in forwarded)  # never passed through
