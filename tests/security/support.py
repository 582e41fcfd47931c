"""Fixtures for the catalog tests (tests/security): servers the test controls, on loopback.

- `ControlledIdp`: an issuer with real keys whose JWKS and metadata routes a test can replace
  (hang, 500, garbage, redirect, rotate), hold behind a gate, and count.
- `ConnectionCounter`: a bare TCP listener that only counts who connects (the "internal
  service" an SSRF would reach).
- `Stack`: the real gateway (with a clock the test can move forward) in front of a
  RecordingUpstream, trusting a ControlledIdp.
- Token forging: headers and payloads no well-behaved library would produce.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import socket
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import uvicorn

from mcp_bastion.app import build_gateway
from mcp_bastion.audit import AuditEvent
from mcp_bastion.config import LoadedConfig, parse_config

from ..auth.tokens import sign
from ..support.gateway import AuditFeed, RunningGateway, gateway_config, post_mcp, serve_gateway
from ..support.issuer import LocalIssuer
from ..support.recording_upstream import RecordingUpstream
from ..support.servers import RunningServer, bind_loopback, serve_asgi

ACCEPT = "application/json, text/event-stream"
MODERN = "2026-07-28"
Responder = Callable[[Any, Any], Awaitable[None]]  # (receive, send)


# --- waiting without sleeping --------------------------------------------------------------


def eventually(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Poll a condition another thread makes true, bounded in time."""
    pause = threading.Event()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        pause.wait(0.005)
    return condition()


class ShiftedClock:
    """The gateway's clock: real time plus an offset the test moves (cooldowns, TTLs) instead of sleeping."""

    def __init__(self) -> None:
        self.offset = 0.0
        self.calls = 0  # how often the gateway looked at it: a lower bound on its progress

    def __call__(self) -> float:
        self.calls += 1
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


# --- responders for the controlled IdP -------------------------------------------------------


def raw(status: int, body: bytes, content_type: bytes = b"application/json", **extra: bytes) -> Responder:
    async def respond(receive: Any, send: Any) -> None:
        headers = [
            (b"content-type", content_type),
            *((k.replace("_", "-").encode(), v) for k, v in extra.items()),
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return respond


def json_body(document: Any, status: int = 200) -> Responder:
    return raw(status, json.dumps(document).encode())


def redirect(location: str) -> Responder:
    return raw(302, b"", location=location.encode())


def hang() -> Responder:
    """Accepts the request and never answers; returns when the client hangs up."""

    async def respond(receive: Any, send: Any) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    return respond


@dataclass
class Streamer:
    """Streams `total` bytes of a JSON-looking body; records how much went out before the client left."""

    total: int
    chunk: int = 1_048_576
    sent_while_connected: int = 0
    gone: threading.Event = field(default_factory=threading.Event)

    async def __call__(self, receive: Any, send: Any) -> None:
        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            self.gone.set()

        watcher = asyncio.ensure_future(watch())
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        body = b'{"keys":[' + b" " * (self.chunk - 9)
        sent = 0
        try:
            while sent < self.total and not self.gone.is_set():
                await send({"type": "http.response.body", "body": body, "more_body": True})
                await asyncio.sleep(0)  # let the watcher see a hang-up before counting this chunk
                if not self.gone.is_set():
                    sent += len(body)
                    self.sent_while_connected = sent
                body = b" " * self.chunk
            await send({"type": "http.response.body", "body": b"]}"})
            await asyncio.wait_for(watcher, 10)
        finally:
            watcher.cancel()


class ControlledIdp:
    """A JWKS + metadata server on loopback whose every route a test can replace and count."""

    def __init__(self, keys: LocalIssuer) -> None:
        self.keys = keys
        self.routes: dict[str, Responder] = {}
        self.metadata: dict[str, Any] | None = None
        self.hits: Counter[str] = Counter()
        self.gate: threading.Event | None = None  # when set to an unset Event, /jwks waits for it
        self._changed = threading.Condition()

    @property
    def issuer(self) -> str:
        return self.keys.issuer

    @property
    def jwks_requests(self) -> int:
        return self.hits["/jwks"]

    def wait_hits(self, path: str, count: int, timeout: float = 5.0) -> None:
        with self._changed:
            ok = self._changed.wait_for(lambda: self.hits[path] >= count, timeout)
        assert ok, f"{path} was requested {self.hits[path]} times, expected {count}"

    def token(self, audience: str, **kw: Any) -> str:
        return self.keys.token(audience=audience, **kw)

    async def app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        path = scope["path"]
        with self._changed:
            self.hits[path] += 1
            self._changed.notify_all()
        gate = self.gate
        if gate is not None and path == "/jwks":
            await asyncio.get_running_loop().run_in_executor(None, gate.wait, 30)
        responder = self.routes.get(path)
        if responder is None:
            responder = self._default(path)
        await responder(receive, send)

    def _default(self, path: str) -> Responder:
        if path == "/jwks":
            return json_body(self.keys.jwks())
        if path in ("/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"):
            return json_body(self.metadata or {"issuer": self.issuer, "jwks_uri": f"{self.issuer}/jwks"})
        return raw(404, b"")


@contextlib.contextmanager
def running_idp() -> Iterator[ControlledIdp]:
    sock = bind_loopback()
    idp = ControlledIdp(LocalIssuer(f"http://127.0.0.1:{sock.getsockname()[1]}"))
    try:
        with serve_asgi(idp.app, sock=sock):
            yield idp
    finally:
        if idp.gate is not None:
            idp.gate.set()


class ConnectionCounter:
    """A TCP listener on loopback that accepts, counts and drops connections."""

    def __init__(self) -> None:
        self._sock = bind_loopback()
        self._sock.settimeout(0.05)
        self.port: int = self._sock.getsockname()[1]
        self.accepted = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self._sock.close()


@contextlib.contextmanager
def connection_counter() -> Iterator[ConnectionCounter]:
    counter = ConnectionCounter()
    try:
        yield counter
    finally:
        counter.close()


# --- the gateway stack -------------------------------------------------------------------------


class AuditLines(AuditFeed):
    """The audit feed, also written as the JSON lines every sink writes (`AuditEvent.to_json`)."""

    def __init__(self, path: Path | None = None) -> None:
        super().__init__()
        self._file = path.open("ab") if path is not None else None

    def emit(self, event: AuditEvent) -> None:
        if self._file is not None:
            self._file.write(event.to_json())
            self._file.flush()
        super().emit(event)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


@dataclass
class Stack:
    idp: ControlledIdp
    upstream: RecordingUpstream
    upstream_url: str
    gateway: RunningGateway
    http: httpx.Client
    clock: ShiftedClock
    name: str = "rec"

    @property
    def url(self) -> str:
        return self.gateway.url(self.name)

    @property
    def host(self) -> str:
        return self.gateway.server.host

    @property
    def port(self) -> int:
        return self.gateway.server.port

    @property
    def prm_url(self) -> str:
        return f"{self.gateway.base_url}/.well-known/oauth-protected-resource/{self.name}/mcp"

    def now(self) -> int:
        """The gateway's time (real time plus what the test moved its clock), uncounted."""
        return int(time.time() + self.clock.offset)

    def token(self, scopes: str = "tools.read", *, ttl: int = 300, **kw: Any) -> str:
        now = self.now()
        kw.setdefault("iat", now)
        kw.setdefault("exp", now + ttl)
        return self.idp.token(self.url, scopes=scopes, **kw)

    def post(
        self, body: object, *, token: str | None = None, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        return post_mcp(self.http, self.url, body, token=token, headers=headers)

    def mark(self) -> int:
        """A point in the upstream's request log; `since(mark)` is what reached it afterwards."""
        return len(self.upstream.seen)

    def since(self, mark: int) -> list[Any]:
        return self.upstream.seen[mark:]

    def tool_calls_since(self, mark: int) -> list[Any]:
        return [
            r for r in self.since(mark) if isinstance(r.json, dict) and r.json.get("method") == "tools/call"
        ]


def idp_entry(issuer: str, **options: Any) -> dict[str, Any]:
    return {"name": "test", "issuer": issuer, "allow_insecure_http": True, **options}


@contextlib.contextmanager
def serve_together(apps: list[tuple[Any, socket.socket, dict[str, Any]]]) -> Iterator[None]:
    """Run several ASGI apps under uvicorn at once, each on its bound socket; start and stop them
    in parallel (one uvicorn stop costs ~0.2 s, and a test suite pays it per server)."""
    servers = []
    for app, sock, options in apps:
        config = uvicorn.Config(
            app,
            log_level="warning",
            lifespan="auto",
            timeout_graceful_shutdown=2,
            interface="asgi3",
            **options,
        )
        server = uvicorn.Server(config)
        server.install_signal_handlers = lambda: None  # type: ignore[method-assign]  # not the main thread
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        servers.append((server, thread, sock))
    for _, thread, _ in servers:
        thread.start()
    try:

        def settled() -> bool:
            return all(server.started or not thread.is_alive() for server, thread, _ in servers)

        assert eventually(settled, 10), "uvicorn did not start"
        assert all(server.started for server, _, _ in servers), "uvicorn failed to start"
        yield
    finally:
        for server, _, _ in servers:
            server.should_exit = True
        for _, thread, sock in servers:
            thread.join(10)
            sock.close()


@contextlib.contextmanager
def stack(
    *,
    idp: dict[str, Any] | None = None,
    server: dict[str, Any] | None = None,
    extra_servers: list[dict[str, Any]] | None = None,
    identity_providers: Callable[[str], list[dict[str, Any]]] | None = None,
    audit: AuditFeed | None = None,
    before_start: Callable[[ControlledIdp], None] | None = None,
    **overrides: Any,
) -> Iterator[Stack]:
    """IdP + recording upstream + gateway, all real, all on loopback, started together."""
    idp_sock, upstream_sock, gateway_sock = bind_loopback(), bind_loopback(), bind_loopback()
    controlled = ControlledIdp(LocalIssuer(f"http://127.0.0.1:{idp_sock.getsockname()[1]}"))
    upstream = RecordingUpstream()
    upstream_url = f"http://127.0.0.1:{upstream_sock.getsockname()[1]}/mcp"
    base = f"http://127.0.0.1:{gateway_sock.getsockname()[1]}"
    servers = [{"name": "rec", "upstream": upstream_url, "timeout_seconds": 5, **(server or {})}]
    # "{upstream}" in an extra server's URL is the recording upstream's (another path on it, say).
    servers += [{**e, "upstream": e["upstream"].format(upstream=upstream_url)} for e in extra_servers or []]
    providers = (
        identity_providers(controlled.issuer)
        if identity_providers is not None
        else [idp_entry(controlled.issuer, **(idp or {}))]
    )
    config = gateway_config(base, controlled.issuer, {}, servers=servers, identity_providers=providers)
    config.update(overrides)
    if before_start is not None:
        before_start(controlled)
    clock = ShiftedClock()
    feed = audit or AuditFeed()
    parsed = parse_config(config)
    gateway = build_gateway(LoadedConfig(parsed, {}), clock=clock, audit=feed)
    apps = [(controlled.app, idp_sock, {}), (upstream, upstream_sock, {})]
    try:
        with (
            serve_together(apps),
            serve_gateway(gateway, gateway_sock, parsed),
            httpx.Client(timeout=10) as http,
        ):
            running = RunningGateway(RunningServer("127.0.0.1", gateway_sock.getsockname()[1]), gateway, feed)
            yield Stack(controlled, upstream, upstream_url, running, http, clock)
    finally:
        if controlled.gate is not None:
            controlled.gate.set()


# --- JSON-RPC bodies ---------------------------------------------------------------------------


def rpc(method: str, params: dict[str, object] | None = None, id: object = 1) -> dict[str, object]:
    return {"jsonrpc": "2.0", "id": id, "method": method, "params": params or {}}


def call(tool: str, id: object = 1) -> dict[str, object]:
    return rpc("tools/call", {"name": tool, "arguments": {}}, id)


def initialize(id: object = 1) -> dict[str, object]:
    return rpc(
        "initialize",
        {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
        id,
    )


# --- tokens no library would make ----------------------------------------------------------------


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def standard_claims(stack: Stack, **overrides: Any) -> dict[str, Any]:
    now = stack.now()
    body: dict[str, Any] = {
        "iss": stack.idp.issuer,
        "sub": "alice",
        "aud": stack.url,
        "iat": now,
        "exp": now + 300,
        "client_id": "test-client",
        "scope": "tools.read",
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not ...}


def forge(
    head: dict[str, Any],
    payload: dict[str, Any] | bytes,
    *,
    signer: Callable[[bytes], bytes] | None = None,
    signature: bytes | None = None,
) -> str:
    """A compact JWS from exactly these parts; `payload` as bytes is used verbatim (json.dumps
    otherwise, so integers beyond 64 bits survive)."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    signing_input = f"{b64url(json.dumps(head).encode())}.{b64url(body)}"
    if signature is None:
        assert signer is not None
        signature = signer(signing_input.encode())
    return f"{signing_input}.{b64url(signature)}"


def issuer_signer(idp: ControlledIdp) -> Callable[[bytes], bytes]:
    """Signs with the IdP's real ES256 key: a token that fails can only fail for its content."""
    return lambda data: sign("ES256", idp.keys.key, data)


def es256_header(idp: ControlledIdp, **overrides: Any) -> dict[str, Any]:
    head: dict[str, Any] = {"alg": "ES256", "typ": "at+jwt", "kid": idp.keys.kid}
    head.update(overrides)
    return {k: v for k, v in head.items() if v is not ...}


# --- raw HTTP/1.1 on a socket --------------------------------------------------------------------


def read_response(conn: socket.socket, timeout: float = 5.0) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 response (Content-Length framed or chunked) from a raw socket."""
    conn.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            raise ConnectionError(f"connection closed before a full response head: {data!r}")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        rest += chunk
    return status, headers, rest[:length] if length else rest


def closed_by_peer(conn: socket.socket, timeout: float) -> bool:
    """Whether the server closes this connection within `timeout` (reads and drops any bytes)."""
    conn.settimeout(timeout)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            conn.settimeout(max(0.001, deadline - time.monotonic()))
            if conn.recv(65536) == b"":
                return True
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True
    return False


def request_head(
    stack: Stack, token: str | None, extra: str = "", *, body_length: int | None = None
) -> bytes:
    lines = [
        "POST /rec/mcp HTTP/1.1",
        f"Host: {stack.host}:{stack.port}",
        "Content-Type: application/json",
        f"Accept: {ACCEPT}",
    ]
    if token is not None:
        lines.append(f"Authorization: Bearer {token}")
    if body_length is not None:
        lines.append(f"Content-Length: {body_length}")
    return ("\r\n".join(lines) + "\r\n" + extra).encode("latin-1")


def jsonrpc_error(response: httpx.Response) -> tuple[int, object]:
    doc = orjson.loads(response.content)
    return doc["error"]["code"], doc["id"]
