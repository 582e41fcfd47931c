"""The list cache: one filtered list per (learned list, caller visibility), never shared across
callers whose decisions could differ."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from mcp_bastion.auth.principal import Principal
from mcp_bastion.mcp.calls import Call
from mcp_bastion.pinning import ToolPins, visibility_key
from mcp_bastion.pinning.views import LIST_BUDGET_TOOLS, MAX_LISTS, CatalogView
from mcp_bastion.policy.catalog import ToolCatalog
from mcp_bastion.policy.decide import Refusal, ToolAnnotations


def principal(scopes: str, **claims: Any) -> Principal:
    return Principal(
        "alice", "https://idp.example", None, frozenset(scopes.split()), "h", 1e12, claims=claims
    )


class ByGroup:
    """A check that reads a claim, and says so."""

    def check(self, principal: Principal, call: Call, annotations: ToolAnnotations | None) -> Refusal | None:
        return None if principal.claims.get("group") == "ops" else Refusal("ops only")

    def visibility(self, principal: Principal) -> Hashable:
        return principal.claims.get("group") == "ops"


class Silent:
    """A check that does not say what it reads."""

    def check(self, principal: Principal, call: Call, annotations: ToolAnnotations | None) -> Refusal | None:
        return None


def view_of(count: int = 3) -> CatalogView:
    tools = [{"name": f"t{i}"} for i in range(count)]
    return ToolPins("s", "off").learn(ToolCatalog(), tools)


def test_scopes_alone_key_the_cache_without_checks() -> None:
    assert visibility_key(principal("tools.read"), ()) == frozenset({"tools.read"})
    assert visibility_key(principal("tools.read", group="a"), ()) == visibility_key(
        principal("tools.read"), ()
    )


def test_each_check_adds_its_fingerprint_and_a_silent_check_turns_caching_off() -> None:
    ops, dev = principal("tools.read", group="ops"), principal("tools.read", group="dev")
    assert visibility_key(ops, (ByGroup(),)) != visibility_key(dev, (ByGroup(),))
    assert visibility_key(dev, (ByGroup(),)) == visibility_key(
        principal("tools.read", group="qa"), (ByGroup(),)
    )
    assert visibility_key(ops, (ByGroup(), Silent())) is None


def test_a_cached_list_is_built_once_per_visibility_and_copied_out() -> None:
    view = view_of()
    builds: list[str] = []

    def build(label: str) -> list[Any]:
        builds.append(label)
        return [label]

    reader, writer = principal("tools.read"), principal("tools.read tools.write")
    first = view.listing(reader, (), lambda: build("read"))
    second = view.listing(reader, (), lambda: build("read again"))
    assert view.listing(writer, (), lambda: build("write")) == ["write"]
    assert first == second == ["read"]
    assert first is not second  # the caller may replace its list; the cached one stays
    assert builds == ["read", "write"]


def test_without_a_key_every_list_is_built() -> None:
    view = view_of()
    builds: list[int] = []
    for i in range(3):
        view.listing(principal("tools.read"), (Silent(),), lambda i=i: builds.append(i) or [])
    assert builds == [0, 1, 2]
    assert len(view.lists) == 0


def test_the_cache_is_bounded_by_entries_and_by_tools() -> None:
    small = view_of(3)
    for i in range(MAX_LISTS + 10):
        small.listing(principal(f"scope-{i}"), (), list)
    assert len(small.lists) == MAX_LISTS
    big = view_of(LIST_BUDGET_TOOLS // 2)
    for i in range(5):
        big.listing(principal(f"scope-{i}"), (), list)
    assert len(big.lists) == 2
