"""The one bounded cache: everything remembered between requests is keyed by what a client
chooses, so a bound is what keeps a client from growing the process until it dies."""

from __future__ import annotations

import pytest

from mcp_bastion.cache import BoundedCache


def test_the_bound_holds_however_many_keys_arrive() -> None:
    cache: BoundedCache[int, int] = BoundedCache(3)
    for i in range(1000):
        cache.put(i, i)
        assert len(cache) <= 3
    assert len(cache) == 3


def test_the_oldest_entry_goes_first() -> None:
    cache: BoundedCache[str, int] = BoundedCache(3)
    cache.put("a", 1)
    cache.put("b", 2)
    cache.put("c", 3)
    cache.put("d", 4)
    assert list(cache) == ["b", "c", "d"]
    assert cache.get("a") is None
    cache.put("e", 5)
    assert list(cache) == ["c", "d", "e"]


def test_a_hit_does_not_make_an_entry_younger() -> None:
    # Insertion order, not recency: a lookup costs nothing (no reordering on the hot path).
    cache: BoundedCache[str, int] = BoundedCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1
    cache.put("c", 3)
    assert "a" not in cache
    assert list(cache) == ["b", "c"]


def test_putting_an_existing_key_again_evicts_nothing() -> None:
    cache: BoundedCache[str, int] = BoundedCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    cache.put("a", 10)
    assert len(cache) == 2
    assert (cache.get("a"), cache.get("b")) == (10, 2)
    cache.put("b", 20)
    assert (cache.get("a"), cache.get("b")) == (10, 20)


def test_a_cache_of_one() -> None:
    cache: BoundedCache[str, str] = BoundedCache(1)
    cache.put("a", "x")
    cache.put("a", "y")
    assert cache.get("a") == "y"
    cache.put("b", "z")
    assert list(cache) == ["b"]


def test_pop_and_clear_make_room() -> None:
    cache: BoundedCache[str, int] = BoundedCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.pop("a") == 1
    assert cache.pop("a") is None
    cache.put("c", 3)
    assert list(cache) == ["b", "c"]  # the pop made room: nothing was evicted
    cache.clear()
    assert len(cache) == 0
    assert cache.get("b") is None


def test_falsy_values_are_stored_and_told_apart_from_a_miss_by_membership() -> None:
    cache: BoundedCache[str, bool] = BoundedCache(2)
    cache.put("no", False)
    assert cache.get("no") is False
    assert "no" in cache
    assert "other" not in cache


@pytest.mark.parametrize("size", [0, -1, -100])
def test_a_cache_without_room_is_refused(size: int) -> None:
    with pytest.raises(ValueError, match="at least one entry"):
        BoundedCache(size)
