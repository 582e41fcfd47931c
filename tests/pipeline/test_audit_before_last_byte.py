"""The audit event is recorded before the answer's last byte is sent: a gateway killed at any
instant has recorded the event of every answer a client holds (with a spooled sink, on disk).
Before, the event was recorded after the answer, and a kill -9 in between lost it."""

from __future__ import annotations

from typing import Any

from mcp_bastion.asgi import Message
from mcp_bastion.audit import AuditEvent, MemorySink
from mcp_bastion.errors import BastionError
from mcp_bastion.mcp.calls import Call
from mcp_bastion.pipeline.audit import AuditStep
from mcp_bastion.pipeline.exchange import Exchange
from mcp_bastion.pipeline.gateway import Gateway, Stage

from .fakes import POST_HEADERS, Received, config, gateway

CONFIG = config()
ROUTES = list(gateway(CONFIG).routes.values())


class Timeline(MemorySink):
    """Records audit events and sent messages on one timeline."""

    def __init__(self) -> None:
        super().__init__()
        self.order: list[str] = []

    def emit(self, event: AuditEvent) -> None:
        super().emit(event)
        self.order.append(f"audit {event.status}")

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.body":
            self.order.append("last byte" if not message.get("more_body") else "body")
        else:
            self.order.append("start")


class Streams:
    """Answers in three pieces, as an SSE relay does."""

    async def __call__(self, ex: Exchange) -> None:
        ex.calls = (Call("tools/call", "echo", 1),)
        await ex.send({"type": "http.response.start", "status": 200, "headers": []})
        ex.status = 200
        await ex.send({"type": "http.response.body", "body": b"a", "more_body": True})
        await ex.send({"type": "http.response.body", "body": b"b", "more_body": False})


class Refuses:
    async def __call__(self, ex: Exchange) -> None:
        raise BastionError("no")


async def _run(stage: Stage) -> Timeline:
    timeline = Timeline()
    app = Gateway(CONFIG, ROUTES, [stage], audit=AuditStep(timeline), documents={})
    scope: dict[str, Any] = {
        "type": "http",
        "method": "POST",
        "path": "/demo/mcp",
        "headers": [(k.encode(), v.encode()) for k, v in POST_HEADERS.items()],
        "client": ("203.0.113.9", 50000),
    }
    await app(scope, Received(), timeline.send)
    return timeline


async def test_a_streamed_answer_is_audited_before_its_last_byte_and_once() -> None:
    timeline = await _run(Streams())
    assert timeline.order == ["start", "body", "audit 200", "last byte"]


async def test_an_error_reply_is_audited_before_its_last_byte_and_once() -> None:
    timeline = await _run(Refuses())
    assert timeline.order == ["start", "audit 500", "last byte"]
    assert [e.decision for e in timeline.events] == ["error"]


async def test_a_request_refused_before_its_headers_are_read_is_audited_before_its_last_byte() -> None:
    timeline = Timeline()
    app = Gateway(CONFIG, ROUTES, [Streams()], audit=AuditStep(timeline), documents={})
    twice = [(b"authorization", b"Bearer a"), (b"authorization", b"Bearer b")]  # refused at once
    scope: dict[str, Any] = {"type": "http", "method": "POST", "path": "/demo/mcp", "headers": twice}
    await app(scope, Received(), timeline.send)
    assert timeline.order == ["start", "audit 400", "last byte"]
