"""The authorization facade's settings, one per identity provider that cannot register MCP clients.

With a facade, the gateway is the authorization server MCP clients see (metadata, CIMD, DCR,
consent, tokens) and signs users in at the IdP as one pre-registered confidential client.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from ..quota.config import QuotaSecret, RedisStoreConfig
from .base import Model, Scope, SecretRef

__all__ = ["FacadeCimdConfig", "FacadeConfig", "FacadeRedisConfig", "FacadeStateConfig"]


class FacadeRedisConfig(Model):
    """The Redis or Valkey a facade's state lives in (as `quotas.redis`, with its own prefix)."""

    url: str = Field(
        description="redis:// or rediss:// URL of one Redis or Valkey primary, without credentials "
        "(give the password as `password`)."
    )
    password: QuotaSecret | None = None
    username: str | None = Field(default=None, description="ACL user (Redis 6+), with `password`.")
    max_connections: int = Field(default=64, ge=1, le=10_000)
    prefix: str = Field(
        default="mcp-bastion:facade:",
        max_length=128,
        description="Prefix of every key; the identity provider's name and ':' follow it.",
    )
    # A token request makes a few round trips: a slow store answers 503, it does not stall.
    timeout_seconds: float = Field(default=1.0, gt=0, le=10)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return RedisStoreConfig._url(value)  # the quota store's check: a host, no credentials


class FacadeCimdConfig(Model):
    """How the facade fetches Client ID Metadata Documents."""

    ca_file: str | None = Field(
        default=None,
        description="PEM bundle of the only CAs trusted for metadata documents (a private PKI, tests); "
        "default: the system's. Verification is never turned off.",
    )
    allow_loopback: bool = Field(
        default=False,
        description="Accept https metadata documents at loopback addresses (tests only; other private "
        "addresses stay refused).",
    )


class FacadeStateConfig(Model):
    store: Literal["memory", "redis"] = Field(
        default="memory",
        description="memory: per process (run one worker); redis: shared by every worker and replica.",
    )
    redis: FacadeRedisConfig | None = None
    registration_ttl_seconds: int = Field(
        default=90 * 86_400,
        ge=3600,
        le=365 * 86_400,
        description="With redis: how long a dynamically registered client is kept.",
    )

    @model_validator(mode="after")
    def _consistent(self) -> FacadeStateConfig:
        if self.store == "redis" and self.redis is None:
            raise ValueError("store 'redis' needs a `redis:` section with at least `url`")
        return self


class FacadeConfig(Model):
    client_id: str = Field(
        min_length=1, max_length=256, description="The gateway's client id at the IdP (registered by hand)."
    )
    client_secret: SecretRef = Field(description="Its client secret (client_secret_basic).")
    scopes: tuple[Scope, ...] = Field(
        default=("openid",),
        description="Scopes the gateway asks the IdP for at sign-in; must include openid.",
    )
    # Short-lived: the facade's tokens are stateless JWTs that cannot be recalled (RFC 9700 §4.14).
    access_token_ttl_seconds: int = Field(default=300, ge=30, le=3600)
    refresh_token_ttl_seconds: int = Field(default=86_400, ge=300, le=30 * 86_400)
    registration_limit_per_minute: int = Field(
        default=60, ge=1, le=10_000, description="Dynamic registrations accepted per client address."
    )
    accept_id_jag: bool = Field(
        default=False,
        description="Accept Identity Assertion JWT Authorization Grants from this IdP at the token "
        "endpoint (jwt-bearer grant, Enterprise-Managed Authorization).",
    )
    allow_insecure_http_cimd: bool = Field(
        default=False,
        description="Accept http:// Client ID Metadata Documents on loopback addresses (tests only).",
    )

    cimd: FacadeCimdConfig = Field(
        default=FacadeCimdConfig(), description="Fetching Client ID Metadata Documents: see docs/facade.md."
    )
    issue: Literal["own", "idp_when_audience_fits"] = Field(
        default="own",
        description="own: the facade's own tokens; idp_when_audience_fits: the IdP's access token from "
        "sign-in when its aud is exactly the requested server (else the facade's own).",
    )
    state: FacadeStateConfig = Field(
        default=FacadeStateConfig(),
        description="Where registrations, sign-ins, consents, codes, refresh tokens and ID-JAG "
        "jti's are kept: see docs/facade.md.",
    )

    @field_validator("scopes")
    @classmethod
    def _openid(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        # The facade learns who signed in from the ID token, which only an OIDC request returns.
        if "openid" not in value:
            raise ValueError("must include 'openid': the facade reads the user from the ID token")
        return value
