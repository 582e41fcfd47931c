"""Assembling the gateway: config in, ASGI app out. The request chain is built here, in order:

    EdgeChecks → Authenticate → ReadBody → ParseMcp → Authorize → Forward

Each stage either returns (continue) or raises a BastionError (answer); `replies.py`
turns errors into HTTP, and every MCP request ends with one audit event per call.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import httpx
import orjson

from .audit import AuditEvent, AuditSink, sink_for
from .auth import IssuerPolicy, JwtVerifier, RemoteKeySet, metadata_document, metadata_url
from .auth.discovery import discover_jwks_uri
from .auth.fetch import fetch_json
from .auth.stage import Authenticate
from .config import LoadedConfig
from .config.model import BastionConfig, IdentityProviderConfig, ServerConfig
from .edge import EdgeChecks, ReadBody
from .errors import BastionError, ConfigError, KeySourceError, RequestRejected
from .exchange import CYCLE_EXTENSION, Exchange, read_headers
from .mcp.calls import Call
from .mcp.jsonrpc import INTERNAL_ERROR, error_body
from .mcp.sessions import SessionSealer
from .mcp.stage import ParseMcp
from .policy import ScopeRegistry, ServerPolicy, ToolCatalog
from .policy.stage import Authorize
from .replies import JSON, error_reply, send_reply
from .route import ServerRoute
from .trace import TraceContext
from .upstream.catalog import CatalogFetcher
from .upstream.client import UpstreamClient
from .upstream.credentials import (
    MintedCredential,
    NoCredential,
    StaticCredential,
    TokenMinter,
    UpstreamCredential,
)
from .upstream.forward import Forward

__all__ = ["Gateway", "Stage", "build_gateway"]

log = logging.getLogger("mcp_bastion")
GATEWAY_JWKS_PATH = "/.well-known/jwks.json"


class Stage(Protocol):
    async def __call__(self, ex: Exchange) -> None: ...


def build_gateway(
    loaded: LoadedConfig, *, clock: Callable[[], float] = time.time, audit: AuditSink | None = None
) -> Gateway:
    """The gateway ASGI app for a validated config (secrets already read)."""
    config = loaded.config
    registry = ScopeRegistry.from_config(config.scopes)
    minter = _minter(loaded, clock)
    routes = [_route(config, server, registry, minter, loaded, i) for i, server in enumerate(config.servers)]
    idp_http = httpx.AsyncClient(trust_env=False, follow_redirects=False)
    issuers = {p.issuer: IssuerPolicy(p, _key_set(p, idp_http, clock)) for p in config.identity_providers}
    upstream = UpstreamClient(config.limits)
    sealer = SessionSealer(_session_key(loaded), ttl_seconds=config.sessions.ttl_seconds)
    stages: tuple[Stage, ...] = (
        EdgeChecks(config),
        Authenticate(JwtVerifier(issuers, clock=clock, max_token_bytes=config.limits.max_token_bytes)),
        ReadBody(config.limits.max_body_bytes, config.limits.body_read_timeout_seconds),
        ParseMcp(config.limits, sealer, clock),
        Authorize(registry, CatalogFetcher(upstream, clock)),
        Forward(
            upstream,
            sealer,
            registry,
            clock,
            max_response_bytes=config.limits.max_response_bytes,
            max_event_bytes=config.limits.max_list_response_bytes,
        ),
    )
    return Gateway(
        config,
        routes,
        stages,
        audit=audit if audit is not None else sink_for(config.audit),
        jwks=orjson.dumps(minter.jwks()),
        closers=(upstream.aclose, idp_http.aclose),
        warmers=tuple(policy.keys.warm for policy in issuers.values()),
    )


class Gateway:
    """The ASGI application: routing, the stage chain, error replies and the audit feed."""

    def __init__(
        self,
        config: BastionConfig,
        routes: Sequence[ServerRoute],
        stages: Sequence[Stage],
        *,
        audit: AuditSink,
        jwks: bytes,
        closers: Sequence[Callable[[], Any]] = (),
        warmers: Sequence[Callable[[], Any]] = (),
    ) -> None:
        self.config = config
        self.routes = {route.path: route for route in routes}
        self._documents = {
            route.metadata_url.split("://", 1)[1].split("/", 1)[1]: route.metadata for route in routes
        }
        self._documents = {"/" + path: doc for path, doc in self._documents.items()}
        self._documents[GATEWAY_JWKS_PATH] = jwks
        self._stages = tuple(stages)
        self._audit = audit
        self._refuse_unaudited = config.audit.on_failure == "refuse"
        self._closers = closers
        self._warmers = warmers
        self._background: set[asyncio.Task[Any]] = set()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            route = self.routes.get(scope["path"])
            if route is not None:
                await self._handle(route, scope, receive, send)
            else:
                await self._document(scope, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)

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
            await close()
        flush = getattr(self._audit, "flush", None)
        if flush is not None:
            flush()  # nothing lost: write audit lines still pending from the last loop turn

    async def _handle(self, route: ServerRoute, scope: dict[str, Any], receive: Any, send: Any) -> None:
        started = time.perf_counter()
        if self._refuse_unaudited and not getattr(self._audit, "healthy", True):
            await send_reply(send, (503, [JSON], error_body(None, INTERNAL_ERROR, "audit unavailable")))
            return
        try:
            headers = read_headers(scope["headers"], self.config.limits.max_header_bytes)
        except RequestRejected as err:
            await send_reply(send, error_reply(route, err, None))
            return
        ex = Exchange(
            scope, receive, send, route, headers, TraceContext.from_header(headers.get("traceparent"))
        )
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
            self._record(ex)

    async def _answer(self, ex: Exchange, err: BastionError) -> None:
        ex.reason = ex.reason or err.message
        if ex.status:
            # The response has started (a stream broke mid-way): all we can do is end it.
            ex.outcome = "error"
            await ex.send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        reply = error_reply(ex.route, err, ex)
        ex.status = reply[0]
        ex.outcome = "deny" if reply[0] < 500 else "error"
        await send_reply(ex.send, reply)

    def _record(self, ex: Exchange) -> None:
        latency = round((time.perf_counter() - ex.started) * 1000, 3)
        now = time.time()
        principal = ex.principal
        decision = ex.outcome or "allow"
        reason = ex.reason or ("ok" if decision == "allow" else "")
        version = ex.era.version if ex.era else None
        subject, client_id, issuer, token_hash = (
            (principal.subject, principal.client_id, principal.issuer, principal.token_hash)
            if principal
            else (None, None, None, None)
        )
        required = ex.required
        # One event per message of the request; one for the HTTP exchange when none was read.
        calls = ex.calls or (Call(ex.http_method, None, None),)
        for i, call in enumerate(calls):
            self._audit.emit(
                AuditEvent(
                    now,
                    ex.trace.trace_id,
                    ex.route.name,
                    call.method or "response",
                    call.name,
                    decision,
                    reason,
                    ex.status,
                    latency,
                    subject,
                    client_id,
                    issuer,
                    token_hash,
                    version,
                    required[i] if i < len(required) else (),
                )
            )

    async def _document(self, scope: dict[str, Any], send: Any) -> None:
        path = scope["path"]
        if path == "/healthz":
            await self._health(send)
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

    async def _health(self, send: Any) -> None:
        # The audit feed is part of health: a gateway that cannot record decisions is degraded.
        if getattr(self._audit, "healthy", True):
            await send_reply(send, (200, [JSON], b'{"status":"ok"}'))
        else:
            await send_reply(send, (503, [JSON], b'{"status":"degraded","audit":"failing"}'))

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self.startup()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return


def _route(
    config: BastionConfig,
    server: ServerConfig,
    registry: ScopeRegistry,
    minter: TokenMinter,
    loaded: LoadedConfig,
    index: int,
) -> ServerRoute:
    resource = f"{config.public_base_url}/{server.name}/mcp"
    issuers = server.identity_providers or tuple(p.name for p in config.identity_providers)
    issuer_urls = tuple(p.issuer for p in config.identity_providers if p.name in issuers)
    policy = ServerPolicy(
        registry,
        {name: tool.scopes for name, tool in server.tools.items()},
        server.trust_annotations,
        server.destructive_scopes,
    )
    scopes = (
        registry.read,
        registry.write,
        registry.admin,
        *server.scopes,
        *(s for t in server.tools.values() for s in t.scopes),
    )
    prm_url = metadata_url(resource)
    return ServerRoute(
        name=server.name,
        config=server,
        resource=resource,
        path=resource.split("://", 1)[1][resource.split("://", 1)[1].index("/") :],
        metadata_url=prm_url,
        metadata=metadata_document(resource, issuer_urls, scopes, server.title or server.name),
        issuers=frozenset(issuer_urls),
        policy=policy,
        catalog=ToolCatalog(),
        credential=_credential(server, minter, loaded, index),
        start_scopes=(registry.read,),
    )


def _credential(
    server: ServerConfig, minter: TokenMinter, loaded: LoadedConfig, index: int
) -> UpstreamCredential:
    auth = server.upstream_auth
    if auth.type == "none":
        return NoCredential()
    if auth.type == "static":
        value = loaded.secret(f"servers[{index}].upstream_auth.secret")
        assert value is not None
        return StaticCredential(auth.header, value)
    return MintedCredential(minter, auth.audience or server.upstream, auth.ttl_seconds)


def _minter(loaded: LoadedConfig, clock: Callable[[], float]) -> TokenMinter:
    config = loaded.config
    key = loaded.secret("signing.key")
    if key is None:
        return TokenMinter.generate(config.signing.algorithm, config.public_base_url, clock)
    try:
        return TokenMinter.from_jwk(key, config.signing.algorithm, config.public_base_url, clock)
    except ValueError as exc:
        raise ConfigError(str(exc), source=loaded.path or "", path="signing.key") from None


def _session_key(loaded: LoadedConfig) -> bytes:
    text = loaded.secret("sessions.key")
    if text is None:
        log.warning("sessions.key is not set: session ids are sealed with a per-process key")
        return os.urandom(32)
    try:
        return SessionSealer.decode_key(text)
    except ValueError as exc:
        raise ConfigError(str(exc), source=loaded.path or "", path="sessions.key") from None


def _key_set(
    provider: IdentityProviderConfig, http: httpx.AsyncClient, clock: Callable[[], float]
) -> RemoteKeySet:
    timeout = provider.fetch_timeout_seconds
    insecure, private = provider.allow_insecure_http, provider.allow_private_network
    discovered: list[str] = []

    async def fetch(url: str) -> Any:
        return await fetch_json(
            http, url, timeout=timeout, allow_insecure_http=insecure, allow_private_network=private
        )

    async def load() -> Any:
        if provider.jwks_uri is not None:
            return await fetch(provider.jwks_uri)
        if not discovered:
            discovered.append(
                await discover_jwks_uri(
                    http,
                    provider.issuer,
                    timeout=timeout,
                    allow_insecure_http=insecure,
                    allow_private_network=private,
                )
            )
        try:
            return await fetch(discovered[0])
        except KeySourceError:
            discovered.clear()  # the IdP may have moved its keys: discover again next time
            raise

    return RemoteKeySet(
        load, clock=clock, ttl=provider.jwks_ttl_seconds, cooldown=provider.jwks_refetch_cooldown_seconds
    )
