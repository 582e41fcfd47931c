"""The minted upstream credential: a short-lived JWT the gateway signs for one upstream.

A minted token is audience-bound to one upstream, names the caller as `sub` and the
gateway as the actor (`act`, RFC 8693 §4.1), carries only the scopes the call needs, and
lives a minute; the gateway publishes the public key at `/.well-known/jwks.json`.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from typing import Any

import orjson
from joserfc import jwt
from joserfc.errors import JoseError, SecurityWarning
from joserfc.jwk import ECKey, JWKRegistry, OKPKey, RSAKey

from ..auth.keys import compatible
from ..auth.principal import Principal
from ..cache import BoundedCache

__all__ = ["MintedCredential", "TokenMinter", "published_jwk"]

MINT_CACHE_SIZE = 10_000
SigningKey = RSAKey | ECKey | OKPKey


class TokenMinter:
    """Signs short-lived upstream tokens with the gateway's own key."""

    def __init__(
        self,
        key: SigningKey,
        alg: str,
        issuer: str,
        clock: Callable[[], float],
        published: tuple[dict[str, Any], ...] = (),
    ) -> None:
        self._key = key
        self._published = published  # public JWKs beside ours, never used to sign (rotation)
        self._alg = alg
        self.issuer = issuer
        self._clock = clock
        self._kid = key.thumbprint()
        self._cache: BoundedCache[tuple[str, str, str | None, tuple[str, ...], str], tuple[str, float]] = (
            BoundedCache(MINT_CACHE_SIZE)
        )

    @classmethod
    def generate(cls, alg: str, issuer: str, clock: Callable[[], float]) -> TokenMinter:
        key: SigningKey
        if alg == "ES256":
            key = ECKey.generate_key("P-256")
        elif alg == "EdDSA":
            key = OKPKey.generate_key("Ed25519")
        else:
            key = RSAKey.generate_key(2048)
        return cls(key, alg, issuer, clock)

    @classmethod
    def from_jwk(
        cls,
        text: str,
        alg: str,
        issuer: str,
        clock: Callable[[], float],
        published: tuple[dict[str, Any], ...] = (),
    ) -> TokenMinter:
        """A minter for a private JWK given as JSON text (the `signing.key` secret)."""
        try:
            # joserfc reads a str as PEM unless told the key type: parse the JSON ourselves.
            key = JWKRegistry.import_key(orjson.loads(text))
        except (JoseError, ValueError, TypeError, KeyError):
            key = None
        if not isinstance(key, (RSAKey, ECKey, OKPKey)) or not key.is_private:
            raise ValueError("the signing key must be a private RSA, EC or OKP JWK")
        if not compatible(key, alg):
            # Caught here, not on the first minted token of the first request.
            raise ValueError(f"the signing key cannot sign {alg}")
        return cls(key, alg, issuer, clock, published)

    def jwks(self) -> dict[str, Any]:
        public = dict(self._key.as_dict(private=False))
        public.update(kid=self._kid, use="sig", alg=self._alg)
        others = [key for key in self._published if key["kid"] != self._kid]
        return {"keys": [public, *others]}

    def mint(self, principal: Principal, audience: str, scopes: tuple[str, ...], ttl: int) -> str:
        now = self._clock()
        cache_key = (principal.issuer, principal.subject, principal.client_id, scopes, audience)
        cached = self._cache.get(cache_key)
        # Reuse a minted token for half its life: signing dominates the cost of a call otherwise.
        if cached is not None and cached[1] - now > ttl / 2:
            return cached[0]
        exp = int(now) + ttl
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": principal.subject,
            "aud": audience,
            "iat": int(now),
            "exp": exp,
            "jti": os.urandom(12).hex(),
            "scope": " ".join(scopes),
            "act": {"sub": self.issuer},
        }
        if principal.client_id is not None:
            claims["client_id"] = principal.client_id
        with warnings.catch_warnings():
            # joserfc warns on every "EdDSA" use (RFC 9864); under -W error it would fail the call.
            warnings.simplefilter("ignore", SecurityWarning)
            token = jwt.encode(
                {"alg": self._alg, "typ": "at+jwt", "kid": self._kid},
                claims,
                self._key,
                algorithms=[self._alg],
            )
        self._cache.put(cache_key, (token, exp))
        return token


def published_jwk(text: str, default_alg: str) -> dict[str, Any]:
    """The public JWK to publish for a `signing.previous_keys` entry (private or public JWK as
    JSON): its own `alg` if it names one the gateway signs with, else `default_alg`; `kid` its
    RFC 7638 thumbprint, as the signing key's. Private members never leave this function."""
    try:
        document = orjson.loads(text)
        with warnings.catch_warnings():
            # joserfc warns of weak keys; the type check below refuses what cannot be ours.
            warnings.simplefilter("ignore", SecurityWarning)
            key = JWKRegistry.import_key(document)
    except (JoseError, ValueError, TypeError, KeyError):
        key = None
    if not isinstance(key, (RSAKey, ECKey, OKPKey)):
        raise ValueError("a previous signing key must be an RSA, EC or OKP JWK")
    alg = document.get("alg", default_alg) if isinstance(document, dict) else default_alg
    if alg not in ("ES256", "RS256", "PS256", "EdDSA") or not compatible(key, alg):
        raise ValueError(f"a previous signing key must be able to sign {alg}")
    public = dict(key.as_dict(private=False))
    public.update(kid=key.thumbprint(), use="sig", alg=alg)
    return public


class MintedCredential:
    def __init__(self, minter: TokenMinter, audience: str, ttl: int) -> None:
        self._minter = minter
        self._audience = audience
        self._ttl = ttl

    async def header(self, principal: Principal, scopes: tuple[str, ...]) -> tuple[bytes, bytes] | None:
        token = self._minter.mint(principal, self._audience, scopes, self._ttl)
        return (b"authorization", b"Bearer " + token.encode("ascii"))
