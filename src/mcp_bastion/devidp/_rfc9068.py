"""JWT access tokens in the RFC 9068 profile, audience-bound per RFC 8707."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ._keys import SigningKey

#: RFC 9068 §2.1: the media type that keeps an access token from passing as an ID token.
ACCESS_TOKEN_TYPE = "at+jwt"


class AccessTokenIssuer:
    """Mints access tokens signed with the IdP key, timed by the injected clock."""

    def __init__(self, key: SigningKey, issuer: str, clock: Callable[[], float]) -> None:
        self._key = key
        self._issuer = issuer
        self._clock = clock

    def issue(
        self,
        *,
        subject: str,
        client_id: str,
        resource: str,
        scopes: Sequence[str],
        ttl: int,
        extra_claims: Mapping[str, Any] | None = None,
    ) -> str:
        """A signed access token; ``extra_claims`` are added last (and may override, for tests)."""
        now = int(self._clock())
        claims: dict[str, Any] = {
            "iss": self._issuer,
            "sub": subject,
            "aud": resource,  # exactly the resource string (RFC 8707 §2, RFC 9068 §3)
            "exp": now + ttl,
            "iat": now,
            "nbf": now,
            "jti": secrets.token_urlsafe(16),
            "client_id": client_id,
            "scope": " ".join(scopes),
        }
        claims.update(extra_claims or {})
        return self._key.sign(claims, ACCESS_TOKEN_TYPE)
