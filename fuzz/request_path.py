"""The fuzz target: one HTTP request through the gateway's real chain, in-process.

    EdgeChecks → Authenticate → ReadBody → ParseMcp → Authorize → (recording fake of Forward)

The chain is assembled from the same public stages `build_gateway` uses, with two seams: the
IdP's keys come from an in-process loader (so tokens can be minted here and verified for real),
and the last stage records what would have gone upstream instead of sending it. The ASGI app
around the chain is the real `Gateway` (routing, error replies, audit).

`one_input(data)` decodes the bytes into a request (method, path, headers, token, session id,
body, chunking, disconnect) with `RequestReader`; an all-zero input is a valid `tools/call`
with a valid token, so mutations start from requests that reach every stage. It raises
`Finding` when an oracle fails:

- the gateway answered 500, logged an unexpected failure, or let an exception escape;
- the reply is malformed (no single `http.response.start`, a header with CR/LF, a body that
  does not end, a JSON error body that is not JSON, a 401 without `resource_metadata`);
- a request reached the forward stage without one of the valid tokens minted here
  (authentication bypass) or with fewer scopes than its calls need (authorization bypass,
  checked against a table restated here, not the gateway's own);
- an audit line is not exactly one line of JSON (log forging, SL-03).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from joserfc import jws
from joserfc.jwk import ECKey

from mcp_bastion.app import Gateway, Stage, build_gateway
from mcp_bastion.audit import MemorySink
from mcp_bastion.auth import IssuerPolicy, JwtVerifier, Principal, RemoteKeySet
from mcp_bastion.config import LoadedConfig, parse_config
from mcp_bastion.mcp.sessions import SessionSealer, subject_digest
from mcp_bastion.pipeline.audit import AuditStep
from mcp_bastion.pipeline.authenticate import Authenticate
from mcp_bastion.pipeline.authorize import Authorize
from mcp_bastion.pipeline.body import ReadBody
from mcp_bastion.pipeline.edge import EdgeChecks
from mcp_bastion.pipeline.exchange import Exchange
from mcp_bastion.pipeline.parse import ParseMcp
from mcp_bastion.route import ServerRoute

__all__ = ["Finding", "Harness", "RequestReader", "RequestWriter", "one_input", "seed_inputs"]

NOW = 1_700_000_000.0
ISSUER = "https://idp.fuzz.example"
BASE = "https://gw.fuzz.example"
HOST = "gw.fuzz.example"
MODERN = "2026-07-28"
META = "io.modelcontextprotocol/protocolVersion"

TOOLS = [
    {"name": "read_thing", "annotations": {"readOnlyHint": True}},
    {"name": "write_thing", "annotations": {"readOnlyHint": False, "destructiveHint": False}},
    {"name": "drop_thing", "annotations": {"destructiveHint": True}},
    {"name": "unannotated"},
    {"name": "admin_tool", "annotations": {"readOnlyHint": True}},  # config overrides: admin
]

# --- the independent authorization oracle (docs/architecture.md, "Scopes") ------------------------

_READ, _WRITE, _ADMIN = "tools.read", "tools.write", "admin"
_TOOL_SCOPE = {"read_thing": _READ, "write_thing": _WRITE, "drop_thing": _WRITE, "admin_tool": _ADMIN}
_READ_METHODS = {
    "resources/list",
    "resources/templates/list",
    "resources/read",
    "resources/subscribe",
    "resources/unsubscribe",
    "prompts/list",
    "prompts/get",
    "completion/complete",
    "tasks/get",
    "tasks/result",
    "tasks/list",
    "tasks/cancel",
}
_OPEN_METHODS = {
    "initialize",
    "ping",
    "server/discover",
    "tools/list",
    "logging/setLevel",
    "subscriptions/listen",
}
_GRANTS = {_ADMIN: {_ADMIN, _WRITE, _READ}, _WRITE: {_WRITE, _READ}}


def _needed(method: str, name: str | None, kind: str) -> str | None:
    if kind == "response":
        return None
    if method == "tools/call":
        return _TOOL_SCOPE.get(name or "", _WRITE)  # unknown or unannotated: the write scope
    if method in _READ_METHODS:
        return _READ
    if method in _OPEN_METHODS or (kind == "notification" and method.startswith("notifications/")):
        return None
    return _ADMIN


def _granted(scopes: frozenset[str]) -> set[str]:
    out: set[str] = set()
    for scope in scopes:
        out |= _GRANTS.get(scope, {scope})
    return out


class Finding(Exception):
    """An oracle failed: a bug the fuzzer found."""


# --- decoding fuzz bytes into a request ----------------------------------------------------------


class RequestReader:
    """Reads choices and blobs from the fuzz input; past its end every read is zero/empty,
    so a short input is still a whole request (the canonical one, mostly)."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._at = 0

    def choice(self, count: int) -> int:
        byte = self._data[self._at] if self._at < len(self._data) else 0
        self._at += 1
        return byte % count

    def blob(self, max_len: int) -> bytes:
        size = self.choice(256) | self.choice(256) << 8
        size %= max_len + 1
        out = self._data[self._at : self._at + size]
        self._at += size
        return out


class RequestWriter:
    """The inverse of RequestReader, for writing seed inputs by hand."""

    def __init__(self) -> None:
        self._out = bytearray()

    def choice(self, value: int) -> RequestWriter:
        self._out.append(value)
        return self

    def blob(self, data: bytes) -> RequestWriter:
        self._out += len(data).to_bytes(2, "little") + data
        return self

    def bytes(self) -> bytes:
        return bytes(self._out)


METHODS = ["POST", "POST", "POST", "POST", "GET", "DELETE", "PUT", "BREW"]
PATHS = ["/rec/mcp", "/open/mcp", "/rec/mcp/", "/.well-known/oauth-protected-resource/rec/mcp", "/healthz"]
VERSIONS = [None, MODERN, "2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05", "2099-01-01"]
RPC_METHODS = [
    "tools/call",
    "tools/list",
    "initialize",
    "ping",
    "resources/read",
    "prompts/get",
    "notifications/initialized",
    "server/discover",
    "admin/reboot",
    "",
]
TOOL_NAMES = [t["name"] for t in TOOLS] + ["unknown_tool", "send_ema\u0456l", "Read_Thing", "x" * 129]
SCOPE_SETS = [f"{_READ} {_WRITE}", _READ, _WRITE, _ADMIN, "", "mcp:* tools"]
FUZZ = b"<fuzz bytes>"  # an option standing for bytes read from the input


@dataclass
class Request:
    method: str
    path: str
    headers: list[tuple[bytes, bytes]]
    body: bytes
    chunks: list[bytes]
    disconnect_early: bool
    token: str | None  # the bearer token sent, as sent (None: no Authorization header)
    client: tuple[str, int]


@dataclass
class Harness:
    """The gateway chain plus everything the oracles need to know about valid credentials."""

    gateway: Gateway
    audit: MemorySink
    sealer: SessionSealer
    key: ECKey
    valid_tokens: dict[str, frozenset[str]]  # token -> its scopes
    tokens: list[str]
    forwarded: list[Exchange] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    errors: list[logging.LogRecord] = field(default_factory=list)
    loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.new_event_loop)
    stages: tuple[Stage, ...] = ()
    collector: logging.Handler | None = None

    def with_stages(self, stages: tuple[Stage, ...]) -> None:
        """Swap the chain (tests plant a bug to prove the oracles catch it)."""
        gateway = self.gateway
        self.stages = stages
        self.gateway = Gateway(
            gateway.config, list(gateway.routes.values()), stages, audit=AuditStep(self.audit), documents={}
        )

    @classmethod
    def build(cls) -> Harness:
        config = parse_config(
            {
                "public_base_url": BASE,
                "identity_providers": [
                    {"name": "fuzz", "issuer": ISSUER, "discovery": False, "jwks_uri": f"{ISSUER}/jwks"}
                ],
                "servers": [
                    {
                        "name": "rec",
                        "upstream": "http://127.0.0.1:9/mcp",
                        "tools": {"admin_tool": {"scopes": [_ADMIN]}},
                    },
                    {"name": "open", "upstream": "http://127.0.0.1:9/mcp", "auth": False},
                ],
                "origins": {"allow": ["https://app.example"]},
                "trusted_proxies": ["10.0.0.0/8"],
                "audit": {"sink": "none"},
                "sessions": {"key": {"env": "FUZZ_SESSION_KEY"}},
            }
        )
        clock: Callable[[], float] = lambda: NOW  # noqa: E731  (a fixed clock: tokens never age)
        key = ECKey.generate_key("P-256")
        jwks = {"keys": [dict(key.as_dict(private=False), kid="k1", use="sig", alg="ES256")]}

        async def load() -> Any:
            return jwks

        keys = RemoteKeySet(load, clock=clock, ttl=300, cooldown=30)
        verifier = JwtVerifier(
            {ISSUER: IssuerPolicy(config.identity_providers[0], keys)},
            clock=clock,
            max_token_bytes=config.limits.max_token_bytes,
        )
        sealer = SessionSealer(bytes(range(32)), ttl_seconds=3600)
        audit = MemorySink()
        secrets = {"sessions.key": base64.b64encode(bytes(range(32))).decode()}
        routes = list(build_gateway(LoadedConfig(config, secrets), clock=clock, audit=audit).routes.values())
        harness = cls(
            Gateway(config, routes, (), audit=AuditStep(audit), documents={}), audit, sealer, key, {}, []
        )

        async def learn_tools(route: ServerRoute, principal: Principal) -> None:
            route.catalog.learn(TOOLS)

        harness.stages = (
            EdgeChecks(config),
            Authenticate(verifier),
            ReadBody(config.limits.max_body_bytes),
            ParseMcp(config.limits, sealer, clock),
            Authorize(learn_tools),
            harness._forward,
        )
        harness.gateway = Gateway(config, routes, harness.stages, audit=AuditStep(audit), documents={})
        for scopes in SCOPE_SETS:
            token = harness.mint(scopes=scopes)
            harness.valid_tokens[token] = frozenset(scopes.split())
            harness.tokens.append(token)
        harness.tokens += [
            harness.mint(exp=NOW - 3600),  # expired
            harness.mint(aud=f"{BASE}/open/mcp"),  # another resource
            harness.mint(typ="JWT"),  # an ID token, not an access token
            harness.mint(alg="none"),  # unsigned
        ]
        harness.collector = _Collect(harness.errors)
        logging.getLogger("mcp_bastion").addHandler(harness.collector)
        return harness

    def close(self) -> None:
        logging.getLogger("mcp_bastion").removeHandler(self.collector)
        self.loop.close()

    def mint(
        self,
        *,
        scopes: str = "tools.read",
        exp: float = NOW + 300,
        aud: str = f"{BASE}/rec/mcp",
        typ: str = "at+jwt",
        alg: str = "ES256",
    ) -> str:
        claims = {
            "iss": ISSUER,
            "sub": "alice",
            "aud": aud,
            "iat": int(NOW),
            "exp": int(exp),
            "scope": scopes,
            "client_id": "c1",
        }
        header = {"alg": alg, "typ": typ, "kid": "k1"}
        if alg == "none":
            segments = [orjson.dumps(header), orjson.dumps(claims)]
            return ".".join(base64.urlsafe_b64encode(s).rstrip(b"=").decode() for s in segments) + "."
        return jws.serialize_compact(header, orjson.dumps(claims), self.key, algorithms=[alg])

    async def _forward(self, ex: Exchange) -> None:
        """The recording fake of the Forward stage: checks who got this far, then answers."""
        self.forwarded.append(ex)
        if ex.route.auth:
            try:
                _check_authorized(self, ex)
            except Finding as finding:
                self.findings.append(finding)  # raised by run(): the gateway would catch it here
        ids = [m.id for m in ex.messages if m.kind == "request"]
        body = orjson.dumps({"jsonrpc": "2.0", "id": ids[0], "result": {}}) if len(ids) == 1 else b""
        status = 200 if body else 202
        ex.status = status
        await ex.send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await ex.send({"type": "http.response.body", "body": body, "more_body": False})

    def read_request(self, data: bytes) -> Request:
        """Decode one input. The order of reads is the input format; seed_inputs() follows it."""
        reader = RequestReader(data)
        method = METHODS[reader.choice(len(METHODS))]
        path = PATHS[max(0, reader.choice(10) - 5)]
        headers: list[tuple[bytes, bytes]] = []

        def add(name: str, options: list[bytes | None], max_len: int = 64) -> None:
            # Options: [0] the canonical value, [1] absent (None), [2] fuzz bytes (FUZZ), then others.
            value = options[reader.choice(len(options))]
            if value is FUZZ:
                value = reader.blob(max_len)
            if value is not None:
                headers.append((name.encode(), value))

        add("host", [HOST.encode(), None, FUZZ, b"attacker.example", HOST.upper().encode()])
        add("content-type", [b"application/json", None, FUZZ, b"application/json; charset=utf-8"])
        add("accept", [b"application/json, text/event-stream", None, FUZZ, b"*/*"])
        token = self._token(reader)
        if token is not None:
            headers.append((b"authorization", token.encode("latin-1")))
        version = VERSIONS[reader.choice(len(VERSIONS))]
        if reader.choice(8) == 7:
            headers.append((b"mcp-protocol-version", reader.blob(32)))
        elif version is not None:
            headers.append((b"mcp-protocol-version", version.encode()))
        rpc_method = RPC_METHODS[reader.choice(len(RPC_METHODS))]
        tool = TOOL_NAMES[reader.choice(len(TOOL_NAMES))]
        body = self._body(reader, rpc_method, tool, version)
        if reader.choice(8) != 7 if version == MODERN else reader.choice(8) == 7:
            encoded = b"=?base64?" + base64.b64encode(tool.encode()) + b"?="
            add("mcp-method", [rpc_method.encode(), None, FUZZ, b"tools/list"])
            add("mcp-name", [tool.encode(), None, FUZZ, encoded, b"read_thing"])
        alice, bob = subject_digest(ISSUER, "alice"), subject_digest(ISSUER, "bob")
        sessions: list[bytes | None] = [
            None,
            None,
            FUZZ,
            self.sealer.seal("up-1", alice, "rec", NOW).encode(),
            self.sealer.seal("up-1", bob, "rec", NOW).encode(),
            self.sealer.seal("up-1", alice, "open", NOW - 7200).encode(),
        ]
        add("mcp-session-id", sessions, 80)
        for _ in range(reader.choice(4)):
            names = [
                b"origin",
                b"traceparent",
                b"x-forwarded-host",
                b"content-length",
                b"mcp-param-x",
                b"cookie",
            ]
            kind = reader.choice(len(names) + 1)
            name = names[kind] if kind < len(names) else reader.blob(24)
            headers.append((name, reader.blob(96)))
        step = reader.choice(4) * 7
        chunks = [body[i : i + step] for i in range(0, len(body), step)] if step else [body]
        disconnect_early = reader.choice(16) == 15
        client = ("10.1.2.3", 5000) if reader.choice(4) == 3 else ("127.0.0.1", 5000)
        headers = _as_a_server_delivers(headers, body)
        return Request(method, path, headers, body, chunks or [b""], disconnect_early, token, client)

    def _token(self, reader: RequestReader) -> str | None:
        mode = reader.choice(8)
        if mode == 1:
            return None
        if mode in (0, 3, 4):
            token = self.tokens[reader.choice(len(self.tokens))] if mode else self.tokens[0]
            scheme = ["Bearer ", "bearer ", "BEARER  "][reader.choice(3)]
            return scheme + token
        if mode == 2:
            return "Bearer " + reader.blob(200).decode("latin-1")
        if mode == 5:
            # A valid token with fuzz bytes XORed into it: a forgery attempt.
            token = bytearray(self.tokens[reader.choice(len(SCOPE_SETS))].encode())
            for i, b in enumerate(reader.blob(16)):
                token[(i * 37 + b) % len(token)] ^= b or 1
            return "Bearer " + token.decode("latin-1")
        return reader.blob(120).decode("latin-1")

    def _body(self, reader: RequestReader, rpc_method: str, tool: str, version: str | None) -> bytes:
        mode = reader.choice(6)
        if mode == 4:
            return reader.blob(512)
        params: dict[str, Any] = {}
        if rpc_method in ("tools/call", "prompts/get"):
            params["name"] = tool
        elif rpc_method == "resources/read":
            params["uri"] = tool
        extra = reader.blob(128)
        if extra:
            try:
                params["arguments"] = orjson.loads(extra)
            except orjson.JSONDecodeError:
                params["arguments"] = {"text": extra.decode("latin-1")}
        if version == MODERN or mode == 5:
            params["_meta"] = {META: version or MODERN}
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": rpc_method, "params": params}
        id_mode = reader.choice(6)
        if id_mode != 1:
            message["id"] = [1, None, "req-1", 2**53, 1.5, "x" * 300][id_mode]
        if mode == 3:
            message = {"jsonrpc": "2.0", "id": 9, "result": {}}  # a client's response
        if mode == 2:
            return orjson.dumps([message] * (1 + reader.choice(3)))
        return orjson.dumps(message)

    async def _send(self, request: Request) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = [
            {"type": "http.request", "body": chunk, "more_body": i < len(request.chunks) - 1}
            for i, chunk in enumerate(request.chunks)
        ]
        if request.disconnect_early:
            messages = messages[:1]
            messages[0] = dict(messages[0], more_body=True)
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return messages.pop(0) if messages else {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": request.method,
            "scheme": "http",
            "path": request.path,
            "raw_path": request.path.encode(),
            "query_string": b"",
            "headers": request.headers,
            "client": request.client,
            "server": ("127.0.0.1", 8000),
        }
        await asyncio.wait_for(self.gateway(scope, receive, send), timeout=5)
        return sent

    def run(self, data: bytes) -> None:
        request = self.read_request(data)
        self.forwarded.clear()
        self.findings.clear()
        self.errors.clear()
        self.audit.events.clear()
        try:
            sent = self.loop.run_until_complete(self._send(request))
        except Finding:
            raise
        except Exception as exc:
            raise Finding(f"an exception escaped the gateway: {exc!r}") from exc
        if self.findings:
            raise self.findings[0]
        _check_reply(sent, request)
        if self.errors:
            raise Finding(f"the gateway logged an error: {self.errors[0].getMessage()}")
        for event in self.audit.events:
            line = event.to_json()
            if line.count(b"\n") != 1 or not line.endswith(b"\n") or b"\r" in line:
                raise Finding(f"an audit event is not one line: {line!r}")
            orjson.loads(line)


_TOKEN_CHARS = frozenset(b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz")
_CTL = frozenset(range(0x20)) - {0x09} | {0x7F}


def _as_a_server_delivers(headers: list[tuple[bytes, bytes]], body: bytes) -> list[tuple[bytes, bytes]]:
    """Only headers an HTTP/1.1 server (h11 or httptools under uvicorn) can hand to the app.

    Both refuse, before any ASGI app runs: names that are not RFC 9110 tokens (and they
    lower-case them), values with control characters, and a Content-Length that is not
    digits or does not frame the body. Fuzzing past them would report their bugs as ours;
    tests/properties/test_request_headers.py covers what the edge does with the raw bytes.
    """
    out = []
    for name, value in headers:
        name = name.lower()
        if not name or not set(name) <= _TOKEN_CHARS or _CTL & set(value):
            continue
        if name == b"content-length":
            value = str(len(body)).encode()
        out.append((name, value.strip(b" \t")))
    return out


class _Collect(logging.Handler):
    def __init__(self, into: list[logging.LogRecord]) -> None:
        super().__init__(logging.ERROR)
        self._into = into

    def emit(self, record: logging.LogRecord) -> None:
        self._into.append(record)


def _check_authorized(harness: Harness, ex: Exchange) -> None:
    header = ex.headers.get("authorization") or ""
    token = header.split(" ")[-1]
    scopes = harness.valid_tokens.get(token)
    if scopes is None:
        raise Finding(f"a request without a valid token reached the upstream: {header[:80]!r}")
    granted = _granted(scopes)
    kinds = [m.kind for m in ex.messages] or ["request"]
    for call, kind in zip(ex.calls, kinds, strict=False):
        needed = _needed(call.method, call.name, kind)
        if needed is not None and needed not in granted:
            raise Finding(f"{call.method} {call.name!r} reached the upstream with scopes {sorted(scopes)}")


def _check_reply(sent: list[dict[str, Any]], request: Request) -> None:
    starts = [m for m in sent if m["type"] == "http.response.start"]
    if len(starts) != 1:
        raise Finding(f"{len(starts)} response starts for {request.method} {request.path}")
    start = starts[0]
    status = start["status"]
    if status >= 500 and status not in (502, 503, 504):
        raise Finding(f"the gateway answered {status}")
    for name, value in start.get("headers", []):
        if b"\r" in name + value or b"\n" in name + value:
            raise Finding(f"a response header carries CR/LF: {name!r}: {value!r}")
    bodies = [m for m in sent if m["type"] == "http.response.body"]
    if not bodies or bodies[-1].get("more_body", False):
        raise Finding("the response body never ends")
    body = b"".join(m.get("body", b"") for m in bodies)
    headers = dict(start.get("headers", []))
    if status >= 400 and body and headers.get(b"content-type") == b"application/json":
        try:
            orjson.loads(body)
        except orjson.JSONDecodeError:
            raise Finding(f"an error body is not JSON: {body[:200]!r}") from None
    if status == 401 and b"resource_metadata=" not in headers.get(b"www-authenticate", b""):
        raise Finding("a 401 without resource_metadata")


_HARNESS: Harness | None = None


def one_input(data: bytes) -> None:
    """The fuzz entry point (atheris' TestOneInput): raises Finding on a bug."""
    global _HARNESS
    if _HARNESS is None:
        _HARNESS = Harness.build()
    _HARNESS.run(data)


def _seed(*fields: int | bytes) -> bytes:
    writer = RequestWriter()
    for value in fields:
        writer.blob(value) if isinstance(value, bytes) else writer.choice(value)
    return writer.bytes()


def seed_inputs() -> dict[str, bytes]:
    """Hand-made starting points. Fields in read order: method, path, host, content-type, accept,
    token mode (+ its reads), version, fuzzed-version, rpc method, tool, body mode (+ its reads),
    mirrored-headers, session, extra headers, chunking, disconnect, client address."""
    return {
        "legacy-tools-call": b"",  # all zero: a valid read_thing call with a valid token
        "modern-tools-call": _seed(0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, b"", 0, 0, 0, 0),
        "modern-headers-disagree": _seed(0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, b"", 0, 0, 3, 4),
        "batch-of-three": _seed(0, 0, 0, 0, 0, 0, 0, 4, 0, 1, 0, 2, b"", 0, 2),
        "no-token": _seed(0, 0, 0, 0, 0, 1),
        "read-only-token-drops-a-thing": _seed(0, 0, 0, 0, 0, 3, 1, 0, 0, 0, 0, 2, 0, b"", 0),
        "admin-token-unknown-method": _seed(0, 0, 0, 0, 0, 3, 3, 0, 0, 0, 8, 0, 0, b"", 0),
        "expired-token": _seed(0, 0, 0, 0, 0, 3, 6, 0),
        "forged-token": _seed(0, 0, 0, 0, 0, 5, 0, b"\x01\x02"),
        "fuzzed-token": _seed(0, 0, 0, 0, 0, 2, b"eyJhbGciOiJFUzI1NiJ9.e30.AAAA"),
        "raw-body": _seed(
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, b'[{"jsonrpc":"2.0","id":1,"method":"tools/list"}]'
        ),
        "session-of-alice": _seed(0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, b"", 0, 0, 3),
        "session-of-bob": _seed(0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, b"", 0, 0, 4),
        "get-stream-with-session": _seed(4, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, b"", 0, 0, 3),
        "delete-without-session": _seed(5, 0, 0, 0, 0, 0, 0, 2),
        "origin-and-forwarded-host": _seed(
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            b"",
            0,
            0,
            0,
            2,
            0,
            b"https://evil.example",
            2,
            b"gw.fuzz.example",
        ),
        "open-server": _seed(0, 6, 0, 0, 0, 1),
        "chunked-body-disconnect": _seed(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, b"", 0, 0, 0, 0, 1, 15),
    }


def timed_runs(seconds: float, inputs: Callable[[], bytes]) -> tuple[int, float]:
    """Run `one_input` on generated inputs for `seconds`; (runs, elapsed). Raises on a finding."""
    started = time.monotonic()
    runs = 0
    while time.monotonic() - started < seconds:
        one_input(inputs())
        runs += 1
    return runs, time.monotonic() - started
