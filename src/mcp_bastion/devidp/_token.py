"""The token endpoint (RFC 6749 §3.2): authorization code, refresh token, client credentials.

Codes are single-use: the first presentation consumes a code whatever its outcome, and a
replay revokes the refresh-token family the first redemption started (RFC 6749 §4.1.2).
Access tokens already issued are JWTs a stateless resource server cannot be told to
reject; they simply expire (``access_token_ttl``). Refresh tokens rotate on every use; a
rotated-away token presented again revokes its whole family (RFC 9700 §4.14.2).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ..errors import OAuthError
from ._client_auth import presented_client
from ._clients import AUTHORIZATION_CODE, CLIENT_CREDENTIALS, RegisteredClient
from ._context import IdpContext
from ._events import IdpEvent, error_reason, own_token_claims, token_hash
from ._params import Params, read_form
from ._responses import json_response, oauth_error_json
from ._rfc7523 import JWT_BEARER, AssertionVerifier
from ._rfc7636 import verifier_matches
from ._rfc8693 import TOKEN_EXCHANGE, TokenExchange
from ._rfc8707 import select_resource
from ._scopes import grant, narrow, requested_for_resource
from ._seal import unseal_upstream
from ._secrets import digest, new_secret
from ._stores import CodeGrant, RefreshGrant

TokenBody = dict[str, Any]
#: An IdP token with less life left than this is not passed through (ours is issued instead).
MIN_PASSTHROUGH_LIFE_S = 10
Grant = Callable[[Params, RegisteredClient], Awaitable[TokenBody]]


def check_code_binding(
    code: CodeGrant, client_id: str, redirect_uri: str | None, resource: str, verifier: str | None
) -> None:
    """A code is bound to its client, redirect URI, resource and PKCE challenge (AS-09)."""
    if code.client_id != client_id:
        raise OAuthError("invalid_grant", "the code was issued to another client")
    if redirect_uri != code.redirect_uri:
        raise OAuthError("invalid_grant", "redirect_uri differs from the authorization request")
    if resource != code.resource:
        raise OAuthError("invalid_target", "resource differs from the authorization request")
    if not verifier_matches(verifier, code.code_challenge):
        raise OAuthError("invalid_grant", "code_verifier is missing, malformed or does not match")


def _required(params: Params, name: str) -> str:
    value = params.get(name)
    if value is None:
        raise OAuthError("invalid_request", f"{name} is required")
    return value


class TokenEndpoint:
    """Handler for POST /token."""

    def __init__(
        self,
        ctx: IdpContext,
        assertions: AssertionVerifier | None = None,
        exchange: TokenExchange | None = None,
    ) -> None:
        self._ctx = ctx
        self._assertions = assertions
        self._grants: dict[str, Grant] = {
            "authorization_code": self._authorization_code,
            "refresh_token": self._refresh_token,
            "client_credentials": self._client_credentials,
        }
        if assertions is not None:
            self._grants[JWT_BEARER] = self._jwt_bearer
        if exchange is not None and exchange.enabled:
            self._grants[TOKEN_EXCHANGE] = exchange.exchange

    async def token(self, request: Request) -> Response:
        """POST /token."""
        authorization = request.headers.get("authorization")
        grant_type, client_id = "unknown", None
        try:
            form = await read_form(request)
            handler = self._grants.get(_required(form, "grant_type"))
            if handler is None:
                raise OAuthError("unsupported_grant_type", "grant_type is not supported")
            grant_type = form.get("grant_type") or grant_type
            client = await self._ctx.clients.authenticate(presented_client(authorization, form))
            client_id = client.client_id
            body = await handler(form, client)
        except OAuthError as exc:
            reason = error_reason(exc.error, exc.message)
            self._ctx.events.record(IdpEvent("token", False, grant_type, reason, exc.status, client_id))
            # RFC 6749 §5.2: a failed Basic authentication is answered with its challenge.
            basic = exc.status == 401 and authorization is not None
            return oauth_error_json(exc, {"WWW-Authenticate": 'Basic realm="devidp"'} if basic else None)
        self._ctx.events.record(_issued(grant_type, client_id, body))
        return json_response(body)

    def _resource(self, params: Params) -> str:
        return select_resource(params.resources, self._ctx.settings.resources)

    def _family_expiry(self) -> float:
        return self._ctx.clock() + self._ctx.settings.refresh_token_ttl

    async def _authorization_code(self, params: Params, client: RegisteredClient) -> TokenBody:
        if AUTHORIZATION_CODE not in client.grant_types:
            raise OAuthError("unauthorized_client", "this client may not use the authorization code grant")
        resource = self._resource(params)
        redemption = await self._ctx.codes.redeem(digest(_required(params, "code")), self._family_expiry())
        if redemption is None:
            raise OAuthError("invalid_grant", "the code is unknown or expired")
        code = redemption.grant
        if not redemption.first_use:
            await self._ctx.refresh_tokens.revoke_family(code.family_id, self._family_expiry())
            raise OAuthError("invalid_grant", "the code was already used; tokens issued for it are revoked")
        check_code_binding(
            code, client.client_id, params.get("redirect_uri"), resource, params.get("code_verifier")
        )
        family = code.family_id if code.refresh_allowed else None
        body = await self._issue(code.subject, client.client_id, resource, code.scopes, family)
        if code.sealed_upstream is not None:
            self._pass_through(body, code.sealed_upstream, _required(params, "code"), code.scopes)
        return body

    def _pass_through(self, body: TokenBody, sealed: bytes, code: str, granted: tuple[str, ...]) -> None:
        """The IdP's own token for this resource instead of ours (the facade's
        ``issue: idp_when_audience_fits``), if it is still good and grants no more than the
        user consented to here; otherwise ours stands. The refresh token is ours either way."""
        upstream = unseal_upstream(code, sealed)
        if upstream is None or upstream.expires_at - self._ctx.clock() < MIN_PASSTHROUGH_LIFE_S:
            return
        if upstream.scopes is not None and not set(upstream.scopes) <= set(granted):
            return  # more than the consent page showed: never hand that out
        body["access_token"] = upstream.access_token
        body["expires_in"] = int(upstream.expires_at - self._ctx.clock())
        if upstream.scopes is not None:
            body["scope"] = " ".join(upstream.scopes)

    async def _refresh_token(self, params: Params, client: RegisteredClient) -> TokenBody:
        resource = self._resource(params)
        token_digest = digest(_required(params, "refresh_token"))
        store = self._ctx.refresh_tokens
        entry = await store.find(token_digest)
        if entry is None:
            raise OAuthError("invalid_grant", "the refresh token is unknown, expired or revoked")
        old = entry.grant
        if entry.used or old.client_id != client.client_id:
            # A replayed (or stolen) refresh token: end the whole family (RFC 9700 §4.14.2).
            await store.revoke_family(old.family_id, self._family_expiry())
            self._reuse(old, client.client_id, "replayed or presented by another client")
            raise OAuthError(
                "invalid_grant", "refresh token replayed or not this client's; its family is revoked"
            )
        if resource != old.resource:
            raise OAuthError("invalid_target", "resource differs from the original grant")
        scopes = narrow(old.scopes, params.get("scope"))
        if not await store.mark_used(token_digest):  # a concurrent use won the race
            await store.revoke_family(old.family_id, self._family_expiry())
            self._reuse(old, client.client_id, "used twice concurrently")
            raise OAuthError("invalid_grant", "the refresh token was already used; its family is revoked")
        # RFC 6749 §6: the new refresh token keeps the original scope, even if this
        # access token was narrowed.
        return await self._issue(old.subject, client.client_id, resource, scopes, old.family_id, old.scopes)

    def _reuse(self, old: RefreshGrant, client_id: str, how: str) -> None:
        reason = f"refresh token {how}: its family is revoked"
        event = IdpEvent(
            "refresh_reuse", False, "refresh_token", reason, 400, client_id, old.subject, old.resource
        )
        self._ctx.events.record(event)

    async def _client_credentials(self, params: Params, client: RegisteredClient) -> TokenBody:
        if CLIENT_CREDENTIALS not in client.grant_types:
            raise OAuthError("unauthorized_client", "this client may not use the client credentials grant")
        resource = self._resource(params)
        if client.resources is not None and resource not in client.resources:
            raise OAuthError("invalid_target", "this client may not request tokens for that resource")
        offered = self._ctx.settings.resources[resource]
        scopes = grant(requested_for_resource(params.get("scope"), offered), offered, client.scopes)
        return await self._issue(client.client_id, client.client_id, resource, scopes, None)

    async def _jwt_bearer(self, params: Params, client: RegisteredClient) -> TokenBody:
        assert self._assertions is not None  # registered only with a verifier
        resource = self._resource(params)  # RFC 8707: required, one configured resource
        asserted = await self._assertions.verify(_required(params, "assertion"), client.client_id, resource)
        offered = self._ctx.settings.resources[resource]
        scopes = grant(requested_for_resource(params.get("scope"), offered), offered, asserted.scopes)
        return await self._issue(asserted.subject, client.client_id, resource, scopes, None)

    async def _issue(
        self,
        subject: str,
        client_id: str,
        resource: str,
        scopes: tuple[str, ...],
        family_id: str | None,
        refresh_scopes: tuple[str, ...] | None = None,
    ) -> TokenBody:
        ttl = self._ctx.settings.access_token_ttl
        access_token = self._ctx.access_tokens.issue(
            subject=subject, client_id=client_id, resource=resource, scopes=scopes, ttl=ttl
        )
        body: TokenBody = {"access_token": access_token, "token_type": "Bearer", "expires_in": ttl}
        body["scope"] = " ".join(scopes)
        if family_id is not None:
            refresh_token = new_secret()
            kept = scopes if refresh_scopes is None else refresh_scopes
            record = RefreshGrant(family_id, client_id, subject, resource, kept)
            await self._ctx.refresh_tokens.save(digest(refresh_token), record, self._family_expiry())
            body["refresh_token"] = refresh_token
        return body


def _issued(grant_type: str, client_id: str | None, body: TokenBody) -> IdpEvent:
    """The event of a token response: who and what for, read from the token just signed."""
    token = str(body.get("access_token", ""))
    claims = own_token_claims(token)
    subject, audience = claims.get("sub"), claims.get("aud")
    return IdpEvent(
        "token",
        True,
        grant_type,
        "ok",
        200,
        client_id,
        subject if isinstance(subject, str) else None,
        audience if isinstance(audience, str) else None,
        token_hash(token),
    )
