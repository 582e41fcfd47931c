"""One request over a connection: the ASGI `receive` and `send` of its app call."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..asgi import ASGIApp, Message, Scope
from .wire import plain_answer, response_head

if TYPE_CHECKING:
    from .connection import HttpConnection

__all__ = ["RequestCycle"]

log = logging.getLogger("mcp_bastion.server")

BODY_HIGH_WATER = 256 * 1024  # unread request body buffered before reading from the client pauses


class RequestCycle:
    """One request: the ASGI `receive` and `send` of its app call, over its connection.

    Extension for the gateway (`scope["extensions"]["mcp_bastion.cycle"]`): `body_complete`
    says the whole body is already here, and `on_disconnect(callback)` calls back when the
    client goes away (no task needs to sit in `receive()` to notice).
    """

    __slots__ = (
        "_body",
        "_body_sent",
        "_chunked",
        "_disconnect_callbacks",
        "_length",
        "_pending_head",
        "_waiter",
        "body_complete",
        "buffered",
        "canned",
        "connection",
        "continue_sent",
        "ending",
        "gone",
        "keep_alive",
        "response_complete",
        "response_started",
        "scope",
        "task",
    )

    def __init__(self, connection: HttpConnection, scope: Scope, keep_alive: bool) -> None:
        self.connection = connection
        self.scope = scope
        scope["extensions"]["mcp_bastion.cycle"] = self
        self.keep_alive = keep_alive
        self._body: list[bytes] = []
        self.buffered = 0
        self.body_complete = False
        self._body_sent = False
        self._waiter: asyncio.Future[None] | None = None
        self.gone = False
        self._disconnect_callbacks: list[Callable[[], None]] = []
        self.response_started = False
        self.response_complete = False
        self._pending_head: tuple[int, list[tuple[bytes, bytes]]] | None = None
        self._chunked = False
        self._length: int | None = None
        self.canned: tuple[int, bytes] | None = None
        self.continue_sent = False
        self.task: asyncio.Task[None] | None = None
        self.ending = False  # stopped by a graceful stop (server/drain.py), not failed

    # --- from the connection -----------------------------------------------------------------

    def take_body(self, data: bytes) -> None:
        self._body.append(data)
        self.buffered += len(data)
        if self.buffered > BODY_HIGH_WATER and self.connection.cycle is self:
            self.connection._pause_reading()
        self.wake()

    def wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def client_gone(self) -> None:
        self.gone = True
        self.wake()
        callbacks, self._disconnect_callbacks = self._disconnect_callbacks, []
        for callback in callbacks:
            callback()

    def on_disconnect(self, callback: Callable[[], None]) -> None:
        if self.gone:
            callback()
        else:
            self._disconnect_callbacks.append(callback)

    def forget_disconnect(self, callback: Callable[[], None]) -> None:
        if callback in self._disconnect_callbacks:
            self._disconnect_callbacks.remove(callback)

    # --- the app's side ----------------------------------------------------------------------

    async def run(self, app: ASGIApp) -> None:
        try:
            await app(self.scope, self.receive, self.send)
        except BaseException as exc:
            if not isinstance(exc, asyncio.CancelledError):
                log.exception("unexpected failure in the application")
            if self.ending and isinstance(exc, asyncio.CancelledError):
                self._end_for_stop()
            elif not self.response_started and not self.gone:
                self.write_canned(500, b"internal error")
            elif not self.response_complete:
                self.connection.transport.close()  # a broken stream ends the connection
            if not isinstance(exc, Exception):
                raise
        else:
            if not self.response_complete:
                if self.ending:
                    self._end_for_stop()
                elif not self.response_started and not self.gone:
                    log.error("the application returned without answering")
                    self.write_canned(500, b"internal error")
                elif not self.gone:
                    self.connection.transport.close()
        finally:
            # Off the server's list of running requests (a done callback would cost one more
            # event-loop callback per request).
            if self.task is not None:
                self.connection.state.tasks.discard(self.task)

    def end(self) -> None:
        """Stop this request for a graceful stop of the server (server/drain.py)."""
        self.ending = True
        if self.task is not None:
            self.task.cancel()

    def _end_for_stop(self) -> None:
        # A stop is not a failure: an answer not yet begun is a 503 the client may retry
        # elsewhere, and a chunked stream gets its last chunk, so the client reads a complete
        # response (a cut one reads as a broken upstream).
        if self.gone or self.response_complete:
            return
        if self._pending_head is not None or not self.response_started:
            self.write_canned(503, b"server is shutting down")
            return
        if self._chunked:
            self.connection.transport.write(b"0\r\n\r\n")
        self.connection.transport.close()

    async def receive(self) -> Message:
        while True:
            if self._body and (self.body_complete or not self._body_sent):
                body = b"".join(self._body) if len(self._body) > 1 else self._body[0]
                self._body.clear()
                self.buffered = 0
                if self.connection.cycle is self and not self.connection.waiting:
                    self.connection._resume_reading()
                more = not self.body_complete
                self._body_sent = not more
                return {"type": "http.request", "body": body, "more_body": more}
            if self.body_complete and not self._body_sent:
                self._body_sent = True
                return {"type": "http.request", "body": b"", "more_body": False}
            if self.gone or self.response_complete:
                return {"type": "http.disconnect"}
            if not self.continue_sent and not self._body_sent and not self.response_started:
                self._send_continue()
            self._waiter = self.connection.loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    def _send_continue(self) -> None:
        self.continue_sent = True
        if self.scope["http_version"] == "1.0":
            return  # RFC 9110 §10.1.1: an HTTP/1.0 request's 100-continue is ignored
        for name, value in self.scope["headers"]:
            if name == b"expect" and value.lower() == b"100-continue":
                self.connection.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                return

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            if self.response_started:
                raise RuntimeError("the response has started already")
            self.response_started = True
            self._pending_head = (message["status"], message.get("headers") or [])
            return
        if kind != "http.response.body" or not self.response_started or self.response_complete:
            raise RuntimeError(f"unexpected ASGI message {kind!r} at this point of the response")
        body: bytes = message.get("body", b"")
        more: bool = message.get("more_body", False)
        if self.gone:
            return
        connection = self.connection
        head = self._head(len(body), more) if self._pending_head is not None else b""
        if self.scope["method"] == "HEAD" or self._length == -1:
            body = b""
        elif self._chunked:
            body = (b"%x\r\n%b\r\n" % (len(body), body) if body else b"") + (b"" if more else b"0\r\n\r\n")
        if head or body:
            connection.transport.write(head + body if head else body)
        if not more:
            self.response_complete = True
            self.wake()
            connection.response_done(self)
        elif connection.write_paused and not connection.closed:
            connection.drained = connection.loop.create_future()
            await connection.drained

    def _head(self, size: int, more: bool) -> bytes:
        assert self._pending_head is not None
        status, headers = self._pending_head
        self._pending_head = None
        framed = app_closes = False
        for name, value in headers:
            lowered = name.lower()
            if lowered == b"content-length" or lowered == b"transfer-encoding":
                framed = True
            elif lowered == b"connection" and value.lower() == b"close":
                app_closes = True
        if app_closes or self.connection.state.closing or not self.body_complete:
            # The connection ends after this answer: the app says so, the server is stopping,
            # or the answer came before the whole body (whose rest cannot be told from a next
            # request). Said in the head, so the client does not reuse the connection.
            self.keep_alive = False
        if status in (204, 304) or status < 200:
            self._length = -1  # no body, whatever the app sends
        elif not framed and more:
            if self.scope["http_version"] == "1.0":
                # No chunked coding for HTTP/1.0 (RFC 9112 §7): the body ends with the connection.
                self.keep_alive = False
            else:
                self._chunked = True
                headers = [*headers, (b"transfer-encoding", b"chunked")]
        length = size if not framed and not more and self._length != -1 else None
        return response_head(status, headers, length, close=not self.keep_alive and not app_closes)

    def write_canned(self, status: int, message: bytes) -> None:
        """An answer from the server itself (503 at capacity, 500 when the app failed): plain
        text, as for every request that never became an MCP message."""
        self.response_started = True
        self.keep_alive = self.keep_alive and status < 500 and self.body_complete
        self.connection.transport.write(plain_answer(status, message, close=not self.keep_alive))
        self.response_complete = True
        self.wake()
        self.connection.response_done(self)
