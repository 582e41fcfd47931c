"""One HTTP/1.1 client connection: httptools parses, an ASGI app answers, one request at a time.

Why the gateway has its own connection protocol rather than uvicorn's (measured in
docs/performance.md): a proxied call must cost as little as possible besides its checks.
Here a response head and a body given at once leave in one write (one syscall, where uvicorn
makes two); the request body, when it arrived with its head, is handed over without a wait
or a timer; the app can ask to hear of a disconnect through a callback instead of a task
blocked on `receive()`; and time limits are deadlines swept by one timer per server instead
of timers armed and cancelled on every request.

Bounds (JR-10, TV-16), all from `limits`:
- **Head deadline.** A request head must be complete within `header_read_timeout_seconds`
  of its first byte (or of the connection opening, or of the previous response's end).
- **Head size.** Bytes of a head are counted as they arrive, and each parsed head is sized;
  past `max_header_bytes` plus a request-line allowance the answer is 431 and the connection
  closes, after at most one more read was buffered (httptools would otherwise buffer, and
  re-scan, any amount).
- **Keep-alive.** An idle kept-alive connection closes after `keep_alive_timeout_seconds`.
- **Connections.** Past `max_connections` open connections, a request gets 503 and the
  connection closes; the others keep being served.
- **Framing and Host (RFC 9112).** Refused with 400 and a close before the app sees them: a
  `Transfer-Encoding` whose final coding is not `chunked` (§6.3: the body's length cannot be
  known), any `Transfer-Encoding` in an HTTP/1.0 request (§6.1: faulty framing), an HTTP/1.1
  request without `Host`, a request with two, or a `Host` that is not `host[:port]` (§3.2).
  Codings before a final `chunked` (`gzip, chunked`) are 501 (§6.1: not understood). A body
  whose chunked framing breaks (a chunk-size line ending in a bare LF, a size that is not hex)
  is answered 400 and the connection closed, unless the app has already begun its answer;
  the app hears the client gone.
- **Lingering close.** A connection closed while the client may still be sending (the
  server's 400/431, or an answer given before the whole body arrived: the gateway's 413, 408,
  401) stops writing, drops input for a moment (bounded in time and bytes), then closes, so
  the kernel does not reset the connection before the client has read the answer.
"""

from __future__ import annotations

import asyncio
import re
from collections import deque
from dataclasses import dataclass
from typing import cast
from urllib.parse import unquote

import httptools

from ..asgi import ASGIApp, Scope
from .cycle import RequestCycle
from .wire import plain_answer

__all__ = ["ConnectionLimits", "HttpConnection", "ServerState"]


REQUEST_LINE_ALLOWANCE = 8192  # the request line (method, target) is not part of the header cap
LINGER_SECONDS = 1.0
LINGER_MAX_BYTES = 1_048_576
# RFC 9112 §3.2, RFC 3986 §3.2.2: uri-host [ ":" port ], the host an IP-literal or a reg-name.
_HOST = re.compile(rb"(?:\[[0-9A-Za-z:._~!$&'()*+,;=-]+\]|[0-9A-Za-z._~%!$&'()*+,;=-]*)(?::[0-9]*)?\Z")


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    head_timeout: float = 10.0
    max_header_bytes: int = 16_384
    keep_alive_timeout: float = 5.0
    max_connections: int = 1000

    @property
    def max_head_bytes(self) -> int:
        return self.max_header_bytes + REQUEST_LINE_ALLOWANCE


class _Refused(Exception):
    """Raised in a parser callback after the request was refused: stops the parser."""


class ServerState:
    """What the connections of one listening socket share: the app, the limits, the live set,
    and the sweep that enforces deadlines."""

    def __init__(self, app: ASGIApp, limits: ConnectionLimits, loop: asyncio.AbstractEventLoop) -> None:
        self.app = app
        self.limits = limits
        self.loop = loop
        self.connections: set[HttpConnection] = set()
        self.tasks: set[asyncio.Task[None]] = set()
        self.closing = False
        # Deadlines are checked a few times per shortest timeout: at most a quarter late.
        shortest = min(limits.head_timeout, limits.keep_alive_timeout)
        self._tick = max(0.05, min(1.0, shortest / 4))
        self._sweeper: asyncio.TimerHandle | None = None

    def start(self) -> None:
        self._sweeper = self.loop.call_later(self._tick, self._sweep)

    def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None

    def _sweep(self) -> None:
        now = self.loop.time()
        for connection in [c for c in self.connections if 0 < c.deadline <= now]:
            connection.deadline_passed()
        self._sweeper = self.loop.call_later(self._tick, self._sweep)


class HttpConnection(asyncio.Protocol):
    def __init__(self, state: ServerState) -> None:
        self.state = state
        self.loop = state.loop
        self.transport: asyncio.Transport = cast("asyncio.Transport", None)
        self.parser = httptools.HttpRequestParser(self)
        self.deadline = 0.0  # loop time after which the connection closes; 0: none
        self.in_head = True  # waiting for, or reading, a request head: its bytes are counted
        self.idle = False  # between requests on a kept-alive connection
        self.head_bytes = 0  # bytes read while a head is awaited (caps heads still arriving)
        self.head_size = 0  # the parsed head's size (caps heads that completed in one read)
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.hosts = 0  # Host header lines of the head being read
        self.host = b""
        self.codings: list[bytes] | None = None  # its Transfer-Encoding values, if any
        self.cycle: RequestCycle | None = None  # the request being answered
        self.waiting: deque[RequestCycle] = deque()  # pipelined requests behind it
        self.reading = True
        self.write_paused = False
        self.drained: asyncio.Future[None] | None = None
        self.over_capacity = False
        self.upgrade_ignored = False  # an h2c-style offer on a bodiless request: served as HTTP/1.1
        self.blocked = False  # answers wait for the client to read before the next request
        self.trailer_bytes = 0
        self.lingering = False
        self.discarded = 0
        self.closed = False
        self.client: tuple[str, int] | None = None
        self.server: tuple[str, int] | None = None
        self.tls = False  # over TLS (server/tls.py)

    # --- asyncio.Protocol --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast("asyncio.Transport", transport)
        state = self.state
        self.over_capacity = len(state.connections) >= state.limits.max_connections or state.closing
        state.connections.add(self)
        self.deadline = self.loop.time() + state.limits.head_timeout
        peer = transport.get_extra_info("peername")
        sockname = transport.get_extra_info("sockname")
        self.client = (str(peer[0]), int(peer[1])) if isinstance(peer, tuple) else None
        self.server = (str(sockname[0]), int(sockname[1])) if isinstance(sockname, tuple) else None
        self.tls = transport.get_extra_info("ssl_object") is not None

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.deadline = 0.0
        self.state.connections.discard(self)
        for cycle in (self.cycle, *self.waiting):
            if cycle is not None:
                cycle.client_gone()
        self.waiting.clear()
        if self.drained is not None and not self.drained.done():
            self.drained.set_result(None)

    def data_received(self, data: bytes) -> None:
        if self.lingering or self.upgrade_ignored:
            # Input after a refusal (or after an upgrade offer, which ends the connection's
            # HTTP/1.1 stream) is read and dropped, up to a bound: a client pushing 100 MB
            # cannot keep the event loop busy draining it.
            self.discarded += len(data)
            if self.discarded > LINGER_MAX_BYTES:
                self.transport.close()
            return
        counting = self.in_head
        if counting:
            self.head_bytes += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if not self.upgrade_ignored:
                self._refuse(400, b"protocol upgrades are not supported")
            return
        except httptools.HttpParserError:
            # Also how a callback that refused the request stops the parser (then: lingering).
            self._malformed()
            return
        # Checked after parsing: one read may hold a whole head and a body. A head still not
        # complete past the cap is refused; the parser never buffered more than cap + one read.
        if counting and self.in_head and self.head_bytes > self.state.limits.max_head_bytes:
            self._refuse(431, b"request headers too large")

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        if self.drained is not None and not self.drained.done():
            self.drained.set_result(None)
        if self.blocked:
            self.blocked = False
            # The keep-alive deadline set while blocked no longer applies; a head already under
            # way gets a fresh head deadline (reading was paused meanwhile).
            partial_head = self.in_head and not self.idle and self.head_bytes > 0
            self.deadline = self.loop.time() + self.state.limits.head_timeout if partial_head else 0.0
            self._next_request()

    # --- httptools callbacks -----------------------------------------------------------------

    def on_message_begin(self) -> None:
        self.url = b""
        self.headers = []
        self.head_size = 0
        self.hosts = 0
        self.codings = None
        if self.idle or not self.in_head:
            # A new request on a kept-alive connection: its head gets the same deadline.
            self.idle = False
            self.in_head = True
            self.head_bytes = 0
            self.deadline = self.loop.time() + self.state.limits.head_timeout

    def on_url(self, url: bytes) -> None:
        self.url += url
        self.head_size += len(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        if not self.in_head:
            # A chunked body's trailer fields: not part of any head the app sees, and bounded
            # like one (no head deadline or byte count covers them otherwise).
            self.trailer_bytes += len(name) + len(value) + 4
            if self.trailer_bytes > self.state.limits.max_head_bytes:
                self._refuse(431, b"request trailers too large")
                raise _Refused
            return
        lowered = name.lower()
        self.headers.append((lowered, value))
        self.head_size += len(name) + len(value) + 4
        if lowered == b"host":
            self.hosts += 1
            self.host = value
        elif lowered == b"transfer-encoding":
            self.codings = [value] if self.codings is None else [*self.codings, value]

    def on_headers_complete(self) -> None:
        self.in_head = False
        self.head_bytes = 0
        self.deadline = 0.0
        parser = self.parser
        self.trailer_bytes = 0
        if parser.should_upgrade() and not self._ignorable_upgrade():
            return  # feed_data raises HttpParserUpgrade next: refused there
        if self.head_size > self.state.limits.max_head_bytes:
            # A head that completed within the read that crossed the cap (data_received
            # catches only heads still incomplete).
            self._refuse(431, b"request headers too large")
            raise _Refused  # stops the parser: nothing behind this request reaches the app
        refusal = self._framing_or_host_refusal()
        if refusal is not None:
            self._refuse(*refusal)
            raise _Refused
        scope = self._scope()
        if scope is None:
            raise _Refused
        cycle = RequestCycle(self, scope, parser.should_keep_alive())
        if parser.should_upgrade():
            # Served as HTTP/1.1 with the offer ignored; the parser stops at an upgrade, so the
            # connection ends after this answer.
            self.upgrade_ignored = True
            cycle.keep_alive = False
        if self.over_capacity:
            cycle.keep_alive = False
            cycle.canned = (503, b"server at capacity, try again later")
        if self.state.closing:
            # A graceful stop (server/drain.py): answered, never dropped, and the last answer.
            cycle.keep_alive = False
            cycle.canned = (503, b"server is shutting down")
        if self.cycle is None:
            self._begin(cycle)
        else:
            # A pipelined request: answered after the one in progress; read no further for now.
            self.waiting.append(cycle)
            self._pause_reading()

    def on_body(self, body: bytes) -> None:
        cycle = self.waiting[-1] if self.waiting else self.cycle
        if cycle is not None and not self.lingering and not cycle.body_complete:
            cycle.take_body(body)

    def on_message_complete(self) -> None:
        cycle = self.waiting[-1] if self.waiting else self.cycle
        if cycle is not None and not self.lingering:
            cycle.body_complete = True
            cycle.wake()

    # --- ours --------------------------------------------------------------------------------

    def _framing_or_host_refusal(self) -> tuple[int, bytes] | None:
        """Why the head just read cannot be served (see the module docstring), or None."""
        http10 = self.parser.get_http_version() == "1.0"
        if self.codings is not None:
            if http10:
                return 400, b"Transfer-Encoding is not allowed in HTTP/1.0"
            codings = [c.strip().lower() for value in self.codings for c in value.split(b",")]
            codings = [c for c in codings if c]  # empty list elements are ignored (RFC 9110 §5.6.1)
            if not codings or codings[-1] != b"chunked":
                return 400, b"the final transfer coding must be chunked"
            if len(codings) > 1:
                return 501, b"no transfer coding but chunked is supported"
        if self.hosts == 1:
            return None if _HOST.match(self.host.strip(b" \t")) else (400, b"invalid Host header")
        if self.hosts > 1:
            return 400, b"more than one Host header"
        return None if http10 else (400, b"Host header is required")

    def _malformed(self) -> None:
        """The parser failed: a head, or the body of the request the app is serving."""
        cycle = self.cycle
        if cycle is None or self.waiting or cycle.body_complete or cycle.response_started or self.lingering:
            self._refuse(400, b"malformed HTTP request")
            return
        # Its chunked framing broke mid-body (RFC 9112 §7.1): the request is void. Answered here,
        # as no answer has begun; the app, waiting for the rest of the body, hears the client
        # gone, so whatever it sends after goes nowhere.
        cycle.client_gone()
        self.in_head = False
        self.transport.write(plain_answer(400, b"malformed request body", close=True))
        self._close(lingering=True)

    def _scope(self) -> Scope | None:
        url = self.url
        if url[:1] != b"/":
            if url == b"*" or not url:
                self._refuse(400, b"invalid request target")
                return None
            parsed = httptools.parse_url(url)  # absolute form: "http://host/path?query"
            raw_path, query = parsed.path or b"/", parsed.query or b""
        else:
            raw_path, _, query = url.partition(b"?")
        try:
            path = raw_path.decode("ascii")
        except UnicodeDecodeError:
            self._refuse(400, b"request target must be ASCII")
            return None
        if "%" in path:
            path = unquote(path)
        return {
            "type": "http",
            "asgi": _ASGI,
            "http_version": self.parser.get_http_version(),
            "server": self.server,
            "client": self.client,
            "scheme": "https" if self.tls else "http",
            "method": _method(self.parser.get_method()),
            "root_path": "",
            "path": path,
            "raw_path": raw_path,
            "query_string": query,
            "headers": self.headers,
            "extensions": {},
        }

    def _begin(self, cycle: RequestCycle) -> None:
        self.cycle = cycle
        if cycle.canned is not None:
            status, message = cycle.canned
            cycle.write_canned(status, message)
            return
        # Registered for a graceful stop; the cycle takes itself off when its run ends (a done
        # callback would cost one more event-loop callback per request).
        cycle.task = self.loop.create_task(cycle.run(self.state.app))
        self.state.tasks.add(cycle.task)

    def response_done(self, cycle: RequestCycle) -> None:
        """The current response is complete: close, or serve the next request."""
        self.cycle = None
        if self.closed:
            return
        if not cycle.keep_alive or self.state.closing or not cycle.body_complete:
            # Answered before its body arrived (a 401 to a large POST, say): the rest of the
            # body cannot be told from a next request, so the connection ends, lingering.
            self._close(lingering=not cycle.body_complete)
            return
        if self.write_paused:
            # The client is not reading its answers: take no further request (and read nothing)
            # until it does, so unread answers cannot pile up; the keep-alive deadline runs.
            self.blocked = True
            self._pause_reading()
            self.deadline = self.loop.time() + self.state.limits.keep_alive_timeout
            return
        self._next_request()

    def _next_request(self) -> None:
        if self.waiting:
            self._begin(self.waiting.popleft())
            if not self.waiting:
                self._resume_reading()
            return
        self._resume_reading()
        if not self.in_head:
            # Idle until the next request begins (or the keep-alive deadline passes).
            self.in_head = self.idle = True
            self.head_bytes = 0
            self.deadline = self.loop.time() + self.state.limits.keep_alive_timeout

    def deadline_passed(self) -> None:
        # Deadlines run while a head is awaited or read (a slow pipelined head behind a long
        # stream ends the connection too: the client is not keeping to the protocol), and
        # while answers wait for a client that does not read them.
        if self.blocked or self.transport.is_closing() or self.transport.get_write_buffer_size():
            self.transport.abort()  # unread answers are dropped, not kept for a client that left
        else:
            self._close(lingering=False)

    def close_if_idle(self) -> None:
        if self.cycle is None and not self.closed:
            self._close(lingering=False)

    def _pause_reading(self) -> None:
        if self.reading and not self.closed:
            self.reading = False
            self.transport.pause_reading()

    def _resume_reading(self) -> None:
        if not self.reading and not self.closed:
            self.reading = True
            self.transport.resume_reading()

    def _refuse(self, status: int, message: bytes) -> None:
        """Answer a request that never reaches the app, then close the connection."""
        self.in_head = False
        self.deadline = 0.0
        if self.closed or self.lingering:
            return
        if self.cycle is not None:
            # A bad request behind one being answered: that answer is cut off with the connection.
            self.transport.close()
            return
        self.transport.write(plain_answer(status, message, close=True))
        self._close(lingering=True)

    def _close(self, *, lingering: bool) -> None:
        self.deadline = 0.0
        if self.closed or self.transport.is_closing():
            return
        if not lingering or not self.transport.can_write_eof():
            self.transport.close()
            self._bound_unsent()
            return
        # Stop writing, drop input for a moment, then close (see the module docstring).
        self.lingering = True
        self._resume_reading()
        self.transport.write_eof()
        self.loop.call_later(LINGER_SECONDS, self._end_linger)

    def _end_linger(self) -> None:
        self.transport.close()
        self._bound_unsent()

    def _bound_unsent(self) -> None:
        # close() waits for the write buffer to empty: an answer the client never reads would
        # keep the connection forever. It gets the keep-alive time, then the sweep aborts it.
        if not self.closed and self.transport.get_write_buffer_size():
            self.deadline = self.loop.time() + self.state.limits.keep_alive_timeout

    def _ignorable_upgrade(self) -> bool:
        """An upgrade offer that can be ignored (`Upgrade: h2c` on a GET, say): not CONNECT,
        not WebSocket, and no body, which the parser would hand over as upgraded bytes."""
        if self.parser.get_method() == b"CONNECT":
            return False
        for name, value in self.headers:
            if name == b"upgrade" and b"websocket" in value.lower():
                return False
            if name == b"transfer-encoding" or (name == b"content-length" and value.strip() != b"0"):
                return False
        return True


_ASGI = {"version": "3.0", "spec_version": "2.3"}
_METHODS: dict[bytes, str] = {}


def _method(raw: bytes) -> str:
    # httptools only returns methods it knows (a short list): their names are kept once.
    name = _METHODS.get(raw)
    if name is None:
        name = _METHODS[raw] = raw.decode("ascii")
    return name
