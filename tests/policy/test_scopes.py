"""The scope registry: default and custom hierarchies, exact matching only (TP-14)."""

from __future__ import annotations

import pytest

from mcp_bastion.config.model import ScopeRegistryConfig
from mcp_bastion.policy import ScopeRegistry

DEFAULT = ScopeRegistry.from_config(ScopeRegistryConfig())


@pytest.mark.parametrize(
    ("granted", "expanded"),
    [
        ((), set()),
        (("tools.read",), {"tools.read"}),
        (("tools.write",), {"tools.write", "tools.read"}),
        (("admin",), {"admin", "tools.write", "tools.read"}),
        (("admin", "tools.read"), {"admin", "tools.write", "tools.read"}),
        (("notes.edit",), {"notes.edit"}),
        (("tools.write", "notes.edit"), {"tools.write", "tools.read", "notes.edit"}),
    ],
)
def test_default_hierarchy_admin_includes_write_includes_read(
    granted: tuple[str, ...], expanded: set[str]
) -> None:
    assert DEFAULT.expand(granted) == frozenset(expanded)


@pytest.mark.parametrize(
    "granted",
    [
        "mcp:*",
        "*",
        "tools",
        "tools.*",
        "tools.",
        "tools.read.all",
        "tools.writer",
        "admins",
        "admin:all",
        "ADMIN",
        "Tools.Read",
        " admin",
        "admin ",
    ],
)
def test_tp14_no_wildcard_prefix_or_case_matching(granted: str) -> None:
    assert DEFAULT.expand([granted]) == frozenset({granted})


def test_registry_names_come_from_config() -> None:
    registry = ScopeRegistry.from_config(ScopeRegistryConfig(read="r", write="w", admin="root"))
    assert (registry.read, registry.write, registry.admin) == ("r", "w", "root")
    assert registry.expand(["root"]) == frozenset({"root", "w", "r"})
    assert registry.expand(["w"]) == frozenset({"w", "r"})
    # The default names mean nothing special once renamed.
    assert registry.expand(["admin"]) == frozenset({"admin"})


def test_custom_implies_is_closed_transitively() -> None:
    config = ScopeRegistryConfig(implies={"a": ("b",), "b": ("c",), "c": ("d",)})
    registry = ScopeRegistry.from_config(config)
    assert registry.expand(["a"]) == frozenset({"a", "b", "c", "d"})
    assert registry.expand(["c"]) == frozenset({"c", "d"})
    assert registry.expand(["d"]) == frozenset({"d"})


def test_custom_implies_replaces_the_default_hierarchy() -> None:
    registry = ScopeRegistry.from_config(ScopeRegistryConfig(implies={"notes.admin": ("notes.read",)}))
    assert registry.expand(["admin"]) == frozenset({"admin"})
    assert registry.expand(["tools.write"]) == frozenset({"tools.write"})
    assert registry.expand(["notes.admin"]) == frozenset({"notes.admin", "notes.read"})


def test_empty_implies_means_no_hierarchy() -> None:
    registry = ScopeRegistry.from_config(ScopeRegistryConfig(implies={}))
    assert registry.expand(["admin", "tools.write"]) == frozenset({"admin", "tools.write"})


def test_cyclic_implies_terminates() -> None:
    registry = ScopeRegistry.from_config(ScopeRegistryConfig(implies={"a": ("b",), "b": ("a", "c")}))
    assert registry.expand(["a"]) == frozenset({"a", "b", "c"})
    assert registry.expand(["b"]) == frozenset({"a", "b", "c"})


def test_bare_registry_has_no_hierarchy() -> None:
    assert ScopeRegistry().expand(["admin"]) == frozenset({"admin"})


def test_expansions_of_a_token_scope_set_are_remembered_and_equal_to_fresh_ones() -> None:
    registry = ScopeRegistry.from_config(ScopeRegistryConfig())
    granted = frozenset({"tools.write", "custom"})
    first = registry.expand(granted)
    assert first == {"tools.write", "tools.read", "custom"}
    assert registry.expand(granted) is first  # from the memo
    assert registry.expand(list(granted)) == first  # any other iterable: computed, same answer


def test_the_expansion_memo_stays_bounded_under_a_flood_of_distinct_scope_sets() -> None:
    # Scope sets come from tokens: many distinct ones (one per forged-but-valid token, say) must
    # not grow the memo without bound. It keeps the latest 1,024 (the oldest go first).
    registry = ScopeRegistry.from_config(ScopeRegistryConfig())
    for i in range(1500):
        assert registry.expand(frozenset({f"s{i}", "tools.write"})) == {f"s{i}", "tools.write", "tools.read"}
    assert len(registry._expanded) == 1024
    late = frozenset({"admin", "late"})
    assert registry.expand(late) == {"admin", "tools.write", "tools.read", "late"}
    assert len(registry._expanded) == 1024
    assert late in registry._expanded
    assert frozenset({"s0", "tools.write"}) not in registry._expanded
