"""The facade's Redis state against a real Valkey: two state objects (two replicas) racing on
the same code, refresh token and jti get one winner; sealed sign-ins open only with their
state; a store that is down raises StateUnavailable, and the next call after it is back works."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator

import pytest

from mcp_bastion.devidp._seal import seal, unseal
from mcp_bastion.devidp._stores import CodeGrant, RefreshGrant, StateUnavailable
from mcp_bastion.facade._redis_state import RedisFacadeState

from ..support.valkey import Valkey, running_valkey

GRANT = CodeGrant("client", "http://127.0.0.1:9/cb", "https://gw/mcp", ("a",), "alice", "ch", "fam-1", True)
RACERS = 20


@pytest.fixture(scope="module")
def valkey() -> Iterator[Valkey]:
    with running_valkey() as server:
        yield server


def _state(valkey: Valkey, prefix: str) -> RedisFacadeState:
    return RedisFacadeState(
        valkey.url,
        prefix=prefix,
        timeout=2,
        max_connections=RACERS,
        registration_limit_per_minute=3,
        registration_ttl=3600,
        clock=time.time,
    )


@pytest.fixture
async def replicas(valkey: Valkey, request: pytest.FixtureRequest) -> AsyncIterator[list[RedisFacadeState]]:
    prefix = f"t:{request.node.name}:"
    states = [_state(valkey, prefix), _state(valkey, prefix)]
    yield states
    for state in states:
        await state.aclose()


async def test_a_code_raced_at_two_replicas_has_one_first_use(replicas: list[RedisFacadeState]) -> None:
    a, b = replicas
    await a.stores.codes.save("digest", GRANT, time.time() + 60)
    racers = [(a if i % 2 else b).stores.codes.redeem("digest", time.time() + 600) for i in range(RACERS)]
    results = await asyncio.gather(*racers)
    assert all(result is not None and result.grant == GRANT for result in results)
    assert sum(1 for result in results if result is not None and result.first_use) == 1


async def test_a_refresh_token_raced_at_two_replicas_rotates_once(replicas: list[RedisFacadeState]) -> None:
    a, b = replicas
    grant = RefreshGrant("fam-2", "client", "alice", "https://gw/mcp", ("a", "b"))
    await a.stores.refresh_tokens.save("rt", grant, time.time() + 60)
    entry = await b.stores.refresh_tokens.find("rt")
    assert entry is not None
    assert entry.grant == grant
    assert not entry.used
    won = await asyncio.gather(
        *[(a if i % 2 else b).stores.refresh_tokens.mark_used("rt") for i in range(RACERS)]
    )
    assert won.count(True) == 1
    entry = await a.stores.refresh_tokens.find("rt")
    assert entry is not None
    assert entry.used
    await b.stores.refresh_tokens.revoke_family("fam-2", time.time() + 60)
    assert await a.stores.refresh_tokens.find("rt") is None


async def test_a_jti_raced_at_two_replicas_is_first_used_once(replicas: list[RedisFacadeState]) -> None:
    a, b = replicas
    until = time.time() + 60
    firsts = await asyncio.gather(
        *[(a if i % 2 else b).replays.first_use("jti-1", until) for i in range(RACERS)]
    )
    assert firsts.count(True) == 1


async def test_registrations_are_rate_limited_across_replicas(replicas: list[RedisFacadeState]) -> None:
    a, b = replicas
    hits = [await (a if i % 2 else b).stores.registrations.hit("10.0.0.1") for i in range(5)]
    assert hits == [True, True, True, False, False]  # the limit is 3 a minute, counted once


async def test_a_sign_in_is_taken_once_and_opens_only_with_its_state(
    replicas: list[RedisFacadeState],
) -> None:
    a, b = replicas
    sealed = seal("the-state", "pending sign-in", b"verifier")
    assert b"verifier" not in sealed
    assert unseal("another-state", "pending sign-in", sealed) is None
    await a.logins.save("k", sealed, time.time() + 60)
    taken = await asyncio.gather(b.logins.take("k"), a.logins.take("k"))
    assert sorted(taken, key=lambda x: x is None) == [sealed, None]
    assert unseal("the-state", "pending sign-in", sealed) == b"verifier"


async def test_a_store_that_is_down_fails_closed_and_recovers(valkey: Valkey) -> None:
    state = _state(valkey, "t:down:")
    try:
        valkey.kill()
        try:
            with pytest.raises(StateUnavailable):
                await state.stores.codes.redeem("digest", time.time() + 60)
            with pytest.raises(StateUnavailable):
                await state.replays.first_use("jti", time.time() + 60)
        finally:
            valkey.restart()
        # The same object, no restart: the next call reconnects.
        assert await state.replays.first_use("jti", time.time() + 60)
    finally:
        await state.aclose()
