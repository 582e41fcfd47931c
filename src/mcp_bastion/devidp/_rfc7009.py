"""Token revocation (RFC 7009): a client ends a refresh token and every token rotated from it.

The client authenticates as at the token endpoint. A refresh token revokes its whole
family (the tokens rotated from one authorization), so a client that signs a user out
leaves nothing behind. Access tokens are stateless JWTs that simply expire
(``access_token_ttl``); revoking one is accepted and has no effect, which RFC 7009 §2.2
permits. Unknown tokens, and tokens of another client, get the same 200 as a success
(§2.2: the answer must not tell a client whether another's token exists).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from ..errors import OAuthError
from ._client_auth import presented_client
from ._context import IdpContext
from ._events import IdpEvent, error_reason, token_hash
from ._params import read_form
from ._responses import NO_STORE, oauth_error_json
from ._secrets import digest


class RevocationEndpoint:
    """Handler for POST /revoke."""

    def __init__(self, ctx: IdpContext) -> None:
        self._ctx = ctx

    async def revoke(self, request: Request) -> Response:
        """POST /revoke."""
        authorization = request.headers.get("authorization")
        try:
            form = await read_form(request)
            client = await self._ctx.clients.authenticate(presented_client(authorization, form))
            token = form.get("token")
            if token is None:
                raise OAuthError("invalid_request", "token is required")
        except OAuthError as exc:
            reason = error_reason(exc.error, exc.message)
            self._ctx.events.record(IdpEvent("revocation", False, "revoke", reason, exc.status))
            basic = exc.status == 401 and authorization is not None
            return oauth_error_json(exc, {"WWW-Authenticate": 'Basic realm="devidp"'} if basic else None)
        entry = await self._ctx.refresh_tokens.find(digest(token))
        if entry is not None and entry.grant.client_id == client.client_id:
            until = self._ctx.clock() + self._ctx.settings.refresh_token_ttl
            await self._ctx.refresh_tokens.revoke_family(entry.grant.family_id, until)
            grant = entry.grant
            done = IdpEvent(
                "revocation",
                True,
                "revoke",
                "refresh token family revoked",
                200,
                client.client_id,
                grant.subject,
                grant.resource,
                token_hash(token),
            )
        else:
            # RFC 7009 §2.2: the same answer; the feed still says nothing was revoked.
            reason = "no refresh token of this client: nothing revoked"
            done = IdpEvent(
                "revocation", True, "revoke", reason, 200, client.client_id, token_hash=token_hash(token)
            )
        self._ctx.events.record(done)
        return Response(status_code=200, headers=NO_STORE)
