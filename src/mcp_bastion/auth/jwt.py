"""Access-token verification: JWTs (RFC 7519, RFC 9068) under the rules of RFC 8725.

The order is deliberate: size cap, then strict parsing of the header, then the issuer
(before any key is fetched: TV-08), then the key lookup and signature, and only then the
audience, time and subject claims. Until the signature verifies, a refusal says nothing
about the token's claims but whether its issuer is one this resource trusts: a forged token
with `exp: 0` or another `aud` learns only that its signature is invalid, never which claim
a real token would have failed on. (Checking claims first saves no work an attacker could
not make the gateway spend anyway, with a forged token whose claims are fine.)

Verified results are kept in a bounded cache keyed by a hash of the token, never the token
itself, and never past its `exp`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Protocol

import orjson
from joserfc import jws
from joserfc.errors import JoseError, SecurityWarning
from joserfc.jws import JWSRegistry

from ..cache import BoundedCache
from ..config.model import SUPPORTED_ALGORITHMS, IdentityProviderConfig
from ..errors import InvalidToken
from .entra import issuer_aliases
from .keys import RemoteKeySet
from .principal import Principal

__all__ = ["ClaimsProfile", "IssuerPolicy", "JwtVerifier", "principal_of_claims"]

MAX_HEADER_CHARS = 2048  # TV-16: a 1,000-member JOSE header is refused before decoding
MAX_KID_CHARS = 256
CACHE_SIZE = 10_000
CACHE_MAX_SECONDS = 60.0  # a cached verdict outlives neither the token nor a key rotation by much
_SEGMENT = re.compile(r"^[A-Za-z0-9_-]+$")
# RFC 8725 §3.11: explicit typing; "application/at+jwt" is the long form of the same media type.
_TYP_FORMS = {"at+jwt": {"at+jwt", "application/at+jwt"}}


class ClaimsProfile(Protocol):
    """An IdP's own way of saying who a verified token is for (auth/presets.py)."""

    def audiences(self, claims: dict[str, Any]) -> frozenset[str]:
        """The resource URLs this token may be used at (aliases resolved, machine clients
        limited to the servers that accept them)."""
        ...

    def principal(
        self, claims: dict[str, Any], config: IdentityProviderConfig, digest: bytes, exp: float
    ) -> Principal:
        """The caller, after the IdP's own access-token checks; InvalidToken otherwise."""
        ...


@dataclass(frozen=True)
class IssuerPolicy:
    config: IdentityProviderConfig
    keys: RemoteKeySet
    profile: ClaimsProfile | None = None  # a preset, audience aliases or machine clients


@dataclass(frozen=True, slots=True)
class _Verified:
    principal: Principal
    audiences: frozenset[str]
    cache_until: float


# The scheme name is case-insensitive; these are the spellings clients send (others: a miss).
_BEARER_PREFIXES = frozenset({"Bearer ", "bearer ", "BEARER "})


class JwtVerifier:
    """The JWT `TokenVerifier` (`auth/verifier.py`): RFC 9068 access tokens from the configured issuers."""

    def __init__(
        self, issuers: Mapping[str, IssuerPolicy], *, clock: Callable[[], float], max_token_bytes: int
    ) -> None:
        self._issuers = dict(issuers)
        # Other `iss` values naming a configured issuer (Entra v1.0 tokens, auth/entra.py).
        self._aliases = {
            alias: name
            for name, policy in self._issuers.items()
            for alias in issuer_aliases(policy.config)
            if alias not in self._issuers
        }
        self._clock = clock
        self._max_bytes = max_token_bytes
        self._cache: BoundedCache[bytes, _Verified] = BoundedCache(CACHE_SIZE)

    def remembered(
        self, authorization: str, resource: str, allowed_issuers: frozenset[str]
    ) -> Principal | None:
        """The principal of an `Authorization: Bearer <token>` value whose token was verified
        before and is still cached; None otherwise (then: `bearer_token` and `verify`).

        The token is taken as everything after "Bearer " without parsing: a cache hit means
        these exact bytes passed the full syntax and signature checks once, so skipping the
        syntax check is safe; anything else (odd spacing, another scheme) is simply a miss.
        """
        if authorization[:7] not in _BEARER_PREFIXES or len(authorization) > self._max_bytes + 7:
            return None
        digest = hashlib.sha256(authorization[7:].encode("utf-8", "surrogateescape")).digest()
        hit = self._cache.get(digest)
        if hit is None or self._clock() >= hit.cache_until:
            return None
        return self._admit(hit, resource, allowed_issuers)

    def _admit(self, hit: _Verified, resource: str, allowed_issuers: frozenset[str]) -> Principal:
        if resource not in hit.audiences:
            raise InvalidToken("token audience is not this resource")
        if hit.principal.issuer not in allowed_issuers:
            raise InvalidToken("token issuer is not trusted for this resource")
        return hit.principal

    async def verify(self, token: str, resource: str, allowed_issuers: frozenset[str]) -> Principal:
        """The principal of a valid token for `resource`, or InvalidToken with a safe reason."""
        if len(token) > self._max_bytes:
            raise InvalidToken("token too large")
        digest = hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()
        now = self._clock()
        hit = self._cache.get(digest)
        if hit is not None and now < hit.cache_until:
            return self._admit(hit, resource, allowed_issuers)
        verified = await self._verify_fresh(token, digest, resource, allowed_issuers, now)
        self._remember(digest, verified)
        return verified.principal

    async def _verify_fresh(
        self, token: str, digest: bytes, resource: str, allowed: frozenset[str], now: float
    ) -> _Verified:
        header_b64, payload_b64 = _split(token)
        header = _decode_json(header_b64, MAX_HEADER_CHARS, "header")
        claims = _decode_json(payload_b64, self._max_bytes, "payload")
        issuer = claims.get("iss")
        if isinstance(issuer, str):
            issuer = self._aliases.get(issuer, issuer)
        policy = self._issuers.get(issuer) if isinstance(issuer, str) else None
        if policy is None or issuer not in allowed:
            raise InvalidToken("token issuer is not trusted for this resource")
        config = policy.config
        alg, kid = _check_header(header, config)
        key = await policy.keys.key_for(kid, alg)
        try:
            with warnings.catch_warnings():
                # joserfc warns on every "EdDSA" use (deprecated by RFC 9864, still what IdPs send);
                # under -W error that warning would escape as an exception instead of a verdict.
                warnings.simplefilter("ignore", SecurityWarning)
                jws.deserialize_compact(token, key, registry=_REGISTRIES[alg])
        except (JoseError, ValueError, TypeError):
            raise InvalidToken("token signature is invalid") from None
        # From here on the claims are the issuer's: their failures may be named.
        profile = policy.profile
        audiences = _audiences(claims) if profile is None else profile.audiences(claims)
        if resource not in audiences:
            raise InvalidToken("token audience is not this resource")
        expires_at = _check_times(claims, config, now)
        if profile is None:
            principal = _principal(claims, config, digest, expires_at)
        else:
            principal = profile.principal(claims, config, digest, expires_at)
        cache_until = min(expires_at + config.leeway_seconds, now + CACHE_MAX_SECONDS)
        return _Verified(principal, audiences, cache_until)

    def _remember(self, digest: bytes, verified: _Verified) -> None:
        self._cache.put(digest, verified)


def _registry(alg: str) -> JWSRegistry:
    # RFC 7515 §4: header parameters we do not understand are ignored (`crit` was refused above),
    # where joserfc's default refuses them; and the header cap is ours, not joserfc's 512 bytes.
    registry = JWSRegistry(algorithms=[alg], strict_check_header=False)
    registry.max_header_length = MAX_HEADER_CHARS
    return registry


_REGISTRIES: dict[str, JWSRegistry] = {alg: _registry(alg) for alg in SUPPORTED_ALGORITHMS}


def _split(token: str) -> tuple[str, str]:
    parts = token.split(".")
    if len(parts) != 3:
        raise InvalidToken("token is not a compact JWS (three segments)")  # TV-15: JWE has five
    for part in parts:
        if not _SEGMENT.match(part):
            raise InvalidToken("token segment is not unpadded base64url")
    return parts[0], parts[1]


def _decode_json(segment: str, limit: int, what: str) -> dict[str, Any]:
    if len(segment) > limit:
        raise InvalidToken(f"token {what} too large")
    try:
        value = orjson.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (binascii.Error, ValueError):
        raise InvalidToken(f"token {what} is not base64url JSON") from None
    if not isinstance(value, dict):
        raise InvalidToken(f"token {what} is not a JSON object")
    return value


def _check_header(header: dict[str, Any], config: IdentityProviderConfig) -> tuple[str, str | None]:
    alg = header.get("alg")
    # RFC 8725 §3.1: the allow-list, never the header, decides; `none` and HS* are never on it.
    if not isinstance(alg, str) or alg not in config.algorithms:
        raise InvalidToken("token algorithm is not allowed")
    if "crit" in header or "b64" in header:
        # RFC 7515 §4.1.11: we understand no extensions, so any `crit` (even []) is refused (TV-12).
        raise InvalidToken("token uses critical header extensions")
    if config.require_typ is not None:
        typ = header.get("typ")
        accepted = _TYP_FORMS.get(config.require_typ.lower(), {config.require_typ.lower()})
        if not isinstance(typ, str) or typ.lower() not in accepted:
            raise InvalidToken(f"token type must be {config.require_typ}")  # TV-11: ID tokens etc.
    kid = header.get("kid")
    if kid is not None and (not isinstance(kid, str) or not kid or len(kid) > MAX_KID_CHARS):
        raise InvalidToken("token key id is malformed")  # TV-14: kid is only ever a lookup key
    return alg, kid


def _audiences(claims: dict[str, Any]) -> frozenset[str]:
    aud = claims.get("aud")
    if isinstance(aud, str):
        return frozenset((aud,))
    if isinstance(aud, list) and all(isinstance(a, str) for a in aud):
        return frozenset(aud)
    return frozenset()


def _number(claims: dict[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidToken(f"token `{name}` is not a number")
    return float(value)


def _check_times(claims: dict[str, Any], config: IdentityProviderConfig, now: float) -> float:
    leeway = config.leeway_seconds
    exp = _number(claims, "exp")
    if exp is None:
        raise InvalidToken("token has no expiry")
    if now > exp + leeway:
        raise InvalidToken("token has expired")
    nbf, iat = _number(claims, "nbf"), _number(claims, "iat")
    if nbf is not None and nbf > now + leeway:
        raise InvalidToken("token is not valid yet")
    if iat is not None and iat > now + leeway:
        raise InvalidToken("token was issued in the future")
    start = iat if iat is not None else now
    if exp - start > config.max_token_lifetime_seconds + leeway:
        raise InvalidToken("token lifetime exceeds the allowed maximum")  # TV-06
    return exp


def _principal(
    claims: dict[str, Any], config: IdentityProviderConfig, digest: bytes, exp: float
) -> Principal:
    subject = claims.get(config.claims.subject)
    if not isinstance(subject, str) or not subject or len(subject) > 1024:
        raise InvalidToken("token has no subject")
    client_id = next((v for n in config.claims.client_id if isinstance(v := claims.get(n), str)), None)
    jti = claims.get("jti")
    return Principal(
        subject=subject,
        issuer=config.issuer,
        client_id=client_id,
        scopes=_scopes(claims, config.claims.scopes),
        token_hash=digest.hex()[:32],
        expires_at=exp,
        jti=jti if isinstance(jti, str) and len(jti) <= 256 else None,
        claims=MappingProxyType(claims),
    )


def principal_of_claims(claims: dict[str, Any], config: IdentityProviderConfig) -> Principal:
    """The Principal a verified token carrying `claims` becomes, for offline questions
    (`mcp-bastion policy explain` has claims, not a token): the same mapping, no signature or
    times checked. InvalidToken when the claims name no subject."""
    digest = hashlib.sha256(orjson.dumps(claims, option=orjson.OPT_SORT_KEYS)).digest()
    exp = claims.get("exp")
    return _principal(claims, config, digest, float(exp) if isinstance(exp, int | float) else float("inf"))


def _scopes(claims: dict[str, Any], names: tuple[str, ...]) -> frozenset[str]:
    for name in names:
        value = claims.get(name)
        if isinstance(value, str):
            return frozenset(value.split())
        if isinstance(value, list):
            return frozenset(s for s in value if isinstance(s, str))
    return frozenset()
