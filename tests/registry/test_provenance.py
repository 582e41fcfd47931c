"""Where a tool's requirement comes from, checked against the gateway's own decision.

`requirement_of` mirrors `ServerPolicy.tool_requirement`; every case here asserts both the
expected answer (written out, not computed) and that the gateway's function gives the same
scopes, so a change to one without the other fails.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mcp_bastion.policy import ScopeRegistry, ServerPolicy, annotations_of
from mcp_bastion.registry.provenance import Requirement, requirement_of

REGISTRY = ScopeRegistry("r", "w", "a")
OVERRIDES = {"pinned": ("a", "extra")}
READ, WRITE = ("r",), ("w",)
DESTRUCTIVE = ("w", "boom")


def _tool(annotations: Any = None, *, absent: bool = False) -> dict[str, Any]:
    return {"name": "t"} if absent else {"name": "t", "annotations": annotations}


CASES = [
    # (name, tool definition or None, trust, destructive_scopes, expected)
    ("pinned", _tool({"readOnlyHint": True}), True, None, Requirement(("a", "extra"), "override")),
    ("pinned", None, True, None, Requirement(("a", "extra"), "override")),
    ("pinned", _tool({"readOnlyHint": True}), False, None, Requirement(("a", "extra"), "override")),
    ("t", None, True, None, Requirement(WRITE, "default")),
    ("t", None, True, DESTRUCTIVE, Requirement(DESTRUCTIVE, "default")),
    ("t", _tool(absent=True), True, None, Requirement(WRITE, "default")),
    ("t", _tool(absent=True), True, DESTRUCTIVE, Requirement(DESTRUCTIVE, "default")),
    ("t", _tool(["readOnlyHint"]), True, None, Requirement(WRITE, "default")),
    ("t", _tool("readOnly"), True, DESTRUCTIVE, Requirement(DESTRUCTIVE, "default")),
    ("t", _tool({}), True, DESTRUCTIVE, Requirement(DESTRUCTIVE, "default")),
    ("t", _tool({"readOnlyHint": True}), True, None, Requirement(READ, "annotation")),
    (
        "t",
        _tool({"readOnlyHint": True, "destructiveHint": True}),
        True,
        DESTRUCTIVE,
        Requirement(READ, "annotation"),
    ),
    ("t", _tool({"readOnlyHint": True}), False, None, Requirement(WRITE, "default")),
    ("t", _tool({"readOnlyHint": True}), False, DESTRUCTIVE, Requirement(DESTRUCTIVE, "default")),
    ("t", _tool({"readOnlyHint": "true"}), True, None, Requirement(WRITE, "default")),
    ("t", _tool({"readOnlyHint": 1}), True, DESTRUCTIVE, Requirement(DESTRUCTIVE, "default")),
    ("t", _tool({"destructiveHint": False}), True, DESTRUCTIVE, Requirement(WRITE, "annotation")),
    (
        "t",
        _tool({"readOnlyHint": False, "destructiveHint": False}),
        True,
        None,
        Requirement(WRITE, "annotation"),
    ),
    ("t", _tool({"destructiveHint": True}), True, None, Requirement(WRITE, "annotation")),
    ("t", _tool({"destructiveHint": True}), True, DESTRUCTIVE, Requirement(DESTRUCTIVE, "annotation")),
    ("t", _tool({"readOnlyHint": False}), True, DESTRUCTIVE, Requirement(DESTRUCTIVE, "default")),
    ("t", _tool({"destructiveHint": "false"}), True, DESTRUCTIVE, Requirement(DESTRUCTIVE, "default")),
    ("t", _tool({"destructiveHint": 0}), True, None, Requirement(WRITE, "default")),
    ("t", _tool({"destructiveHint": False}), False, DESTRUCTIVE, Requirement(DESTRUCTIVE, "default")),
]


def _policy(trust: bool, destructive: tuple[str, ...] | None) -> ServerPolicy:
    return ServerPolicy(REGISTRY, OVERRIDES, trust, destructive)


@pytest.mark.parametrize(("name", "tool", "trust", "destructive", "expected"), CASES)
def test_requirement_and_its_source(
    name: str,
    tool: dict[str, Any] | None,
    trust: bool,
    destructive: tuple[str, ...] | None,
    expected: Requirement,
) -> None:
    policy = _policy(trust, destructive)

    found = requirement_of(policy, name, tool)

    assert found == expected
    # The gateway decides with these scopes: the report must show exactly them.
    assert found.scopes == policy.tool_requirement(name, None if tool is None else annotations_of(tool))


HINT_VALUES = st.one_of(st.booleans(), st.none(), st.sampled_from(["true", "false", 0, 1, [], {}]))


@given(
    hints=st.dictionaries(
        st.sampled_from(["readOnlyHint", "destructiveHint", "idempotentHint"]), HINT_VALUES
    ),
    trust=st.booleans(),
    destructive=st.one_of(st.none(), st.just(DESTRUCTIVE)),
    name=st.sampled_from(["t", "pinned"]),
)
def test_the_scopes_always_equal_the_gateways(
    hints: dict[str, Any], trust: bool, destructive: tuple[str, ...] | None, name: str
) -> None:
    policy = _policy(trust, destructive)
    tool = {"name": name, "annotations": hints}

    assert requirement_of(policy, name, tool).scopes == policy.tool_requirement(name, annotations_of(tool))
