"""An MCP upstream that holds answers until the test lets them go: requests in flight on demand."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field
from typing import Any

import orjson

from .servers import read_body


@dataclass
class HeldUpstream:
    """An MCP upstream whose `slow` tool answers only when the test says so, and whose GET
    stream sends one event and then stays open."""

    name: str = "held"
    calls: list[dict[str, Any]] = field(default_factory=list)
    slow_entered: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    stream_closed: threading.Event = field(default_factory=threading.Event)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        if scope["method"] == "GET":
            await self._stream(receive, send)
            return
        doc = orjson.loads(await read_body(receive))
        if doc.get("params", {}).get("name") == "slow":
            self.slow_entered.set()
            await asyncio.to_thread(self.release.wait, 30)
        self.calls.append(doc)
        result = {"content": [{"type": "text", "text": f"{self.name} done {doc['method']}"}]}
        body = orjson.dumps({"jsonrpc": "2.0", "id": doc["id"], "result": result})
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def _stream(self, receive: Any, send: Any) -> None:
        headers = [(b"content-type", b"text/event-stream")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        note = {
            "jsonrpc": "2.0",
            "method": "notifications/message",
            "params": {"level": "info", "data": "hi"},
        }
        await send(
            {
                "type": "http.response.body",
                "body": b"data: " + orjson.dumps(note) + b"\n\n",
                "more_body": True,
            }
        )
        while (await receive())["type"] != "http.disconnect":
            pass
        self.stream_closed.set()
