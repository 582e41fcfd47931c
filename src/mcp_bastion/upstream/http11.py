"""A lean pooled HTTP/1.1 client for upstream MCP servers, on asyncio protocols and httptools.

Measured on the 2-core reference machine (see docs/performance.md): httpx spent about 1 ms of
CPU per proxied call in connection-pool bookkeeping, anyio stream wrappers and a failing
per-call import probe; this client spends a few tens of µs. It does exactly what the gateway
needs and no more: one request per connection at a time, keep-alive reuse, streamed response
bodies with back-pressure, a connect timeout, a per-read timeout, TLS with one shared context.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from dataclasses import dataclass
from typing import cast
from urllib.parse import urlsplit

import httptools

from ..errors import UpstreamError, UpstreamTimeout

__all__ = ["BodyChunks", "Http11Pool", "Origin", "RawResponse"]

MAX_RESPONSE_HEADER_BYTES = 64 * 1024  # an upstream's response head; beyond it the answer fails
MAX_RESPONSE_HEADERS = 256
HIGH_WATER = 256 * 1024  # pause reading from the upstream when this much is unread (back-pressure)
LOW_WATER = 64 * 1024


@dataclass(frozen=True, slots=True)
class Origin:
    scheme: str
    host: str
    port: int
    path: bytes  # request target: path and query
    host_header: bytes

    @classmethod
    def parse(cls, url: str) -> Origin:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url}")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return cls(parts.scheme, parts.hostname, port, target.encode("ascii"), parts.netloc.encode("ascii"))


class _Connection(asyncio.Protocol):
    """One keep-alive connection; parses one response at a time with httptools."""

    def __init__(self, key: tuple[str, str, int, int]) -> None:
        self.key = key
        self.transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._interim = False  # parsing a 1xx answer that precedes the final one
        self.closed = False
        self.received = False
        self.response: RawResponse | None = None

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast("asyncio.Transport", transport)

    def data_received(self, data: bytes) -> None:
        self.received = True
        if self.response is None or self.response.complete:
            # Bytes while no request is outstanding answer nothing we asked: not reusable.
            self._fail("upstream sent data while no request was outstanding")
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail("upstream tried to upgrade the connection")
        except httptools.HttpParserError as exc:
            # A callback's exception arrives wrapped (HttpParserCallbackError, as __context__).
            if isinstance(exc.__context__, _Unrequested):
                self._fail("upstream sent a second answer to one request")
            else:
                self._fail("upstream sent a malformed HTTP response")

    def eof_received(self) -> bool | None:
        response = self.response
        if response is not None and not response.complete and response.headers_done and response.until_close:
            response.finish()  # a body delimited by connection close ends here
        self._fail("upstream closed the connection")
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail("upstream closed the connection")

    # httptools callbacks
    def on_message_begin(self) -> None:
        if self.response is None or self.response.complete:
            raise _Unrequested  # stops the parser; the connection is dropped

    def on_header(self, name: bytes, value: bytes) -> None:
        response = self.response
        assert response is not None
        response.header_bytes += len(name) + len(value)
        if response.header_bytes > MAX_RESPONSE_HEADER_BYTES or len(response.headers) >= MAX_RESPONSE_HEADERS:
            self._fail("upstream sent too many response headers")  # an endless head is not buffered
            return
        response.headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        response = self.response
        assert response is not None
        status = self._parser.get_status_code()
        if 100 <= status < 200:
            # An interim answer (100 Continue, 103 Early Hints): its headers are not the
            # response's; the final answer follows on the same connection. (101 never gets
            # here: an upgrade stops the parser and fails the response.)
            self._interim = True
            return
        response.status = status
        length = response.header(b"content-length")
        chunked = b"chunked" in (response.header(b"transfer-encoding") or b"").lower()
        response.until_close = length is None and not chunked and response.status not in (204, 304)
        response.headers_done = True
        response.wake()

    def on_body(self, body: bytes) -> None:
        assert self.response is not None
        self.response.feed(body)

    def on_message_complete(self) -> None:
        response = self.response
        assert response is not None
        if self._interim:
            self._interim = False
            response.headers.clear()
            response.header_bytes = 0
            return
        response.keep_alive = self._parser.should_keep_alive()
        response.finish()

    # ours
    def start(self, response: RawResponse) -> None:
        self.response = response
        self.received = False  # no byte of this response yet
        # One parser for the connection's life: a connection is reused only after a response
        # that was read to its end, so the parser stands at the start of the next message.

    def _fail(self, reason: str) -> None:
        self.closed = True
        if self.response is not None and not self.response.complete:
            self.response.fail(reason)
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()


class _Unrequested(Exception):
    """An upstream began a response that no request of ours is waiting for."""


class RawResponse:
    """An upstream response whose body is read as it arrives."""

    __slots__ = (
        "_buffered",
        "_chunks",
        "_connection",
        "_error",
        "_paused",
        "_waiter",
        "complete",
        "header_bytes",
        "headers",
        "headers_done",
        "keep_alive",
        "status",
        "until_close",
    )

    def __init__(self, connection: _Connection) -> None:
        self._connection = connection
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.header_bytes = 0
        self.headers_done = False
        self.complete = False
        self.keep_alive = False
        self.until_close = False
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._error: str | None = None
        self._waiter: asyncio.Future[object] | None = None
        self._paused = False

    def header(self, name: bytes) -> bytes | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None

    def feed(self, data: bytes) -> None:
        self._chunks.append(data)
        self._buffered += len(data)
        if self._buffered > HIGH_WATER and not self._paused and self._connection.transport is not None:
            self._paused = True
            self._connection.transport.pause_reading()
        self.wake()

    def finish(self) -> None:
        self.complete = True
        self.wake()

    def fail(self, reason: str) -> None:
        self._error = reason
        self.wake()

    def wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def wait_headers(self, timeout: float | None) -> None:
        while not self.headers_done:
            if self._error is not None:
                raise UpstreamError(self._error)
            await self._wait(timeout, "upstream did not answer within the timeout")

    def chunks(self, timeout: float | None) -> BodyChunks:
        return BodyChunks(self, timeout)

    async def next_chunk(self, timeout: float | None) -> bytes | None:
        """The next piece of the body as it arrived, or None at its end."""
        while True:
            if self._chunks:
                chunk = self._chunks.popleft()
                self._buffered -= len(chunk)
                if self._paused and self._buffered < LOW_WATER and self._connection.transport is not None:
                    self._paused = False
                    self._connection.transport.resume_reading()
                return chunk
            if self.complete:
                return None
            if self._error is not None:
                raise UpstreamError("upstream connection failed mid-response")
            await self._wait(timeout, "upstream stopped sending within the timeout")

    async def read_all(self, timeout: float | None, cap: int) -> bytes | None:
        """The whole body, or None past `cap` bytes. Small answers usually arrived with
        their headers, so this returns without another wait."""
        while not self.complete:
            if self._error is not None:
                raise UpstreamError("upstream connection failed mid-response")
            if self._buffered > cap:
                return None
            if self._paused and self._connection.transport is not None:
                self._paused = False  # keep reading: the body is collected, not streamed
                self._connection.transport.resume_reading()
            await self._wait(timeout, "upstream stopped sending within the timeout")
        if self._buffered > cap:
            return None
        body = b"".join(self._chunks)
        self._chunks.clear()
        self._buffered = 0
        return body

    async def _wait(self, timeout: float | None, message: str) -> None:
        # A bare future and one timer handle: cheaper than asyncio.timeout on every wait.
        loop = asyncio.get_running_loop()
        waiter = self._waiter = loop.create_future()
        timer = loop.call_later(timeout, _expire, waiter) if timeout is not None else None
        try:
            await waiter
        finally:
            self._waiter = None
            if timer is not None:
                timer.cancel()
        if waiter.result() is _TIMED_OUT:
            raise UpstreamTimeout(message)


class BodyChunks:
    """`async for chunk in response.chunks(timeout)`. A class rather than an async generator:
    the compiled build (mypyc) cannot compile async generators, and this is the hot path."""

    __slots__ = ("_response", "_timeout")

    def __init__(self, response: RawResponse, timeout: float | None) -> None:
        self._response = response
        self._timeout = timeout

    def __aiter__(self) -> BodyChunks:
        return self

    async def __anext__(self) -> bytes:
        chunk = await self._response.next_chunk(self._timeout)
        if chunk is None:
            raise StopAsyncIteration
        return chunk


_TIMED_OUT = object()


def _expire(waiter: asyncio.Future[object]) -> None:
    if not waiter.done():
        waiter.set_result(_TIMED_OUT)


class Http11Pool:
    """Keep-alive connections per upstream origin, shared by every request of the process."""

    def __init__(self, *, max_per_origin: int, connect_timeout: float) -> None:
        # By origin and TLS context: upstreams with other TLS settings never share a connection.
        self._idle: dict[tuple[str, str, int, int], list[_Connection]] = {}
        self._max_idle = max_per_origin
        self._connect_timeout = connect_timeout
        self._ssl: ssl.SSLContext | None = None  # created once, on the first https upstream

    async def send(
        self,
        origin: Origin,
        method: bytes,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
        timeout: float | None,
        tls: ssl.SSLContext | None = None,
    ) -> RawResponse:
        request = _serialize(origin, method, headers, body)
        for attempt in (1, 2):
            connection, reused = await self._acquire(origin, tls)
            response = RawResponse(connection)
            connection.start(response)
            assert connection.transport is not None
            connection.transport.write(request)
            try:
                await response.wait_headers(timeout)
            except UpstreamTimeout:
                self.discard(response)
                raise
            except UpstreamError:
                self.discard(response)
                # A kept-alive connection the upstream closed while it sat idle (its keep-alive
                # timeout) fails before a single response byte: the request never reached the
                # application, so it is sent once more on a fresh connection.
                if reused and attempt == 1 and not connection.received:
                    continue
                raise
            except BaseException:
                self.discard(response)
                raise
            return response
        raise AssertionError("unreachable: the second attempt returns or raises")

    def release(self, response: RawResponse) -> None:
        """Give the connection back if the response was read to its end and may be reused."""
        connection = response._connection
        if not response.complete or not response.keep_alive or connection.closed or response._paused:
            self.discard(response)
            return
        connection.response = None
        idle = self._idle.setdefault(connection.key, [])
        if len(idle) < self._max_idle:
            idle.append(connection)
        else:
            self.discard(response)

    def discard(self, response: RawResponse) -> None:
        connection = response._connection
        connection.closed = True
        connection.response = None
        if connection.transport is not None and not connection.transport.is_closing():
            connection.transport.close()

    async def aclose(self) -> None:
        # abort(), not close(): closing a TLS connection sends close_notify and waits for the
        # peer over later loop turns, and the loop may stop before (a transport left open).
        # An idle connection has nothing buffered to lose.
        for idle in self._idle.values():
            for connection in idle:
                if connection.transport is not None:
                    connection.transport.abort()
        self._idle.clear()

    async def _acquire(self, origin: Origin, tls: ssl.SSLContext | None) -> tuple[_Connection, bool]:
        idle = self._idle.get((origin.scheme, origin.host, origin.port, id(tls) if tls is not None else 0))
        while idle:
            connection = idle.pop()
            if (
                not connection.closed
                and connection.transport is not None
                and not connection.transport.is_closing()
            ):
                return connection, True
        return await self._connect(origin, tls), False

    async def _connect(self, origin: Origin, tls: ssl.SSLContext | None) -> _Connection:
        loop = asyncio.get_running_loop()
        ssl_context = (tls or self._context()) if origin.scheme == "https" else None
        key = (origin.scheme, origin.host, origin.port, id(tls) if tls is not None else 0)
        try:
            async with asyncio.timeout(self._connect_timeout):
                _, connection = await loop.create_connection(
                    lambda: _Connection(key),
                    origin.host,
                    origin.port,
                    ssl=ssl_context,
                    server_hostname=origin.host if ssl_context else None,
                )
        except TimeoutError:
            raise UpstreamTimeout("upstream did not accept a connection within the timeout") from None
        except OSError:
            raise UpstreamError("upstream is unreachable") from None
        return connection

    def _context(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = ssl.create_default_context()
        return self._ssl


def _serialize(origin: Origin, method: bytes, headers: list[tuple[bytes, bytes]], body: bytes) -> bytes:
    lines = [method, b" ", origin.path, b" HTTP/1.1\r\nhost: ", origin.host_header, b"\r\n"]
    for name, value in headers:
        lines += [name, b": ", value, b"\r\n"]
    count = len(headers) + 2  # and the request line and host
    if body or method == b"POST":
        lines += [b"content-length: ", str(len(body)).encode(), b"\r\n"]
        count += 1
    head = b"".join(lines)
    # Request smuggling guard: each line ends in one CRLF and no name or value holds a CR or LF
    # (counted over the whole head at once: two scans in C instead of checks per header).
    # Names are the gateway's own or Mcp-Param-* names the request parser read as tokens.
    if head.count(b"\n") != count or head.count(b"\r") != count:
        raise UpstreamError("refusing to forward a header with a line break")
    return head + b"\r\n" + body
