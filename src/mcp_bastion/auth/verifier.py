"""The token check as a protocol: the authenticate stage knows nothing of JWTs.

`JwtVerifier` (RFC 9068 access tokens) is the one implementation today; opaque tokens by
RFC 7662 introspection plug in beside it. Both answer with a `Principal` or raise
InvalidToken, whose message is safe to show (never a claim of an unverified token).
"""

from __future__ import annotations

from typing import Protocol

from .principal import Principal

__all__ = ["TokenVerifier"]


class TokenVerifier(Protocol):
    def remembered(
        self, authorization: str, resource: str, allowed_issuers: frozenset[str]
    ) -> Principal | None:
        """The principal of an `Authorization` header value verified before and still valid
        for `resource`, without any IO; None when it must be verified (`verify`)."""
        ...

    async def verify(self, token: str, resource: str, allowed_issuers: frozenset[str]) -> Principal:
        """The principal of a valid token whose audience is `resource`, issued by one of
        `allowed_issuers`; InvalidToken (or KeySourceError when keys cannot be had) otherwise."""
        ...
