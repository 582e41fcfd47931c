"""RFC 8414 authorization server metadata and the OIDC discovery document (pure)."""

from __future__ import annotations

from typing import Any

from ._endpoints import IdpLocation

GRANT_TYPES = ("authorization_code", "refresh_token", "client_credentials")
AUTH_METHODS = ("none", "client_secret_basic", "client_secret_post")


def oauth_metadata(
    location: IdpLocation, scopes: tuple[str, ...], extra_grants: tuple[str, ...] = ()
) -> dict[str, Any]:
    """The RFC 8414 document; ``issuer`` is byte-identical to the configured one (§3.3)."""
    return {
        "issuer": location.issuer,
        "authorization_endpoint": location.url("authorize"),
        "token_endpoint": location.url("token"),
        "registration_endpoint": location.url("register"),
        "jwks_uri": location.url("jwks"),
        # RFC 7009: refresh tokens (and their families) can be revoked by their client.
        "revocation_endpoint": location.url("revoke"),
        "revocation_endpoint_auth_methods_supported": list(AUTH_METHODS),
        "scopes_supported": list(scopes),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": [*GRANT_TYPES, *extra_grants],
        # OAuth 2.1 §7.5.2 / MCP authorization: S256 only, "plain" is refused.
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": list(AUTH_METHODS),
        # RFC 9207: clients may rely on `iss` in every authorization response (mix-up defence).
        "authorization_response_iss_parameter_supported": True,
        "client_id_metadata_document_supported": True,
    }


def oidc_metadata(
    location: IdpLocation, scopes: tuple[str, ...], signing_alg: str, extra_grants: tuple[str, ...] = ()
) -> dict[str, Any]:
    """The same document plus the members OIDC Discovery §3 marks REQUIRED.

    No ID tokens are issued; the two OIDC members are there because clients that only read
    ``openid-configuration`` validate them.
    """
    return {
        **oauth_metadata(location, scopes, extra_grants),
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": [signing_alg],
    }
