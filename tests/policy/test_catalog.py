"""The tool catalogue learned from tools/list: hostile entries skipped, size bounded."""

from __future__ import annotations

from typing import Any

from mcp_bastion.policy import ToolAnnotations, ToolCatalog
from mcp_bastion.policy.catalog import MAX_TOOLS


def test_learn_records_annotations_by_name() -> None:
    catalog = ToolCatalog()
    catalog.learn(
        [
            {"name": "read", "annotations": {"readOnlyHint": True}},
            {"name": "write", "annotations": {"destructiveHint": False}},
            {"name": "plain"},
        ]
    )
    assert len(catalog) == 3
    assert catalog.get("read") == ToolAnnotations(read_only=True, destructive=True)
    assert catalog.get("write") == ToolAnnotations(read_only=False, destructive=False)
    assert catalog.get("plain") == ToolAnnotations(read_only=False, destructive=True)
    assert catalog.get("missing") is None
    assert catalog.get("Read") is None


def test_learn_skips_hostile_entries() -> None:
    catalog = ToolCatalog()
    hostile: list[Any] = [
        None,
        "name",
        ["name", "x"],
        42,
        {"annotations": {"readOnlyHint": True}},
        {"name": None},
        {"name": 7},
        {"name": ["a"]},
        {"name": "ok", "annotations": "garbage"},
    ]
    catalog.learn(hostile)
    assert len(catalog) == 1
    assert catalog.get("ok") == ToolAnnotations(read_only=False, destructive=True)


def test_learn_again_replaces_annotations() -> None:
    catalog = ToolCatalog()
    catalog.learn([{"name": "t", "annotations": {"readOnlyHint": True}}])
    catalog.learn([{"name": "t", "annotations": {"readOnlyHint": False}}])
    assert len(catalog) == 1
    assert catalog.get("t") == ToolAnnotations(read_only=False, destructive=True)


def test_catalog_is_bounded_but_known_tools_still_update() -> None:
    catalog = ToolCatalog()
    catalog.learn({"name": f"tool-{i}"} for i in range(MAX_TOOLS + 50))
    assert len(catalog) == MAX_TOOLS
    assert catalog.get(f"tool-{MAX_TOOLS - 1}") is not None
    assert catalog.get(f"tool-{MAX_TOOLS}") is None
    catalog.learn([{"name": "tool-0", "annotations": {"readOnlyHint": True}}, {"name": "new"}])
    assert len(catalog) == MAX_TOOLS
    assert catalog.get("tool-0") == ToolAnnotations(read_only=True, destructive=True)
    assert catalog.get("new") is None


def test_new_catalog_is_empty_and_never_refreshed() -> None:
    catalog = ToolCatalog()
    assert len(catalog) == 0
    assert catalog.refreshed_at is None
