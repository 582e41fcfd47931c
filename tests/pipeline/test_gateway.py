"""The gateway's ASGI application with stages of the test's own: routing, replies, audit, health.

Driven in-process with ASGI scope/receive/send dicts. The stages here are stand-ins that
record or raise, so what is tested is the runner: every MCP exchange ends in exactly one
audit pass whatever a stage did, a BastionError becomes its reply, anything else a 500 that
says nothing of the cause (and is logged), and every other path is a document or /healthz.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import pytest

from mcp_bastion.asgi import Message, Scope
from mcp_bastion.audit import AuditEvent, MemorySink
from mcp_bastion.errors import BastionError, InsufficientScope, RequestRejected, UpstreamError
from mcp_bastion.mcp.calls import Call
from mcp_bastion.pipeline.audit import AuditStep
from mcp_bastion.pipeline.exchange import Exchange
from mcp_bastion.pipeline.gateway import Gateway, Stage

from .fakes import POST_HEADERS, Received, Sent, config, gateway

CONFIG = config()
ROUTES = list(gateway(CONFIG).routes.values())
PRM_PATH = "/.well-known/oauth-protected-resource/demo/mcp"
DOCUMENTS = {
    PRM_PATH: b'{"resource":"https://gw.example/demo/mcp"}',
    "/.well-known/jwks.json": b'{"keys":[]}',
}


class Sink(MemorySink):
    def __init__(self, *, healthy: bool = True) -> None:
        super().__init__()
        self.healthy = healthy
        self.flushed = 0

    def flush(self) -> None:
        self.flushed += 1


def _gateway(
    stages: Sequence[Stage] = (),
    sink: Sink | None = None,
    closers: Sequence[Callable[[], Awaitable[Any]]] = (),
    warmers: Sequence[Callable[[], Awaitable[Any]]] = (),
    **overrides: Any,
) -> tuple[Gateway, Sink]:
    sink = sink if sink is not None else Sink()
    cfg = config(**overrides) if overrides else CONFIG
    app = Gateway(
        cfg, ROUTES, stages, audit=AuditStep(sink), documents=DOCUMENTS, closers=closers, warmers=warmers
    )
    return app, sink


def _scope(path: str, method: str = "POST", headers: dict[str, str] | None = None) -> Scope:
    given = POST_HEADERS if headers is None else headers
    return {
        "type": "http",
        "method": method,
        "path": path,
        "headers": [(k.encode(), v.encode()) for k, v in given.items()],
        "client": ("203.0.113.9", 50000),
    }


async def _call(app: Gateway, path: str, method: str = "POST", headers: dict[str, str] | None = None) -> Sent:
    sent = Sent()
    await app(_scope(path, method, headers), Received(), sent)
    return sent


class Recorder:
    """A stage that records its name; a `Raiser` records, then raises."""

    def __init__(self, name: str, log: list[str]) -> None:
        self.name = name
        self.log = log

    async def __call__(self, ex: Exchange) -> None:
        self.log.append(self.name)


class Raiser(Recorder):
    def __init__(self, name: str, log: list[str], error: Exception) -> None:
        super().__init__(name, log)
        self.error = error

    async def __call__(self, ex: Exchange) -> None:
        await super().__call__(ex)
        raise self.error


class Answer:
    """A terminal stage answering 200 with a body, as Forward would."""

    async def __call__(self, ex: Exchange) -> None:
        ex.calls = (Call("ping", None, 1),)
        await ex.send({"type": "http.response.start", "status": 200, "headers": []})
        ex.status = 200
        await ex.send({"type": "http.response.body", "body": b"{}", "more_body": False})


# --- documents and health ----------------------------------------------------------------------


async def test_a_document_is_served_with_its_length_and_open_cors() -> None:
    app, sink = _gateway()
    sent = await _call(app, PRM_PATH, "GET", {})
    assert sent.status == 200
    assert sent.body == DOCUMENTS[PRM_PATH]
    assert sent.headers[b"content-type"] == b"application/json"
    assert sent.headers[b"content-length"] == str(len(DOCUMENTS[PRM_PATH])).encode()
    # RFC 9728 metadata is fetched by browser-based clients from other origins.
    assert sent.headers[b"access-control-allow-origin"] == b"*"
    assert sink.events == []  # documents are not MCP exchanges


async def test_head_of_a_document_has_its_length_and_no_body() -> None:
    app, _ = _gateway()
    sent = await _call(app, "/.well-known/jwks.json", "HEAD", {})
    assert sent.status == 200
    assert sent.headers[b"content-length"] == b"11"
    assert sent.body == b""


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
async def test_a_document_refuses_other_methods_with_405(method: str) -> None:
    app, _ = _gateway()
    sent = await _call(app, PRM_PATH, method, {})
    assert sent.status == 405
    assert sent.json() == {"error": "method_not_allowed"}


@pytest.mark.parametrize(
    "path", ["/", "/demo", "/demo/mcp/", "/DEMO/mcp", "/other/mcp", "/.well-known/oauth-protected-resource"]
)
async def test_unknown_paths_are_404_and_run_no_stage(path: str) -> None:
    log: list[str] = []
    app, sink = _gateway([Recorder("edge", log)])
    sent = await _call(app, path)
    assert sent.status == 404
    assert sent.json() == {"error": "not_found"}
    assert log == []
    assert sink.events == []


async def test_healthz_is_ok_while_the_audit_sink_is_healthy() -> None:
    app, _ = _gateway()
    sent = await _call(app, "/healthz", "GET", {})
    assert (sent.status, sent.json()) == (200, {"status": "ok"})


async def test_healthz_says_degraded_but_stays_alive_while_the_audit_sink_fails() -> None:
    # A gateway that cannot record its decisions is degraded (SL-04), and says so; a liveness
    # probe must not restart it for that: the events it holds in memory would be lost.
    app, _ = _gateway(sink=Sink(healthy=False))
    sent = await _call(app, "/healthz", "GET", {})
    assert (sent.status, sent.json()) == (200, {"status": "degraded", "audit": "failing"})


async def test_refuse_mode_answers_503_without_running_a_stage_while_the_sink_fails() -> None:
    log: list[str] = []
    app, _ = _gateway([Recorder("edge", log)], sink=Sink(healthy=False), audit={"on_failure": "refuse"})
    sent = await _call(app, "/demo/mcp")
    assert sent.status == 503
    assert sent.json()["error"]["code"] == -32603
    assert log == []
    # Buffer mode (the default) serves on: the events wait in the sink's buffer.
    app, _sink = _gateway([Recorder("edge", log)], sink=Sink(healthy=False))
    await _call(app, "/demo/mcp")
    assert log == ["edge"]


# --- the stage chain ------------------------------------------------------------------------------


async def test_stages_run_in_order_and_the_exchange_is_audited_once() -> None:
    log: list[str] = []
    app, sink = _gateway([Recorder("edge", log), Recorder("authenticate", log), Answer()])
    sent = await _call(app, "/demo/mcp")
    assert log == ["edge", "authenticate"]
    assert (sent.status, sent.body) == (200, b"{}")
    assert [(e.method, e.decision, e.status, e.reason) for e in sink.events] == [("ping", "allow", 200, "ok")]


@pytest.mark.parametrize(
    ("error", "status", "decision"),
    [
        (RequestRejected("origin not allowed", status=403), 403, "deny"),
        (InsufficientScope("the token lacks scopes", scopes=("tools.write",)), 403, "deny"),
        (UpstreamError("upstream answered HTTP 302"), 502, "error"),
    ],
)
async def test_a_stage_raising_a_bastion_error_gets_its_reply_and_one_audit_event(
    error: BastionError, status: int, decision: str
) -> None:
    log: list[str] = []
    app, sink = _gateway([Recorder("edge", log), Raiser("authorize", log, error), Recorder("forward", log)])
    sent = await _call(app, "/demo/mcp")
    assert log == ["edge", "authorize"]  # the chain stops at the first answer
    assert sent.status == status
    assert sent.headers[b"cache-control"] == b"no-store"
    events: list[AuditEvent] = sink.events
    assert len(events) == 1
    assert (events[0].decision, events[0].status, events[0].reason) == (decision, status, error.message)


async def test_an_insufficient_scope_reply_carries_the_step_up_challenge() -> None:
    app, _ = _gateway([Raiser("authorize", [], InsufficientScope("needs more", scopes=("a.b", "c.d")))])
    sent = await _call(app, "/demo/mcp")
    challenge = sent.headers[b"www-authenticate"].decode()
    assert challenge.startswith('Bearer error="insufficient_scope"')
    assert 'scope="a.b c.d"' in challenge
    assert 'resource_metadata="https://gw.example/.well-known/oauth-protected-resource/demo/mcp"' in challenge


async def test_an_unexpected_exception_is_a_500_that_says_nothing_and_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    boom = RuntimeError("db password is hunter2")
    app, sink = _gateway([Raiser("authorize", [], boom)])
    with caplog.at_level(logging.ERROR, logger="mcp_bastion"):
        sent = await _call(app, "/demo/mcp")
    assert sent.status == 500
    assert b"hunter2" not in sent.body
    assert sent.json()["error"] == {"code": -32603, "message": "Internal error"}
    records = [r for r in caplog.records if r.name == "mcp_bastion" and r.exc_info]
    assert len(records) == 1
    assert records[0].exc_info is not None
    assert records[0].exc_info[1] is boom  # the traceback goes to the operator's log, not the client
    assert [(e.decision, e.status, e.reason) for e in sink.events] == [("error", 500, "internal error")]


async def test_an_error_after_the_answer_started_only_ends_the_stream() -> None:
    class BreaksMidway:
        async def __call__(self, ex: Exchange) -> None:
            await ex.send({"type": "http.response.start", "status": 200, "headers": []})
            ex.status = 200
            await ex.send({"type": "http.response.body", "body": b"data: 1\n\n", "more_body": True})
            raise UpstreamError("upstream connection failed mid-response")

    app, sink = _gateway([BreaksMidway()])
    sent = await _call(app, "/demo/mcp")
    assert sent.status == 200  # one start only: a second would break the ASGI contract
    assert sent.body == b"data: 1\n\n"
    assert sent.finished
    assert [(e.decision, e.status) for e in sink.events] == [("error", 200)]


async def test_a_reason_a_stage_recorded_is_kept() -> None:
    class Notes:
        async def __call__(self, ex: Exchange) -> None:
            ex.reason = "client disconnected"
            raise UpstreamError("later failure")

    app, sink = _gateway([Notes()])
    await _call(app, "/demo/mcp")
    assert sink.events[0].reason == "client disconnected"


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ([(b"authorization", b"Bearer a"), (b"authorization", b"Bearer b")], 400),  # which would count?
        ([(b"x-filler", b"v" * 20_000)], 431),  # over limits.max_header_bytes
    ],
)
async def test_unreadable_header_sets_are_refused_before_any_stage(
    headers: list[tuple[bytes, bytes]], status: int
) -> None:
    log: list[str] = []
    app, sink = _gateway([Recorder("edge", log), Answer()])
    scope = _scope("/demo/mcp")
    scope["headers"] = [*scope["headers"], *headers]
    sent = Sent()
    await app(scope, Received(), sent)
    assert sent.status == status
    assert log == []
    # Still audited, as every MCP request is: one event, no identity, the refusal's status.
    [event] = sink.events
    assert (event.decision, event.status, event.subject, event.token_hash) == ("deny", status, None, None)


async def test_the_exchange_carries_the_clients_trace_id() -> None:
    trace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    app, sink = _gateway([Answer()])
    await _call(app, "/demo/mcp", headers={**POST_HEADERS, "traceparent": trace})
    assert sink.events[0].trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"


# --- lifespan ---------------------------------------------------------------------------------------


async def test_lifespan_warms_at_startup_and_closes_and_flushes_at_shutdown() -> None:
    done: list[str] = []
    warmed = asyncio.Event()

    async def warm() -> None:
        done.append("warm")
        warmed.set()

    async def close() -> None:
        done.append("close")

    app, sink = _gateway(closers=[close], warmers=[warm])
    messages: list[Message] = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent = Sent()

    async def receive() -> Message:
        if len(messages) == 1:
            # Warmers run in the background (an IdP that is down must not delay start-up):
            # shut down only once this one has run.
            await asyncio.wait_for(warmed.wait(), 5)
        return messages.pop(0)

    try:
        await app({"type": "lifespan"}, receive, sent)
    finally:
        gc.unfreeze()  # start-up froze this test process's objects; leave it as it was
    assert [m["type"] for m in sent.messages] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert done == ["warm", "close"]
    assert sink.flushed == 1  # audit lines still pending are written before the process ends


async def test_a_part_that_fails_to_close_does_not_keep_the_rest_open(
    caplog: pytest.LogCaptureFixture,
) -> None:
    closed: list[str] = []

    async def broken() -> None:
        raise OSError("already closed")

    async def close() -> None:
        closed.append("audit")

    app, sink = _gateway(closers=[broken, close])
    await app.shutdown()
    assert closed == ["audit"]
    assert sink.flushed == 1
    assert "closing" in caplog.text
    assert "broken" in caplog.text
