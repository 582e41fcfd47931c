"""Opaque access tokens: RFC 7662 introspection, a second `TokenVerifier` (auth/verifier.py).

A token that is not a JWS is sent, by the gateway authenticated as the IdP's client, to the
introspection endpoint of the one IdP trusted for this server that introspects (config or
metadata, never the token's say). The answer decides, and fails closed:

- `active` must be the JSON `true` (RFC 7662 §2.2); anything else is an invalid token;
- `iss`, when present, must be the IdP's; `exp` must be present and in the future; a refresh
  token (`token_type`) is not an access token;
- the audience and scopes are read as for a JWT of that IdP (its preset, aliases, machine
  clients: auth/presets.py);
- an IdP that cannot be asked (timeout, HTTP error, garbage) gives 503, never a pass.

Verdicts are cached by a SHA-256 of the token (never the token), for at most
`cache_seconds` and never past `exp`: a revoked token keeps working that long at most. An
inactive token is remembered `negative_cache_seconds`, so one junk token sent in a loop
costs one introspection. At most `max_concurrent` introspections are in flight (more: 503),
and concurrent requests with one token share one introspection.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any

from ..cache import BoundedCache
from ..config.identity import IntrospectionConfig
from ..errors import InvalidToken, KeySourceError
from .idp_client import IdpCallError, IdpClient
from .jwt import ClaimsProfile, _audiences, _principal
from .principal import Principal
from .verifier import TokenVerifier

__all__ = ["Introspecting", "IntrospectionVerifier", "JwtOrOpaque"]

CACHE_SIZE = 10_000
_REFRESH_TYPES = frozenset({"refresh_token", "urn:ietf:params:oauth:token-type:refresh_token"})
_BEARER_PREFIXES = frozenset({"Bearer ", "bearer ", "BEARER "})


@dataclass(frozen=True)
class Introspecting:
    """One IdP that introspects: its client, its settings, its claims profile."""

    client: IdpClient
    config: IntrospectionConfig
    profile: ClaimsProfile | None = None


@dataclass(frozen=True, slots=True)
class _Verdict:
    principal: Principal | None  # None: inactive (negative cache)
    audiences: frozenset[str]
    cache_until: float


class IntrospectionVerifier:
    def __init__(
        self, idps: Mapping[str, Introspecting], *, clock: Callable[[], float], max_token_bytes: int
    ) -> None:
        self._idps = dict(idps)  # by issuer, in config order
        self._clock = clock
        self._max_bytes = max_token_bytes
        self._cache: BoundedCache[bytes, _Verdict] = BoundedCache(CACHE_SIZE)
        self._pending: dict[bytes, asyncio.Future[_Verdict]] = {}
        self._slots = {issuer: asyncio.Semaphore(idp.config.max_concurrent) for issuer, idp in idps.items()}

    def remembered(
        self, authorization: str, resource: str, allowed_issuers: frozenset[str]
    ) -> Principal | None:
        if authorization[:7] not in _BEARER_PREFIXES or len(authorization) > self._max_bytes + 7:
            return None
        digest = hashlib.sha256(authorization[7:].encode("utf-8", "surrogateescape")).digest()
        hit = self._cache.get(digest)
        if hit is None or self._clock() >= hit.cache_until:
            return None
        return _admit(hit, resource, allowed_issuers)

    async def verify(self, token: str, resource: str, allowed_issuers: frozenset[str]) -> Principal:
        if len(token) > self._max_bytes:
            raise InvalidToken("token too large")
        issuer = next((i for i in self._idps if i in allowed_issuers), None)
        if issuer is None:
            raise InvalidToken("token is not a JWT, and no identity provider of this resource introspects")
        digest = hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()
        hit = self._cache.get(digest)
        if hit is not None and self._clock() < hit.cache_until:
            return _admit(hit, resource, allowed_issuers)
        flight = self._pending.get(digest)
        if flight is None:
            # A task of its own, shared by every request with this token; one leaving does not
            # cancel it for the others.
            flight = asyncio.ensure_future(self._introspect(issuer, token, digest))
            self._pending[digest] = flight
            flight.add_done_callback(lambda done: self._landed(digest, done))
        return _admit(await asyncio.shield(flight), resource, allowed_issuers)

    def _landed(self, digest: bytes, flight: asyncio.Future[_Verdict]) -> None:
        self._pending.pop(digest, None)
        if flight.cancelled() or flight.exception() is not None:
            return
        verdict = flight.result()
        if verdict.cache_until > self._clock():
            self._cache.put(digest, verdict)

    async def _introspect(self, issuer: str, token: str, digest: bytes) -> _Verdict:
        idp = self._idps[issuer]
        slots = self._slots[issuer]
        if slots.locked():
            # DoS bound: a flood of unknown tokens gets 503s, not an unbounded queue at the IdP.
            raise KeySourceError("too many token introspections in flight")
        async with slots:
            try:
                status, answer = await idp.client.post(
                    "introspection_endpoint", {"token": token, "token_type_hint": "access_token"}
                )
            except IdpCallError as exc:
                raise KeySourceError(f"token introspection failed: {exc.message}") from None
        if status != 200:
            raise KeySourceError(f"token introspection failed: the IdP answered HTTP {status}")
        return self._judge(idp, answer, digest, self._clock())

    def _judge(self, idp: Introspecting, answer: dict[str, Any], digest: bytes, now: float) -> _Verdict:
        provider = idp.client.provider
        if answer.get("active") is not True:
            return _Verdict(None, frozenset(), now + idp.config.negative_cache_seconds)
        iss = answer.get("iss")
        if iss is not None and iss != provider.issuer:
            raise InvalidToken("token issuer is not trusted for this resource")
        token_type = answer.get("token_type")
        if isinstance(token_type, str) and token_type.lower() in _REFRESH_TYPES:
            raise InvalidToken("token is not an access token")
        exp = answer.get("exp")
        if isinstance(exp, bool) or not isinstance(exp, (int, float)):
            raise InvalidToken("token has no expiry")  # RFC 7662 makes exp optional; we do not
        if now >= exp:
            raise InvalidToken("token has expired")
        claims = dict(answer)
        if idp.profile is None:
            audiences = _audiences(claims)
            principal = _principal(claims, provider, digest, float(exp))
        else:
            audiences = idp.profile.audiences(claims)
            principal = idp.profile.principal(
                _with_subject(claims, provider.claims.subject), provider, digest, float(exp)
            )
            principal = _keep_claims(principal, claims)
        until = min(float(exp), now + idp.config.cache_seconds)
        return _Verdict(principal, audiences, until)


def _with_subject(claims: dict[str, Any], name: str) -> dict[str, Any]:
    """Introspection of a client-credentials token names no subject (RFC 7662 §2.2: `sub` is
    optional): the client is who calls. The profile decides whether such a caller may."""
    if name in claims or not isinstance(claims.get("client_id"), str):
        return claims
    return {**claims, name: claims["client_id"]}


def _keep_claims(principal: Principal, claims: dict[str, Any]) -> Principal:
    return replace(principal, claims=MappingProxyType(claims))


def _admit(verdict: _Verdict, resource: str, allowed_issuers: frozenset[str]) -> Principal:
    principal = verdict.principal
    if principal is None:
        raise InvalidToken("token is not active")
    if resource not in verdict.audiences:
        raise InvalidToken("token audience is not this resource")
    if principal.issuer not in allowed_issuers:
        raise InvalidToken("token issuer is not trusted for this resource")
    return principal


class JwtOrOpaque:
    """The `TokenVerifier` when some IdP introspects: JWS-shaped tokens to the JWT verifier,
    everything else to introspection."""

    def __init__(self, jwt: TokenVerifier, opaque: IntrospectionVerifier) -> None:
        self._jwt = jwt
        self._opaque = opaque

    def remembered(
        self, authorization: str, resource: str, allowed_issuers: frozenset[str]
    ) -> Principal | None:
        known = self._jwt.remembered(authorization, resource, allowed_issuers)
        if known is not None:
            return known
        return self._opaque.remembered(authorization, resource, allowed_issuers)

    async def verify(self, token: str, resource: str, allowed_issuers: frozenset[str]) -> Principal:
        if token.count(".") == 2:
            return await self._jwt.verify(token, resource, allowed_issuers)
        return await self._opaque.verify(token, resource, allowed_issuers)
