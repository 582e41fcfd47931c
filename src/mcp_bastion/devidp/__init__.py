"""The embedded development authorization server: an OAuth 2.1 IdP for ``demo`` and tests.

Never a production issuer. It implements the authorization code grant with PKCE (S256
only), refresh-token rotation with reuse detection, the client credentials grant, RFC 8414
metadata (and OIDC discovery), RFC 8707 audience-bound RFC 9068 JWT access tokens, RFC 9207
``iss`` in authorization responses, Dynamic Client Registration (RFC 7591) and Client ID
Metadata Documents.

A request flows: :mod:`._params` (caps, duplicates) → :mod:`._clients` (who is asking) →
:mod:`._authorization_request` / :mod:`._token` (pure checks) → :mod:`._stores` (state
with expiry on the injected clock) → :mod:`._rfc9068` (signed token). State is in memory
behind small async store protocols so another backend can replace it.

Behaviour choices (each is tested):

* ``resource`` (RFC 8707) is required at /authorize and /token, must name exactly one
  configured resource, and becomes the token's ``aud`` byte for byte.
* ``redirect_uri`` is required at /authorize (and must then be repeated at /token).
* Scopes granted = requested ∩ the resource's ∩ the user's; unknown scopes are dropped,
  and a request whose scopes are all unknown (or all withheld) is ``invalid_scope``. No
  ``scope`` means all the resource's scopes the user may have. ``offline_access`` is
  accepted and ignored: a refresh token is issued exactly when the client registered the
  ``refresh_token`` grant type.
* Authorization-code clients are public (``token_endpoint_auth_method`` is registered as
  ``none`` whatever was asked, RFC 7591 §3.2.1); client_credentials clients have secrets.
* A code is consumed by its first presentation, valid or not; a replay revokes the
  refresh-token family of the first redemption. Issued access tokens are stateless JWTs
  and simply expire.
* Refresh tokens rotate on every use, each living ``refresh_token_ttl`` from its issue
  (a sliding window); a replayed one revokes its family.
* Consent is never remembered: without ``auto_approve`` every authorization shows the page.
* RFC 7009 revocation at ``/revoke``: a refresh token revokes its family.
* The login step is a seam (:class:`Login`): the authorization facade
  (:mod:`mcp_bastion.facade`) runs this same core with a login at a real IdP.
* CORS (``*``, no credentials) only on metadata, JWKS, token and registration.
* Every sign-in, consent, token (issued or refused), refresh-token reuse, revocation and
  registration is told to an :class:`IdpEvents` listener (none by default; the facade's
  writes audit events), never with a token, code or secret in it.
* RFC 8693 token exchange (:mod:`._rfc8693`) for a :class:`StaticClient` with
  ``exchange_from``: a user's token of this IdP for a token of another configured resource,
  ``act`` naming the client; served and advertised only when such a client exists.

Usage::

    idp = build_devidp(DevIdpSettings(
        issuer="http://127.0.0.1:8000/idp",
        resources={"http://127.0.0.1:8000/mcp": ("notes:read", "notes:write")},
        auto_approve="alice",
    ))
    # mount idp.app for every path in idp.path_prefixes
"""

from ._app import DevIdp, build_devidp
from ._authorization_request import AuthorizationRequest
from ._events import IdpEvent, IdpEvents
from ._login import Login, LoginResult
from ._rfc7523 import JWT_BEARER, Assertion, AssertionVerifier
from ._rfc8693 import TOKEN_EXCHANGE
from ._settings import DevIdpSettings, StaticClient

__all__ = [
    "JWT_BEARER",
    "TOKEN_EXCHANGE",
    "Assertion",
    "AssertionVerifier",
    "AuthorizationRequest",
    "DevIdp",
    "DevIdpSettings",
    "IdpEvent",
    "IdpEvents",
    "Login",
    "LoginResult",
    "StaticClient",
    "build_devidp",
]
