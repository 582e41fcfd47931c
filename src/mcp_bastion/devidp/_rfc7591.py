"""Client metadata (RFC 7591 §2): what a client may register, validated and normalised.

Shared by Dynamic Client Registration and Client ID Metadata Documents. Two shapes are
accepted: a *public* client using the authorization code flow (optionally with refresh
tokens) and authenticating with ``none``, or a *machine* client using only
client_credentials with a secret. Pure functions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import OAuthError
from ._clients import AUTHORIZATION_CODE, CLIENT_CREDENTIALS, REFRESH_TOKEN
from ._policy import MAX_CLIENT_NAME_CHARS, MAX_REDIRECT_URIS
from ._redirect_uris import check_registrable
from ._scopes import parse_scope

_PUBLIC_GRANTS = frozenset({AUTHORIZATION_CODE, REFRESH_TOKEN})
_SECRET_METHODS = ("client_secret_basic", "client_secret_post")


@dataclass(frozen=True)
class ClientMetadata:
    """Validated client metadata, as the IdP registers it (RFC 7591 §3.2.1 may substitute)."""

    redirect_uris: tuple[str, ...]
    grant_types: tuple[str, ...]
    token_endpoint_auth_method: str
    client_name: str | None = None
    scope: tuple[str, ...] | None = None

    @property
    def machine(self) -> bool:
        """Whether this is a client_credentials client (which gets a secret)."""
        return self.grant_types == (CLIENT_CREDENTIALS,)

    def as_json(self) -> dict[str, Any]:
        """The metadata members of a registration response."""
        body: dict[str, Any] = {
            "redirect_uris": list(self.redirect_uris),
            "grant_types": list(self.grant_types),
            "response_types": [] if self.machine else ["code"],
            "token_endpoint_auth_method": self.token_endpoint_auth_method,
        }
        if self.client_name is not None:
            body["client_name"] = self.client_name
        if self.scope is not None:
            body["scope"] = " ".join(self.scope)
        return body


def parse_client_metadata(doc: Mapping[str, Any]) -> ClientMetadata:
    """Validate ``doc``; errors are ``invalid_client_metadata`` or ``invalid_redirect_uri``.

    Unknown members (``logo_uri``, ``jwks``, ``software_statement``...) are ignored and
    never dereferenced: the IdP fetches nothing a registration names (RFC 7591 §5).
    """
    grant_types = _grant_types(doc.get("grant_types"))
    machine = grant_types == (CLIENT_CREDENTIALS,)
    _check_response_types(doc.get("response_types"), machine)
    return ClientMetadata(
        redirect_uris=_redirect_uris(doc.get("redirect_uris"), machine),
        grant_types=grant_types,
        token_endpoint_auth_method=_auth_method(doc.get("token_endpoint_auth_method"), machine),
        client_name=_client_name(doc.get("client_name")),
        scope=_scope(doc.get("scope")),
    )


def _bad(description: str) -> OAuthError:
    return OAuthError("invalid_client_metadata", description)


def _string_list(value: Any, member: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise _bad(f"{member} must be an array of strings")
    return value


def _grant_types(value: Any) -> tuple[str, ...]:
    # RFC 7591 §2: the default is ["authorization_code"].
    grants = set(_string_list(value, "grant_types")) if value is not None else {AUTHORIZATION_CODE}
    if grants == {CLIENT_CREDENTIALS}:
        return (CLIENT_CREDENTIALS,)
    # password and implicit are gone from OAuth 2.1 (RFC 9700 §2.4, §2.1.2).
    if AUTHORIZATION_CODE in grants and grants <= _PUBLIC_GRANTS:
        return tuple(grant for grant in (AUTHORIZATION_CODE, REFRESH_TOKEN) if grant in grants)
    raise _bad("grant_types must be authorization_code [+ refresh_token], or client_credentials alone")


def _check_response_types(value: Any, machine: bool) -> None:
    if value is None:
        return
    types = _string_list(value, "response_types")
    if set(types) != (set() if machine else {"code"}):
        raise _bad('response_types must be ["code"] (or empty for client_credentials)')


def _auth_method(value: Any, machine: bool) -> str:
    if value is not None and not isinstance(value, str):
        raise _bad("token_endpoint_auth_method must be a string")
    if not machine:
        # Authorization-code clients are public here: PKCE, not a secret, protects the
        # code. RFC 7591 §3.2.1 lets the server substitute "none" for what was asked.
        return "none"
    if value is None:
        return "client_secret_basic"
    if value not in _SECRET_METHODS:
        raise _bad("client_credentials clients authenticate with client_secret_basic or _post")
    return value


def _redirect_uris(value: Any, machine: bool) -> tuple[str, ...]:
    if machine:
        if value:
            raise _bad("client_credentials clients have no redirect_uris")
        return ()
    if not isinstance(value, list) or not value:
        raise OAuthError("invalid_redirect_uri", "redirect_uris must be a non-empty array")
    if len(value) > MAX_REDIRECT_URIS:
        raise OAuthError("invalid_redirect_uri", f"at most {MAX_REDIRECT_URIS} redirect_uris")
    return tuple(dict.fromkeys(check_registrable(uri) for uri in value))


def _client_name(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_CLIENT_NAME_CHARS:
        raise _bad(f"client_name must be a string of 1-{MAX_CLIENT_NAME_CHARS} characters")
    return value


def _scope(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise _bad("scope must be a space-separated string")
    try:
        return parse_scope(value)
    except OAuthError as exc:
        raise _bad(exc.message) from exc
