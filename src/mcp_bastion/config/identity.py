"""Configuration of enterprise identity (docs/identity.md): the gateway as a client of an IdP,
opaque tokens by introspection, IdP presets, and upstream credentials by exchange.

Referenced from `config/model.py` (`IdentityProviderConfig.client`, `.introspection`,
`.preset`, `.audiences`, `.machine_clients`; `UpstreamAuthConfig.exchange`).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from .base import Model, SecretRef, refuse

__all__ = [
    "ClientAuthMethod",
    "ExchangeConfig",
    "IdpClientConfig",
    "IntrospectionConfig",
    "Preset",
    "preset_defaults",
]

Preset = Literal["entra", "okta", "cognito", "keycloak", "auth0"]
# RFC 6749 §2.3.1 (secret in the form or Basic) and RFC 7523 §2.2 (a signed client assertion).
ClientAuthMethod = Literal["client_secret_post", "client_secret_basic", "private_key_jwt"]
_ASSERTION_ALGORITHMS = Literal["RS256", "PS256", "ES256", "EdDSA"]
_Scope = Annotated[str, Field(pattern=r"^[\x21\x23-\x5b\x5d-\x7e]{1,256}$")]


class IdpClientConfig(Model):
    """The gateway as a confidential client of this IdP: for token exchange and introspection."""

    client_id: str = Field(min_length=1, max_length=256)
    auth_method: ClientAuthMethod = Field(
        default="client_secret_basic",
        description="How the gateway authenticates at the token and introspection endpoints.",
    )
    secret: SecretRef | None = Field(
        default=None, description="For client_secret_post / client_secret_basic."
    )
    private_key: SecretRef | None = Field(
        default=None, description="For private_key_jwt: a private JWK (JSON) signing the client assertion."
    )
    assertion_algorithm: _ASSERTION_ALGORITHMS = "RS256"
    token_endpoint: str | None = Field(
        default=None, description="Default: the IdP's metadata `token_endpoint`."
    )
    introspection_endpoint: str | None = Field(
        default=None, description="Default: the IdP's metadata `introspection_endpoint`."
    )

    @model_validator(mode="after")
    def _credential_for_method(self) -> IdpClientConfig:
        if self.auth_method == "private_key_jwt":
            if self.private_key is None:
                raise refuse("required key is missing: private_key_jwt signs with this key", "private_key")
            if self.secret is not None:
                raise refuse("only used with client_secret_post / client_secret_basic", "secret")
        else:
            if self.secret is None:
                raise refuse(f"required key is missing: {self.auth_method} sends this secret", "secret")
            if self.private_key is not None:
                raise refuse("only used with private_key_jwt", "private_key")
        return self


class IntrospectionConfig(Model):
    """Opaque access tokens checked by RFC 7662 introspection (needs `client`)."""

    # A verdict is kept at most this long (and never past the token's `exp`): a revoked token
    # keeps working for at most this long.
    cache_seconds: float = Field(default=30, ge=0, le=300)
    # An unknown token is remembered as inactive this long: the same junk token sent in a loop
    # costs one introspection, not one per request.
    negative_cache_seconds: float = Field(default=5, ge=0, le=60)
    # DoS bound, like JWKS fetches: at most this many introspections in flight; beyond it 503.
    max_concurrent: int = Field(default=32, ge=1, le=1024)


class ExchangeConfig(Model):
    """For upstream_auth types exchange, obo and client_credentials: which IdP and what to ask."""

    identity_provider: str = Field(description="The IdP (by name) whose token endpoint issues the token.")
    audience: str | None = Field(default=None, description="RFC 8693 `audience`; default: none sent.")
    resource: str | None = Field(
        default=None, description="RFC 8707 `resource`; default: the upstream URL (not sent for obo)."
    )
    scopes: dict[str, tuple[_Scope, ...]] = Field(
        default_factory=dict,
        description="Gateway scope -> the IdP scopes it stands for upstream (e.g. tools.read -> "
        "api://files/Files.Read); a scope not listed is asked for as it is.",
    )
    default_scopes: tuple[_Scope, ...] = Field(
        default=(),
        description="Asked for when a call needs no scope (tools/list, initialize); obo default: "
        "`<audience>/.default`.",
    )
    # Refresh a cached token this long before it expires, so none is sent as it dies.
    refresh_margin_seconds: float = Field(default=30, ge=0, le=600)


# What each preset changes in the generic settings when the config does not say: where the
# IdP puts scopes and the client id, and that it sends no RFC 9068 `typ` (each preset checks
# the IdP's own access-token marker instead, auth/presets.py).
_PRESET_DEFAULTS: dict[str, dict[str, object]] = {
    "entra": {"claims": {"scopes": ["scp", "roles"], "client_id": ["azp", "appid"]}},
    "okta": {"claims": {"scopes": ["scp"], "client_id": ["cid"]}},
    "cognito": {"claims": {"scopes": ["scope"], "client_id": ["client_id"]}},
    "keycloak": {"claims": {"scopes": ["scope"], "client_id": ["azp"]}},
    "auth0": {"claims": {"scopes": ["scope", "permissions"], "client_id": ["azp", "client_id"]}},
}


def preset_defaults(data: dict[str, object]) -> dict[str, object]:
    """An IdP's raw config with its preset's defaults filled in where the config is silent."""
    preset = data.get("preset")
    if not isinstance(preset, str) or preset not in _PRESET_DEFAULTS:
        return data
    filled = dict(data)
    filled.setdefault("require_typ", None)
    for key, value in _PRESET_DEFAULTS[preset].items():
        filled.setdefault(key, value)
    return filled
