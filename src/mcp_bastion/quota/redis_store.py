"""Quota state in Redis or Valkey, shared by every replica: one atomic script per decision.

The script reads the server's own clock (`TIME`), so replicas whose clocks disagree still
count against one timeline, and it decides every bucket of a request and writes them all, or
none, in one step: no other replica's request can slip in between (exact across replicas).
It is sent by digest (EVALSHA); a server that does not know it (restarted, flushed, a new
primary) answers NOSCRIPT, and the script itself is sent once more (EVAL, which caches it).

Requests that arrive in the same turn of the event loop share one script call: the script
decides them one after another, each whole, as if each had come alone (a later request sees
what an earlier one took). That is one round trip and one pass through the Redis client for
many decisions, which is most of what a decision costs the gateway's CPU under load.

When the store cannot answer (down, timed out, a full pool), `take` raises StoreUnavailable
and each rule's `on_store_error` decides; for `retry_seconds` after a failure requests skip
the store instead of each waiting for a timeout, and then the next request tries again, on a
fresh connection: recovery needs no restart. Errors of the Redis client stop here.
"""

from __future__ import annotations

import asyncio
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

__all__ = ["DECIDE_SCRIPT", "MAX_BATCH", "RedisStore"]

log = logging.getLogger("mcp_bastion.quota")

# ARGV[1]: how many requests; then per request: how many buckets, then interval (µs), burst
# and cost per bucket; KEYS: every request's buckets in that order. Returns per request
# {0, "0"} when every one of its buckets admits (and records) it, else {i, wait_us} for its
# bucket that waits longest (1-based) and records nothing. Integers in microseconds (exact
# in a Lua double up to 2^53 µs, 285 years); the same arithmetic as gcra.admit. A key lives
# as long as its TAT is in the future: once it expires, absent and full are the same thing.
DECIDE_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local out = {}
local k, a = 0, 2
for r = 1, tonumber(ARGV[1]) do
  local n = tonumber(ARGV[a])
  a = a + 1
  local news = {}
  local refused, wait = 0, 0
  for i = 1, n do
    local interval, burst, cost = tonumber(ARGV[a]), tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
    a = a + 3
    local tat = tonumber(redis.call('GET', KEYS[k + i]))
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
  if refused == 0 then
    for i = 1, n do
      local ttl = math.ceil((news[i] - now) / 1000)
      if ttl < 1 then ttl = 1 end
      redis.call('SET', KEYS[k + i], string.format('%.0f', news[i]), 'PX', ttl)
    end
  end
  out[#out + 1] = refused
  out[#out + 1] = string.format('%.0f', wait)
  k = k + n
end
return out
"""
MAX_BATCH = 256  # requests per script call: bounds how long one call holds the server
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
        self._waiting: list[tuple[Sequence[Ask], asyncio.Future[Refusal | None]]] = []
        self._scheduled = False
        self._sending: set[asyncio.Future[None]] = set()

    async def take(self, asks: Sequence[Ask]) -> Refusal | None:
        if self._down_until is not None and self._clock() < self._down_until:
            raise StoreUnavailable("quota store unavailable")
        loop = asyncio.get_running_loop()
        decided: asyncio.Future[Refusal | None] = loop.create_future()
        self._waiting.append((asks, decided))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._send)  # after this turn: whatever else arrives in it joins
        return await decided

    def _send(self) -> None:
        self._scheduled = False
        batch, self._waiting = self._waiting[:MAX_BATCH], self._waiting[MAX_BATCH:]
        if self._waiting:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._send)
        task = asyncio.ensure_future(self._decide(batch))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _decide(self, batch: list[tuple[Sequence[Ask], asyncio.Future[Refusal | None]]]) -> None:
        prefix = self._prefix
        keys: list[str] = []
        args: list[int] = [len(batch)]
        for asks, _ in batch:
            args.append(len(asks))
            for ask in asks:
                keys.append(prefix + ask.key)
                args += (ask.interval, ask.burst, ask.cost)
        try:
            answer = await self._run(keys, args)
            results = [(int(answer[2 * i]), int(answer[2 * i + 1])) for i in range(len(batch))]
        except (RedisError, OSError, TimeoutError, ValueError, TypeError, IndexError) as exc:
            self._failed(type(exc).__name__)
            for _, decided in batch:
                if not decided.done():  # a caller that went away no longer waits
                    decided.set_exception(StoreUnavailable("quota store unavailable"))
            return
        except BaseException:
            for _, decided in batch:  # shutting down: nobody is left waiting forever
                decided.cancel()
            raise
        if self._down_until is not None:
            log.warning("quota store reachable again")
            self._down_until = None
        for (_, decided), (index, wait) in zip(batch, results, strict=True):
            if not decided.done():
                decided.set_result(Refusal(index - 1, wait) if index else None)

    def _failed(self, what: str) -> None:
        if self._down_until is None:
            log.warning("quota store unreachable (%s): rules decide by on_store_error", what)
        self._down_until = self._clock() + self._retry_seconds

    async def _run(self, keys: list[str], args: list[int]) -> Any:
        try:
            return await self._redis.evalsha(_DIGEST, len(keys), *keys, *args)
        except NoScriptError:
            return await self._redis.eval(DECIDE_SCRIPT, len(keys), *keys, *args)

    async def close(self) -> None:
        await asyncio.gather(*self._sending, return_exceptions=True)  # decisions under way end first
        await self._redis.aclose()
