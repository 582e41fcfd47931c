"""Assembling the gateway: config in, ASGI app out. The request chain is built here, in order:

    EdgeChecks → Authenticate → ReadBody → ParseMcp → OpenRequestState → Authorize →
    [ScreenArguments] → Forward, then AuditStep

(ScreenArguments only where a server configures safety filters, `safety/`.)

Each stage either returns (continue) or raises a BastionError (answer); `pipeline/replies.py`
turns errors into HTTP, and every MCP request ends with one audit event per call. The
seams are injectable for tests and for what plugs in next: the token verifier
(`auth.verifier.TokenVerifier`), each server's upstream transport
(`upstream.transport.UpstreamTransport`) and credential (`credentials.UpstreamCredential`),
the audit sink and the clock.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
import orjson

from .audit import AuditSink, SpooledSink, sink_for
from .auth import IssuerPolicy, JwtVerifier, RemoteKeySet, metadata_document, metadata_url
from .auth.discovery import discover_jwks_uri
from .auth.fetch import fetch_json
from .auth.verifier import TokenVerifier
from .cedar import policy_checks
from .config import LoadedConfig
from .config.model import BastionConfig, IdentityProviderConfig, ServerConfig
from .credentials import MintedCredential, NoCredential, StaticCredential, TokenMinter, UpstreamCredential
from .credentials.minted import published_jwk
from .errors import ConfigError, KeySourceError
from .facade import build_facade, facade_issuer
from .identity import EnterpriseIdentity
from .mcp.request_state import RequestStateSealer
from .mcp.sessions import SessionSealer
from .pinning import Lockfiles
from .pinning.report import change_reporter
from .pinning.store import ToolPins
from .pipeline.audit import AuditStep
from .pipeline.authenticate import Authenticate
from .pipeline.authorize import Authorize
from .pipeline.body import ReadBody
from .pipeline.edge import EdgeChecks
from .pipeline.forward import Forward
from .pipeline.gateway import Gateway, Stage
from .pipeline.parse import ParseMcp
from .pipeline.relay import Relay
from .pipeline.request_state import OpenRequestState
from .pipeline.screen import ScreenArguments
from .policy import ScopeRegistry, ServerPolicy, ToolCatalog
from .policy.decide import CallCheck
from .policy.scopes import published_scopes
from .quota.build import build_quotas
from .route import ServerRoute
from .safety.build import GuardTransports, build_chain
from .safety.chain import SafetyChain
from .stdio import StdioPlugins
from .telemetry import Readiness, Telemetry, telemetry_for
from .upstream.catalog import CatalogFetcher
from .upstream.client import UpstreamClient
from .upstream.transport import UpstreamTransport
from .urls import path_of, resource_url

if TYPE_CHECKING:
    from .facade._build import Facade

__all__ = ["GATEWAY_JWKS_PATH", "Gateway", "Stage", "build_gateway"]

log = logging.getLogger("mcp_bastion")
GATEWAY_JWKS_PATH = "/.well-known/jwks.json"
TransportFactory = Callable[[ServerConfig], UpstreamTransport]
CredentialFactory = Callable[[ServerConfig, int], UpstreamCredential]


def build_gateway(
    loaded: LoadedConfig,
    *,
    clock: Callable[[], float] = time.time,
    audit: AuditSink | None = None,
    verifier: TokenVerifier | None = None,
    transport_for: TransportFactory | None = None,
    credential_for: CredentialFactory | None = None,
    telemetry: Telemetry | None = None,
) -> Gateway:
    """The gateway ASGI app for a validated config (secrets already read).

    Left out, each seam gets its production implementation: JWTs verified against the
    configured IdPs' keys, HTTP upstreams on one shared pool, and the credential each
    server's `upstream_auth` names. `telemetry` left out is the one `telemetry:` configures
    (None when it turns nothing on).
    """
    config = loaded.config
    registry = ScopeRegistry.from_config(config.scopes)
    minter = _minter(loaded, clock)
    life = _Lifecycle()
    identity = EnterpriseIdentity(loaded, clock)  # IdP clients, exchange, presets, introspection
    life.closers.append(identity.aclose)
    stdio = StdioPlugins(loaded, minter)  # `command:` servers (docs/stdio.md); spawns nothing yet
    life.closers.append(stdio.aclose)
    if transport_for is None:
        pool = UpstreamClient(config.limits)
        life.closers.append(pool.aclose)
        transport_for = stdio.transports(_http_transports(pool))
    if credential_for is None:
        credential_for = stdio.credentials(_credentials(loaded, minter, identity))
    sink = audit if audit is not None else sink_for(config.audit, loaded.secrets)
    if isinstance(sink, SpooledSink):
        life.warmers.append(sink.run)  # delivers from the spool for as long as the gateway runs
        life.closers.append(sink.aclose)
    owns_telemetry = telemetry is None  # given: the caller closes it (it outlives reloads)
    if telemetry is None:
        telemetry = telemetry_for(config.telemetry)
    routes = _routes(loaded, registry, credential_for, transport_for, sink, life, clock)
    facades = _facades(loaded, routes, clock, sink)
    life.closers.extend(facade.aclose for facade in facades)
    key_sets: dict[str, RemoteKeySet] = {}
    if verifier is None:
        verifier, key_sets = _verifier(loaded, identity, facades, telemetry, life, clock)
    stages = _stages(loaded, verifier, routes, life, clock)
    if telemetry is not None:
        stages = telemetry.instrument(stages)
        if owns_telemetry:
            life.closers.append(telemetry.aclose)
        if telemetry.metrics is not None:
            telemetry.metrics.watch_keys({name: _loaded(keys) for name, keys in key_sets.items()})
            telemetry.metrics.watch_audit(sink)
    readiness = _readiness(config, key_sets, sink, routes)
    documents = {path_of(route.metadata_url): route.metadata for route in routes}
    documents[GATEWAY_JWKS_PATH] = orjson.dumps(minter.jwks())
    return Gateway(
        config,
        routes,
        stages,
        audit=AuditStep(sink),
        documents=documents,
        closers=life.closers,
        warmers=life.warmers,
        mounts=[(facade.path_prefixes, facade) for facade in facades],
        telemetry=telemetry,
        readiness=readiness,
    )


@dataclass
class _Lifecycle:
    """What the gateway starts in the background at start-up and closes at shutdown, in order."""

    closers: list[Callable[[], Any]] = field(default_factory=list)
    warmers: list[Callable[[], Any]] = field(default_factory=list)


def _routes(
    loaded: LoadedConfig,
    registry: ScopeRegistry,
    credential_for: CredentialFactory,
    transport_for: TransportFactory,
    sink: AuditSink,
    life: _Lifecycle,
    clock: Callable[[], float],
) -> list[ServerRoute]:
    """One route per configured server, with its policy checks, pins and safety filters."""
    config = loaded.config
    checks = policy_checks(loaded, registry, clock)  # Cedar, for the servers with policy files
    lockfiles = Lockfiles(loaded.path or "")
    guard_transport = _guard_transports(config, life.closers)
    return [
        _route(
            config,
            server,
            registry,
            credential_for(server, i),
            transport_for(server),
            checks.get(server.name, ()),
            lockfiles.pins_for(server, i, change_reporter(server.name, sink)),
            build_chain(server, i, loaded.secrets, guard_transport),
        )
        for i, server in enumerate(config.servers)
    ]


def _verifier(
    loaded: LoadedConfig,
    identity: EnterpriseIdentity,
    facades: list[Facade],
    telemetry: Telemetry | None,
    life: _Lifecycle,
    clock: Callable[[], float],
) -> tuple[TokenVerifier, dict[str, RemoteKeySet]]:
    """JWTs checked against each IdP's keys (refreshed in the background) and each facade's
    own; opaque tokens introspected where an IdP says so. Also the key sets, for readiness."""
    config = loaded.config
    idp_http = httpx.AsyncClient(trust_env=False, follow_redirects=False)
    key_sets = {
        p.name: _key_set(p, idp_http, clock, _refresh_observer(telemetry, p.name))
        for p in config.identity_providers
    }
    issuers = {
        p.issuer: IssuerPolicy(p, key_sets[p.name], identity.profile(p)) for p in config.identity_providers
    }
    # A background key refresh may be in flight at shutdown: stopped before its client closes.
    life.closers.extend(policy.keys.close for policy in issuers.values())
    life.closers.append(idp_http.aclose)
    life.warmers.extend(policy.keys.warm for policy in issuers.values())
    issuers.update({facade.issuer: facade.issuer_policy(clock) for facade in facades})
    verifier = JwtVerifier(issuers, clock=clock, max_token_bytes=config.limits.max_token_bytes)
    return identity.verifier(verifier), key_sets  # opaque tokens, when an IdP introspects


def _stages(
    loaded: LoadedConfig,
    verifier: TokenVerifier,
    routes: list[ServerRoute],
    life: _Lifecycle,
    clock: Callable[[], float],
) -> tuple[Stage, ...]:
    """The request chain, in order (the module docstring)."""
    config, limits = loaded.config, loaded.config.limits
    session_key = _session_key(loaded)
    previous = _previous_session_keys(loaded)
    sealer = SessionSealer(session_key, ttl_seconds=config.sessions.ttl_seconds, previous=previous)
    request_states = RequestStateSealer(
        session_key, ttl_seconds=config.sessions.request_state_ttl_seconds, previous=previous
    )
    quotas = build_quotas(loaded, life.closers)  # wraps Forward: checked before the upstream is touched
    return (
        EdgeChecks(config),
        Authenticate(verifier),
        ReadBody(limits.max_body_bytes, limits.body_read_timeout_seconds),
        ParseMcp(limits, sealer, clock),
        OpenRequestState(request_states, clock),
        Authorize(CatalogFetcher(clock)),
        # Only where some server configures safety filters: otherwise not even a stage call.
        *((ScreenArguments(),) if any(route.safety for route in routes) else ()),
        quotas.around(
            Forward(
                Relay(sealer, clock, max_event_bytes=limits.max_list_response_bytes),
                max_response_bytes=limits.max_response_bytes,
                request_states=request_states,
                clock=clock,
            )
        ),
    )


def _readiness(
    config: BastionConfig, key_sets: dict[str, RemoteKeySet], sink: AuditSink, routes: list[ServerRoute]
) -> Readiness:
    wanted = config.telemetry.readiness
    upstreams = {route.name: route.transport for route in routes} if wanted.check_upstreams else None
    return Readiness(
        key_sets, sink, upstreams, timeout=wanted.upstream_timeout_seconds, cache_seconds=wanted.cache_seconds
    )


def _refresh_observer(telemetry: Telemetry | None, idp: str) -> Callable[[bool], None] | None:
    if telemetry is None:
        return None
    return lambda ok: telemetry.key_refresh(idp, ok)


def _loaded(keys: RemoteKeySet) -> Callable[[], bool]:
    return lambda: keys.loaded


def _http_transports(pool: UpstreamClient) -> TransportFactory:
    def transport_for(server: ServerConfig) -> UpstreamTransport:
        return pool.transport(server.upstream or "", server.upstream_tls)

    return transport_for


def _guard_transports(config: BastionConfig, closers: list[Callable[[], Any]]) -> GuardTransports:
    """External guards share one pool of their own (created on the first guard)."""
    pools: list[UpstreamClient] = []

    def transport(url: str) -> UpstreamTransport:
        if not pools:
            pools.append(UpstreamClient(config.limits))
            closers.append(pools[0].aclose)
        return pools[0].transport(url)

    return transport


def _credentials(
    loaded: LoadedConfig, minter: TokenMinter, identity: EnterpriseIdentity
) -> CredentialFactory:
    def credential_for(server: ServerConfig, index: int) -> UpstreamCredential:
        auth = server.upstream_auth
        if auth.type in ("exchange", "obo", "client_credentials"):
            return identity.credential(server, index)
        if auth.type == "none":
            return NoCredential()
        if auth.type == "static":
            value = loaded.secret(f"servers[{index}].upstream_auth.secret")
            assert value is not None
            return StaticCredential(auth.header, value)
        return MintedCredential(minter, auth.audience or server.upstream or "", auth.ttl_seconds)

    return credential_for


def _route(
    config: BastionConfig,
    server: ServerConfig,
    registry: ScopeRegistry,
    credential: UpstreamCredential,
    transport: UpstreamTransport,
    checks: tuple[CallCheck, ...],
    pins: ToolPins,
    safety: SafetyChain | None = None,
) -> ServerRoute:
    resource = resource_url(config.public_base_url, server.name)
    issuers = server.identity_providers or tuple(p.name for p in config.identity_providers)
    issuer_urls = tuple(p.issuer for p in config.identity_providers if p.name in issuers)
    # An IdP with a facade is reached through it: clients are sent to the facade (which can
    # register them); the IdP's own tokens stay accepted.
    facade_urls = tuple(
        facade_issuer(config, p) for p in config.identity_providers if p.name in issuers and p.facade
    )
    published_urls = facade_urls + tuple(
        p.issuer for p in config.identity_providers if p.name in issuers and not p.facade
    )
    scopes = published_scopes(registry, server)
    policy = ServerPolicy(
        registry,
        {name: tool.scopes for name, tool in server.tools.items()},
        server.trust_annotations,
        server.destructive_scopes,
        enforce=server.auth,
        published=frozenset(scopes),
        # The pin check first (a set lookup), then the safety filters' withheld tools (another),
        # before any policy engine.
        checks=(*pins.checks, *(safety.checks if safety is not None else ()), *checks),
    )
    prm_url = metadata_url(resource)
    return ServerRoute(
        name=server.name,
        config=server,
        resource=resource,
        path=path_of(resource),
        metadata_url=prm_url,
        metadata=metadata_document(resource, published_urls, scopes, server.title or server.name),
        issuers=frozenset(issuer_urls + facade_urls),
        policy=policy,
        catalog=ToolCatalog(),
        credential=credential,
        transport=transport,
        start_scopes=(registry.read,),
        pins=pins,
        safety=safety,
    )


def _facades(
    loaded: LoadedConfig, routes: list[ServerRoute], clock: Callable[[], float], sink: AuditSink | None = None
) -> list[Facade]:
    """The authorization facades (`facade/`), each for the servers that accept its IdP."""
    config, facades = loaded.config, []
    for index, provider in enumerate(config.identity_providers):
        if provider.facade is not None:
            issuer = facade_issuer(config, provider)
            resources = {
                route.resource: tuple(sorted(route.policy.published))
                for route in routes
                if issuer in route.issuers
            }
            facades.append(build_facade(loaded, index, resources, clock, sink))
    return facades


def _minter(loaded: LoadedConfig, clock: Callable[[], float]) -> TokenMinter:
    config = loaded.config
    key = loaded.secret("signing.key")
    if key is None:
        return TokenMinter.generate(config.signing.algorithm, config.public_base_url, clock)
    published = []
    for i in range(len(config.signing.previous_keys)):
        where = f"signing.previous_keys[{i}]"
        text = loaded.secret(where)
        if text is None:
            continue
        try:
            published.append(published_jwk(text, config.signing.algorithm))
        except ValueError as exc:
            raise ConfigError(str(exc), source=loaded.path or "", path=where) from None
    try:
        return TokenMinter.from_jwk(
            key, config.signing.algorithm, config.public_base_url, clock, tuple(published)
        )
    except ValueError as exc:
        raise ConfigError(str(exc), source=loaded.path or "", path="signing.key") from None


def _previous_session_keys(loaded: LoadedConfig) -> tuple[bytes, ...]:
    keys = []
    for i in range(len(loaded.config.sessions.previous_keys)):
        where = f"sessions.previous_keys[{i}]"
        text = loaded.secret(where)
        if text is None:
            continue
        try:
            keys.append(SessionSealer.decode_key(text))
        except ValueError as exc:
            raise ConfigError(str(exc), source=loaded.path or "", path=where) from None
    return tuple(keys)


def _session_key(loaded: LoadedConfig) -> bytes:
    text = loaded.secret("sessions.key")
    if text is None:
        return os.urandom(32)  # config/checks.py warns about it at start-up
    try:
        return SessionSealer.decode_key(text)
    except ValueError as exc:
        raise ConfigError(str(exc), source=loaded.path or "", path="sessions.key") from None


def _key_set(
    provider: IdentityProviderConfig,
    http: httpx.AsyncClient,
    clock: Callable[[], float],
    on_refresh: Callable[[bool], None] | None = None,
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
        load,
        clock=clock,
        ttl=provider.jwks_ttl_seconds,
        cooldown=provider.jwks_refetch_cooldown_seconds,
        # A request waits for keys (none yet, or an unknown kid) no longer than the fetches
        # take at most: the key document, and the metadata first when it is discovered.
        wait_limit=timeout if provider.jwks_uri is not None else 2 * timeout,
        on_refresh=on_refresh,
    )
