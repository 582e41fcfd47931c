"""The in-process store: all-or-nothing decisions, bounded memory whatever keys callers mint."""

from __future__ import annotations

from mcp_bastion.quota.store import Ask, MemoryStore, Refusal

SECOND = 1_000_000


class Clock:
    def __init__(self) -> None:
        self.now = 1_000 * SECOND

    def __call__(self) -> int:
        return self.now


async def test_a_request_refused_by_one_bucket_consumes_none_of_the_others() -> None:
    store = MemoryStore(100, Clock())
    wide, narrow = Ask("wide", SECOND, 10, 1), Ask("narrow", SECOND, 1, 1)
    assert await store.take([wide, narrow]) is None
    refusal = await store.take([wide, narrow])
    assert refusal == Refusal(1, SECOND)
    # `wide` was not charged for the refused request: nine more pass on it alone.
    assert [await store.take([wide]) for _ in range(9)] == [None] * 9
    assert await store.take([wide]) is not None


async def test_the_refusal_reported_is_the_one_that_waits_longest() -> None:
    store = MemoryStore(100, Clock())
    short, long = Ask("short", SECOND, 1, 1), Ask("long", 60 * SECOND, 1, 1)
    assert await store.take([short, long]) is None
    refusal = await store.take([short, long])
    assert refusal is not None
    assert (refusal.which, refusal.retry_after_us) == (1, 60 * SECOND)


async def test_time_refills_the_bucket() -> None:
    clock = Clock()
    store = MemoryStore(100, clock)
    ask = Ask("k", SECOND, 1, 1)
    assert await store.take([ask]) is None
    assert await store.take([ask]) is not None
    clock.now += SECOND
    assert await store.take([ask]) is None


async def test_a_flood_of_distinct_keys_stays_within_max_keys() -> None:
    # Keys may hold attacker-chosen tool names: a million of them must not grow the store.
    clock = Clock()
    store = MemoryStore(1_000, clock)
    for i in range(20_000):
        assert await store.take([Ask(f"tool-{i}", SECOND, 5, 1)]) is None
    assert len(store) == 1_000
    assert store.evicted_live == 19_000  # each dropped key only regains its burst


async def test_recently_used_keys_survive_a_flood_and_keep_their_state() -> None:
    clock = Clock()
    store = MemoryStore(100, clock)
    victim = Ask("busy-user", 60 * SECOND, 1, 1)
    assert await store.take([victim]) is None
    for i in range(1_000):
        # The busy key is used between flood keys, so it is never the least recently used.
        await store.take([Ask(f"flood-{i}", SECOND, 1, 1)])
        if i % 50 == 0:
            assert await store.take([victim]) is not None
    assert await store.take([victim]) is not None  # still limited: its state was kept
