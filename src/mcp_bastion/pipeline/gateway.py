"""The gateway's ASGI application: routing, the stage chain, error replies and the audit step.

A request to a protected MCP path runs the stages in order (`app.py` chooses them); each
either returns (continue) or raises a BastionError, which `replies.py` turns into the
answer. Whatever happened, the audit step records the exchange last. Every other path is
a document served from memory (protected resource metadata, the gateway's JWKS) or
/healthz.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol

from ..asgi import Receive, Scope, Send
from ..config.model import BastionConfig
from ..errors import BastionError, RequestRejected
from ..mcp.jsonrpc import INTERNAL_ERROR, error_body
from ..route import ServerRoute
from ..telemetry.observer import RequestObserver
from ..telemetry.readiness import Readiness
from ..trace import TraceContext
from .audit import AuditStep
from .exchange import CYCLE_EXTENSION, Exchange, RequestHeaders, read_headers
from .replies import JSON, error_reply, send_reply

__all__ = ["Gateway", "Stage"]

log = logging.getLogger("mcp_bastion")
_NO_HEADERS = RequestHeaders({}, [], 0)


class Stage(Protocol):
    async def __call__(self, ex: Exchange) -> None: ...


class _RecordBeforeLastByte:
    """The exchange's `send`: the audit event is recorded just before the answer's last byte
    goes out, so a client never holds an answer whose event a crash could still lose
    (a spooled sink writes it to disk in `emit`). Telemetry finishes first (`finish`): the
    event carries the span's trace id. `ex` is None once recorded."""

    __slots__ = ("ex", "finish", "record", "send")

    def __init__(self, send: Send, record: AuditStep, finish: Callable[[Exchange], None] | None) -> None:
        self.send = send
        self.record = record
        self.finish = finish
        self.ex: Exchange | None = None

    def unrecorded(self) -> Exchange | None:
        """The exchange if its event was not recorded yet (now it counts as recorded)."""
        ex, self.ex = self.ex, None
        return ex

    async def __call__(self, message: Any) -> None:
        ex = self.ex
        if ex is not None and message["type"] == "http.response.body" and not message.get("more_body"):
            self.ex = None
            if self.finish is not None:
                self.finish(ex)
            self.record(ex)
        await self.send(message)


class Gateway:
    def __init__(
        self,
        config: BastionConfig,
        routes: Sequence[ServerRoute],
        stages: Sequence[Stage],
        *,
        audit: AuditStep,
        documents: Mapping[str, bytes],
        closers: Sequence[Callable[[], Awaitable[Any]]] = (),
        warmers: Sequence[Callable[[], Awaitable[Any]]] = (),
        mounts: Sequence[tuple[tuple[str, ...], Callable[[Scope, Receive, Send], Awaitable[None]]]] = (),
        telemetry: RequestObserver | None = None,
        readiness: Readiness | None = None,
    ) -> None:
        self.config = config
        self.routes = {route.path: route for route in routes}
        self._documents = dict(documents)
        self._stages = tuple(stages)
        self._audit = audit
        self._max_header_bytes = config.limits.max_header_bytes
        self._refuse_unaudited = config.audit.on_failure == "refuse"
        self._closers = closers
        self._warmers = warmers
        self._background: set[asyncio.Task[Any]] = set()
        # Apps answering whole path prefixes of their own (authorization facades, `facade/`).
        self._mounts = tuple(mounts)
        self.telemetry = telemetry  # None when metrics and traces are off: nothing is called
        self._readiness = readiness

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            route = self.routes.get(scope["path"])
            if route is not None:
                await self._handle(route, scope, receive, send)
            elif self._mounts and (mounted := self._mounted(scope["path"])) is not None:
                await mounted(scope, receive, send)
            else:
                await self._document(scope, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)

    def _mounted(self, path: str) -> Callable[[Scope, Receive, Send], Awaitable[None]] | None:
        for prefixes, app in self._mounts:
            if path.startswith(prefixes):
                return app
        return None

    async def startup(self) -> None:
        # Everything built so far lives as long as the process: take it out of the cyclic
        # collector's view, so collections triggered by per-request garbage stay cheap.
        gc.freeze()
        for warm in self._warmers:
            # Warm key caches without delaying start-up: an IdP that is down must not stop us.
            task = asyncio.ensure_future(warm())
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def shutdown(self) -> None:
        for task in self._background:
            task.cancel()
        for close in self._closers:
            # One part failing to close must not leave the rest open: the audit spool's
            # close (which delivers what waits) comes after the upstream pools and IdP clients.
            try:
                await close()
            except Exception:
                log.exception("shutdown: closing %s failed", getattr(close, "__qualname__", close))
        self._audit.sink.flush()  # nothing lost: write audit lines still pending from the last loop turn

    async def _handle(self, route: ServerRoute, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        if self._refuse_unaudited and not self._audit.sink.healthy:
            await send_reply(send, (503, [JSON], error_body(None, INTERNAL_ERROR, "audit unavailable")))
            return
        telemetry = self.telemetry
        recorded = _RecordBeforeLastByte(
            send, self._audit, telemetry.finished if telemetry is not None else None
        )
        try:
            headers = read_headers(scope["headers"], self._max_header_bytes)
        except RequestRejected as err:
            # Refused before anything was read (duplicate Authorization, oversized headers):
            # still one audit event, with no identity and a fresh trace id.
            ex = Exchange(scope, receive, recorded, route, _NO_HEADERS, TraceContext.from_header(None))
            recorded.ex = ex
            ex.started = started
            await self._answer(ex, err)
            return
        ex = Exchange(
            scope, receive, recorded, route, headers, TraceContext.from_header(headers.get("traceparent"))
        )
        recorded.ex = ex
        ex.started = started
        extensions = scope.get("extensions")
        if extensions:
            ex.cycle = extensions.get(CYCLE_EXTENSION)
        try:
            for stage in self._stages:
                await stage(ex)
        except BastionError as err:
            await self._answer(ex, err)
        except Exception:
            log.exception("unexpected failure handling a request to %s", route.name)
            await self._answer(ex, BastionError("internal error"))
        finally:
            # Not recorded at the answer's last byte (it never went out): recorded now. Asked
            # through a method: `recorded.ex` read here would carry the type mypy narrowed it to
            # at `recorded.ex = ex` (Exchange), and the compiled build refuses the None it holds.
            if recorded.unrecorded() is not None:
                if self.telemetry is not None:
                    self.telemetry.finished(ex)  # before the audit: the event carries the span's trace id
                self._audit(ex)

    async def _answer(self, ex: Exchange, err: BastionError) -> None:
        # An error may say more to the audit feed than to the client (an IdP's refusal).
        ex.reason = ex.reason or getattr(err, "audit_reason", err.message)
        if ex.status:
            # The response has started (a stream broke mid-way): all we can do is end it.
            ex.outcome = "error"
            await ex.send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        reply = error_reply(ex.route, err, ex)
        ex.status = reply[0]
        ex.outcome = "deny" if reply[0] < 500 else "error"
        await send_reply(ex.send, reply)

    async def _document(self, scope: Scope, send: Send) -> None:
        path = scope["path"]
        if path == "/healthz":
            await self._health(send)
            return
        if path == "/readyz" and self._readiness is not None:
            ready, body = await self._readiness.check()
            await send_reply(send, (200 if ready else 503, [JSON], body))
            return
        document = self._documents.get(path)
        if document is None or scope["method"] not in ("GET", "HEAD"):
            status, body = (
                (404, b'{"error":"not_found"}')
                if document is None
                else (405, b'{"error":"method_not_allowed"}')
            )
            await send_reply(send, (status, [JSON], body))
            return
        headers = [
            JSON,
            (b"access-control-allow-origin", b"*"),
            (b"content-length", str(len(document)).encode()),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": document if scope["method"] == "GET" else b""})

    async def _health(self, send: Send) -> None:
        # Liveness: 200 while the process serves. A failing audit feed is reported in the body,
        # by /readyz (503) and by the metrics, never by a failed liveness probe: a restart
        # would lose the events the sink holds in memory and would not empty a full disk.
        body = b'{"status":"ok"}' if self._audit.sink.healthy else b'{"status":"degraded","audit":"failing"}'
        await send_reply(send, (200, [JSON], body))

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self.startup()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return
