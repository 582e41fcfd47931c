"""The token proxy on its own: what it forwards, what it adds, and that it streams.

A transparency proof is only as good as the proxy in it: these tests pin that the request
reaches the target as the client sent it (plus the token), and that an SSE answer arrives
event by event rather than when the stream ends. A tiny recording server stands for the
gateway; everything runs on loopback, and waits are on events under a timeout, never sleeps.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx
import pytest

from tests.conformance.token_proxy import TokenProxy
from tests.fixtures.conformance_upstream import UVICORN_OPTIONS
from tests.support.servers import serve_asgi

TOKEN = "header.payload.signature"
WAIT_S = 10.0


@dataclass
class Target:
    """Records each request; ``/sse`` sends one event, then waits for ``release`` or a hang-up."""

    requests: list[tuple[str, str, bytes, list[tuple[bytes, bytes]]]] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    hung_up: threading.Event = field(default_factory=threading.Event)
    closed: threading.Event = field(default_factory=threading.Event)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while (message := await receive())["type"] == "http.request":
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        target = scope["path"] + ("?" + scope["query_string"].decode() if scope["query_string"] else "")
        self.requests.append((scope["method"], target, body, scope["headers"]))
        if scope["path"] == "/sse":
            await self._stream(receive, send)
            return
        headers = [(b"content-type", b"application/json"), (b"mcp-session-id", b"s-1")]
        await send({"type": "http.response.start", "status": 202, "headers": headers})
        await send({"type": "http.response.body", "body": b'{"ok":true}'})

    async def _stream(self, receive: Any, send: Any) -> None:
        headers = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"id: 1\ndata: first\n\n", "more_body": True})
        try:
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(self._watch_hang_up, receive, tasks.cancel_scope)
                # Ends when the test releases it, or when the proxy hangs up on us.
                await anyio.to_thread.run_sync(self.release.wait, WAIT_S, abandon_on_cancel=True)
                tasks.cancel_scope.cancel()
            if not self.hung_up.is_set():
                await send({"type": "http.response.body", "body": b"id: 2\ndata: last\n\n"})
        finally:
            self.closed.set()

    async def _watch_hang_up(self, receive: Any, scope: anyio.CancelScope) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        self.hung_up.set()
        scope.cancel()


@contextmanager
def proxied() -> Iterator[tuple[Target, str]]:
    target = Target()
    with (
        serve_asgi(target) as server,
        serve_asgi(TokenProxy(server.base_url, TOKEN), **UVICORN_OPTIONS) as proxy,
    ):
        yield target, proxy.base_url


def test_forwards_the_request_unchanged_and_adds_the_token() -> None:
    with proxied() as (target, url), httpx.Client(timeout=WAIT_S) as client:
        response = client.post(
            f"{url}/conf/mcp?a=1&b=%2F",
            content=b'{"jsonrpc":"2.0"}',
            headers={
                "host": "localhost:1234",
                "origin": "http://evil.example.com",
                "mcp-protocol-version": "2025-11-25",
                "authorization": "Bearer the-clients-own",
                "connection": "keep-alive",
            },
        )
    assert (response.status_code, response.content) == (202, b'{"ok":true}')
    assert response.headers["mcp-session-id"] == "s-1"
    ((method, path, body, headers),) = target.requests
    assert (method, path, body) == ("POST", "/conf/mcp?a=1&b=%2F", b'{"jsonrpc":"2.0"}')
    sent = dict(headers)
    assert sent[b"host"] == b"localhost:1234"
    assert sent[b"origin"] == b"http://evil.example.com"
    assert sent[b"mcp-protocol-version"] == b"2025-11-25"
    assert [v for k, v in headers if k == b"authorization"] == [f"Bearer {TOKEN}".encode()]
    assert sent[b"content-length"] == b"17"


def test_adds_no_header_the_client_left_out() -> None:
    # An HTTP client library would add Accept, User-Agent and the like: write the request by hand.
    with proxied() as (target, url):
        host = url.removeprefix("http://")
        request = f"DELETE /conf/mcp HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        with socket.create_connection(("127.0.0.1", int(host.rsplit(":", 1)[1])), timeout=WAIT_S) as sock:
            sock.sendall(request.encode())
            answer = b"".join(iter(lambda: sock.recv(65536), b""))
    assert answer.startswith(b"HTTP/1.1 202 ")
    ((method, _, body, headers),) = target.requests
    assert (method, body) == ("DELETE", b"")
    assert sorted(headers) == [(b"authorization", f"Bearer {TOKEN}".encode()), (b"host", host.encode())]


@pytest.mark.parametrize("hang_up", [False, True])
def test_streams_sse_event_by_event(hang_up: bool) -> None:
    with proxied() as (target, url), httpx.Client(timeout=WAIT_S) as client:
        with client.stream("GET", f"{url}/sse", headers={"accept": "text/event-stream"}) as response:
            assert response.headers["content-type"] == "text/event-stream"
            lines = response.iter_lines()
            # The first event arrives while the target is still holding the stream open.
            assert [next(lines), next(lines)] == ["id: 1", "data: first"]
            assert not target.closed.is_set()
            if not hang_up:
                target.release.set()
                assert [line for line in lines if line] == ["id: 2", "data: last"]
        # Leaving the block unread closes our connection: the proxy must hang up on the target too.
        assert target.closed.wait(WAIT_S)
        assert target.hung_up.is_set() == hang_up
        target.release.set()  # frees the worker thread still waiting after a hang-up
