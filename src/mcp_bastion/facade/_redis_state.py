"""A facade's state in Redis or Valkey, shared by every worker and replica (``facade.state``).

Keys live under ``{prefix}{idp name}:`` and every one expires with what it holds. Codes and
refresh tokens are keyed by digest; a waiting sign-in is sealed with its ``state``; pending
consents, registrations and grants hold no secret. The operations that decide (a code's
first redemption, a refresh token's rotation, a ``jti``'s first use, taking a sign-in or a
consent) are each one atomic command or script, so two replicas racing on the same code or
token get one winner.

When the store cannot answer, every method raises
:class:`~mcp_bastion.devidp._stores.StateUnavailable` and the facade answers 503
``temporarily_unavailable``: a facade that cannot see its state cannot tell a replay from a
first use, so it decides nothing. The client reconnects on the next request: recovery needs
no restart. Errors of the Redis client stop here.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from ..devidp._authorization_request import PendingAuthorization
from ..devidp._clients import RegisteredClient
from ..devidp._policy import REGISTRATION_WINDOW_S
from ..devidp._stores import (
    CodeGrant,
    CodeRedemption,
    IdpStores,
    RefreshEntry,
    RefreshGrant,
    StateUnavailable,
)
from ._codec import (
    client_bytes,
    client_from,
    code_bytes,
    code_from,
    pending_bytes,
    pending_from,
    refresh_bytes,
    refresh_from,
)

log = logging.getLogger("mcp_bastion.facade")

Clock = Callable[[], float]
T = TypeVar("T")

# KEYS[1]: the code; ARGV[1]: how long (ms) a used code is kept to recognise its replay.
# Returns false (unknown or expired), else {grant, uses}: uses == 1 is the first redemption.
REDEEM_CODE = """
local g = redis.call('HGET', KEYS[1], 'g')
if not g then return false end
local n = redis.call('HINCRBY', KEYS[1], 'n', 1)
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return {g, n}
"""
# KEYS[1]: the refresh token; ARGV[1]: the family key prefix. false when unknown, expired or
# its family revoked; else {grant, used}.
FIND_REFRESH = """
local v = redis.call('HMGET', KEYS[1], 'g', 'u', 'f')
if not v[1] then return false end
if redis.call('EXISTS', ARGV[1] .. v[3]) == 1 then return false end
return {v[1], v[2] or '0'}
"""
# 1 when this call rotated the token away, 0 when another did first (or it is gone).
MARK_USED = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
return redis.call('HSETNX', KEYS[1], 'u', '1')
"""
# A fixed window per key: 1 when admitted, 0 when over ARGV[1] in the window ARGV[2] (ms).
HIT = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if n > tonumber(ARGV[1]) then return 0 end
return 1
"""


def _hashed(value: str) -> str:
    """A bounded, opaque key part for an identifier the client chose (client id, jti)."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


class _Redis:
    """The connection, the key prefix, and the one place Redis errors become StateUnavailable."""

    def __init__(self, redis: Redis, prefix: str, clock: Clock) -> None:
        self.redis = redis
        self.prefix = prefix
        self.clock = clock

    def key(self, kind: str, name: str) -> str:
        return f"{self.prefix}{kind}:{name}"

    def ttl_ms(self, expires_at: float) -> int:
        # Relative, on the facade's clock: replicas' wall clocks and the server's need not agree.
        return max(1, int((expires_at - self.clock()) * 1000))

    async def run(self, call: Awaitable[T]) -> T:
        try:
            return await call
        except (RedisError, OSError, TimeoutError) as exc:
            log.warning("facade: state store unavailable (%s)", type(exc).__name__)
            raise StateUnavailable("the facade's state store is unavailable") from None


# -- the stores ----------------------------------------------------------------------------


class RedisCodeStore:
    def __init__(self, r: _Redis) -> None:
        self._r = r
        self._redeem = r.redis.register_script(REDEEM_CODE)

    async def save(self, code_digest: str, grant: CodeGrant, expires_at: float) -> None:
        key = self._r.key("code", code_digest)
        pipe = self._r.redis.pipeline(transaction=True)
        pipe.hset(key, mapping={"g": code_bytes(grant)})
        pipe.pexpire(key, self._r.ttl_ms(expires_at))
        await self._r.run(pipe.execute())

    async def redeem(self, code_digest: str, retain_until: float) -> CodeRedemption | None:
        key = self._r.key("code", code_digest)
        answer = await self._r.run(self._redeem(keys=[key], args=[self._r.ttl_ms(retain_until)]))
        if not answer:
            return None
        raw, uses = answer
        return CodeRedemption(code_from(raw), first_use=int(uses) == 1)


class RedisRefreshStore:
    def __init__(self, r: _Redis) -> None:
        self._r = r
        self._find = r.redis.register_script(FIND_REFRESH)
        self._mark = r.redis.register_script(MARK_USED)

    async def save(self, token_digest: str, grant: RefreshGrant, expires_at: float) -> None:
        key = self._r.key("refresh", token_digest)
        pipe = self._r.redis.pipeline(transaction=True)
        pipe.hset(key, mapping={"g": refresh_bytes(grant), "f": grant.family_id})
        pipe.pexpire(key, self._r.ttl_ms(expires_at))
        await self._r.run(pipe.execute())

    async def find(self, token_digest: str) -> RefreshEntry | None:
        key = self._r.key("refresh", token_digest)
        answer = await self._r.run(self._find(keys=[key], args=[self._r.key("family", "")]))
        if not answer:
            return None
        raw, used = answer
        return RefreshEntry(refresh_from(raw), used=used in (b"1", "1"))

    async def mark_used(self, token_digest: str) -> bool:
        key = self._r.key("refresh", token_digest)
        return bool(await self._r.run(self._mark(keys=[key])))

    async def revoke_family(self, family_id: str, until: float) -> None:
        key = self._r.key("family", family_id)
        await self._r.run(self._r.redis.set(key, b"1", px=self._r.ttl_ms(until)))


class RedisPendingStore:
    """Authorizations waiting on the consent page (no secret: the CSRF token is a digest)."""

    def __init__(self, r: _Redis) -> None:
        self._r = r

    async def save(self, request_id: str, pending: PendingAuthorization, expires_at: float) -> None:
        value = pending_bytes(pending)
        key = self._r.key("consent", _hashed(request_id))
        await self._r.run(self._r.redis.set(key, value, px=self._r.ttl_ms(expires_at)))

    async def get(self, request_id: str) -> PendingAuthorization | None:
        raw = await self._r.run(self._r.redis.get(self._r.key("consent", _hashed(request_id))))
        return None if raw is None else pending_from(raw)

    async def take(self, request_id: str) -> PendingAuthorization | None:
        raw = await self._r.run(self._r.redis.getdel(self._r.key("consent", _hashed(request_id))))
        return None if raw is None else pending_from(raw)


class RedisClientStore:
    """Dynamically registered clients, each forgotten ``ttl`` seconds after it registered."""

    def __init__(self, r: _Redis, ttl: float) -> None:
        self._r = r
        self._ttl_ms = int(ttl * 1000)

    async def add(self, client: RegisteredClient) -> None:
        key = self._r.key("client", _hashed(client.client_id))
        await self._r.run(self._r.redis.set(key, client_bytes(client), px=self._ttl_ms))

    async def get(self, client_id: str) -> RegisteredClient | None:
        raw = await self._r.run(self._r.redis.get(self._r.key("client", _hashed(client_id))))
        return None if raw is None else client_from(raw)


class RedisRateLimiter:
    """At most ``limit`` events per key per window, counted across replicas (a fixed window)."""

    def __init__(self, r: _Redis, limit: int, window_s: float) -> None:
        self._r = r
        self._limit = limit
        self._window_ms = int(window_s * 1000)
        self._hit = r.redis.register_script(HIT)

    async def hit(self, key: str) -> bool:
        name = self._r.key("rate", _hashed(key))
        return bool(await self._r.run(self._hit(keys=[name], args=[self._limit, self._window_ms])))


class RedisLoginStore:
    def __init__(self, r: _Redis) -> None:
        self._r = r

    async def save(self, key: str, sealed: bytes, expires_at: float) -> None:
        name = self._r.key("login", key)
        await self._r.run(self._r.redis.set(name, sealed, px=self._r.ttl_ms(expires_at)))

    async def take(self, key: str) -> bytes | None:
        raw = await self._r.run(self._r.redis.getdel(self._r.key("login", key)))
        return raw.encode() if isinstance(raw, str) else raw


class RedisReplaySet:
    def __init__(self, r: _Redis) -> None:
        self._r = r

    async def first_use(self, key: str, until: float) -> bool:
        # SET NX is the check and the record in one command: two replicas, one winner.
        name = self._r.key("jti", _hashed(key))
        return bool(await self._r.run(self._r.redis.set(name, b"1", px=self._r.ttl_ms(until), nx=True)))


class RedisFacadeState:
    """``facade.state.store: redis``: one facade's state, shared by every replica."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str,
        timeout: float,
        max_connections: int,
        registration_limit_per_minute: int,
        registration_ttl: float,
        clock: Clock,
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        pool = BlockingConnectionPool.from_url(
            url,
            max_connections=max_connections,
            timeout=timeout,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            username=username,
            password=password,
            # One failed attempt is an answer (503), not a reason to wait three times as long.
            retry=Retry(NoBackoff(), 0),
        )
        self._redis = Redis.from_pool(pool)
        r = _Redis(self._redis, prefix, clock)
        self.stores = IdpStores(
            clients=RedisClientStore(r, registration_ttl),
            codes=RedisCodeStore(r),
            refresh_tokens=RedisRefreshStore(r),
            pending=RedisPendingStore(r),
            registrations=RedisRateLimiter(r, registration_limit_per_minute, REGISTRATION_WINDOW_S),
        )
        self.logins = RedisLoginStore(r)
        self.replays = RedisReplaySet(r)

    async def aclose(self) -> None:
        await self._redis.aclose()
