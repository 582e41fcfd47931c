"""The configuration model: one validated, immutable object.

Every secure default lives here, with the reason for its value next to it. The JSON
Schema in ``docs/config.schema.json`` is generated from these models
(``mcp-bastion schema``) and a test keeps the two identical.
"""

from __future__ import annotations

import ipaddress
import re
import zoneinfo
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from ..urls import is_loopback
from .telemetry import TelemetryConfig

__all__ = [
    "AuditConfig",
    "BastionConfig",
    "ClaimMapping",
    "IdentityProviderConfig",
    "LimitsConfig",
    "ListenConfig",
    "PinningConfig",
    "PolicyClaim",
    "PolicyConfig",
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


def _refuse(message: str, *at: str | int) -> PydanticCustomError:
    """A model-level refusal that points at the exact key below the model (`at`), so the
    message names `identity_providers[0].issuer`, not only `identity_providers[0]`."""
    return PydanticCustomError("bastion", "{detail}", {"detail": message, "at": at})


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
        if self.env is not None and self.file is not None:
            raise ValueError("found both 'env' and 'file': give exactly one of them")
        if self.env is None and self.file is None:
            raise ValueError("found neither 'env' nor 'file': give exactly one, e.g. {env: VARIABLE}")
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
            raise _refuse(
                "required key is missing: with discovery: false, the keys come from jwks_uri", "jwks_uri"
            )
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
            raise _refuse(
                "required key is missing: type 'static' sends this secret as the header value; "
                "give it as {env: VARIABLE} or {file: PATH}",
                "secret",
            )
        if self.type != "static" and self.secret is not None:
            raise _refuse(f"only used with type 'static' (this one is type {self.type!r})", "secret")
        return self


class PinningConfig(_Model):
    """Pinned tool definitions (docs/pinning.md): what to do when an upstream's tools change."""

    # `record` by default: it refuses nothing, so it cannot break a working deployment, and it
    # holds the annotation ratchet (a tool that starts claiming to be read-only keeps needing
    # the scopes it needed) and logs every rug pull; `enforce` needs a reviewed lockfile.
    mode: Literal["off", "record", "enforce"] = Field(
        default="record",
        description="`off`: nothing hashed; `record`: changes logged and audited, first seen (or the lockfile) "
        "approved; `enforce`: changed or unapproved tools withheld until approved in the lockfile.",
    )
    lockfile: str | None = Field(
        default=None,
        description="The approved definitions (`mcp-bastion pin` writes it); required by `enforce`. "
        "A relative path starts at the config file's folder, as policy files do.",
    )

    @model_validator(mode="after")
    def _lockfile_for_enforce(self) -> PinningConfig:
        if self.mode == "enforce" and self.lockfile is None:
            raise _refuse(
                "required key is missing: enforce withholds what the lockfile does not approve; "
                "`mcp-bastion pin --config FILE` writes one from the live catalogs",
                "lockfile",
            )
        if self.mode == "off" and self.lockfile is not None:
            raise _refuse("only used with mode 'record' or 'enforce' (this one is 'off')", "lockfile")
        return self


class ToolPolicy(_Model):
    scopes: tuple[Scope, ...] = Field(description="Scopes a caller needs for this tool (all of them).")


# Cedar identifiers (attribute names policies write as `principal.groups`), less the keywords
# Cedar reserves and the attributes every principal already has (cedar/schema.py).
_CEDAR_IDENTIFIER = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"
_CEDAR_RESERVED = frozenset(
    {"true", "false", "if", "then", "else", "in", "is", "like", "has", "__cedar", "principal", "action"}
    | {"resource", "context", "permit", "forbid", "when", "unless"}
)
PRINCIPAL_ATTRIBUTES = ("subject", "issuer", "client", "scopes")
PolicyFile = Annotated[str, Field(min_length=1, max_length=4096, description="A Cedar policy file's path.")]


class PolicyClaim(_Model):
    """A claim of the verified token, exposed to Cedar policies as an attribute of the principal."""

    claim: str | tuple[str, ...] = Field(
        description="The claim's name (exactly, dots included: `https://example.com/groups`), or a list "
        "of names for a claim nested in objects (`[realm_access, roles]`)."
    )
    type: Literal["set", "string"] = Field(
        default="set",
        description="`set`: a list of strings (a single string counts as a list of one); `string`: text. "
        "An absent claim is an empty set or empty text; a claim of another shape refuses the call.",
    )

    @field_validator("claim")
    @classmethod
    def _claim_names(cls, value: str | tuple[str, ...]) -> str | tuple[str, ...]:
        names = (value,) if isinstance(value, str) else value
        if not names or not all(names):
            raise ValueError("a claim is named by non-empty text, or a non-empty list of names")
        return value


def _default_claims() -> dict[str, PolicyClaim]:
    # The two claims most IdPs use for these (Entra ID, Okta, Keycloak with its group mapper).
    return {"groups": PolicyClaim(claim="groups"), "roles": PolicyClaim(claim="roles")}


class PolicyConfig(_Model):
    """Cedar policies checked after scopes (docs/policy.md). Without any policy file, no Cedar runs."""

    files: tuple[PolicyFile, ...] = Field(
        default=(),
        description="Cedar policy files applied to every server, relative to this config file's folder.",
    )
    claims: dict[str, PolicyClaim] = Field(
        default_factory=_default_claims,
        description="Principal attributes policies may read, each from a token claim; default: "
        "`groups` and `roles` (sets). Given, it replaces the default.",
    )
    timezone: str = Field(
        default="UTC",
        description="The IANA time zone of `context.time` (hour, minute, weekday), e.g. Europe/Paris.",
    )
    # Arguments reach Cedar in full (a cut-off argument could slip past a rule on it), so a call
    # whose arguments are larger than this is refused while policies are on.
    max_argument_bytes: int = Field(
        default=65_536,
        ge=1024,
        le=64 * 1_048_576,
        description="A call whose arguments (as JSON) exceed this is refused when policies are on.",
    )

    @field_validator("claims")
    @classmethod
    def _attribute_names(cls, value: dict[str, PolicyClaim]) -> dict[str, PolicyClaim]:
        for name in value:
            if not re.match(_CEDAR_IDENTIFIER, name) or name in _CEDAR_RESERVED:
                raise _refuse(
                    f"{name!r} cannot be a Cedar attribute name: expected letters, digits and '_', "
                    "not starting with a digit, and not a Cedar keyword",
                    name,
                )
            if name in PRINCIPAL_ATTRIBUTES:
                raise _refuse(
                    f"{name!r} is already an attribute of every principal "
                    f"({', '.join(PRINCIPAL_ATTRIBUTES)}): choose another name",
                    name,
                )
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not a known IANA time zone (e.g. UTC, Europe/Paris)") from None
        return value


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
    tools: dict[str, ToolPolicy] = Field(
        default_factory=dict,
        description="Per-tool scope overrides; each scope must be defined (scopes registry, "
        "scopes.implies, or this server's `scopes`).",
    )
    scopes: tuple[Scope, ...] = Field(default=(), description="Extra scopes this server defines.")
    # Annotations come from the upstream and are untrusted; they can only pick between the
    # registry's read and write scopes, never undercut an override above.
    trust_annotations: bool = True
    destructive_scopes: tuple[Scope, ...] | None = Field(
        default=None, description="Scopes for tools annotated destructive; default: the write scope."
    )
    timeout_seconds: float = Field(default=60, gt=0, le=3600)
    policy_files: tuple[PolicyFile, ...] = Field(
        default=(),
        description="Cedar policy files for this server only, after `policy.files`; relative to this "
        "config file's folder.",
    )
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

    pinning: PinningConfig = PinningConfig()

    @model_validator(mode="after")
    def _enforce_needs_auth(self) -> ServerConfig:
        if self.pinning.mode == "enforce" and not self.auth:
            raise _refuse(
                "enforce needs auth: true: with auth off no call is decided, so nothing could be withheld",
                "pinning",
                "mode",
            )
        return self

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
            raise _refuse("required key is missing: sink 'file' writes to this path", "path")
        return self


class SessionConfig(_Model):
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
    policy: PolicyConfig = PolicyConfig()
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
        _unique(self.servers, "servers", "name", "server names must be unique (each is a URL path segment)")
        _unique(
            self.identity_providers, "identity_providers", "name", "identity provider names must be unique"
        )
        _unique(
            self.identity_providers,
            "identity_providers",
            "issuer",
            "a token's `iss` must choose one identity provider",
        )
        idps = [p.name for p in self.identity_providers]
        for i, server in enumerate(self.servers):
            unknown = [name for name in server.identity_providers if name not in idps]
            if unknown:
                raise _refuse(
                    f"names identity providers that are not defined: {', '.join(map(repr, unknown))} "
                    f"(defined in identity_providers: {', '.join(map(repr, idps)) or 'none'})",
                    "servers",
                    i,
                    "identity_providers",
                )
            if server.auth and not idps:
                raise _refuse(
                    f"none are configured, but servers[{i}] ({server.name!r}) requires authentication: "
                    "add an identity provider, or set auth: false on that server (benchmarks only)",
                    "identity_providers",
                )
            _defined_scopes(server, i, self.scopes)
        return self


def _unique(items: tuple[_Model, ...], key: str, field: str, why: str) -> None:
    first: dict[object, int] = {}
    for i, item in enumerate(items):
        value = getattr(item, field)
        if value in first:
            raise _refuse(f"{value!r} is also the {field} of {key}[{first[value]}]: {why}", key, i, field)
        first[value] = i


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
                raise _refuse(
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
        raise _refuse(
            f"{url!r} is plain http: expected https, or allow_insecure_http: true on this provider "
            "(loopback development only)",
            field,
        )
    if parts.scheme == "http" and allow_insecure_http:
        raise _refuse(
            f"expected an https URL, found {url!r} (allow_insecure_http admits plain http on loopback only)",
            field,
        )
    raise _refuse(f"expected an https URL, found {url!r}", field)


SCOPE_PATTERN = re.compile(_SCOPE)
