"""RFC 8693 token exchange: a confidential client trades a user's access token for another.

The gateway in front of an upstream is such a client. It holds the user's token (whose
audience is the gateway) and asks for a token whose audience is the upstream, still naming
the user (``sub``) and now naming the gateway as the party acting for them (``act``,
RFC 8693 §4.1). Only what this IdP issued itself can be exchanged, and only by a client
configured for it (:attr:`StaticClient.exchange_from` names the audiences whose tokens it may
present; :attr:`StaticClient.resources` the upstreams it may obtain tokens for).

Rules (each is tested):

* the subject token is an access token (``subject_token_type``) of this IdP: its signature
  with this IdP's key, ``typ`` ``at+jwt``, ``iss`` this issuer, not expired, not yet valid
  refused; its ``aud`` one of the client's ``exchange_from``;
* the target (``resource`` and/or ``audience``, equal when both) is one configured resource
  and one of the client's ``resources``;
* scopes: the requested ones (default: the subject token's), each held by the subject token
  — asking for more is ``invalid_scope``, never silently narrowed — then cut to what the
  target offers;
* the issued token lives at most :data:`EXCHANGE_TTL_CAP` seconds and never past the
  subject token; no refresh token (the client exchanges again).

Errors follow RFC 8693 §2.2.2: a bad or unacceptable subject token is ``invalid_request``,
an unacceptable target ``invalid_target``.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any, Final

from joserfc import jwt
from joserfc.errors import JoseError, SecurityWarning

from ..errors import OAuthError
from ._clients import RegisteredClient
from ._context import IdpContext
from ._keys import SigningKey
from ._params import Params
from ._rfc8707 import select_resource
from ._rfc9068 import ACCESS_TOKEN_TYPE
from ._scopes import OFFLINE_ACCESS, parse_scope
from ._settings import StaticClient

TOKEN_EXCHANGE: Final = "urn:ietf:params:oauth:grant-type:token-exchange"
#: RFC 8693 §3: the only token type this IdP accepts and issues.
ACCESS_TOKEN_URI: Final = "urn:ietf:params:oauth:token-type:access_token"
#: An exchanged token is for one call chain: short-lived whatever ``access_token_ttl`` says.
EXCHANGE_TTL_CAP: Final = 300

TokenBody = dict[str, Any]


class TokenExchange:
    """The ``token-exchange`` grant of the token endpoint, for the clients allowed to use it."""

    def __init__(self, ctx: IdpContext, key: SigningKey) -> None:
        self._ctx = ctx
        self._key = key
        self._exchangers: Mapping[str, StaticClient] = {
            client.client_id: client for client in ctx.settings.clients if client.exchange_from
        }

    @property
    def enabled(self) -> bool:
        """Whether any client may exchange (the grant is advertised and served only then)."""
        return bool(self._exchangers)

    async def exchange(self, params: Params, client: RegisteredClient) -> TokenBody:
        """Handle one exchange request from an authenticated ``client``."""
        allowed = self._allowed(client)
        for name in ("actor_token", "actor_token_type"):
            if params.get(name) is not None:
                raise OAuthError("invalid_request", "actor tokens are not supported; the client is the actor")
        if params.get("subject_token_type") != ACCESS_TOKEN_URI:
            raise OAuthError("invalid_request", f"subject_token_type must be {ACCESS_TOKEN_URI}")
        if params.get("requested_token_type") not in (None, ACCESS_TOKEN_URI):
            raise OAuthError("invalid_request", "only access tokens are issued")
        subject = self._subject_claims(params.get("subject_token"), allowed)
        target = self._target(params, allowed)
        scopes = _scopes(params.get("scope"), subject, self._ctx.settings.resources[target])
        ttl = min(
            self._ctx.settings.access_token_ttl, EXCHANGE_TTL_CAP, int(subject["exp"] - self._ctx.clock())
        )
        if ttl <= 0:
            raise OAuthError("invalid_request", "the subject token has expired")
        # RFC 8693 §4.1: `act` names the current actor; a prior one is kept nested inside.
        act: dict[str, Any] = {"sub": client.client_id}
        if isinstance(subject.get("act"), dict):
            act["act"] = subject["act"]
        token = self._ctx.access_tokens.issue(
            subject=subject["sub"],
            client_id=client.client_id,
            resource=target,
            scopes=scopes,
            ttl=ttl,
            extra_claims={"act": act},
        )
        return {
            "access_token": token,
            "issued_token_type": ACCESS_TOKEN_URI,
            "token_type": "Bearer",
            "expires_in": ttl,
            "scope": " ".join(scopes),
        }

    def _allowed(self, client: RegisteredClient) -> StaticClient:
        if not client.confidential:
            # An exchange hands out a user's authority: only an authenticated client may ask.
            raise OAuthError("invalid_client", "token exchange needs client authentication", status=401)
        allowed = self._exchangers.get(client.client_id)
        if allowed is None:
            raise OAuthError("unauthorized_client", "this client may not use token exchange")
        return allowed

    def _subject_claims(self, token: str | None, client: StaticClient) -> dict[str, Any]:
        """The claims of a subject token this IdP issued, still valid, for this client."""
        if token is None:
            raise OAuthError("invalid_request", "subject_token is required")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", SecurityWarning)  # "EdDSA" is deprecated by RFC 9864
                decoded = jwt.decode(token, self._key.key, algorithms=[self._key.alg])
        except (JoseError, ValueError, TypeError, UnicodeError):
            # Another issuer's key, a forged or altered token, or no JWS at all.
            raise OAuthError("invalid_request", "subject_token is not a valid token of this issuer") from None
        claims = decoded.claims
        now = self._ctx.clock()
        problem = _claims_problem(decoded.header, claims, self._ctx.settings.issuer, now)
        if problem is None and claims["aud"] not in client.exchange_from:
            problem = "subject_token was not issued to this client's audience"
        if problem is not None:
            raise OAuthError("invalid_request", problem)
        return claims

    def _target(self, params: Params, client: StaticClient) -> str:
        """The one resource the new token is for (RFC 8693 §2.1 ``resource`` / ``audience``)."""
        audience = params.get("audience")
        known = self._ctx.settings.resources
        if params.resources:
            target = select_resource(params.resources, known)
            if audience is not None and audience != target:
                raise OAuthError("invalid_target", "audience and resource name different services")
        elif audience is not None:
            if audience not in known:
                raise OAuthError("invalid_target", "audience is not served by this authorization server")
            target = audience
        else:
            raise OAuthError("invalid_request", "resource or audience is required")
        if target not in client.resources:
            raise OAuthError("invalid_target", "this client may not obtain tokens for that resource")
        return target


def _claims_problem(
    header: Mapping[str, Any], claims: Mapping[str, Any], issuer: str, now: float
) -> str | None:
    """What makes verified claims unacceptable as a subject token, or ``None``."""
    if header.get("typ") != ACCESS_TOKEN_TYPE:
        return "subject_token is not an access token"
    if claims.get("iss") != issuer:
        return "subject_token was issued by another issuer"
    exp, nbf = claims.get("exp"), claims.get("nbf", 0)
    if not isinstance(exp, (int, float)) or not _is_number(exp) or not _is_number(nbf):
        return "subject_token has no valid exp"
    if exp <= now:
        return "subject_token has expired"
    if nbf > now:
        return "subject_token is not valid yet"
    if not isinstance(claims.get("sub"), str) or not isinstance(claims.get("aud"), str):
        return "subject_token names no subject or audience"
    if not isinstance(claims.get("scope", ""), str):
        return "subject_token has a malformed scope"
    return None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _scopes(scope: str | None, subject: Mapping[str, Any], offered: tuple[str, ...]) -> tuple[str, ...]:
    """Requested (default: the subject token's) ⊆ the subject token's, then ∩ the target's."""
    held = parse_scope(subject.get("scope") or None)
    asked = tuple(token for token in parse_scope(scope) if token != OFFLINE_ACCESS)
    beyond = [token for token in asked if token not in held]
    if beyond:
        # An exchange narrows authority, never widens it.
        raise OAuthError("invalid_scope", "the requested scopes exceed the subject token's")
    granted = tuple(token for token in (asked or held) if token in offered)
    if not granted:
        raise OAuthError("invalid_scope", "none of the scopes may be granted for that resource")
    return granted
