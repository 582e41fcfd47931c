"""Tests of the gateway's own HTTP/1.1 server (`mcp_bastion.server`), and what they share: a
tiny ASGI app with `startup`/`shutdown`, the server run in a thread with its own event loop (as
`tests/support/gateway.py::serve_gateway` runs it), and a raw-socket client that shows the
exact bytes on the wire."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from mcp_bastion.server import ConnectionLimits, HttpServer, RequestCycle, bind

from ..support.servers import run_in_thread

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Handler = Callable[[Scope, Receive, Send], Awaitable[None]]

WAIT_S = 2.0  # the longest any single wait in these tests may take before it counts as a failure
# Generous limits: only the tests about a limit lower one of them.
RELAXED = ConnectionLimits(head_timeout=5.0, keep_alive_timeout=5.0, max_connections=100)


async def read_body(receive: Receive) -> bytes:
    body = b""
    while True:
        message = await receive()
        assert message["type"] == "http.request", message
        chunk: bytes = message.get("body", b"")
        body += chunk
        if not message.get("more_body"):
            return body


async def respond(
    send: Send, status: int = 200, body: bytes = b"", headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers or []})
    await send({"type": "http.response.body", "body": body})


async def echo(scope: Scope, receive: Receive, send: Send) -> None:
    """The default route: `METHOD path` on the first line, then the request body."""
    body = await read_body(receive)
    await respond(send, 200, f"{scope['method']} {scope['path']}\n".encode() + body)


def cycle_of(scope: Scope) -> RequestCycle:
    cycle = scope["extensions"]["mcp_bastion.cycle"]
    assert isinstance(cycle, RequestCycle)
    return cycle


class TinyApp:
    """An ASGI app routed by exact path (default: `echo`), with the served-app lifespan.

    Everything it notes (its lifespan, and whatever a route notes) lands in `events`, which
    the test thread can wait on."""

    def __init__(self, routes: Mapping[str, Handler] | None = None) -> None:
        self.routes = dict(routes or {})
        self.paths: list[str] = []
        self.events: list[str] = []
        self.gate = threading.Event()  # a route can wait on this for the test's go-ahead
        self._changed = threading.Condition()

    def note(self, event: str) -> None:
        with self._changed:
            self.events.append(event)
            self._changed.notify_all()

    def wait_for(self, event: str, timeout: float = WAIT_S) -> None:
        with self._changed:
            seen = self._changed.wait_for(lambda: event in self.events, timeout)
        assert seen, f"{event!r} not noted within {timeout}s; events: {self.events}"

    async def wait_gate(self) -> None:
        """Wait (off the event loop) until the test opens `gate`."""
        opened = await asyncio.to_thread(self.gate.wait, 10.0)
        assert opened, "the test never opened the gate"

    async def startup(self) -> None:
        self.note("startup")

    async def shutdown(self) -> None:
        self.note("shutdown")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.paths.append(scope["path"])
        await self.routes.get(scope["path"], echo)(scope, receive, send)


@dataclass
class Served:
    server: HttpServer
    port: int
    thread: threading.Thread
    failure: list[BaseException] = field(default_factory=list)

    def client(self, timeout: float = WAIT_S) -> RawClient:
        return RawClient(self.port, timeout)

    def get(self, path: str = "/") -> Response:
        """One request on a fresh connection."""
        with self.client() as client:
            client.send(f"GET {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
            return client.read_response()

    def stop_and_join(self, timeout: float = 5.0) -> None:
        self.server.stop()
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the server did not stop"


@contextlib.contextmanager
def serving(
    app: TinyApp,
    limits: ConnectionLimits = RELAXED,
    *,
    grace: float = 1.0,
    stream_grace: float | None = None,
    wait_started: bool = True,
) -> Iterator[Served]:
    """Serve `app` on a loopback port in a thread with its own uvloop loop until the block exits
    (then stop it, and fail if the server itself raised)."""
    sock = bind("127.0.0.1", 0)
    server = HttpServer(app, limits, grace=grace, stream_grace=stream_grace)
    thread, failure = run_in_thread(server, sock)
    served = Served(server, sock.getsockname()[1], thread, failure)
    if wait_started:
        assert server.started.wait(WAIT_S), "the server did not start"
        assert not served.failure, f"the server failed to start: {served.failure}"
    try:
        yield served
    finally:
        app.gate.set()  # a route still waiting on it must not hold up the stop
        if served.thread.is_alive():
            if not server.started.is_set():
                server.started.wait(WAIT_S)  # a stop before serve() began would be lost
            served.stop_and_join()
        sock.close()
    assert not served.failure, f"the server failed: {served.failure}"


@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    raw: bytes  # the exact bytes of the response, head and framed body

    def header(self, name: str) -> str | None:
        values = [value for key, value in self.headers if key == name]
        assert len(values) <= 1, f"{name} repeated: {self.headers}"
        return values[0] if values else None


class RawClient:
    """A blocking loopback socket with a read buffer; every read fails the test after `timeout`."""

    def __init__(self, port: int, timeout: float = WAIT_S) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.timeout = timeout
        self.buffer = b""

    def __enter__(self) -> RawClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _more(self) -> bytes:
        """One read; b"" at EOF (a reset counts as EOF)."""
        try:
            data = self.sock.recv(65536)
        except TimeoutError as exc:
            raise AssertionError(f"nothing more within {self.timeout}s; have {self.buffer[:300]!r}") from exc
        except ConnectionResetError:
            return b""
        self.buffer += data
        return data

    def read_until(self, marker: bytes) -> bytes:
        while marker not in self.buffer:
            if not self._more():
                raise AssertionError(f"EOF before {marker!r}; have {self.buffer[:300]!r}")
        taken, self.buffer = self.buffer.split(marker, 1)
        return taken + marker

    def read_exactly(self, size: int) -> bytes:
        while len(self.buffer) < size:
            if not self._more():
                raise AssertionError(f"EOF after {len(self.buffer)} of {size} bytes")
        taken, self.buffer = self.buffer[:size], self.buffer[size:]
        return taken

    def read_to_eof(self) -> bytes:
        while self._more():
            pass
        taken, self.buffer = self.buffer, b""
        return taken

    def read_response(self, *, head_request: bool = False) -> Response:
        """One response, framed as a client would frame it (interim 1xx answers included)."""
        head = self.read_until(b"\r\n\r\n")
        lines = head[:-4].decode("latin-1").split("\r\n")
        version, code = lines[0].split(" ")[:2]
        assert version == "HTTP/1.1", lines[0]
        status = int(code)
        headers = [(k.strip().lower(), v.strip()) for k, v in (line.split(":", 1) for line in lines[1:])]
        found = dict(headers)
        raw = head
        if head_request or status in (204, 304) or status < 200:
            body = b""
        elif "content-length" in found:
            body = self.read_exactly(int(found["content-length"]))
            raw += body
        elif found.get("transfer-encoding") == "chunked":
            body = b""
            while True:
                size_line = self.read_until(b"\r\n")
                size = int(size_line[:-2], 16)
                data = self.read_exactly(size + 2)
                raw += size_line + data
                assert data.endswith(b"\r\n"), data[-10:]
                if size == 0:
                    break
                body += data[:-2]
        else:
            body = self.read_to_eof()
            raw += body
        return Response(status, headers, body, raw)

    def closed_within(self, seconds: float) -> float:
        """Seconds until the server closes (nothing else may arrive first); fails past `seconds`."""
        began = time.monotonic()
        self.sock.settimeout(seconds)
        try:
            more = self._more()
        finally:
            self.sock.settimeout(self.timeout)
        assert more == b"", f"data instead of a close: {more[:300]!r}"
        return time.monotonic() - began

    def is_closed(self) -> bool:
        """Whether the server closed the connection, right now (no waiting)."""
        self.sock.setblocking(False)
        try:
            data = self.sock.recv(65536, socket.MSG_PEEK)
        except BlockingIOError:
            return False
        except ConnectionResetError:
            return True
        finally:
            self.sock.settimeout(self.timeout)
        return data == b""


def poll(condition: Callable[[], bool], timeout: float = WAIT_S, step: float = 0.01) -> bool:
    """Whether `condition` turns true before `timeout` (checked every `step`)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(step)
    return True
