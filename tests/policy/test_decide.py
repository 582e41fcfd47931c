"""Scope requirements and the pure decide(): tables of (call, annotations, config) -> scopes."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

import pytest

from mcp_bastion.auth.principal import Principal
from mcp_bastion.config.model import ScopeRegistryConfig
from mcp_bastion.mcp.calls import Call
from mcp_bastion.policy import Decision, ServerPolicy, ToolAnnotations, annotations_of
from mcp_bastion.policy.decide import OPEN_METHODS, READ_METHODS, Permit, Refusal
from mcp_bastion.policy.scopes import ScopeRegistry

REGISTRY = ScopeRegistry.from_config(ScopeRegistryConfig())
READ_ONLY = ToolAnnotations(read_only=True, destructive=False)
WRITE = ToolAnnotations(read_only=False, destructive=False)
DESTRUCTIVE = ToolAnnotations(read_only=False, destructive=True)


def _policy(
    tool_scopes: dict[str, tuple[str, ...]] | None = None,
    *,
    trust: bool = True,
    destructive: tuple[str, ...] | None = None,
) -> ServerPolicy:
    return ServerPolicy(REGISTRY, tool_scopes or {}, trust, destructive)


def _tool(name: str) -> Call:
    return Call("tools/call", name, 1)


@pytest.mark.parametrize(
    ("annotations", "tool_scopes", "trust", "destructive", "required"),
    [
        # Annotations pick between the registry's read and write scopes.
        (READ_ONLY, None, True, None, ("tools.read",)),
        (WRITE, None, True, None, ("tools.write",)),
        (DESTRUCTIVE, None, True, None, ("tools.write",)),
        (DESTRUCTIVE, None, True, ("tools.danger",), ("tools.danger",)),
        (DESTRUCTIVE, None, True, ("tools.write", "tools.danger"), ("tools.write", "tools.danger")),
        (WRITE, None, True, ("tools.danger",), ("tools.write",)),
        (READ_ONLY, None, True, ("tools.danger",), ("tools.read",)),
        # readOnlyHint wins over destructiveHint (MCP: destructive is meaningful only when not read-only).
        (ToolAnnotations(read_only=True, destructive=True), None, True, ("tools.danger",), ("tools.read",)),
        # An unknown tool (no annotations) is treated as destructive.
        (None, None, True, None, ("tools.write",)),
        (None, None, True, ("tools.danger",), ("tools.danger",)),
        # Annotations not trusted: everything is destructive.
        (READ_ONLY, None, False, None, ("tools.write",)),
        (READ_ONLY, None, False, ("tools.danger",), ("tools.danger",)),
        (WRITE, None, False, ("tools.danger",), ("tools.danger",)),
        # A config override wins, in both directions, whatever the annotations say.
        (READ_ONLY, {"t": ("billing.write",)}, True, None, ("billing.write",)),
        (DESTRUCTIVE, {"t": ("tools.read",)}, True, ("tools.danger",), ("tools.read",)),
        (None, {"t": ("a", "b")}, False, None, ("a", "b")),
        (READ_ONLY, {"t": ()}, True, None, ()),
        # An override for another tool changes nothing.
        (READ_ONLY, {"other": ("x",)}, True, None, ("tools.read",)),
    ],
)
def test_tool_requirement_table(
    annotations: ToolAnnotations | None,
    tool_scopes: dict[str, tuple[str, ...]] | None,
    trust: bool,
    destructive: tuple[str, ...] | None,
    required: tuple[str, ...],
) -> None:
    policy = _policy(tool_scopes, trust=trust, destructive=destructive)
    assert policy.requirement(_tool("t"), annotations) == required
    assert policy.tool_requirement("t", annotations) == required


def test_tool_override_is_an_exact_name_match() -> None:
    policy = _policy({"send_email": ("mail.send",)})
    assert policy.requirement(_tool("send_email"), READ_ONLY) == ("mail.send",)
    # TP-02: case and homoglyph variants are other tools, not the overridden one.
    assert policy.requirement(_tool("Send_Email"), READ_ONLY) == ("tools.read",)
    assert policy.requirement(_tool("send_ema\u0456l"), None) == ("tools.write",)


# Every method a client sends in the MCP versions the gateway speaks, and what it needs,
# written out here: moving a method between tables in policy/decide.py must fail this test.
# "Resources and prompts are covered by read scopes"; protocol plumbing is open to any
# authenticated caller (tools/list is open because its result is filtered); anything else
# is default-deny for everyone but administrators.
METHOD_TABLE = [
    ("initialize", ()),
    ("ping", ()),
    ("server/discover", ()),
    ("subscriptions/listen", ()),
    ("logging/setLevel", ()),
    ("tools/list", ()),
    ("", ()),  # a client's JSON-RPC response (to a server's sampling or elicitation request)
    ("resources/list", ("tools.read",)),
    ("resources/templates/list", ("tools.read",)),
    ("resources/read", ("tools.read",)),
    ("resources/subscribe", ("tools.read",)),
    ("resources/unsubscribe", ("tools.read",)),
    ("prompts/list", ("tools.read",)),
    ("prompts/get", ("tools.read",)),
    ("completion/complete", ("tools.read",)),
    ("tasks/get", ("tools.read",)),
    ("tasks/result", ("tools.read",)),
    ("tasks/list", ("tools.read",)),
    ("tasks/cancel", ("tools.read",)),
    # Unknown, misspelled, server-side and look-alike methods.
    ("sampling/createMessage", ("admin",)),
    ("elicitation/create", ("admin",)),
    ("roots/list", ("admin",)),
    ("server/discovery", ("admin",)),
    ("discover", ("admin",)),
    ("tools/delete", ("admin",)),
    ("admin/shutdown", ("admin",)),
    ("Tools/list", ("admin",)),
    ("tools/list ", ("admin",)),
    ("resources/read/", ("admin",)),
    ("Resources/Read", ("admin",)),
    ("tools/call/x", ("admin",)),
    ("notifications/initialized", ("admin",)),  # a notification's name on a request
    ("x", ("admin",)),
]


@pytest.mark.parametrize(("method", "required"), METHOD_TABLE)
def test_method_requirements_table(method: str, required: tuple[str, ...]) -> None:
    assert _policy().requirement(Call(method, None, 1), None) == required
    assert _policy().requirement(Call(method, None, "req-1"), None) == required


def test_the_table_covers_every_method_the_policy_names() -> None:
    # A method added to the module's sets needs a row above, with the scope it is meant to need.
    assert {method for method, _ in METHOD_TABLE} >= (READ_METHODS | OPEN_METHODS)


@pytest.mark.parametrize(
    ("method", "required"),
    [
        ("notifications/initialized", ()),
        ("notifications/cancelled", ()),
        ("notifications/progress", ()),
        ("notifications/roots/list_changed", ()),
        ("notifications/", ()),
        ("notifications", ("admin",)),
        ("notificationsx/cancelled", ("admin",)),
        ("Notifications/initialized", ("admin",)),
        ("x/notifications/initialized", ("admin",)),
        ("sampling/createMessage", ("admin",)),
        ("resources/read", ("tools.read",)),
        ("ping", ()),
    ],
)
def test_notification_requirements(method: str, required: tuple[str, ...]) -> None:
    # A message without an id is a notification: those named notifications/… need nothing.
    assert _policy().requirement(Call(method, None, None), None) == required


def test_custom_registry_names_flow_into_requirements() -> None:
    registry = ScopeRegistry.from_config(ScopeRegistryConfig(read="r", write="w", admin="root"))
    policy = ServerPolicy(registry, {})
    assert policy.requirement(_tool("t"), READ_ONLY) == ("r",)
    assert policy.requirement(_tool("t"), WRITE) == ("w",)
    assert policy.requirement(Call("prompts/get", "p", 1), None) == ("r",)
    assert policy.requirement(Call("weird/method", None, 1), None) == ("root",)


def _decide(
    granted: tuple[str, ...], required: tuple[str, ...], registry: ScopeRegistry | None = None
) -> Decision:
    """The decision on a call of a tool whose configured requirement is `required`, by a
    caller whose token grants `granted` (unexpanded, as a token carries them)."""
    policy = ServerPolicy(registry or REGISTRY, {"t": required}, published=frozenset({"tools.write"}))
    principal = Principal("alice", "https://idp", None, frozenset(granted), "h", 0.0)
    return policy.decide(principal, Call("tools/call", "t", 1), None)


@pytest.mark.parametrize(
    ("granted", "required", "missing"),
    [
        ((), (), None),
        (("tools.read",), (), None),
        (("tools.read",), ("tools.read",), None),
        (("tools.read",), ("tools.write",), ("tools.write",)),
        (("tools.write",), ("tools.read",), None),
        (("tools.write",), ("tools.write",), None),
        (("admin",), ("tools.read",), None),
        (("admin",), ("tools.write",), None),
        (("admin",), ("admin",), None),
        (("tools.write",), ("admin",), ("admin",)),
        (("tools.read",), ("tools.write", "tools.danger"), ("tools.write", "tools.danger")),
        (("tools.write",), ("tools.write", "tools.danger"), ("tools.danger",)),
        (("admin",), ("tools.danger",), ("tools.danger",)),
        (("tools.danger",), ("tools.danger",), None),
        # TP-14: wildcards, prefixes and case variants grant nothing beyond themselves.
        (("mcp:*",), ("tools.read",), ("tools.read",)),
        (("*",), ("tools.read",), ("tools.read",)),
        (("tools",), ("tools.read",), ("tools.read",)),
        (("tools.*",), ("tools.write",), ("tools.write",)),
        (("admin.all",), ("admin",), ("admin",)),
        (("administrator",), ("admin",), ("admin",)),
        (("ADMIN",), ("tools.read",), ("tools.read",)),
        (("tools.read",), ("tools",), ("tools",)),
    ],
)
def test_decide_with_default_hierarchy(
    granted: tuple[str, ...], required: tuple[str, ...], missing: tuple[str, ...] | None
) -> None:
    decision = _decide(granted, required)
    if missing is None:
        assert decision == Decision(True, required)
    else:
        assert decision.allowed is False
        assert decision.required == required
        assert decision.missing == missing


def test_decide_expands_the_hierarchy_of_the_token_scopes() -> None:
    # A token carrying only "admin" may call a read tool: the registry's hierarchy applies.
    assert _decide(("admin",), ("tools.read",)).allowed is True
    assert _decide(("tools.read",), ("admin",)).allowed is False


def test_decide_with_custom_implies() -> None:
    registry = ScopeRegistry.from_config(
        ScopeRegistryConfig(implies={"notes.admin": ("notes.write",), "notes.write": ("notes.read",)})
    )
    assert _decide(("notes.admin",), ("notes.read", "notes.write"), registry).allowed is True
    assert _decide(("notes.admin",), ("tools.read",), registry).missing == ("tools.read",)
    # With a custom hierarchy, admin no longer implies the tool scopes.
    assert _decide(("admin",), ("tools.read",), registry).missing == ("tools.read",)


def test_deny_keeps_the_order_of_required_scopes() -> None:
    decision = _decide(("b",), ("c", "b", "a"))
    assert (decision.required, decision.missing) == (("c", "b", "a"), ("c", "a"))


def test_a_denial_is_reachable_only_when_every_missing_scope_is_published() -> None:
    # published = {"tools.write"} (see _decide): step-up can reach tools.write, not admin.
    assert _decide(("tools.read",), ("tools.write",)).reachable is True
    assert _decide(("tools.read",), ("tools.write", "admin")).reachable is False
    assert _decide(("tools.read",), ("admin",)).reachable is False
    assert _decide(("tools.write",), ("tools.write",)).reachable is False  # allowed: nothing to reach


def test_a_server_with_auth_off_allows_every_call_and_still_names_its_scopes() -> None:
    policy = ServerPolicy(REGISTRY, {"t": ("admin",)}, enforce=False)
    nobody = Principal("anonymous", "", None, frozenset(), "", 0.0)
    assert policy.decide(nobody, Call("tools/call", "t", 1), None) == Decision(True, ("admin",))


@pytest.mark.parametrize(
    ("tool", "expected"),
    [
        ({"name": "t"}, ToolAnnotations(read_only=False, destructive=True)),
        ({"name": "t", "annotations": None}, ToolAnnotations(read_only=False, destructive=True)),
        ({"name": "t", "annotations": {}}, ToolAnnotations(read_only=False, destructive=True)),
        ({"name": "t", "annotations": {"readOnlyHint": True}}, ToolAnnotations(True, True)),
        (
            {"name": "t", "annotations": {"readOnlyHint": True, "destructiveHint": False}},
            ToolAnnotations(True, False),
        ),
        ({"name": "t", "annotations": {"destructiveHint": False}}, ToolAnnotations(False, False)),
        ({"name": "t", "annotations": {"destructiveHint": True}}, ToolAnnotations(False, True)),
        # Hostile shapes: only the JSON booleans count; anything else keeps the safe default.
        ({"name": "t", "annotations": {"readOnlyHint": "true"}}, ToolAnnotations(False, True)),
        ({"name": "t", "annotations": {"readOnlyHint": 1}}, ToolAnnotations(False, True)),
        ({"name": "t", "annotations": {"readOnlyHint": [True]}}, ToolAnnotations(False, True)),
        ({"name": "t", "annotations": {"destructiveHint": "false"}}, ToolAnnotations(False, True)),
        ({"name": "t", "annotations": {"destructiveHint": 0}}, ToolAnnotations(False, True)),
        ({"name": "t", "annotations": {"destructiveHint": None}}, ToolAnnotations(False, True)),
        ({"name": "t", "annotations": [["readOnlyHint", True]]}, ToolAnnotations(False, True)),
        ({"name": "t", "annotations": "readOnlyHint"}, ToolAnnotations(False, True)),
        ({"name": "t", "annotations": True}, ToolAnnotations(False, True)),
        ({"name": "t", "annotations": 7}, ToolAnnotations(False, True)),
        # A hint at the top level is not an annotation.
        ({"name": "t", "readOnlyHint": True}, ToolAnnotations(False, True)),
        ({"name": "t", "annotations": MappingProxyType({"readOnlyHint": True})}, ToolAnnotations(True, True)),
    ],
)
def test_annotations_of(tool: dict[str, Any], expected: ToolAnnotations) -> None:
    assert annotations_of(tool) == expected


def test_hostile_annotations_cannot_lower_a_requirement() -> None:
    policy = _policy(destructive=("tools.danger",))
    tool = {"name": "t", "annotations": {"readOnlyHint": "true", "destructiveHint": "false"}}
    assert policy.requirement(_tool("t"), annotations_of(tool)) == ("tools.danger",)


def test_a_notification_name_on_a_request_is_an_unknown_method() -> None:
    policy = ServerPolicy(ScopeRegistry.from_config(ScopeRegistryConfig()), {})
    assert policy.requirement(Call("notifications/initialized", None, None), None) == ()
    assert policy.requirement(Call("notifications/initialized", None, 5), None) == ("admin",)


class _Refuse:
    """A check beyond scopes that refuses one tool by name."""

    def __init__(self, tool: str) -> None:
        self.tool = tool
        self.seen: list[str | None] = []

    def check(self, principal: Principal, call: Call, annotations: ToolAnnotations | None) -> Refusal | None:
        self.seen.append(call.name)
        return Refusal("refused by policy", ("rule-7",)) if call.name == self.tool else None


def test_a_check_refuses_a_call_scopes_allow_with_its_reason_and_rules() -> None:
    check = _Refuse("t")
    policy = ServerPolicy(REGISTRY, {"t": ("tools.read",)}, checks=(check,))
    alice = Principal("alice", "https://idp", None, frozenset({"admin"}), "h", 0.0)
    decision = policy.decide(alice, Call("tools/call", "t", 1), None)
    assert decision == Decision(False, ("tools.read",), (), False, "refused by policy", ("rule-7",))
    assert policy.decide(alice, Call("tools/call", "other", 2), None).allowed is True
    assert check.seen == ["t", "other"]


def test_a_refused_call_is_never_offered_as_a_step_up() -> None:
    # Scopes alone would make it reachable (tools.write is published); the check makes it not.
    policy = ServerPolicy(
        REGISTRY, {"t": ("tools.write",)}, published=frozenset({"tools.write"}), checks=(_Refuse("t"),)
    )
    reader = Principal("bob", "https://idp", None, frozenset({"tools.read"}), "h", 0.0)
    decision = policy.decide(reader, Call("tools/call", "t", 1), None)
    assert (decision.allowed, decision.missing, decision.reachable) == (False, (), False)


class _Permit:
    """A check that permits every call explicitly, naming its rule."""

    def __init__(self, rule: str) -> None:
        self.rule = rule

    def check(self, principal: Principal, call: Call, annotations: ToolAnnotations | None) -> Permit:
        return Permit((self.rule,))


def test_an_allowed_call_names_the_permits_that_allowed_it() -> None:
    # For the audit feed's policy_ids: which policies decided, for an allowed call too.
    policy = ServerPolicy(REGISTRY, {"t": ("tools.read",)}, checks=(_Permit("p-1"), _Permit("p-2")))
    reader = Principal("bob", "https://idp", None, frozenset({"tools.read"}), "h", 0.0)
    assert policy.decide(reader, Call("tools/call", "t", 1), None) == Decision(
        True, ("tools.read",), rules=("p-1", "p-2")
    )


def test_a_refusal_after_a_permit_names_only_the_refusing_rules() -> None:
    policy = ServerPolicy(REGISTRY, {"t": ("tools.read",)}, checks=(_Permit("p-1"), _Refuse("t")))
    reader = Principal("bob", "https://idp", None, frozenset({"tools.read"}), "h", 0.0)
    decision = policy.decide(reader, Call("tools/call", "t", 1), None)
    assert (decision.allowed, decision.rules) == (False, ("rule-7",))


def test_a_permit_never_stands_in_for_missing_scopes() -> None:
    policy = ServerPolicy(
        REGISTRY, {"t": ("tools.write",)}, published=frozenset({"tools.write"}), checks=(_Permit("p-1"),)
    )
    reader = Principal("bob", "https://idp", None, frozenset({"tools.read"}), "h", 0.0)
    decision = policy.decide(reader, Call("tools/call", "t", 1), None)
    assert (decision.allowed, decision.missing, decision.reachable) == (False, ("tools.write",), True)
