"""The fixture upstream: a fast MCP endpoint on raw asyncio (uvloop) + httptools.

Not an SDK server on purpose: it must cost far less than anything measured in front of it,
so that what a proxy adds is what shows. It answers canned JSON-RPC for both protocol eras
(`initialize` with an `Mcp-Session-Id`, `server/discover`, `tools/list` of 200 tools,
`tools/call` as JSON or SSE), echoes every request id, and counts the HTTP requests it
receives so the bench can report upstream requests per call. `GET /__stats` (not counted)
reports the counters. `POST /guard` plays an external guard for the safety-filter targets:
it allows everything, counted apart (`guard`), so upstream requests per call stay exact.

    python -m bench.upstream --port 9000
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
from typing import Any

import httptools
import orjson
import uvloop

from .tools import TOOLS

MODERN = b"2026-07-28"
LEGACY_VERSION = "2025-11-25"
SERVER_INFO = {"name": "bench-fixture", "version": "1.0"}
CAPABILITIES = {"tools": {"listChanged": False}}


class Counters:
    def __init__(self) -> None:
        self.requests = 0  # every HTTP request to /mcp
        self.holding = 0  # SSE responses held open right now (GET streams and the `hold` tool)
        self.sessions = 0
        self.guard = 0  # POST /guard: verdicts given as the safety filters' external guard
        self.methods: dict[str, int] = {}  # per JSON-RPC method, and GET / DELETE

    def count(self, method: str) -> None:
        self.methods[method] = self.methods.get(method, 0) + 1

    def document(self) -> bytes:
        return orjson.dumps(
            {
                "requests": self.requests,
                "holding": self.holding,
                "methods": self.methods,
                "guard": self.guard,
                "pid": os.getpid(),
            }
        )


class Canned:
    """Response parts serialized once at start-up; only the id and the echo change per call."""

    def __init__(self) -> None:
        tools = orjson.dumps(TOOLS)
        self.list_legacy = b'{"tools":' + tools + b"}"
        self.list_modern = b'{"tools":' + tools + b',"ttlMs":0,"cacheScope":"public","resultType":"complete"}'
        self.discover = orjson.dumps(
            {
                "supportedVersions": ["2026-07-28", LEGACY_VERSION],
                "capabilities": CAPABILITIES,
                "serverInfo": SERVER_INFO,
                "ttlMs": 0,
                "cacheScope": "public",
                "resultType": "complete",
            }
        )


CANNED = Canned()


def _head(status: bytes, content_type: bytes | None, length: int | None, extra: bytes = b"") -> bytes:
    head = b"HTTP/1.1 " + status + b"\r\n"
    if content_type is not None:
        head += b"content-type: " + content_type + b"\r\n"
    if length is not None:
        head += b"content-length: " + str(length).encode() + b"\r\n"
    else:
        head += b"transfer-encoding: chunked\r\ncache-control: no-cache\r\n"
    return head + extra + b"\r\n"


def _chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def _envelope(request_id: Any, result: bytes) -> bytes:
    return b'{"jsonrpc":"2.0","id":' + orjson.dumps(request_id) + b',"result":' + result + b"}"


def _error(request_id: Any, code: int, message: str) -> bytes:
    return orjson.dumps({"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message}})


def _call_result(arguments: Any, modern: bool) -> bytes:
    n = arguments.get("n") if isinstance(arguments, dict) else None
    result: dict[str, Any] = {"content": [{"type": "text", "text": f"echo {n}"}], "isError": False}
    if modern:
        result["resultType"] = "complete"
    return orjson.dumps(result)


def _sse_event(data: bytes) -> bytes:
    return b"event: message\ndata: " + data + b"\n\n"


_LOG_EVENT = _sse_event(
    orjson.dumps(
        {
            "jsonrpc": "2.0",
            "method": "notifications/message",
            "params": {"level": "info", "data": "working"},
        }
    )
)


class McpFixture(asyncio.Protocol):
    def __init__(self, counters: Counters) -> None:
        self._counters = counters
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpRequestParser(self)
        self._url = b""
        self._headers: dict[bytes, bytes] = {}
        self._body: list[bytes] = []
        self._held = False

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  (uvloop's is not an asyncio.Transport subclass)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._held:
            self._held = False
            self._counters.holding -= 1

    def data_received(self, data: bytes) -> None:
        if self._held:
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError:
            self._send(_head(b"400 Bad Request", None, 0), close=True)

    # httptools callbacks
    def on_message_begin(self) -> None:
        self._url = b""
        self._headers = {}
        self._body = []

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.lower()] = value

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        path = self._url.split(b"?", 1)[0]
        close = not self._parser.should_keep_alive()
        if path == b"/__stats":
            body = self._counters.document()
            self._send(_head(b"200 OK", b"application/json", len(body)) + body, close)
            return
        if path == b"/guard":
            self._counters.guard += 1
            body = b'{"verdict":"allow"}'
            self._send(_head(b"200 OK", b"application/json", len(body)) + body, close)
            return
        if path != b"/mcp":
            self._send(_head(b"404 Not Found", None, 0), close)
            return
        self._counters.requests += 1
        method = self._parser.get_method()
        if method != b"POST":
            self._counters.count(method.decode())
        if method == b"POST":
            self._post(b"".join(self._body), close)
        elif method == b"GET":
            self._hold(b": stream open\n\n")
        elif method == b"DELETE":
            self._send(_head(b"200 OK", None, 0), close)
        else:
            self._send(_head(b"405 Method Not Allowed", None, 0), close)

    # MCP
    def _post(self, raw: bytes, close: bool) -> None:
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError:
            doc = None
        if isinstance(doc, dict) and isinstance(doc.get("method"), str):
            self._counters.count(doc["method"])
        else:
            body = _error(None, -32600, "the bench fixture takes single JSON-RPC requests")
            self._send(_head(b"400 Bad Request", b"application/json", len(body)) + body, close)
            return
        if "id" not in doc:  # a notification
            self._send(_head(b"202 Accepted", None, 0), close)
            return
        request_id, method = doc["id"], doc["method"]
        params = doc.get("params") if isinstance(doc.get("params"), dict) else {}
        modern = self._headers.get(b"mcp-protocol-version") == MODERN
        extra = b""
        if method == "tools/call":
            name = params.get("name")
            if name == "echo_sse":
                self._sse(_envelope(request_id, _call_result(params.get("arguments"), modern)), close)
                return
            if name == "hold":
                self._hold(_LOG_EVENT)
                return
            if name == "echo":
                body = _envelope(request_id, _call_result(params.get("arguments"), modern))
            else:
                body = _error(request_id, -32602, f"unknown tool {name!r}")
        elif method == "tools/list":
            body = _envelope(request_id, CANNED.list_modern if modern else CANNED.list_legacy)
        elif method == "initialize":
            self._counters.sessions += 1
            requested = params.get("protocolVersion")
            version = (
                requested if requested in ("2025-03-26", "2025-06-18", LEGACY_VERSION) else LEGACY_VERSION
            )
            result = {"protocolVersion": version, "capabilities": CAPABILITIES, "serverInfo": SERVER_INFO}
            body = _envelope(request_id, orjson.dumps(result))
            session = f"fixture-{os.getpid()}-{self._counters.sessions:08d}".encode()
            extra = b"mcp-session-id: " + session + b"\r\n"
        elif method == "server/discover":
            body = _envelope(request_id, CANNED.discover)
        else:
            body = _envelope(request_id, b'{"resultType":"complete"}' if modern else b"{}")
        self._send(_head(b"200 OK", b"application/json", len(body), extra) + body, close)

    def _sse(self, response: bytes, close: bool) -> None:
        head = _head(b"200 OK", b"text/event-stream", None)
        self._send(head + _chunk(_LOG_EVENT) + _chunk(_sse_event(response)) + b"0\r\n\r\n", close)

    def _hold(self, first: bytes) -> None:
        """Answer with an SSE stream that stays open and idle until the client leaves."""
        self._held = True
        self._counters.holding += 1
        self._send(_head(b"200 OK", b"text/event-stream", None) + _chunk(first), close=False)

    def _send(self, data: bytes, close: bool) -> None:
        assert self._transport is not None
        self._transport.write(data)
        if close:
            self._transport.close()


async def serve(host: str, port: int) -> None:
    counters = Counters()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: McpFixture(counters), host, port, backlog=4096, reuse_address=True
    )
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvloop.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
