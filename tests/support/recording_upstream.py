"""A scriptable upstream MCP endpoint that records what reaches it.

Real enough for the gateway (HTTP on loopback, JSON and SSE answers, session ids), and
observable: tests assert on the exact requests the upstream saw, or that it saw none.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from .servers import read_body

TOOLS = [
    {"name": "read_thing", "inputSchema": {"type": "object"}, "annotations": {"readOnlyHint": True}},
    {
        "name": "write_thing",
        "inputSchema": {"type": "object"},
        "annotations": {"readOnlyHint": False, "destructiveHint": False},
    },
    {
        "name": "drop_thing",
        "inputSchema": {"type": "object"},
        "annotations": {"readOnlyHint": False, "destructiveHint": True},
    },
    {"name": "unannotated", "inputSchema": {"type": "object"}},
    {"name": "stream_thing", "inputSchema": {"type": "object"}, "annotations": {"readOnlyHint": True}},
    {"name": "hang", "inputSchema": {"type": "object"}, "annotations": {"readOnlyHint": True}},
]


UPSTREAM_STATE = "step-2;approved-amount=10"  # what a naive server keeps unprotected


@dataclass
class SeenRequest:
    method: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return orjson.loads(self.body) if self.body else None


@dataclass
class RecordingUpstream:
    seen: list[SeenRequest] = field(default_factory=list)
    cancelled: threading.Event = field(default_factory=threading.Event)
    session_id: str = "upstream-session-0001"
    # Answer every request with an SSE stream (as the SDK's servers may) rather than JSON.
    answer_as_sse: bool = False
    # What tools/list answers: a test may replace it between calls (a rug pull), or give a
    # callable that is asked on every list (an upstream whose answers differ call to call).
    tools: list[dict[str, Any]] | Callable[[], list[dict[str, Any]]] = field(default_factory=lambda: TOOLS)

    def calls(self, method: str) -> list[SeenRequest]:
        return [
            r for r in self.seen if r.json and not isinstance(r.json, list) and r.json.get("method") == method
        ]

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = await read_body(receive)
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        self.seen.append(SeenRequest(scope["method"], headers, body))
        if scope["method"] != "POST":
            await _reply(send, 200 if scope["method"] == "DELETE" else 405, b"")
            return
        doc = orjson.loads(body)
        if isinstance(doc, list):
            answers = [self._answer(m) for m in doc if "id" in m]
            await _reply(send, 200, orjson.dumps(answers))
            return
        if "id" not in doc or "method" not in doc:
            await _reply(send, 202, b"")  # a notification, or the client's response to us
            return
        method, params = doc["method"], doc.get("params") or {}
        if method == "tools/call" and params.get("name") == "hang":
            # Never answers. The gateway must give up (timeout) or hang up (client left);
            # either way the connection closes and uvicorn reports the disconnect here.
            while (await receive())["type"] != "http.disconnect":
                pass
            self.cancelled.set()
            return
        if method == "tools/call" and params.get("name") == "stream_thing":
            await self._sse(send, doc["id"])
            return
        if method == "tools/call" and params.get("name") == "ask_thing":
            # A 2026-07-28 multi round-trip tool: asks for input with a state of its own, and
            # says which state the retry brought back (unlisted: it needs the write scope).
            state = params.get("requestState")
            if state is None:
                result: dict[str, Any] = {
                    "resultType": "input_required",
                    "inputRequests": {
                        "confirm": {"method": "elicitation/create", "params": {"message": "sure?"}}
                    },
                    "requestState": UPSTREAM_STATE,
                }
            else:
                result = {"content": [{"type": "text", "text": f"resumed with {state}"}]}
            await _reply(send, 200, orjson.dumps({"jsonrpc": "2.0", "id": doc["id"], "result": result}))
            return
        extra = [(b"mcp-session-id", self.session_id.encode())] if method == "initialize" else []
        if self.answer_as_sse:
            await _reply_sse(send, orjson.dumps(self._answer(doc)), extra)
            return
        await _reply(send, 200, orjson.dumps(self._answer(doc)), extra)

    def _answer(self, doc: dict[str, Any]) -> dict[str, Any]:
        method = doc["method"]
        if method == "tools/list":
            result: dict[str, Any] = {"tools": self.tools() if callable(self.tools) else self.tools}
        elif method == "initialize":
            result = {
                "protocolVersion": "2025-11-25",
                "capabilities": {"tools": {}},
                "serverInfo": {"name": "rec", "version": "1"},
            }
        elif method == "tools/call":
            result = {"content": [{"type": "text", "text": f"called {doc['params']['name']}"}]}
        else:
            result = {}
        return {"jsonrpc": "2.0", "id": doc["id"], "result": result}

    async def _sse(self, send: Any, request_id: Any) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream")],
            }
        )
        for i in range(3):
            note = {
                "jsonrpc": "2.0",
                "method": "notifications/progress",
                "params": {"progressToken": 1, "progress": i},
            }
            await send(
                {
                    "type": "http.response.body",
                    "body": b"event: message\ndata: " + orjson.dumps(note) + b"\n\n",
                    "more_body": True,
                }
            )
        final = {
            "jsonrpc": "2.0",
            "id": request_id,
            "result": {"content": [{"type": "text", "text": "streamed"}]},
        }
        await send(
            {"type": "http.response.body", "body": b"event: message\ndata: " + orjson.dumps(final) + b"\n\n"}
        )


async def _reply(send: Any, status: int, body: bytes, extra: list[tuple[bytes, bytes]] | None = None) -> None:
    headers = [(b"content-type", b"application/json"), *(extra or [])] if body else list(extra or [])
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _reply_sse(send: Any, data: bytes, extra: list[tuple[bytes, bytes]]) -> None:
    headers = [(b"content-type", b"text/event-stream"), *extra]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"id: 1\nevent: message\ndata: " + data + b"\n\n"})
