"""A cached, rotating set of an IdP's public keys.

- Keys are refetched when the set is older than its TTL; a failed refresh keeps the last
  good set (DM-02, DM-03).
- A refresh of a set that has keys runs in the background: requests keep verifying with the
  current keys meanwhile. Only a request that cannot be served from them waits for a fetch:
  the first ones (no keys yet) and a token whose `kid` is unknown (the IdP may have rotated),
  and that wait is bounded by `wait_limit`. Measured before this: with a slow IdP, every
  in-flight request waited for each TTL refresh (64 calls stalled 4.2 s).
- An unknown `kid` causes at most one refetch per cooldown, and concurrent misses share it
  (DM-01: a flood of random kids cannot turn the gateway into a JWKS amplifier).
- Unusable keys are dropped on import: `use: enc`, symmetric keys, RSA under 2048 bits,
  curves other than the algorithm's (TV-18).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeAlias

from joserfc.errors import JoseError
from joserfc.jwk import ECKey, JWKRegistry, OKPKey, RSAKey

from ..errors import InvalidToken, KeySourceError

__all__ = ["PublicKey", "RemoteKeySet", "compatible", "import_public_keys"]

log = logging.getLogger("mcp_bastion.auth")
PublicKey: TypeAlias = RSAKey | ECKey | OKPKey
MIN_RSA_BITS = 2048
MAX_KEYS = 64
FORCED_RETRY_S = 1.0
_CURVE_OF_ALG = {"ES256": "P-256"}


def compatible(key: PublicKey, alg: str) -> bool:
    """Whether `key` may verify `alg`: the key type fixes the algorithm, never the header (TV-02/03)."""
    declared = key.get("alg")
    if declared is not None and declared != alg:
        return False
    if alg in ("RS256", "PS256"):
        return isinstance(key, RSAKey)
    if alg == "ES256":
        return isinstance(key, ECKey) and key.get("crv") == _CURVE_OF_ALG[alg]
    if alg == "EdDSA":
        return isinstance(key, OKPKey) and key.get("crv") in ("Ed25519", "Ed448")
    return False


def import_public_keys(document: Any) -> tuple[dict[str, PublicKey], list[PublicKey]]:
    """Usable keys of a JWKS document: by kid, and the kid-less ones. KeySourceError if malformed."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise KeySourceError("JWKS document has no `keys` array")
    by_kid: dict[str, PublicKey] = {}
    anonymous: list[PublicKey] = []
    for raw in document["keys"][:MAX_KEYS]:
        key = _usable_key(raw)
        if key is None:
            continue
        kid = raw.get("kid")
        if isinstance(kid, str):
            by_kid[kid] = key
        else:
            anonymous.append(key)
    if not by_kid and not anonymous:
        raise KeySourceError("JWKS document has no usable public keys")
    return by_kid, anonymous


def _usable_key(raw: Any) -> PublicKey | None:
    if not isinstance(raw, dict) or raw.get("kty") not in ("RSA", "EC", "OKP"):
        return None  # `oct` and unknown types never verify access tokens
    if raw.get("use", "sig") != "sig" or "d" in raw:
        return None
    if raw["kty"] == "RSA" and _modulus_bits(raw.get("n")) < MIN_RSA_BITS:
        # Checked before import: joserfc warns (SecurityWarning) on weak keys, an error under -W error.
        return None
    try:
        key = JWKRegistry.import_key({k: v for k, v in raw.items() if isinstance(k, str)})
    except (JoseError, ValueError, TypeError, KeyError):
        return None
    return key if isinstance(key, (RSAKey, ECKey, OKPKey)) else None


def _modulus_bits(n: Any) -> int:
    if not isinstance(n, str):
        return 0
    try:
        return int.from_bytes(base64.urlsafe_b64decode(n + "=" * (-len(n) % 4)), "big").bit_length()
    except ValueError:  # binascii.Error, or non-ASCII text
        return 0


class RemoteKeySet:
    """The keys of one issuer, fetched through `load` (which returns a JWKS document)."""

    def __init__(
        self,
        load: Callable[[], Awaitable[Any]],
        *,
        clock: Callable[[], float],
        ttl: float,
        cooldown: float,
        wait_limit: float | None = None,
        on_refresh: Callable[[bool], None] | None = None,
    ) -> None:
        self._load = load
        self._wait_limit = wait_limit
        self._on_refresh = on_refresh  # told each fetch's result (metrics)
        self._clock = clock
        self._ttl = ttl
        self._cooldown = cooldown
        self._by_kid: dict[str, PublicKey] = {}
        self._anonymous: list[PublicKey] = []
        self._fetched_at: float | None = None
        self._attempted_at: float | None = None
        self._inflight: asyncio.Future[None] | None = None

    async def key_for(self, kid: str | None, alg: str) -> PublicKey:
        now = self._clock()
        if self._fetched_at is None:
            await self._refresh_if_allowed(now, force=True)  # nothing to verify with yet: wait
        elif now - self._fetched_at > self._ttl:
            self._refresh_in_background(now)  # stale, not wrong: keep serving with these keys
        key = self._lookup(kid, alg)
        if key is None and kid is not None and kid not in self._by_kid:
            await self._refresh_if_allowed(self._clock(), force=False)
            key = self._lookup(kid, alg)
        if key is None:
            raise InvalidToken("no usable key for this token")
        return key

    async def close(self) -> None:
        """Stop a refresh in flight (shutdown): its connection is closed before the client is."""
        inflight = self._inflight
        if inflight is not None:
            inflight.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await inflight

    async def settled(self) -> None:
        """Wait until no refresh is in flight (shutdown, and tests that look at its outcome)."""
        while self._inflight is not None:
            await asyncio.shield(self._inflight)

    async def warm(self) -> None:
        await self._refresh_if_allowed(self._clock(), force=True)

    @property
    def loaded(self) -> bool:
        """Whether a fetch has ever succeeded (readiness: without keys every token is refused)."""
        return self._fetched_at is not None

    def _lookup(self, kid: str | None, alg: str) -> PublicKey | None:
        if kid is not None:
            key = self._by_kid.get(kid)
            return key if key is not None and compatible(key, alg) else None
        # No kid (TV-14): only unambiguous when exactly one key could have signed it.
        candidates = [k for k in (*self._by_kid.values(), *self._anonymous) if compatible(k, alg)]
        return candidates[0] if len(candidates) == 1 else None

    def _start_refresh(self, now: float, *, force: bool) -> asyncio.Future[None] | None:
        """The refresh in flight, or a new one when the last attempt is old enough; None if not."""
        if self._inflight is None:
            # Even a forced refresh (no keys yet) waits a second between attempts, so an IdP
            # that is down is not hit once per incoming request.
            wait = min(FORCED_RETRY_S, self._cooldown) if force else self._cooldown
            if self._attempted_at is not None and now - self._attempted_at < wait:
                return None
            self._attempted_at = now
            self._inflight = asyncio.ensure_future(self._refresh())
            self._inflight.add_done_callback(_log_unexpected)
        return self._inflight

    def _refresh_in_background(self, now: float) -> None:
        self._start_refresh(now, force=False)

    async def _refresh_if_allowed(self, now: float, *, force: bool) -> None:
        inflight = self._start_refresh(now, force=force)
        if inflight is None:
            return
        # Shielded: one caller's cancellation (client went away) must not cancel the shared
        # fetch; and a caller waits at most `wait_limit`, then goes on with the keys it has.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(inflight), self._wait_limit)

    async def _refresh(self) -> None:
        try:
            by_kid, anonymous = import_public_keys(await self._load())
        except KeySourceError as exc:
            log.warning(
                "key refresh failed, keeping %d cached keys: %s",
                len(self._by_kid) + len(self._anonymous),
                exc,
            )
            if self._on_refresh is not None:
                self._on_refresh(False)
            return
        finally:
            self._inflight = None
        self._by_kid, self._anonymous = by_kid, anonymous
        self._fetched_at = self._clock()
        if self._on_refresh is not None:
            self._on_refresh(True)


def _log_unexpected(refresh: asyncio.Future[None]) -> None:
    # A background refresh may have no caller waiting on it: its failure is reported here
    # (expected failures, KeySourceError, are logged by `_refresh` itself).
    if not refresh.cancelled() and refresh.exception() is not None:
        log.error("key refresh failed unexpectedly", exc_info=refresh.exception())
