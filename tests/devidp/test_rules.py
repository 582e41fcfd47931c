"""Pure rules: scopes, resources, PKCE, stores, client metadata."""

from __future__ import annotations

import pytest

from mcp_bastion.devidp._clients import RegisteredClient
from mcp_bastion.devidp._rfc7636 import check_challenge, s256, verifier_matches
from mcp_bastion.devidp._rfc8707 import select_resource
from mcp_bastion.devidp._scopes import grant, narrow, parse_scope, requested_for_resource
from mcp_bastion.devidp._stores import (
    CodeGrant,
    ExpiringMap,
    MemoryClientStore,
    MemoryCodeStore,
    MemoryRateLimiter,
    MemoryRefreshStore,
    RefreshGrant,
)
from mcp_bastion.errors import OAuthError

from .conftest import FakeClock

RESOURCE_SCOPES = ("read", "write")


@pytest.mark.parametrize(
    ("scope", "expected"),
    [
        (None, None),
        ("", None),
        ("offline_access", None),
        ("read", ("read",)),
        ("write read read", ("write", "read")),
        ("read  admin", ("read",)),
        ("read offline_access", ("read",)),
    ],
)
def test_requested_for_resource(scope: str | None, expected: tuple[str, ...] | None) -> None:
    assert requested_for_resource(scope, RESOURCE_SCOPES) == expected


@pytest.mark.parametrize("scope", ["admin", "admin other", 'read"', "read\\x"])
def test_requested_for_resource_errors(scope: str) -> None:
    with pytest.raises(OAuthError) as raised:
        requested_for_resource(scope, RESOURCE_SCOPES)
    assert raised.value.error == "invalid_scope"


@pytest.mark.parametrize(
    ("requested", "allowed", "expected"),
    [
        (None, None, ("read", "write")),
        (None, ("read",), ("read",)),
        (None, (), ()),
        (("write",), None, ("write",)),
        (("read", "write"), ("write",), ("write",)),
    ],
)
def test_grant(
    requested: tuple[str, ...] | None, allowed: tuple[str, ...] | None, expected: tuple[str, ...]
) -> None:
    assert grant(requested, RESOURCE_SCOPES, allowed) == expected


def test_grant_with_nothing_left_is_invalid_scope() -> None:
    with pytest.raises(OAuthError):
        grant(("write",), RESOURCE_SCOPES, ("read",))


def test_narrow() -> None:
    assert narrow(("read", "write"), None) == ("read", "write")
    assert narrow(("read", "write"), "write") == ("write",)
    with pytest.raises(OAuthError):
        narrow(("read",), "read write")


def test_parse_scope_deduplicates() -> None:
    assert parse_scope("a b a") == ("a", "b")


def test_select_resource() -> None:
    known = {"https://r.example/mcp"}
    assert select_resource(["https://r.example/mcp"], known) == "https://r.example/mcp"
    for values in ([], ["https://r.example/mcp"] * 2, ["https://r.example/mcp#x"], ["mcp"], ["https://x/y"]):
        with pytest.raises(OAuthError) as raised:
            select_resource(values, known)
        assert raised.value.error == "invalid_target"


def test_pkce_rfc7636_appendix_b_vector() -> None:
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert s256(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    assert verifier_matches(verifier, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")
    assert check_challenge("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", "S256")


def test_expiring_map() -> None:
    clock = FakeClock(0)
    entries: ExpiringMap[str, int] = ExpiringMap(clock, max_items=2)
    entries.set("a", 1, 10)
    assert entries.get("a") == 1
    clock.advance(10)
    assert entries.get("a") is None
    for name in ("b", "c", "d"):
        entries.set(name, 1, 100)
    assert entries.get("b") is None  # oldest evicted past the cap
    assert entries.pop("d") == 1
    assert entries.pop("d") is None


def test_expiring_map_sweeps_expired_entries() -> None:
    clock = FakeClock(0)
    entries: ExpiringMap[int, int] = ExpiringMap(clock)
    for n in range(300):
        entries.set(n, n, 1 if n < 200 else 1000)
        if n == 199:
            clock.advance(5)
    assert len(entries) <= 101 + 56


async def test_rate_limiter_window() -> None:
    clock = FakeClock(0)
    limiter = MemoryRateLimiter(clock, limit=2, window_s=60)
    assert await limiter.hit("a")
    clock.advance(30)
    assert await limiter.hit("a")
    assert not await limiter.hit("a")
    assert await limiter.hit("b")
    clock.advance(31)
    assert await limiter.hit("a")  # the first hit left the window


async def test_client_store_cap() -> None:
    store = MemoryClientStore(max_clients=2)
    for name in ("a", "b", "c"):
        await store.add(RegisteredClient(name))
    assert await store.get("a") is None
    assert await store.get("c") == RegisteredClient("c")


async def test_refresh_store_mark_used_once() -> None:
    clock = FakeClock(0)
    store = MemoryRefreshStore(clock)
    await store.save("d", RefreshGrant("f", "c", "s", "r", ()), 100)
    assert await store.mark_used("d")
    assert not await store.mark_used("d")  # the loser of a race is told so
    assert not await store.mark_used("unknown")
    entry = await store.find("d")
    assert entry is not None
    assert entry.used
    await store.revoke_family("f", 100)
    assert await store.find("d") is None


async def test_code_store_reports_reuse() -> None:
    clock = FakeClock(0)
    store = MemoryCodeStore(clock)
    code = CodeGrant("c", "u", "r", (), "s", "challenge", "family", refresh_allowed=True)
    await store.save("d", code, 60)
    first = await store.redeem("d", 1000)
    assert first is not None
    assert first.first_use
    clock.advance(500)  # past the code's TTL, still within the retention window
    again = await store.redeem("d", 1000)
    assert again is not None
    assert not again.first_use
