"""The authenticate stage: bearer token → verified identity (a `Principal`), or a 401.

Which kind of token is accepted is the verifier's business (`auth.verifier.TokenVerifier`):
this stage only takes the token from the one place it may be (the Authorization header,
TV-19) and asks for the resource this route protects.
"""

from __future__ import annotations

from ..auth.bearer import bearer_token
from ..auth.principal import ANONYMOUS
from ..auth.verifier import TokenVerifier
from ..credentials.exchange import CallerTokenCredential, carrying_token
from .exchange import Exchange

__all__ = ["Authenticate"]


class Authenticate:
    def __init__(self, verifier: TokenVerifier) -> None:
        self._verifier = verifier

    async def __call__(self, ex: Exchange) -> None:
        route = ex.route
        if not route.auth:
            ex.principal = ANONYMOUS
            return
        authorization = ex.headers.get("authorization")
        if authorization is not None:
            known = self._verifier.remembered(authorization, route.resource, route.issuers)
            if known is not None:
                ex.principal = known  # verified before, still valid; audience and issuer rechecked
                if isinstance(route.credential, CallerTokenCredential):
                    ex.principal = carrying_token(known, authorization[7:])  # remembered: "Bearer " + token
                return
        token = bearer_token(authorization)
        ex.principal = await self._verifier.verify(token, route.resource, route.issuers)
        if isinstance(route.credential, CallerTokenCredential):  # token exchange needs the caller's token
            ex.principal = carrying_token(ex.principal, token)
