"""The session era: the session id and negotiated version on later requests, the GET stream
for the server's own messages (resumed with ``Last-Event-ID``), and DELETE at the end."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mcp_bastion.connect.oauth import AuthOptions, Authorizer
from mcp_bastion.connect.relay import Relay

from ..support.servers import serve_asgi

SESSION = "session-1"
LIST_CHANGED = {"jsonrpc": "2.0", "method": "notifications/tools/list_changed"}
UPDATED = {"jsonrpc": "2.0", "method": "notifications/resources/list_changed"}


class SessionServer:
    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str]]] = []

    async def post(self, request: Request) -> Response:
        self.requests.append(("POST", dict(request.headers)))
        body = await request.json()
        if body.get("method") == "initialize":
            result = {
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "serverInfo": {"name": "s", "version": "1"},
            }
            return JSONResponse(
                {"jsonrpc": "2.0", "id": body["id"], "result": result}, headers={"mcp-session-id": SESSION}
            )
        return Response(status_code=202)

    async def get(self, request: Request) -> Response:
        self.requests.append(("GET", dict(request.headers)))
        gets = sum(1 for method, _ in self.requests if method == "GET")
        if gets == 1:  # one event, then the stream ends: the client reopens it at once (retry: 0)
            return _sse(f"retry: 0\nid: 1\ndata: {json.dumps(LIST_CHANGED)}\n\n")
        if gets == 2:
            return _sse(f"id: 2\ndata: {json.dumps(UPDATED)}\n\n")
        return Response(status_code=405)  # no more streams: the client stops asking

    async def delete(self, request: Request) -> Response:
        self.requests.append(("DELETE", dict(request.headers)))
        return Response(status_code=204)

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/mcp", self.post, methods=["POST"]),
                Route("/mcp", self.get, methods=["GET"]),
                Route("/mcp", self.delete, methods=["DELETE"]),
            ]
        )


def _sse(text: str) -> Response:
    return Response(text, media_type="text/event-stream")


async def test_session_headers_get_stream_resumption_and_delete(tmp_path: Path) -> None:
    server = SessionServer()
    written: list[Any] = []
    both = asyncio.Event()

    async def write(message: Any) -> None:
        written.append(message)
        if len(written) == 3:
            both.set()

    with serve_asgi(server.app()) as running:
        url = f"{running.base_url}/mcp"
        async with httpx.AsyncClient(trust_env=False, timeout=10) as http:
            relay = Relay(
                http, url, Authorizer(http, url, AuthOptions(store_path=tmp_path / "t.json")), write
            )
            await relay.forward({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}})
            await relay.forward({"jsonrpc": "2.0", "method": "notifications/initialized"})
            await asyncio.wait_for(both.wait(), 10)
            await relay.close()

    assert written[1:] == [LIST_CHANGED, UPDATED]
    methods = [method for method, _ in server.requests]
    assert methods[:2] == ["POST", "POST"]
    assert methods[-1] == "DELETE"
    later = [headers for _, headers in server.requests[1:]]
    assert all(h.get("mcp-session-id") == SESSION for h in later)
    assert all(h.get("mcp-protocol-version") == "2025-11-25" for h in later)
    gets = [headers for method, headers in server.requests if method == "GET"]
    assert "last-event-id" not in gets[0]
    assert gets[1]["last-event-id"] == "1"  # resumed where the first stream ended


async def test_an_event_stream_that_ends_before_the_answer_gets_an_error(tmp_path: Path) -> None:
    # A server that closes the POST's stream after a progress notification, expecting a
    # resumption connect does not do: the client must get an error, not wait forever.
    progress = {
        "jsonrpc": "2.0",
        "method": "notifications/progress",
        "params": {"progressToken": 1, "progress": 1},
    }

    async def post(request: Request) -> Response:
        return _sse(f"id: 1\ndata: {json.dumps(progress)}\n\n")

    written: list[Any] = []

    async def write(message: Any) -> None:
        written.append(message)

    with serve_asgi(Starlette(routes=[Route("/mcp", post, methods=["POST"])])) as running:
        url = f"{running.base_url}/mcp"
        async with httpx.AsyncClient(trust_env=False, timeout=10) as http:
            relay = Relay(
                http, url, Authorizer(http, url, AuthOptions(store_path=tmp_path / "t.json")), write
            )
            await relay.forward(
                {"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "slow"}}
            )

    assert written[0] == progress
    assert written[1]["id"] == 7
    assert written[1]["error"]["code"] == -32603
    assert len(written) == 2
