"""The authorization facade's settings, one per identity provider that cannot register MCP clients.

With a facade, the gateway is the authorization server MCP clients see (metadata, CIMD, DCR,
consent, tokens) and signs users in at the IdP as one pre-registered confidential client.
"""

from __future__ import annotations

from pydantic import Field, field_validator

from .base import Model, Scope, SecretRef

__all__ = ["FacadeConfig"]


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

    @field_validator("scopes")
    @classmethod
    def _openid(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        # The facade learns who signed in from the ID token, which only an OIDC request returns.
        if "openid" not in value:
            raise ValueError("must include 'openid': the facade reads the user from the ID token")
        return value
