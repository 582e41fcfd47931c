"""SL-01 / SL-02: secrets never leak into logs, the audit feed or responses.

The real demo stack (development IdP, gateway, two SDK upstreams) runs with DEBUG on every
logger while the official SDK client does its whole OAuth flow in both protocol eras,
including a step-up, a refresh, a confidential client and a set of error paths (forged,
expired and misdirected tokens, a replayed code, a replayed refresh token, a wrong client
secret, an upstream tool error). Every secret that occurred is collected from where it was
legitimately delivered or used: access and refresh tokens (token responses), authorization
codes and PKCE verifiers (token requests), client secrets (registration responses) and the
tokens the gateway minted for the upstreams (the upstreams' Authorization headers).

Then every log record, everything written to stdout/stderr (the audit feed included) and
every response the clients received is searched for each of them and for anything shaped like
a JWT. Only the deliveries themselves are exempt: a token response carries tokens, a
registration response a client secret, the redirect to the client's callback a code.

The SDK client's own loggers (httpx2, httpcore2, mcp.client) are the client's business, not
the gateway's; their records are kept apart and not asserted on.
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote, quote_plus, urlsplit

import httpx
import httpx2
import orjson
import pytest
from joserfc import jws
from joserfc.jwk import ECKey
from mcp.client.auth import OAuthClientProvider
from mcp.client.client import Client
from mcp.client.streamable_http import streamable_http_client

from mcp_bastion.demo.stack import DemoOptions, DemoStack, build_demo_stack
from mcp_bastion.demo.upstreams import MCP_PATH, build_demo_upstream, build_notes_upstream

from ..e2e.sdk_oauth import (
    REDIRECT_URI,
    TIMEOUT_S,
    FlowRecord,
    HeadlessBrowser,
    MemoryTokenStorage,
    client_metadata,
)
from ..support.gateway import running_gateway
from ..support.issuer import running_issuer
from ..support.servers import bind_loopback, read_body, serve_asgi

pytestmark = pytest.mark.e2e

JWT_SHAPE = re.compile(r"eyJ[\w-]+\.[\w-]+\.")
CLIENT_LOGGERS = ("httpx2", "httpcore2", "mcp.client")
ACCEPT = "application/json, text/event-stream"
MODERN = "2026-07-28"
MODES = ["legacy", MODERN]


# --- capturing everything ---------------------------------------------------------------------------


class AllRecords(logging.Handler):
    """Every record of every logger, formatted with its traceback, kept as text."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines: list[tuple[str, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append((record.name, self.format(record)))


@contextlib.contextmanager
def debug_everywhere(handler: AllRecords) -> Iterator[None]:
    """DEBUG on the root and on every logger that exists, the handler on those that do not
    propagate (uvicorn's); restored afterwards."""
    saved: dict[logging.Logger, tuple[int, bool]] = {}

    def open_all() -> None:
        for logger in [logging.getLogger(), *_existing_loggers()]:
            if logger not in saved:
                saved[logger] = (logger.level, handler in logger.handlers)
            logger.setLevel(logging.DEBUG)
            if (logger.name == "root" or not logger.propagate) and handler not in logger.handlers:
                logger.addHandler(handler)

    open_all()
    debug_everywhere.reopen = open_all  # type: ignore[attr-defined]  # after uvicorn configures its own
    try:
        yield
    finally:
        for logger, (level, had) in saved.items():
            logger.setLevel(level)
            if not had and handler in logger.handlers:
                logger.removeHandler(handler)


def _existing_loggers() -> list[logging.Logger]:
    return [lg for lg in logging.root.manager.loggerDict.values() if isinstance(lg, logging.Logger)]


@dataclass
class Exchanged:
    """One HTTP exchange a client made, as the client saw it."""

    method: str
    url: str
    request_body: bytes
    status: int
    headers: list[tuple[str, str]]
    body: bytearray = field(default_factory=bytearray)


class _TeeStream(httpx2.AsyncByteStream):
    def __init__(self, inner: Any, into: bytearray) -> None:
        self._inner = inner
        self._into = into

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._inner:
            self._into += chunk
            yield chunk

    async def aclose(self) -> None:
        await self._inner.aclose()


class Tee(httpx2.AsyncBaseTransport):
    """A client transport that keeps a copy of every response body as it streams."""

    def __init__(self) -> None:
        self._inner = httpx2.AsyncHTTPTransport()
        self.seen: list[Exchanged] = []

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        response = await self._inner.handle_async_request(request)
        try:
            sent = request.content
        except httpx2.RequestNotRead:
            sent = b""
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in response.headers.raw]
        seen = Exchanged(request.method, str(request.url), sent, response.status_code, headers)
        self.seen.append(seen)
        return httpx2.Response(
            response.status_code,
            headers=response.headers,
            stream=_TeeStream(response.stream, seen.body),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self._inner.aclose()


class UpstreamCredentials:
    """ASGI middleware in front of an upstream: keeps the Authorization header the gateway sent."""

    def __init__(self, app: Any, into: list[str]) -> None:
        self._app = app
        self._into = into

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            for name, value in scope["headers"]:
                if name == b"authorization":
                    self._into.append(value.decode("latin-1").removeprefix("Bearer "))
        await self._app(scope, receive, send)


@dataclass
class Secrets:
    found: dict[str, set[str]] = field(default_factory=dict)

    def add(self, kind: str, value: object) -> None:
        if isinstance(value, str) and len(value) >= 16:
            self.found.setdefault(kind, set()).add(value)

    def every(self) -> list[tuple[str, str]]:
        return [(kind, value) for kind, values in self.found.items() for value in values]


# --- the stack and the flows ------------------------------------------------------------------------


@dataclass
class Run:
    demo: DemoStack
    tee: Tee
    minted: list[str]

    @property
    def issuer(self) -> str:
        return self.demo.issuer


@contextlib.contextmanager
def demo_stack_at_debug(minted: list[str]) -> Iterator[DemoStack]:
    """The demo exactly as `mcp-bastion demo` wires it, uvicorn at DEBUG with access logs, and
    the upstreams behind a recorder of the credential the gateway presents to them."""
    options = {"log_level": "debug", "access_log": True}
    demo_app = UpstreamCredentials(build_demo_upstream(), minted)
    notes_app = UpstreamCredentials(build_notes_upstream(), minted)
    with serve_asgi(demo_app, **options) as demo, serve_asgi(notes_app, **options) as notes:
        urls = {"demo": f"{demo.base_url}{MCP_PATH}", "notes": f"{notes.base_url}{MCP_PATH}"}
        sock = bind_loopback()
        stack = build_demo_stack(DemoOptions(auto_approve="alice"), urls, port=sock.getsockname()[1])
        with serve_asgi(stack.app, sock=sock, lifespan="on", **options):
            yield stack


@contextlib.asynccontextmanager
async def sdk_client(url: str, mode: str, storage: MemoryTokenStorage, tee: Tee) -> AsyncIterator[Client]:
    record = FlowRecord()
    browser = HeadlessBrowser(record)
    await browser._http.aclose()  # the browser's own client, swapped for one through the tee
    browser._http = httpx2.AsyncClient(
        transport=tee, timeout=TIMEOUT_S, follow_redirects=False, trust_env=False
    )
    provider = OAuthClientProvider(
        url,
        client_metadata(),
        storage,
        redirect_handler=browser.redirect_handler,
        callback_handler=browser.callback_handler,
    )
    try:
        async with httpx2.AsyncClient(
            auth=provider, transport=tee, timeout=TIMEOUT_S, trust_env=False
        ) as http:
            async with Client(streamable_http_client(url, http_client=http), mode=mode) as client:
                yield client
    finally:
        await browser.aclose()


async def sdk_flows(run: Run, mode: str) -> MemoryTokenStorage:
    """Authorization code + PKCE, a step-up to tools.write, and an upstream tool error."""
    storage = MemoryTokenStorage()
    async with sdk_client(run.demo.server_url("demo"), mode, storage, run.tee) as client:
        await client.list_tools()
        assert not (await client.call_tool("echo", {"text": "hello"})).is_error
        assert not (await client.call_tool("set_greeting", {"greeting": "Howdy"})).is_error  # 403 → step-up
    notes = MemoryTokenStorage(client_info=storage.client_info)
    async with sdk_client(run.demo.server_url("notes"), mode, notes, run.tee) as client:
        assert (await client.call_tool("read_note", {"note_id": "404"})).is_error  # the upstream's error
        added = await client.call_tool("add_note", {"title": "t", "body": "b"})
        assert not added.is_error
    return storage


async def idp_flows(run: Run, http: httpx2.AsyncClient, storage: MemoryTokenStorage) -> None:
    """A refresh and its replay, a replayed code, a confidential client and a wrong secret."""
    assert storage.tokens is not None
    assert storage.client_info is not None
    client_id = storage.client_info.client_id
    token_url = f"{run.issuer}/token"
    resource = run.demo.server_url("demo")
    old = storage.tokens.refresh_token
    assert old is not None
    form = {"grant_type": "refresh_token", "refresh_token": old, "client_id": client_id, "resource": resource}
    assert (await http.post(token_url, data=form)).status_code == 200
    assert (await http.post(token_url, data=form)).status_code == 400  # reuse: the family is revoked
    code_request = next(s for s in run.tee.seen if _form(s).get("grant_type") == "authorization_code")
    assert (await http.post(token_url, data=_form(code_request))).status_code == 400  # code replayed

    registration = await http.post(
        f"{run.issuer}/register",
        json={
            "client_name": "machine",
            "grant_types": ["client_credentials"],
            "token_endpoint_auth_method": "client_secret_post",
            "scope": "tools.read",
        },
    )
    assert registration.status_code == 201, registration.text
    machine = registration.json()
    credentials = {
        "grant_type": "client_credentials",
        "client_id": machine["client_id"],
        "resource": resource,
    }
    issued = await http.post(token_url, data=dict(credentials, client_secret=machine["client_secret"]))
    assert issued.status_code == 200, issued.text
    wrong = await http.post(token_url, data=dict(credentials, client_secret=machine["client_secret"][::-1]))
    assert wrong.status_code == 401
    read_only = issued.json()["access_token"]
    assert (await _mcp_post(http, resource, read_only, {"method": "tools/list"})).status_code == 200
    destroy = {"method": "tools/call", "params": {"name": "reset_greeting", "arguments": {}}}
    assert (await _mcp_post(http, resource, read_only, destroy)).status_code == 403  # insufficient_scope


async def gateway_error_paths(run: Run, http: httpx2.AsyncClient, storage: MemoryTokenStorage) -> list[str]:
    """Forged, expired, misdirected and misused tokens; a body the gateway cannot parse."""
    demo, notes = run.demo.server_url("demo"), run.demo.server_url("notes")
    assert storage.tokens is not None
    real = storage.tokens.access_token
    attacker = ECKey.generate_key("P-256")
    now = int(time.time())
    forged = _sign(attacker, {"iss": run.issuer, "sub": "alice", "aud": demo, "iat": now, "exp": now + 60})
    expired = _sign(
        attacker, {"iss": run.issuer, "sub": "alice", "aud": demo, "iat": now - 900, "exp": now - 600}
    )
    for url, token, status in (
        (demo, forged, 401),
        (demo, expired, 401),
        (notes, real, 401),  # a token for another resource
        (demo, storage.tokens.refresh_token or "", 401),  # a refresh token is not an access token
        (demo, real + "x", 401),
    ):
        answer = await _mcp_post(http, url, token, {"method": "tools/list"})
        assert answer.status_code == status, answer.text
    garbage = await http.post(
        demo,
        content=b'{"jsonrpc":"2.0","id":1,"method":',
        headers={"authorization": f"Bearer {real}", "content-type": "application/json", "accept": ACCEPT},
    )
    assert garbage.status_code == 400
    return [forged, expired]


def _sign(key: ECKey, claims: dict[str, Any]) -> str:
    header = {"alg": "ES256", "typ": "at+jwt", "kid": "not-the-idps"}
    return jws.serialize_compact(header, orjson.dumps(claims), key, algorithms=["ES256"])


async def _mcp_post(http: httpx2.AsyncClient, url: str, token: str, call: dict[str, Any]) -> httpx2.Response:
    """One stateless (2026-07-28) MCP request with `token`."""
    params = dict(call.get("params", {}))
    params["_meta"] = {
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientInfo": {"name": "sl01", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {},
    }
    headers = {
        "authorization": f"Bearer {token}",
        "accept": ACCEPT,
        "content-type": "application/json",
        "mcp-protocol-version": MODERN,
        "mcp-method": call["method"],
    }
    if "name" in params:
        headers["mcp-name"] = params["name"]
    body = {"jsonrpc": "2.0", "id": 1, "method": call["method"], "params": params}
    return await http.post(url, content=orjson.dumps(body), headers=headers)


def _form(seen: Exchanged) -> dict[str, str]:
    if seen.method != "POST" or not seen.url.endswith("/token"):
        return {}
    try:
        return dict(parse_qsl(seen.request_body.decode("ascii")))
    except UnicodeDecodeError:
        return {}


# --- collecting the secrets and the places to search -------------------------------------------------


def collect_secrets(run: Run, extra_tokens: list[str]) -> Secrets:
    secrets = Secrets()
    for seen in run.tee.seen:
        form = _form(seen)
        for name in ("code", "code_verifier", "refresh_token", "client_secret"):
            secrets.add(name, form.get(name))
        if seen.url.endswith("/token") and seen.status == 200:
            body = orjson.loads(bytes(seen.body))
            secrets.add("access_token", body.get("access_token"))
            secrets.add("refresh_token", body.get("refresh_token"))
        if seen.url.endswith("/register") and seen.status == 201:
            secrets.add("client_secret", orjson.loads(bytes(seen.body)).get("client_secret"))
        for name, value in seen.headers:
            if name.lower() == "location" and value.startswith(REDIRECT_URI):
                secrets.add("code", dict(parse_qsl(urlsplit(value).query)).get("code"))
    for token in run.minted:
        secrets.add("minted_upstream_token", token)
    for token in extra_tokens:
        secrets.add("crafted_token", token)
    return secrets


def searchable_responses(run: Run) -> list[tuple[str, str]]:
    """What the clients received, less the deliveries that exist to carry a secret."""
    out = []
    for seen in run.tee.seen:
        delivery = (seen.url.endswith("/token") and seen.status == 200) or (
            seen.url.endswith("/register") and seen.status == 201
        )
        where = f"{seen.method} {seen.url} -> {seen.status}"
        for name, value in seen.headers:
            if not (name.lower() == "location" and value.startswith(REDIRECT_URI)):
                out.append((f"{where} header {name}", value))
        if not delivery:
            out.append((f"{where} body", bytes(seen.body).decode("utf-8", "replace")))
    return out


def _spellings(secret: str) -> set[str]:
    return {secret, quote(secret, safe=""), quote_plus(secret)}


# --- the test ------------------------------------------------------------------------------------------


async def test_sl01_sl02_no_secret_reaches_a_log_line_the_audit_feed_or_a_response(
    capfd: pytest.CaptureFixture[str],
) -> None:
    records = AllRecords()
    minted: list[str] = []
    with debug_everywhere(records), demo_stack_at_debug(minted) as demo:
        debug_everywhere.reopen()  # type: ignore[attr-defined]  # uvicorn set its loggers up meanwhile
        tee = Tee()
        run = Run(demo, tee, minted)
        async with httpx2.AsyncClient(transport=tee, timeout=TIMEOUT_S, trust_env=False) as http:
            storages = [await sdk_flows(run, mode) for mode in MODES]
            await idp_flows(run, http, storages[0])
            crafted = await gateway_error_paths(run, http, storages[1])
    output = capfd.readouterr()

    secrets = collect_secrets(run, crafted)
    kinds = set(secrets.found)
    # The flows really produced every kind of secret this test is about.
    assert {
        "access_token",
        "refresh_token",
        "code",
        "code_verifier",
        "client_secret",
        "minted_upstream_token",
    } <= kinds
    assert output.out.count('"event":"mcp.request"') >= 20  # the audit feed was captured
    server_logs = [
        (f"log {name}", line) for name, line in records.lines if not name.startswith(CLIENT_LOGGERS)
    ]
    assert any(name.startswith("log uvicorn.access") for name, _ in server_logs)  # DEBUG really was on
    haystacks = [
        *server_logs,
        ("stdout (audit feed)", output.out),
        ("stderr", output.err),
        *searchable_responses(run),
    ]

    leaks = [
        f"{kind} in {where}"
        for kind, secret in secrets.every()
        for where, text in haystacks
        if any(spelling in text for spelling in _spellings(secret))
    ]
    shaped = [f"{where}: {match.group()}…" for where, text in haystacks for match in JWT_SHAPE.finditer(text)]
    assert leaks == []
    assert shaped == []


# --- SL-02: an upstream that echoes the credential the gateway gave it ---------------------------------


class EchoingUpstream:
    """An upstream whose answers quote the Authorization header it received, as debug error
    pages and careless error messages do."""

    def __init__(self) -> None:
        self.mode = "json-500"
        self.minted: list[str] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = await read_body(receive)
        credential = dict(scope["headers"]).get(b"authorization", b"").decode()
        self.minted.append(credential.removeprefix("Bearer "))
        request_id = orjson.loads(body).get("id") if body else None
        echo = f"rejected credential {credential}"
        status, content_type, out = {
            "json-500": (500, b"application/json", orjson.dumps({"error": echo})),
            "html-502": (502, b"text/html", f"<pre>{echo}</pre>".encode()),
            "json-401": (401, b"application/json", orjson.dumps({"error": echo})),
            "text-200": (200, b"text/plain", echo.encode()),
            "rpc-error-200": (
                200,
                b"application/json",
                orjson.dumps(
                    {"jsonrpc": "2.0", "id": request_id, "error": {"code": -32000, "message": echo}}
                ),
            ),
            "rpc-error-sse": (
                200,
                b"text/event-stream",
                b"data: "
                + orjson.dumps(
                    {"jsonrpc": "2.0", "id": request_id, "error": {"code": -32000, "message": echo}}
                )
                + b"\n\n",
            ),
        }[self.mode]
        await send(
            {"type": "http.response.start", "status": status, "headers": [(b"content-type", content_type)]}
        )
        await send({"type": "http.response.body", "body": out})


@pytest.fixture(scope="module")
def echoing() -> Iterator[tuple[EchoingUpstream, Any, Any]]:
    upstream = EchoingUpstream()
    with running_issuer() as issuer, serve_asgi(upstream) as up:
        with running_gateway(issuer.issuer, {"echo": f"{up.base_url}/mcp"}) as gateway:
            yield upstream, issuer, gateway


@pytest.mark.parametrize(
    "mode",
    [
        "json-500",
        "html-502",
        "json-401",
        "text-200",
        "rpc-error-200",
        "rpc-error-sse",
    ],
)
def test_sl02_an_upstream_quoting_its_credential_does_not_leak_it(
    echoing: tuple[EchoingUpstream, Any, Any], mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    upstream, issuer, gateway = echoing
    upstream.mode = mode
    upstream.minted.clear()
    token = issuer.token(audience=gateway.url("echo"), scopes="tools.read tools.write")
    body = {"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "anything"}}
    headers = {"authorization": f"Bearer {token}", "accept": ACCEPT, "content-type": "application/json"}
    with caplog.at_level(logging.DEBUG):
        answer = httpx.post(gateway.url("echo"), content=orjson.dumps(body), headers=headers, timeout=10)
    minted = [m for m in upstream.minted if m]
    assert minted  # the upstream did get (and quote) a minted token
    assert token not in str(upstream.minted)  # ...never the client's own (TS-08)
    received = answer.text + str(answer.headers)
    assert not [m for m in minted if m in received or m in caplog.text]
    assert not JWT_SHAPE.search(received)
