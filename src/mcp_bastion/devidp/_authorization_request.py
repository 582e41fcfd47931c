"""Validating an authorization request (RFC 6749 §4.1.1 + PKCE + RFC 8707). Pure.

Validation runs in two phases, because what may be done with an error depends on it:
until the client and its redirect URI are known good, errors are shown on a page (a
redirect would be an open redirector, RFC 9700 §4.11); after that, they are sent back to
the client's redirect URI with ``state`` and ``iss``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..errors import OAuthError
from ._clients import REFRESH_TOKEN, RegisteredClient
from ._params import Params
from ._redirect_uris import matches
from ._rfc7636 import check_challenge
from ._rfc8707 import select_resource
from ._scopes import requested_for_resource


@dataclass(frozen=True)
class AuthorizationRequest:
    """A fully validated authorization request, waiting for the user's decision."""

    client_id: str
    client_name: str | None
    redirect_uri: str
    state: str | None
    resource: str
    #: Requested scopes the resource offers; ``None`` when the client asked for none.
    requested_scopes: tuple[str, ...] | None
    code_challenge: str
    refresh_allowed: bool


def checked_redirect_uri(client: RegisteredClient, params: Params) -> str:
    """Phase one: the redirect URI, required and registered (RFC 8252 §7.3 for loopback)."""
    redirect_uri = params.get("redirect_uri")
    if redirect_uri is None:
        raise OAuthError("invalid_request", "redirect_uri is required")
    if not matches(client.redirect_uris, redirect_uri):
        raise OAuthError("invalid_request", "redirect_uri is not registered for this client")
    return redirect_uri


def validate_request(
    params: Params, client: RegisteredClient, redirect_uri: str, resources: Mapping[str, tuple[str, ...]]
) -> AuthorizationRequest:
    """Phase two: everything else; errors are redirected to the client."""
    _check_response_type(params)
    challenge = check_challenge(params.get("code_challenge"), params.get("code_challenge_method"))
    resource = select_resource(params.resources, resources)
    return AuthorizationRequest(
        client_id=client.client_id,
        client_name=client.client_name,
        redirect_uri=redirect_uri,
        state=params.get("state"),
        resource=resource,
        requested_scopes=requested_for_resource(params.get("scope"), resources[resource]),
        code_challenge=challenge,
        refresh_allowed=REFRESH_TOKEN in client.grant_types,
    )


def _check_response_type(params: Params) -> None:
    response_type = params.get("response_type")
    if response_type is None:
        raise OAuthError("invalid_request", "response_type is required")
    # OAuth 2.1 drops the implicit grant (RFC 9700 §2.1.2): only "code".
    if response_type != "code":
        raise OAuthError("unsupported_response_type", "only response_type=code is supported")
    if params.get("request") is not None:
        raise OAuthError("request_not_supported", "request objects are not supported")
    if params.get("request_uri") is not None:
        raise OAuthError("request_uri_not_supported", "request_uri is not supported")
    if params.get("response_mode") not in (None, "query"):
        raise OAuthError("invalid_request", "only response_mode=query is supported")


@dataclass(frozen=True)
class PendingAuthorization:
    """A request shown on the consent page, with the digest of its CSRF token.

    ``subject`` is set when a :class:`~._login.Login` step already signed the user in
    (the facade); otherwise the consent form asks for a username.
    """

    request: AuthorizationRequest
    csrf_digest: str
    subject: str | None = None
    #: An :class:`~._login.UpstreamToken` sealed with the CSRF token (:mod:`._seal`).
    sealed_upstream: bytes | None = None
