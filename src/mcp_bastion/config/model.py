"""The configuration model: one validated, immutable object.

Every secure default lives here, with the reason for its value next to it. The JSON
Schema in ``docs/config.schema.json`` is generated from these models
(``mcp-bastion schema``) and a test keeps the two identical.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from ..quota.config import QuotaConfig
from ..urls import is_loopback
from .audit import OtlpLogsConfig, RotateConfig, SpoolConfig, WebhookConfig
from .base import SCOPE_SYNTAX, Model, Name, Scope, SecretRef, refuse, unique
from .edge import DrainConfig, ServerTlsConfig
from .entra import EntraConfig, check_entra
from .facade import FacadeConfig
from .filters import (
    FilterConfig,
    GuardFilterConfig,
    PoisoningFilterConfig,
    RegexFilterConfig,
    SecretsFilterConfig,
)
from .identity import IdpClientConfig, IntrospectionConfig, Preset, preset_defaults
from .policy import PolicyClaim, PolicyConfig
from .server import PinningConfig, ServerConfig, ToolPolicy, UpstreamAuthConfig
from .telemetry import TelemetryConfig

__all__ = [
    "AuditConfig",
    "BastionConfig",
    "ClaimMapping",
    "FilterConfig",
    "GuardFilterConfig",
    "IdentityProviderConfig",
    "LimitsConfig",
    "ListenConfig",
    "PinningConfig",
    "PoisoningFilterConfig",
    "PolicyClaim",
    "PolicyConfig",
    "RegexFilterConfig",
    "ScopeRegistryConfig",
    "SecretRef",
    "SecretsFilterConfig",
    "ServerConfig",
    "SessionConfig",
    "SigningConfig",
    "ToolPolicy",
    "UpstreamAuthConfig",
]

# RFC 8725 §3.1/§3.2: only asymmetric algorithms a resource server can verify with public keys;
# never "none" and never HMAC (a public key used as an HMAC secret is CVE-2022-29217's attack).
Algorithm = Literal["RS256", "PS256", "ES256", "EdDSA"]
SUPPORTED_ALGORITHMS: tuple[Algorithm, ...] = ("RS256", "PS256", "ES256", "EdDSA")
# Clock skew tolerance is capped: a large leeway keeps expired tokens alive (RFC 7519 §4.1.4).
MAX_LEEWAY_SECONDS = 300


class ListenConfig(Model):
    # MCP transports §Security: bind to loopback unless told otherwise.
    host: str = Field(default="127.0.0.1", description="Address to bind.")
    port: int = Field(default=8000, ge=0, le=65535)
    workers: int = Field(default=1, ge=1, le=64, description="Worker processes sharing the socket.")
    drain: DrainConfig = Field(default=DrainConfig(), description="A graceful stop on SIGTERM.")
    tls: ServerTlsConfig | None = Field(default=None, description="TLS termination (absent: plain HTTP).")


class ClaimMapping(Model):
    """Where this IdP puts the subject, the scopes and the client id (IdPs differ)."""

    subject: str = Field(default="sub")
    # Okta and Auth0 use a space-separated `scope` string; Entra ID uses `scp`; some use arrays.
    scopes: tuple[str, ...] = Field(default=("scope", "scp"), min_length=1)
    # RFC 9068 `client_id`; OIDC-style IdPs (Entra ID, Keycloak) put it in `azp`.
    client_id: tuple[str, ...] = Field(default=("client_id", "azp", "appid"), min_length=1)


class IdentityProviderConfig(Model):
    name: Name
    issuer: str = Field(description="The `iss` value, compared byte for byte.")
    discovery: bool = Field(default=True, description="Fetch OIDC / RFC 8414 metadata to find `jwks_uri`.")
    jwks_uri: str | None = Field(default=None, description="Explicit JWKS URL (skips discovery for keys).")
    algorithms: tuple[Algorithm, ...] = Field(default=SUPPORTED_ALGORITHMS, min_length=1)
    leeway_seconds: float = Field(default=30, ge=0, le=MAX_LEEWAY_SECONDS)
    # RFC 9068 §4: require `typ: at+jwt` so ID tokens and other JWTs cannot pass as access tokens.
    require_typ: str | None = Field(default="at+jwt")
    # Bounds a token's life even when `exp` is absurd (TV-06: exp = 10^23).
    max_token_lifetime_seconds: int = Field(default=86_400, gt=0, le=31 * 86_400)
    claims: ClaimMapping = ClaimMapping()
    # Keys are refreshed this often; an unknown `kid` triggers one refetch at most per cooldown.
    jwks_ttl_seconds: float = Field(default=300, gt=0, le=86_400)
    jwks_refetch_cooldown_seconds: float = Field(default=30, ge=0, le=3600)
    fetch_timeout_seconds: float = Field(default=5, gt=0, le=60)
    allow_private_network: bool = Field(
        default=False,
        description="Allow metadata and JWKS fetches to private (RFC 1918 / ULA) addresses: an on-premises IdP. "
        "Link-local addresses (cloud metadata services) stay refused.",
    )
    allow_insecure_http: bool = Field(
        default=False,
        description="Allow http:// issuer and JWKS URLs on loopback addresses (development only).",
    )
    facade: FacadeConfig | None = Field(
        default=None,
        description="Run an authorization facade for this IdP (one without Dynamic Client Registration): "
        "see docs/facade.md.",
    )
    # Enterprise identity (config/identity.py, docs/identity.md).
    preset: Preset | None = Field(
        default=None, description="The IdP's claim layout and access-token checks (docs/identity.md)."
    )
    client: IdpClientConfig | None = Field(
        default=None,
        description="The gateway as a confidential client of this IdP (exchange, introspection).",
    )
    introspection: IntrospectionConfig | None = Field(
        default=None, description="Accept opaque access tokens, checked by RFC 7662 introspection."
    )
    audiences: dict[str, tuple[str, ...]] = Field(
        default_factory=dict,
        description="Server name -> audience values this IdP puts in tokens for it besides its resource URL "
        "(Entra api:// or GUID audiences; Cognito app client ids).",
    )
    machine_clients: tuple[str, ...] = Field(
        default=(),
        description="Servers (by name) that accept tokens without a user (client credentials); the client "
        "is the subject.",
    )
    entra: EntraConfig | None = Field(
        default=None, description="With preset: entra: the tenant, and whether v1.0 tokens are accepted."
    )

    @model_validator(mode="before")
    @classmethod
    def _preset(cls, data: Any) -> Any:
        return preset_defaults(data) if isinstance(data, dict) else data

    @model_validator(mode="after")
    def _entra(self) -> IdentityProviderConfig:
        check_entra(self.preset, self.issuer, self.entra)
        return self

    @model_validator(mode="after")
    def _introspection_client(self) -> IdentityProviderConfig:
        if self.introspection is not None and self.client is None:
            raise refuse("required key is missing: introspection authenticates as this client", "client")
        return self

    @model_validator(mode="after")
    def _urls(self) -> IdentityProviderConfig:
        _check_fetch_url(self.issuer, "issuer", self.allow_insecure_http)
        if self.jwks_uri is not None:
            _check_fetch_url(self.jwks_uri, "jwks_uri", self.allow_insecure_http)
        if not self.discovery and self.jwks_uri is None:
            raise refuse(
                "required key is missing: with discovery: false, the keys come from jwks_uri", "jwks_uri"
            )
        return self


class ScopeRegistryConfig(Model):
    read: Scope = "tools.read"
    write: Scope = "tools.write"
    admin: Scope = "admin"
    # MCP 2026-07-28 "Step-Up": hierarchies are honoured; a scope grants those it implies.
    implies: dict[str, tuple[str, ...]] | None = Field(
        default=None, description="scope -> scopes it implies; default: admin ⊇ write ⊇ read."
    )


class OriginConfig(Model):
    # Requests without Origin (non-browser clients) pass; a present, unlisted Origin gets 403
    # (MCP transports §Security, DNS rebinding).
    allow: tuple[str, ...] = Field(default=(), description="Exact origins allowed, e.g. https://app.example.")


class LimitsConfig(Model):
    max_body_bytes: int = Field(default=1_048_576, ge=1024, le=64 * 1_048_576)
    # JR-10 (slowloris): 1 MiB at 100 kB/s still fits in 10 s.
    body_read_timeout_seconds: float = Field(default=10, gt=0, le=300)
    max_header_bytes: int = Field(default=16_384, ge=1024, le=1_048_576)
    # JR-10 (slowloris, idle connections): from a head's first byte, or the connection's start.
    header_read_timeout_seconds: float = Field(default=10, gt=0, le=300)
    keep_alive_timeout_seconds: float = Field(default=30, gt=0, le=3600)
    # Open connections per worker; beyond this a request gets 503 instead of taking on work.
    max_connections: int = Field(default=4096, ge=16, le=1_000_000)
    # RFC 8725 §3.x / TV-16: refuse absurd tokens before decoding them.
    max_token_bytes: int = Field(default=8_192, ge=512, le=65_536)
    max_json_depth: int = Field(default=64, ge=4, le=512)
    max_batch_size: int = Field(default=64, ge=1, le=1000)
    max_list_response_bytes: int = Field(default=16 * 1_048_576, ge=65_536)
    # UP-02: an upstream answer (one JSON object, or all events of one SSE response) beyond
    # this is cut off with an error; GET notification streams are not capped.
    max_response_bytes: int = Field(default=64 * 1_048_576, ge=65_536, le=4 * 1024 * 1_048_576)
    upstream_connect_timeout_seconds: float = Field(default=5, gt=0, le=60)
    upstream_pool_size: int = Field(default=100, ge=1, le=10_000)


class AuditConfig(Model):
    sink: Literal["stdout", "file", "none", "webhook", "otlp"] = "stdout"
    path: str | None = None
    # SL-04: while the sink fails, events wait in a bounded buffer ("buffer"), or MCP requests
    # are refused with 503 until it recovers ("refuse": no decision goes unrecorded).
    on_failure: Literal["buffer", "refuse"] = "buffer"
    # The durable spool (docs/audit.md): events survive a destination outage and a crash.
    spool: SpoolConfig | None = None
    rotate: RotateConfig | None = None
    webhook: WebhookConfig | None = None
    otlp: OtlpLogsConfig | None = None  # sink: otlp (audit/otlp.py)

    @model_validator(mode="after")
    def _path_for_file(self) -> AuditConfig:
        if self.sink == "file" and not self.path:
            raise refuse("required key is missing: sink 'file' writes to this path", "path")
        if self.sink == "webhook" and (self.webhook is None or self.spool is None):
            raise refuse("sink 'webhook' needs `webhook` and a `spool` to deliver from", "webhook")
        if self.sink == "otlp" and (self.otlp is None or self.spool is None):
            raise refuse("sink 'otlp' needs `otlp` and a `spool` to deliver from", "otlp")
        if self.rotate is not None and (self.sink != "file" or self.spool is None):
            raise refuse("`rotate` applies to sink 'file' delivered from a `spool`", "rotate")
        return self


class SessionConfig(Model):
    key: SecretRef | None = Field(
        default=None,
        description="32-byte key (base64) sealing session ids; share it across replicas. "
        "Absent: a random key per process (sessions do not survive restarts or cross replicas).",
    )
    ttl_seconds: int = Field(default=86_400, ge=60, le=30 * 86_400)
    # MCP 2026-07-28 multi round-trip requests: an upstream's `requestState` is sealed with the
    # same key before a client sees it; the spec asks for "a short expiry" (mrtr.mdx).
    request_state_ttl_seconds: int = Field(
        default=600,
        ge=10,
        le=86_400,
        description="How long a sealed requestState (2026-07-28 multi round-trip requests) may be "
        "echoed back by the client.",
    )
    # Rotation without downtime (docs/operations.md): ids sealed with an old key still open
    # while replicas move to the new one; nothing is sealed with these.
    previous_keys: tuple[SecretRef, ...] = Field(
        default=(),
        max_length=4,
        description="Earlier session keys (base64, 32 bytes each): session ids and requestStates they "
        "sealed still open; new ones are sealed with `key` only. Requires `key`.",
    )

    @model_validator(mode="after")
    def _previous_need_current(self) -> SessionConfig:
        if self.previous_keys and self.key is None:
            raise refuse("previous keys need a current `key` to seal with", "previous_keys")
        return self


class SigningConfig(Model):
    key: SecretRef | None = Field(
        default=None,
        description="Private JWK (JSON) for minting upstream tokens; absent: generated per process.",
    )
    algorithm: Literal["ES256", "RS256", "PS256", "EdDSA"] = "ES256"
    # Rotation without downtime (docs/operations.md): the next key published before it signs,
    # the old one after, so an upstream's cached JWKS always holds the key of a token it sees.
    previous_keys: tuple[SecretRef, ...] = Field(
        default=(),
        max_length=4,
        description="Other JWKs (public or private) published in the gateway's JWKS beside the "
        "signing key but never used to sign: the old key after a rotation, the next one before it.",
    )

    @model_validator(mode="after")
    def _previous_need_current(self) -> SigningConfig:
        if self.previous_keys and self.key is None:
            raise refuse("previous keys need a current `key` to sign with", "previous_keys")
        return self


class BastionConfig(Model):
    public_base_url: str = Field(
        description="The URL clients reach the gateway at; resource URLs derive from it."
    )
    trusted_proxies: tuple[str, ...] = Field(
        default=(), description="CIDRs whose X-Forwarded-Host/-Proto/-For headers are believed."
    )
    allowed_hosts: tuple[str, ...] = Field(
        default=(), description="Extra Host values accepted besides the public one."
    )
    listen: ListenConfig = ListenConfig()
    identity_providers: tuple[IdentityProviderConfig, ...] = Field(default=(), max_length=32)
    servers: tuple[ServerConfig, ...] = Field(min_length=1)
    scopes: ScopeRegistryConfig = ScopeRegistryConfig()
    origins: OriginConfig = OriginConfig()
    limits: LimitsConfig = LimitsConfig()
    audit: AuditConfig = AuditConfig()
    sessions: SessionConfig = SessionConfig()
    signing: SigningConfig = SigningConfig()
    policy: PolicyConfig = PolicyConfig()
    quotas: QuotaConfig = Field(
        default_factory=QuotaConfig, description="Rate limits and concurrency caps (docs/quotas.md)."
    )
    telemetry: TelemetryConfig = TelemetryConfig()

    @field_validator("public_base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an absolute http(s) URL")
        if parts.query or parts.fragment or parts.username:
            raise ValueError("must not have a query, fragment or credentials")
        # A canonical form: lower-case scheme and host, no trailing slash (MCP "Canonical Server URI").
        netloc = parts.netloc.lower()
        return f"{parts.scheme.lower()}://{netloc}{parts.path.rstrip('/')}"

    @field_validator("trusted_proxies")
    @classmethod
    def _cidrs(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for cidr in value:
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError as exc:
                raise ValueError(f"{cidr!r} is not an IP network (CIDR)") from exc
        return value

    @model_validator(mode="after")
    def _cross_references(self) -> BastionConfig:
        unique(self.servers, "servers", "name", "server names must be unique (each is a URL path segment)")
        unique(
            self.identity_providers, "identity_providers", "name", "identity provider names must be unique"
        )
        unique(
            self.identity_providers,
            "identity_providers",
            "issuer",
            "a token's `iss` must choose one identity provider",
        )
        idps = [p.name for p in self.identity_providers]
        for i, server in enumerate(self.servers):
            unknown = [name for name in server.identity_providers if name not in idps]
            if unknown:
                raise refuse(
                    f"names identity providers that are not defined: {', '.join(map(repr, unknown))} "
                    f"(defined in identity_providers: {', '.join(map(repr, idps)) or 'none'})",
                    "servers",
                    i,
                    "identity_providers",
                )
            if server.auth and not idps:
                raise refuse(
                    f"none are configured, but servers[{i}] ({server.name!r}) requires authentication: "
                    "add an identity provider, or set auth: false on that server (benchmarks only)",
                    "identity_providers",
                )
            _defined_scopes(server, i, self.scopes)
        return self


def _defined_scopes(server: ServerConfig, index: int, registry: ScopeRegistryConfig) -> None:
    """Every scope an override or `destructive_scopes` requires is defined somewhere.

    A scope nobody defines is almost always a typo (`admn`): the tool would be callable by no
    one, and the scope would still be advertised in `scopes_supported`. Defining it in the
    server's `scopes` costs one line and says the name is meant.
    """
    defined = {registry.read, registry.write, registry.admin, *server.scopes}
    for scope, implied in (registry.implies or {}).items():
        defined |= {scope, *implied}
    places: list[tuple[tuple[str | int, ...], tuple[str, ...]]] = [
        (("tools", name, "scopes"), policy.scopes) for name, policy in server.tools.items()
    ]
    places.append((("destructive_scopes",), server.destructive_scopes or ()))
    for where, scopes in places:
        for j, scope in enumerate(scopes):
            if scope not in defined:
                raise refuse(
                    f"{scope!r} is not a defined scope: expected one of {', '.join(sorted(defined))}; "
                    f"to define a new one, list it in servers[{index}].scopes",
                    "servers",
                    index,
                    *where,
                    j,
                )


def _check_fetch_url(url: str, field: str, allow_insecure_http: bool) -> None:
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return
    loopback_http = parts.scheme == "http" and bool(parts.hostname) and is_loopback(parts.hostname or "")
    if loopback_http and allow_insecure_http:
        return
    if loopback_http:
        raise refuse(
            f"{url!r} is plain http: expected https, or allow_insecure_http: true on this provider "
            "(loopback development only)",
            field,
        )
    if parts.scheme == "http" and allow_insecure_http:
        raise refuse(
            f"expected an https URL, found {url!r} (allow_insecure_http admits plain http on loopback only)",
            field,
        )
    raise refuse(f"expected an https URL, found {url!r}", field)


SCOPE_PATTERN = re.compile(SCOPE_SYNTAX)
