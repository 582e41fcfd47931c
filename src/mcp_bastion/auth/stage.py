"""The authenticate stage: bearer token → verified JWT → Principal, or a 401."""

from __future__ import annotations

from ..exchange import Exchange
from .bearer import bearer_token
from .jwt import JwtVerifier
from .principal import ANONYMOUS

__all__ = ["Authenticate"]


class Authenticate:
    def __init__(self, verifier: JwtVerifier) -> None:
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
                return
        token = bearer_token(authorization)
        ex.principal = await self._verifier.verify(token, route.resource, route.issuers)
