"""The HTTP/1.1 connection protocol the gateway runs on: uvicorn's httptools protocol with the
two bounds it lacks (JR-10, TV-16).

- **Head deadline.** uvicorn arms no timer until a first response completes, and every byte
  received cancels its keep-alive timer: a connection that sends nothing, or a request head
  one byte at a time, would be held forever (slowloris). Here each request head must be
  complete within `limits.header_read_timeout_seconds` of its first byte (or of the
  connection opening); otherwise the connection is closed.
- **Head size.** httptools buffers a whole request head before the application sees any of it,
  and its cost grows faster than the head (100 MB cost 16 s of CPU here, stalling every other
  user). Here the bytes of a head are counted as they arrive, and past
  `limits.max_header_bytes` (plus room for the request line) the answer is 431 and the
  connection is closed, with at most one more read buffered.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["GatewayHttpProtocol", "bound_protocol"]

REQUEST_LINE_ALLOWANCE = 8192  # the request line (method, target) is not part of the header cap
LINGER_SECONDS = 1.0  # after a 431, input is discarded this long before the connection closes
LINGER_MAX_BYTES = 1_048_576  # ... or until this much was discarded, whichever comes first


class GatewayHttpProtocol(HttpToolsProtocol):
    head_timeout: float = 10.0
    max_head_bytes: int = 16_384 + REQUEST_LINE_ALLOWANCE

    @classmethod
    def configure(cls, head_timeout: float, max_header_bytes: int) -> None:
        """Set the bounds on this class itself (a worker process serves one config)."""
        cls.head_timeout = head_timeout
        cls.max_head_bytes = max_header_bytes + REQUEST_LINE_ALLOWANCE

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_timer: asyncio.TimerHandle | None = None
        self._in_head = True  # a connection starts by waiting for a request head
        self._head_bytes = 0
        self._refused = False
        self._discarded = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            # Lingering after a 431: what the client still sends is read and dropped, up to a
            # bound, so a client pushing 100 MB cannot keep the event loop busy draining it.
            self._discarded += len(data)
            if self._discarded > LINGER_MAX_BYTES and not self.transport.is_closing():
                self.transport.close()
            return
        counting = self._in_head
        if counting:
            self._head_bytes += len(data)
        super().data_received(data)
        # Checked after parsing: one chunk may hold a whole head and a body. A head still not
        # complete past the cap is refused; the parser never buffers more than cap + one read.
        if counting and self._in_head and self._head_bytes > self.max_head_bytes:
            self._refuse_head()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if not self._in_head:
            # A new request on a kept-alive connection: its head gets the same deadline.
            self._in_head = True
            self._head_bytes = 0
            self._arm_head_timer()

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._head_bytes = 0
        self._disarm_head_timer()
        super().on_headers_complete()

    def _arm_head_timer(self) -> None:
        self._disarm_head_timer()
        self._head_timer = self.loop.call_later(self.head_timeout, self._head_timed_out)

    def _disarm_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self._in_head and not self.transport.is_closing():
            self.transport.close()

    def _refuse_head(self) -> None:
        self._disarm_head_timer()
        self._in_head = False
        self._refused = True
        if self.transport.is_closing():
            return
        body = b'{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"request headers too large"}}'
        self.transport.write(
            b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/json\r\n"
            b"content-length: " + str(len(body)).encode() + b"\r\nconnection: close\r\n\r\n" + body
        )
        # Lingering close: closing with unread input makes the kernel send a reset, which can
        # destroy the 431 before the client reads it. Stop writing, drop input for a moment, close.
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.loop.call_later(LINGER_SECONDS, self.transport.close)


def bound_protocol(head_timeout: float, max_header_bytes: int) -> type[GatewayHttpProtocol]:
    """A protocol class carrying this config's bounds (uvicorn instantiates the class itself)."""
    return type(
        "BoundGatewayHttpProtocol",
        (GatewayHttpProtocol,),
        {"head_timeout": head_timeout, "max_head_bytes": max_header_bytes + REQUEST_LINE_ALLOWANCE},
    )
