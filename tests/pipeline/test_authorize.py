"""The authorize stage: every call of a request decided on its own, with a fake catalog refresher.

The refresher (the upstream's tool list, fetched when a call names a tool the gateway has
not seen) is IO: it must run only when its answer can change the decision, i.e. for an
unknown tool with no per-tool override, on a route that enforces scopes. A denial names
every scope the request's calls need, each once, in call order (DM-09: what this request
needs, not the catalogue), so a client stepping up to exactly those can make the request.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest

from mcp_bastion.auth.principal import Principal
from mcp_bastion.errors import InsufficientScope
from mcp_bastion.mcp.calls import Call
from mcp_bastion.pipeline.authorize import Authorize
from mcp_bastion.route import ServerRoute

from .fakes import exchange, principal, route

READ_ONLY = {"readOnlyHint": True}


class FakeRefresher:
    """Teaches the route's catalog `tools` when asked, and counts the asks."""

    def __init__(self, tools: Iterable[dict[str, Any]] = ()) -> None:
        self._tools = list(tools)
        self.calls: list[tuple[ServerRoute, Principal]] = []

    async def __call__(self, target: ServerRoute, who: Principal) -> None:
        self.calls.append((target, who))
        target.catalog.learn(self._tools)


async def _authorize(
    target: ServerRoute, who: Principal, calls: tuple[Call, ...], refresher: FakeRefresher
) -> tuple[tuple[str, ...], ...]:
    ex = exchange(target)
    ex.principal = who
    ex.calls = calls
    await Authorize(refresher)(ex)
    return ex.required


async def test_an_unknown_tool_is_looked_up_then_decided_by_what_was_learned() -> None:
    target = route()
    refresher = FakeRefresher([{"name": "search", "annotations": READ_ONLY}])
    reader = principal("tools.read")
    required = await _authorize(target, reader, (Call("tools/call", "search", 1),), refresher)
    assert required == (("tools.read",),)
    assert refresher.calls == [(target, reader)]  # with the caller: the credential is minted for them


async def test_an_unknown_tool_the_refresh_does_not_find_needs_the_write_scope() -> None:
    # Unknown annotations: destructive by default (MCP tools: destructiveHint defaults to true).
    refresher = FakeRefresher()
    with pytest.raises(InsufficientScope) as caught:
        await _authorize(route(), principal("tools.read"), (Call("tools/call", "x", 1),), refresher)
    assert caught.value.scopes == ("tools.write",)
    assert len(refresher.calls) == 1


async def test_a_known_tool_is_not_looked_up() -> None:
    target = route()
    target.catalog.learn([{"name": "search", "annotations": READ_ONLY}])
    refresher = FakeRefresher()
    required = await _authorize(
        target, principal("tools.read"), (Call("tools/call", "search", 1),), refresher
    )
    assert required == (("tools.read",),)
    assert refresher.calls == []


async def test_a_tool_with_a_config_override_is_not_looked_up() -> None:
    # Annotations could not change its requirement: config wins (policy/decide.py).
    target = route(tools={"deploy": {"scopes": ["ops.deploy"]}}, scopes=["ops.deploy"])
    refresher = FakeRefresher()
    required = await _authorize(
        target, principal("ops.deploy"), (Call("tools/call", "deploy", 1),), refresher
    )
    assert required == (("ops.deploy",),)
    assert refresher.calls == []


@pytest.mark.parametrize(
    ("call", "needs"),
    [
        (Call("ping", None, 1), ()),
        (Call("tools/list", None, 1), ()),
        (Call("resources/read", "file:///x", 1), ("tools.read",)),
        (Call("prompts/get", "p", 1), ("tools.read",)),
        (Call("sampling/unknown", None, 1), ("admin",)),
    ],
)
async def test_calls_other_than_tools_call_are_never_looked_up(call: Call, needs: tuple[str, ...]) -> None:
    refresher = FakeRefresher()
    required = await _authorize(route(), principal("admin"), (call,), refresher)
    assert required == (needs,)
    assert refresher.calls == []


async def test_a_route_with_auth_off_allows_everything_and_never_looks_up() -> None:
    refresher = FakeRefresher()
    calls = (Call("tools/call", "unknown", 1), Call("sampling/unknown", None, 2))
    required = await _authorize(route(auth=False), principal(), calls, refresher)
    # Still named per call (the audit feed shows what a call would need), never enforced.
    assert required == (("tools.write",), ("admin",))
    assert refresher.calls == []


async def test_required_is_recorded_per_call_in_order() -> None:
    target = route(tools={"deploy": {"scopes": ["ops.deploy", "tools.write"]}}, scopes=["ops.deploy"])
    target.catalog.learn([{"name": "search", "annotations": READ_ONLY}])
    calls = (
        Call("tools/call", "search", 1),
        Call("notifications/progress", None, None),
        Call("tools/call", "deploy", 2),
        Call("", None, "srv-1"),  # a client's response
    )
    required = await _authorize(target, principal("ops.deploy", "tools.write"), calls, FakeRefresher())
    assert required == (("tools.read",), (), ("ops.deploy", "tools.write"), ())


async def test_a_denial_names_every_scope_the_request_needs_once_each_in_order() -> None:
    target = route(
        tools={
            "a": {"scopes": ["x.one", "x.two"]},
            "b": {"scopes": ["x.two", "x.three"]},
            "c": {"scopes": ["x.four"]},
        },
        scopes=["x.one", "x.two", "x.three", "x.four"],
    )
    calls = (
        Call("tools/call", "b", 1),
        Call("tools/call", "c", 2),  # allowed: not named
        Call("ping", None, 3),
        Call("tools/call", "a", 4),
    )
    ex = exchange(target)
    ex.principal = principal("x.one", "x.four")
    ex.calls = calls
    with pytest.raises(InsufficientScope) as caught:
        await Authorize(FakeRefresher())(ex)
    # b needs x.two x.three, c x.four (held), a x.one x.two: the union of the whole request in
    # call order, held ones included (a client re-authorizing with only the named scopes would
    # otherwise lose x.four and fail on c: a step-up loop in a batch).
    assert caught.value.scopes == ("x.two", "x.three", "x.four", "x.one")
    assert ex.required == (("x.two", "x.three"), ("x.four",), (), ("x.one", "x.two"))


async def test_scope_hierarchy_admin_grants_write_grants_read() -> None:
    target = route()
    target.catalog.learn([{"name": "search", "annotations": READ_ONLY}, {"name": "edit"}])
    calls = (Call("tools/call", "search", 1), Call("tools/call", "edit", 2))
    for granted in ("admin", "tools.write"):
        required = await _authorize(target, principal(granted), calls, FakeRefresher())
        assert required == (("tools.read",), ("tools.write",))
    with pytest.raises(InsufficientScope):
        await _authorize(target, principal("tools.read"), calls, FakeRefresher())


async def test_a_denial_leaves_out_a_scope_another_named_one_grants() -> None:
    # A batch of a read call and a write call, by a read token: tools.write grants tools.read
    # (default hierarchy), so the challenge names tools.write alone.
    target = route(tools={"r": {"scopes": ["tools.read"]}, "w": {"scopes": ["tools.write"]}})
    ex = exchange(target)
    ex.principal = principal("tools.read")
    ex.calls = (Call("tools/call", "r", 1), Call("tools/call", "w", 2))
    with pytest.raises(InsufficientScope) as caught:
        await Authorize(FakeRefresher())(ex)
    assert caught.value.scopes == ("tools.write",)
