"""Quota state in Redis or Valkey, shared by every replica: one atomic script per decision.

The script reads the server's own clock (`TIME`), so replicas whose clocks disagree still
count against one timeline, and it decides every bucket of a request and writes them all, or
none, in one step: no other replica's request can slip in between (exact across replicas).
It is sent by digest (EVALSHA); a server that does not know it (restarted, flushed, a new
primary) answers NOSCRIPT, and the script itself is sent once more (EVAL, which caches it).

When the store cannot answer (down, timed out, a full pool), `take` raises StoreUnavailable
and each rule's `on_store_error` decides; for `retry_seconds` after a failure requests skip
the store instead of each waiting for a timeout, and then the next request tries again, on a
fresh connection: recovery needs no restart. Errors of the Redis client stop here.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import NoScriptError, RedisError

from .store import Ask, Refusal, StoreUnavailable

__all__ = ["DECIDE_SCRIPT", "RedisStore"]

log = logging.getLogger("mcp_bastion.quota")

# KEYS: the buckets; ARGV: interval (µs), burst, cost per bucket. Returns {0, "0"} when every
# bucket admits (and records) the request, else {i, wait_us} for the bucket that waits
# longest (1-based) and records nothing. Integers in microseconds (exact in a Lua double up
# to 2^53 µs, 285 years); the same arithmetic as gcra.admit. A key lives as long as its TAT
# is in the future: once it expires, absent and full are the same thing.
DECIDE_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local news = {}
local refused, wait = 0, 0
for i = 1, #KEYS do
  local interval = tonumber(ARGV[3 * i - 2])
  local burst = tonumber(ARGV[3 * i - 1])
  local cost = tonumber(ARGV[3 * i])
  local tat = tonumber(redis.call('GET', KEYS[i]))
  local start = now
  if tat and tat > now then start = tat end
  local new = start + interval * cost
  local over = new - now - interval * burst
  if over > 0 then
    if over > wait then refused, wait = i, over end
  else
    news[i] = new
  end
end
if refused > 0 then return {refused, string.format('%.0f', wait)} end
for i = 1, #KEYS do
  local ttl = math.ceil((news[i] - now) / 1000)
  if ttl < 1 then ttl = 1 end
  redis.call('SET', KEYS[i], string.format('%.0f', news[i]), 'PX', ttl)
end
return {0, '0'}
"""
_DIGEST = hashlib.sha1(DECIDE_SCRIPT.encode(), usedforsecurity=False).hexdigest()  # the script cache's name


class RedisStore:
    def __init__(
        self,
        url: str,
        *,
        prefix: str,
        timeout: float,
        retry_seconds: float,
        max_connections: int,
        username: str | None = None,
        password: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        pool = BlockingConnectionPool.from_url(
            url,
            max_connections=max_connections,
            timeout=timeout,  # waiting for a free connection counts as the store being slow
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            username=username,
            password=password,
            # No retries inside the client: one failed attempt is an answer (on_store_error),
            # not a reason to make the request wait three times as long.
            retry=Retry(NoBackoff(), 0),
        )
        self._redis = Redis.from_pool(pool)  # owns the pool: aclose() closes its connections
        self._prefix = prefix
        self._retry_seconds = retry_seconds
        self._clock = clock
        self._down_until: float | None = None

    async def take(self, asks: Sequence[Ask]) -> Refusal | None:
        if self._down_until is not None and self._clock() < self._down_until:
            raise StoreUnavailable("quota store unavailable")
        keys = [self._prefix + ask.key for ask in asks]
        args: list[int] = []
        for ask in asks:
            args += (ask.interval, ask.burst, ask.cost)
        try:
            answer = await self._run(keys, args)
            index, wait = int(answer[0]), int(answer[1])
        except (RedisError, OSError, TimeoutError, ValueError, TypeError, IndexError) as exc:
            if self._down_until is None:
                log.warning(
                    "quota store unreachable (%s): rules decide by on_store_error", type(exc).__name__
                )
            self._down_until = self._clock() + self._retry_seconds
            raise StoreUnavailable("quota store unavailable") from None
        if self._down_until is not None:
            log.warning("quota store reachable again")
            self._down_until = None
        return Refusal(index - 1, wait) if index else None

    async def _run(self, keys: list[str], args: list[int]) -> Any:
        try:
            return await self._redis.evalsha(_DIGEST, len(keys), *keys, *args)
        except NoScriptError:
            return await self._redis.eval(DECIDE_SCRIPT, len(keys), *keys, *args)

    async def close(self) -> None:
        await self._redis.aclose()
