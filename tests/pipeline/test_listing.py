"""The `tools/list` filter: what a caller sees, and the marks that let a client step up.

`reachable` (the default) lists what the caller may call now plus what a step-up to scopes
the server publishes would allow; `callable` lists only the former (issue 9, part 2).
Every listed tool carries `io.github.mcp-bastion/requiredScopes`; one the caller cannot
call yet also `io.github.mcp-bastion/missingScopes`. Those keys are the gateway's word:
an upstream's own values under them are overwritten or removed, never relayed.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import pytest

from mcp_bastion.mcp.era import Era
from mcp_bastion.pipeline.exchange import Exchange
from mcp_bastion.pipeline.listing import filter_tool_list
from mcp_bastion.policy.decide import ToolAnnotations
from mcp_bastion.route import ServerRoute

from .fakes import exchange, principal, route

REQUIRED = "io.github.mcp-bastion/requiredScopes"  # the documented keys, spelled out
MISSING = "io.github.mcp-bastion/missingScopes"
LEGACY = Era("legacy", "2025-11-25")
MODERN = Era("modern", "2026-07-28")

TOOLS: list[dict[str, Any]] = [
    {"name": "search", "annotations": {"readOnlyHint": True}},
    {"name": "edit", "annotations": {"readOnlyHint": False, "destructiveHint": False}},
    {"name": "drop"},  # no annotations: destructive (MCP tools: destructiveHint defaults to true)
    {"name": "deploy", "annotations": {"readOnlyHint": True}},  # overridden in config below
]
SERVER = {
    "tools": {"deploy": {"scopes": ["ops.deploy"]}},
    "scopes": ["ops.deploy"],
}


def _list(
    target: ServerRoute, *scopes: str, tools: list[Any] | None = None, era: Era = LEGACY
) -> dict[str, Any]:
    ex = _exchange(target, scopes, era)
    result = {"tools": copy.deepcopy(TOOLS if tools is None else tools)}
    filter_tool_list(ex, result)
    return result


def _exchange(target: ServerRoute, scopes: tuple[str, ...], era: Era) -> Exchange:
    ex = exchange(target)
    ex.principal = principal(*scopes)
    ex.era = era
    return ex


def _marks(result: dict[str, Any]) -> dict[str, tuple[list[str], list[str] | None]]:
    return {tool["name"]: (tool["_meta"][REQUIRED], tool["_meta"].get(MISSING)) for tool in result["tools"]}


def _names(result: dict[str, Any]) -> list[str]:
    """`callable` lists carry no marks (nothing to step up to): the names are the answer."""
    assert all(REQUIRED not in tool.get("_meta", {}) for tool in result["tools"])
    return [tool["name"] for tool in result["tools"]]


async def test_reachable_lists_callable_and_step_up_tools_with_their_marks() -> None:
    result = _list(route(**SERVER), "tools.read")
    assert _marks(result) == {
        "search": (["tools.read"], None),
        "edit": (["tools.write"], ["tools.write"]),
        "drop": (["tools.write"], ["tools.write"]),
        "deploy": (["ops.deploy"], ["ops.deploy"]),
    }


async def test_every_scope_a_call_may_need_is_published_so_each_tool_is_reachable() -> None:
    # A tool override's scopes are published (the PRM's scopes_supported): reachable by step-up.
    target = route(scopes=["rockets.launch"], tools={"drop": {"scopes": ["tools.read", "rockets.launch"]}})
    assert _marks(_list(target, "tools.read"))["drop"] == (
        ["tools.read", "rockets.launch"],
        ["rockets.launch"],
    )
    # destructive_scopes too (policy.scopes.published_scopes; tests/registry covers those
    # defined only through scopes.implies): a client must be able to ask for what a call needs.
    target = route(scopes=["tools.destroy"], destructive_scopes=["tools.destroy"])
    assert _marks(_list(target, "tools.read"))["drop"] == (["tools.destroy"], ["tools.destroy"])
    assert _marks(_list(target, "tools.destroy"))["drop"] == (["tools.destroy"], None)


async def test_a_tool_needing_a_scope_the_server_does_not_publish_is_not_reachable() -> None:
    # Only a policy built with a narrower `published` set (no config does this today) can make a
    # denial unreachable: then the list hides the tool from everyone who lacks the scope.
    target = route(scopes=["tools.destroy"], destructive_scopes=["tools.destroy"])
    narrowed = dataclasses.replace(target, policy=dataclasses.replace(target.policy, published=frozenset()))
    assert "drop" not in _marks(_list(narrowed, "tools.read"))
    assert _marks(_list(narrowed, "tools.destroy"))["drop"] == (["tools.destroy"], None)


async def test_callable_lists_only_what_the_token_may_call_now() -> None:
    result = _list(route(tools_list="callable", **SERVER), "tools.read")
    assert _names(result) == ["search"]


async def test_a_broader_token_sees_more_as_callable() -> None:
    result = _list(route(tools_list="callable", **SERVER), "tools.write", "ops.deploy")
    # write grants read (default hierarchy); deploy needs ops.deploy (config wins over readOnlyHint)
    assert _names(result) == ["search", "edit", "drop", "deploy"]


async def test_without_trusted_annotations_a_read_only_hint_relaxes_nothing() -> None:
    result = _list(route(tools_list="callable", trust_annotations=False), "tools.read")
    assert result["tools"] == []


@pytest.mark.parametrize("mode", ["reachable", "callable"])
async def test_an_upstreams_forged_marks_are_overwritten_or_removed(mode: str) -> None:
    tools = [
        {
            "name": "search",
            "annotations": {"readOnlyHint": True},
            # An upstream telling the client it needs nothing, or something else entirely.
            "_meta": {REQUIRED: [], MISSING: ["admin"], "vendor.example/kept": 1},
        },
        {"name": "edit", "annotations": {"destructiveHint": False}, "_meta": {REQUIRED: [], MISSING: []}},
    ]
    result = _list(route(tools_list=mode), "tools.read", tools=tools)
    search = result["tools"][0]
    if mode == "reachable":
        assert search["_meta"] == {REQUIRED: ["tools.read"], "vendor.example/kept": 1}
        assert result["tools"][1]["_meta"] == {REQUIRED: ["tools.write"], MISSING: ["tools.write"]}
    else:  # no marks in this mode: the upstream's are removed, its own keys kept
        assert search["_meta"] == {"vendor.example/kept": 1}
        assert len(result["tools"]) == 1


@pytest.mark.parametrize("meta", ["a string", ["a", "list"], None, 42, True])
async def test_a_meta_that_is_not_an_object_is_replaced(meta: Any) -> None:
    tools = [{"name": "search", "annotations": {"readOnlyHint": True}, "_meta": meta}]
    result = _list(route(), "tools.read", tools=tools)
    assert result["tools"][0]["_meta"] == {REQUIRED: ["tools.read"]}


@pytest.mark.parametrize("auth", [True, False])
async def test_malformed_tools_are_dropped(auth: bool) -> None:
    tools: list[Any] = [
        "search",
        42,
        None,
        ["name", "search"],
        {"description": "no name"},
        {"name": 7},
        {"name": None},
        {"name": ["search"]},
        {"name": "ok", "annotations": {"readOnlyHint": True}},
    ]
    target = route() if auth else route(auth=False)
    result = _list(target, "tools.read", tools=tools)
    assert [tool["name"] for tool in result["tools"]] == ["ok"]


async def test_a_route_with_auth_off_lists_everything_unmarked() -> None:
    result = _list(route(auth=False, tools_list="callable", **SERVER))
    assert result["tools"] == TOOLS  # nothing removed, nothing added


@pytest.mark.parametrize(
    ("era", "expected"),
    [
        (MODERN, "private"),
        (LEGACY, None),
        (Era("legacy", "2025-03-26"), None),
        (Era("legacy", "2025-06-18"), None),
    ],
)
async def test_cache_scope_is_private_only_in_the_2026_07_28_era(era: Era, expected: str | None) -> None:
    # caching.mdx (2026-07-28): a list that differs per caller must not be shared across tokens;
    # earlier eras have no such field, and the gateway adds nothing they do not define.
    result = _list(route(), "tools.read", era=era)
    assert result.get("cacheScope") == expected


async def test_an_upstreams_public_cache_scope_is_made_private() -> None:
    ex = _exchange(route(), ("tools.read",), MODERN)
    result: dict[str, Any] = {"tools": copy.deepcopy(TOOLS), "cacheScope": "public"}
    filter_tool_list(ex, result)
    assert result["cacheScope"] == "private"


async def test_listed_annotations_are_learned_hidden_tools_included() -> None:
    target = route(tools_list="callable")
    _list(target, "tools.read")
    assert target.catalog.get("search") == ToolAnnotations(read_only=True, destructive=True)
    assert target.catalog.get("edit") == ToolAnnotations(read_only=False, destructive=False)
    assert target.catalog.get("drop") == ToolAnnotations(read_only=False, destructive=True)
    assert target.catalog.get("never-listed") is None


async def test_a_route_with_auth_off_passes_no_forged_marks() -> None:
    forged = [{"name": "t", "_meta": {REQUIRED: [], MISSING: [], "vendor/x": 1}}]
    result = _list(route(auth=False), tools=forged)
    assert result["tools"] == [{"name": "t", "_meta": {"vendor/x": 1}}]
