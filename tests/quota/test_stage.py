"""The quota stage around the upstream stage: what it refuses, what it holds, what it records."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest

from mcp_bastion.app import build_gateway
from mcp_bastion.audit import NullSink
from mcp_bastion.auth.principal import Principal
from mcp_bastion.config import LoadedConfig, parse_config
from mcp_bastion.errors import QuotaExceeded, QuotaUnavailable
from mcp_bastion.mcp.calls import Call
from mcp_bastion.pipeline.exchange import Exchange, RequestHeaders
from mcp_bastion.quota.concurrency import ConcurrencyCaps
from mcp_bastion.quota.config import QuotaRule
from mcp_bastion.quota.plan import QuotaPlan
from mcp_bastion.quota.stage import EnforceQuotas
from mcp_bastion.quota.store import Ask, MemoryStore, Refusal, StoreUnavailable
from mcp_bastion.route import ServerRoute
from mcp_bastion.trace import TraceContext

ALICE = Principal("alice", "https://idp.example", "app", frozenset(), "h", 1e12)
BOB = Principal("bob", "https://idp.example", "app", frozenset(), "h", 1e12)
ROUTE: ServerRoute = next(
    iter(
        build_gateway(
            LoadedConfig(
                parse_config(
                    {
                        "public_base_url": "http://127.0.0.1:8000",
                        "servers": [{"name": "srv", "upstream": "http://127.0.0.1:9/mcp", "auth": False}],
                    }
                ),
                {},
            ),
            audit=NullSink(),
        ).routes.values()
    )
)


def exchange(
    principal: Principal, method: str = "POST", calls: Sequence[Call] = (Call("tools/call", "t", 1),)
) -> Exchange:
    async def nothing(*_: Any) -> Any:
        return None

    ex = Exchange(
        {"method": method},
        nothing,
        nothing,
        ROUTE,
        RequestHeaders({}, [], 0),
        TraceContext("0" * 32, "0" * 16, "01"),
    )
    ex.principal = principal
    ex.calls = tuple(calls)
    return ex


class Upstream:
    """The stage behind: counts what reached it; `hold` keeps a call open until released."""

    def __init__(self) -> None:
        self.reached = 0
        self.entered = asyncio.Event()
        self.release = asyncio.Event()
        self.hold = False

    async def __call__(self, ex: Exchange) -> None:
        self.reached += 1
        self.entered.set()
        if self.hold:
            await self.release.wait()


def rule(**fields: Any) -> QuotaRule:
    return QuotaRule.model_validate(
        {"name": "per-user", "rate": 1, "per_seconds": 60, "key": ["subject"], **fields}
    )


async def test_a_refused_request_never_reaches_the_upstream_and_names_its_rule() -> None:
    upstream = Upstream()
    stage = EnforceQuotas(upstream, QuotaPlan([rule()]), MemoryStore(100), None)
    await stage(exchange(ALICE))
    ex = exchange(ALICE)
    with pytest.raises(QuotaExceeded) as caught:
        await stage(ex)
    assert upstream.reached == 1
    assert (caught.value.status, caught.value.quota, ex.quota) == (429, "per-user", "per-user")
    assert 59 <= caught.value.retry_after <= 60
    await stage(exchange(BOB))  # another subject has its own bucket
    assert upstream.reached == 2


class DownStore:
    async def take(self, asks: Sequence[Ask]) -> Refusal | None:
        raise StoreUnavailable("quota store unavailable")

    async def close(self) -> None: ...


async def test_a_store_outage_refuses_with_503_when_any_rule_fails_closed() -> None:
    upstream = Upstream()
    plan = QuotaPlan([rule(name="open-one", on_store_error="open"), rule(name="closed-one")])
    ex = exchange(ALICE)
    with pytest.raises(QuotaUnavailable) as caught:
        await EnforceQuotas(upstream, plan, DownStore(), None)(ex)
    assert (caught.value.status, caught.value.retry_after, ex.quota) == (503, 1, "closed-one")
    assert upstream.reached == 0


async def test_a_store_outage_lets_requests_pass_when_every_rule_fails_open() -> None:
    upstream = Upstream()
    plan = QuotaPlan([rule(on_store_error="open")])
    await EnforceQuotas(upstream, plan, DownStore(), None)(exchange(ALICE))
    assert upstream.reached == 1


@pytest.mark.parametrize(
    ("method", "quota"), [("POST", "concurrency.in_flight"), ("GET", "concurrency.streams")]
)
async def test_a_subject_holds_at_most_its_cap_until_the_upstream_call_ends(method: str, quota: str) -> None:
    upstream = Upstream()
    upstream.hold = True
    caps = ConcurrencyCaps(max_in_flight=1, max_streams=1)
    stage = EnforceQuotas(upstream, QuotaPlan([]), MemoryStore(16), caps)
    first = asyncio.ensure_future(stage(exchange(ALICE, method, ())))
    await asyncio.wait_for(upstream.entered.wait(), 5)
    ex = exchange(ALICE, method, ())
    with pytest.raises(QuotaExceeded) as caught:
        await stage(ex)
    assert (caught.value.status, ex.quota) == (429, quota)
    other = "GET" if method == "POST" else "POST"
    assert caps.open_count(ALICE, other == "GET") == 0  # streams and calls are counted apart
    bob = asyncio.ensure_future(stage(exchange(BOB, method, ())))  # another subject is not held up
    upstream.release.set()
    await asyncio.wait_for(asyncio.gather(first, bob), 5)
    assert caps.open_count(ALICE, method == "GET") == 0
    await stage(exchange(ALICE, method, ()))  # the place was given back
    assert upstream.reached == 3


async def test_a_call_refused_by_a_rate_rule_gives_its_concurrency_place_back() -> None:
    caps = ConcurrencyCaps(max_in_flight=1, max_streams=None)
    stage = EnforceQuotas(Upstream(), QuotaPlan([rule()]), MemoryStore(100), caps)
    await stage(exchange(ALICE))
    with pytest.raises(QuotaExceeded):
        await stage(exchange(ALICE))
    assert caps.open_count(ALICE, False) == 0


async def test_an_upstream_failure_gives_the_place_back_too() -> None:
    caps = ConcurrencyCaps(max_in_flight=1, max_streams=None)

    async def failing(ex: Exchange) -> None:
        raise RuntimeError("upstream broke")

    with pytest.raises(RuntimeError):
        await EnforceQuotas(failing, QuotaPlan([]), MemoryStore(16), caps)(exchange(ALICE))
    assert caps.open_count(ALICE, False) == 0
