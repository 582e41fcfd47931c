"""The configuration model: one validated, immutable object.

Every secure default lives here, with the reason for its value next to it. The JSON
Schema in ``docs/config.schema.json`` is generated from these models
(``mcp-bastion schema``) and a test keeps the two identical.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "AuditConfig",
    "BastionConfig",
    "ClaimMapping",
    "IdentityProviderConfig",
    "LimitsConfig",
    "ListenConfig",
    "ScopeRegistryConfig",
    "SecretRef",
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
_NAME = r"^[a-z0-9][a-z0-9_-]{0,62}$"
_SCOPE = r"^[\x21\x23-\x5b\x5d-\x7e]{1,128}$"  # RFC 6749 §3.3 scope-token characters


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=False)


Name = Annotated[str, Field(pattern=_NAME, description="Lower-case name: letters, digits, '-' and '_'.")]
Scope = Annotated[str, Field(pattern=_SCOPE, description="An OAuth scope token (RFC 6749 §3.3).")]
Seconds = Annotated[float, Field(gt=0, le=86_400)]


class SecretRef(_Model):
    """A secret read from an environment variable or a file, never written in the config itself."""

    env: str | None = Field(default=None, description="Name of the environment variable holding the secret.")
    file: str | None = Field(
        default=None, description="Path of a file holding the secret (trailing newline dropped)."
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> SecretRef:
        if (self.env is None) == (self.file is None):
            raise ValueError("give exactly one of 'env' or 'file'")
        return self


class ListenConfig(_Model):
    # MCP transports §Security: bind to loopback unless told otherwise.
    host: str = Field(default="127.0.0.1", description="Address to bind.")
    port: int = Field(default=8000, ge=0, le=65535)
    workers: int = Field(default=1, ge=1, le=64, description="Worker processes sharing the socket.")


class ClaimMapping(_Model):
    """Where this IdP puts the subject, the scopes and the client id (IdPs differ)."""

    subject: str = Field(default="sub")
    # Okta and Auth0 use a space-separated `scope` string; Entra ID uses `scp`; some use arrays.
    scopes: tuple[str, ...] = Field(default=("scope", "scp"), min_length=1)
    # RFC 9068 `client_id`; OIDC-style IdPs (Entra ID, Keycloak) put it in `azp`.
    client_id: tuple[str, ...] = Field(default=("client_id", "azp", "appid"), min_length=1)


class IdentityProviderConfig(_Model):
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

    @model_validator(mode="after")
    def _urls(self) -> IdentityProviderConfig:
        _check_fetch_url(self.issuer, "issuer", self.allow_insecure_http)
        if self.jwks_uri is not None:
            _check_fetch_url(self.jwks_uri, "jwks_uri", self.allow_insecure_http)
        if not self.discovery and self.jwks_uri is None:
            raise ValueError("with discovery off, 'jwks_uri' is required")
        return self


class UpstreamAuthConfig(_Model):
    """How the gateway authenticates itself to an upstream. The client's token never goes upstream."""

    type: Literal["none", "static", "minted"] = "minted"
    header: str = Field(default="Authorization", pattern=r"^[A-Za-z0-9-]{1,64}$")
    secret: SecretRef | None = Field(default=None, description="For 'static': the header value's source.")
    # Minted tokens live briefly: a leaked one is useless within a minute (RFC 8693 §2.1 spirit).
    ttl_seconds: int = Field(default=60, ge=10, le=3600)
    audience: str | None = Field(
        default=None, description="For 'minted': `aud`; defaults to the upstream URL."
    )

    @model_validator(mode="after")
    def _secret_for_static(self) -> UpstreamAuthConfig:
        if self.type == "static" and self.secret is None:
            raise ValueError("type 'static' needs 'secret' (env or file)")
        if self.type != "static" and self.secret is not None:
            raise ValueError("'secret' is only used with type 'static'")
        return self


class ToolPolicy(_Model):
    scopes: tuple[Scope, ...] = Field(description="Scopes a caller needs for this tool (all of them).")


class ServerConfig(_Model):
    name: Name = Field(
        description="Public path segment: the server is served at <public_base_url>/<name>/mcp."
    )
    upstream: str = Field(description="The upstream MCP endpoint URL.")
    auth: bool = Field(default=True, description="Turn authentication off for this server (benchmarks only).")
    title: str | None = Field(default=None, description="`resource_name` in the protected resource metadata.")
    identity_providers: tuple[Name, ...] = Field(
        default=(), description="Names of the IdPs trusted for this server; empty = all."
    )
    upstream_auth: UpstreamAuthConfig = UpstreamAuthConfig()
    tools: dict[str, ToolPolicy] = Field(default_factory=dict, description="Per-tool scope overrides.")
    scopes: tuple[Scope, ...] = Field(default=(), description="Extra scopes this server defines.")
    # Annotations come from the upstream and are untrusted; they can only pick between the
    # registry's read and write scopes, never undercut an override above.
    trust_annotations: bool = True
    destructive_scopes: tuple[Scope, ...] | None = Field(
        default=None, description="Scopes for tools annotated destructive; default: the write scope."
    )
    timeout_seconds: float = Field(default=60, gt=0, le=3600)
    # Step-up (MCP authorization §Step-Up): a client that cannot see a tool never asks for the
    # scope it needs, so by default a list also shows what a scope the server publishes would
    # unlock, marked with the scopes it needs; `callable` lists only what the token may call now.
    tools_list: Literal["reachable", "callable"] = Field(
        default="reachable",
        description=(
            "Which tools tools/list shows: `reachable` = callable now plus those a step-up to this "
            "server's scopes would allow (marked in _meta); `callable` = only what the token may call now."
        ),
    )

    @field_validator("upstream")
    @classmethod
    def _upstream_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http(s) URL with a host")
        if parts.username or parts.password:
            raise ValueError("must not carry credentials; use upstream_auth")
        return value


class ScopeRegistryConfig(_Model):
    read: Scope = "tools.read"
    write: Scope = "tools.write"
    admin: Scope = "admin"
    # MCP 2026-07-28 "Step-Up": hierarchies are honoured; a scope grants those it implies.
    implies: dict[str, tuple[str, ...]] | None = Field(
        default=None, description="scope -> scopes it implies; default: admin ⊇ write ⊇ read."
    )


class OriginConfig(_Model):
    # Requests without Origin (non-browser clients) pass; a present, unlisted Origin gets 403
    # (MCP transports §Security, DNS rebinding).
    allow: tuple[str, ...] = Field(default=(), description="Exact origins allowed, e.g. https://app.example.")


class LimitsConfig(_Model):
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


class AuditConfig(_Model):
    sink: Literal["stdout", "file", "none"] = "stdout"
    path: str | None = None
    # SL-04: while the sink fails, events wait in a bounded buffer ("buffer"), or MCP requests
    # are refused with 503 until it recovers ("refuse": no decision goes unrecorded).
    on_failure: Literal["buffer", "refuse"] = "buffer"

    @model_validator(mode="after")
    def _path_for_file(self) -> AuditConfig:
        if self.sink == "file" and not self.path:
            raise ValueError("sink 'file' needs 'path'")
        return self


class SessionConfig(_Model):
    key: SecretRef | None = Field(
        default=None,
        description="32-byte key (base64) sealing session ids; share it across replicas. "
        "Absent: a random key per process (sessions do not survive restarts or cross replicas).",
    )
    ttl_seconds: int = Field(default=86_400, ge=60, le=30 * 86_400)


class SigningConfig(_Model):
    key: SecretRef | None = Field(
        default=None,
        description="Private JWK (JSON) for minting upstream tokens; absent: generated per process.",
    )
    algorithm: Literal["ES256", "RS256", "PS256", "EdDSA"] = "ES256"


class BastionConfig(_Model):
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
        names = [s.name for s in self.servers]
        if len(set(names)) != len(names):
            raise ValueError("server names must be unique")
        idps = {p.name for p in self.identity_providers}
        if len(idps) != len(self.identity_providers):
            raise ValueError("identity provider names must be unique")
        if len({p.issuer for p in self.identity_providers}) != len(self.identity_providers):
            raise ValueError("two identity providers share an issuer")
        for server in self.servers:
            unknown = set(server.identity_providers) - idps
            if unknown:
                raise ValueError(f"server {server.name!r} names unknown identity providers {sorted(unknown)}")
            if server.auth and not idps:
                raise ValueError(
                    f"server {server.name!r} requires auth but no identity_providers are configured"
                )
        return self


def _check_fetch_url(url: str, field: str, allow_insecure_http: bool) -> None:
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and parts.hostname and allow_insecure_http and _is_loopback(parts.hostname):
        return
    if parts.scheme == "http" and parts.hostname and _is_loopback(parts.hostname):
        raise ValueError(f"{field} is plain http: set allow_insecure_http: true (loopback development only)")
    raise ValueError(f"{field} must be an https URL")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


SCOPE_PATTERN = re.compile(_SCOPE)
