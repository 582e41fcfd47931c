"""From a call to a Cedar request: the principal's claims, the resource, the context, and the
uids partial evaluation needs. What is built must conform to the generated schema."""

from __future__ import annotations

import json
from typing import Any

import cedarpy
import pytest

from mcp_bastion.cedar.request import (
    PolicyInputError,
    PrincipalAttributes,
    TimeContext,
    build_request,
    cedar_uid,
)
from mcp_bastion.cedar.schema import CONTEXT_ATTRIBUTES, cedar_schema
from mcp_bastion.config.model import PolicyConfig, ScopeRegistryConfig
from mcp_bastion.mcp.calls import Call
from mcp_bastion.policy.decide import ToolAnnotations, annotations_of
from mcp_bastion.policy.scopes import ScopeRegistry

from .build import MONDAY_10, MONDAY_20, READ_ONLY, SATURDAY_10, person, tool_call

REGISTRY = ScopeRegistry.from_config(ScopeRegistryConfig())
CLAIMS = PolicyConfig(
    claims={
        "groups": {"claim": "groups"},
        "tenant": {"claim": "tid", "type": "string"},
        "realm_roles": {"claim": ["realm_access", "roles"]},
        "auth0_groups": {"claim": "https://example.com/groups"},
    }
)
ALL = CONTEXT_ATTRIBUTES


def _request(call: Call, annotations: ToolAnnotations | None = None, **options: Any) -> Any:
    principal = PrincipalAttributes(CLAIMS, REGISTRY).entity(person())
    settings: dict[str, Any] = {
        "server": "files",
        "trust_annotations": True,
        "time": TimeContext("UTC").at(MONDAY_10),
        "reads": ALL,
        "max_argument_bytes": 1024,
    }
    settings.update(options)
    return build_request(principal, call, annotations, **settings)


def test_the_principal_carries_identity_expanded_scopes_and_mapped_claims() -> None:
    who = person(
        scopes=frozenset({"tools.write"}),
        groups=["ops", "dev"],
        tid="t-1",
        realm_access={"roles": ["admin"]},
        **{"https://example.com/groups": "eng"},
    )
    attrs = PrincipalAttributes(CLAIMS, REGISTRY).entity(who)["attrs"]
    assert attrs == {
        "subject": "alice",
        "issuer": "https://idp.example",
        "client": "cli",
        "scopes": ["tools.read", "tools.write"],  # write implies read
        "groups": ["ops", "dev"],
        "tenant": "t-1",
        "realm_roles": ["admin"],
        "auth0_groups": ["eng"],  # one string is a set of one; the dotted name is read exactly
    }


def test_absent_claims_are_empty_and_no_client_is_empty_text() -> None:
    attrs = PrincipalAttributes(CLAIMS, REGISTRY).entity(person(client=None))["attrs"]
    assert (attrs["groups"], attrs["tenant"], attrs["realm_roles"], attrs["client"]) == ([], "", [], "")


@pytest.mark.parametrize(
    "claims",
    [
        {"groups": [1, 2]},
        {"groups": {"ops": True}},
        {"groups": 7},
        {"tid": ["a"]},
        {"tid": 3},
        {"realm_access": {"roles": [None]}},
    ],
)
def test_a_claim_of_another_shape_is_refused_without_its_value(claims: dict[str, Any]) -> None:
    with pytest.raises(PolicyInputError) as caught:
        PrincipalAttributes(CLAIMS, REGISTRY).entity(person(**claims))
    assert "principal." in str(caught.value)
    assert "ops" not in str(caught.value)


def test_a_tool_call_names_the_tool_its_server_and_trusted_annotations() -> None:
    request = _request(tool_call("grep", {"path": "/srv/a", "n": 3, "deep": {"x": [1]}}), READ_ONLY)
    assert request.action == {"type": "Action", "id": "tools/call"}
    assert request.resource == {"type": "Tool", "id": "grep"}
    tool = request.entities[2]
    assert tool["attrs"] == {"name": "grep", "server": "files", "read_only": True, "destructive": False}
    assert tool["parents"] == [{"type": "Server", "id": "files"}]
    # Strings as they are; other values as their JSON text.
    assert request.arguments["tags"] == {"path": "/srv/a", "n": "3", "deep": '{"x":[1]}'}
    assert request.context["arguments"] == {"__entity": {"type": "Arguments", "id": "call"}}


def test_a_read_only_tool_is_never_destructive() -> None:
    # MCP tools: destructiveHint is meaningful only when readOnlyHint is false; left out, it
    # defaults to true, which must not make a read-only tool count as destructive.
    hints = annotations_of({"annotations": {"readOnlyHint": True}})
    tool = _request(tool_call("grep"), hints).entities[2]
    assert (tool["attrs"]["read_only"], tool["attrs"]["destructive"]) == (True, False)


@pytest.mark.parametrize(("annotations", "trust"), [(None, True), (READ_ONLY, False), (None, False)])
def test_unknown_or_untrusted_annotations_are_the_worst_case(
    annotations: ToolAnnotations | None, trust: bool
) -> None:
    # A server cannot talk a tool into being read-only where its hints are not trusted.
    tool = _request(tool_call("grep"), annotations, trust_annotations=trust).entities[2]
    assert (tool["attrs"]["read_only"], tool["attrs"]["destructive"]) == (False, True)


def test_arguments_past_the_cap_or_not_an_object_are_refused() -> None:
    with pytest.raises(PolicyInputError, match="more than policies may be shown"):
        _request(tool_call("w", {"content": "x" * 2000}))
    with pytest.raises(PolicyInputError, match="not an object"):
        _request(tool_call("w", ["/etc/passwd"]))  # type: ignore[arg-type]
    # No policy reads them: neither cap nor shape matters, and no entity is built.
    request = _request(tool_call("w", {"content": "x" * 2000}), reads=frozenset({"time"}))
    assert request.arguments is None
    assert "arguments" not in request.context


def test_the_context_holds_only_what_policies_read() -> None:
    request = _request(tool_call("w", {}), reads=frozenset({"time"}))
    assert set(request.context) == {"time"}
    assert _request(tool_call("w", {}), reads=frozenset()).context == {}


def test_the_time_is_local_to_the_zone_and_to_the_minute() -> None:
    paris = TimeContext("Europe/Paris")
    assert paris.at(MONDAY_20 + 59)["time"] == {"hour": 21, "minute": 0, "weekday": 1}
    assert paris.at(MONDAY_20 + 59)["now"] == {"__extn": {"fn": "datetime", "arg": "2026-01-05T20:00:00Z"}}
    assert TimeContext("UTC").at(SATURDAY_10)["time"] == {"hour": 10, "minute": 0, "weekday": 6}


def test_resources_prompts_other_methods_and_plumbing() -> None:
    read = _request(Call("resources/read", "file:///a", 1, {"uri": "file:///a"}))
    assert read.resource == {"type": "Resource", "id": "file:///a"}
    assert read.entities[2]["attrs"] == {"uri": "file:///a", "server": "files"}
    subscribe = _request(Call("resources/subscribe", None, 1, {"uri": "file:///b"}))
    assert subscribe.resource == {"type": "Resource", "id": "file:///b"}
    prompt = _request(Call("prompts/get", "greet", 1, {"name": "greet", "arguments": {"who": "x"}}))
    assert (prompt.resource, prompt.arguments["tags"]) == ({"type": "Prompt", "id": "greet"}, {"who": "x"})
    other = _request(Call("x/unknown", None, 1, {}))
    assert (other.action["id"], other.resource, other.context["method"]) == (
        "other",
        {"type": "Server", "id": "files"},
        "x/unknown",
    )
    listing = _request(Call("tools/list", None, 1, {}))
    assert (listing.action["id"], listing.resource["type"]) == ("tools/list", "Server")
    with pytest.raises(PolicyInputError, match="uri"):
        _request(Call("resources/unsubscribe", None, 1, {"uri": 5}))


@pytest.mark.parametrize(
    "call",
    [
        tool_call("w", {"path": "/a", "n": 1}),
        tool_call("w"),
        Call("resources/read", "file:///a", 1, {"uri": "file:///a"}),
        Call("prompts/get", "greet", 1, {"name": "greet"}),
        Call("initialize", None, 1, {}),
        Call("x/unknown", None, 1, {}),
    ],
)
def test_what_is_built_conforms_to_the_schema(call: Call) -> None:
    # Cedar checks entities and the request against the schema: what the gateway builds is
    # exactly what the policies were validated against.
    schema = cedarpy.Schema.from_json_str(json.dumps(cedar_schema(CLAIMS)))
    request = _request(call, READ_ONLY)
    entities = [*request.entities, *([request.arguments] if request.arguments else [])]
    cedarpy.Entities.from_json_str(json.dumps(entities), schema)
    result = cedarpy.is_authorized(
        {
            "principal": request.principal,
            "action": request.action,
            "resource": request.resource,
            "context": request.context,
        },
        "permit (principal, action, resource);",
        entities,
        schema,
    )
    assert (result.allowed, result.diagnostics.errors) == (True, [])


@pytest.mark.parametrize(
    "identifier",
    [
        "alice",
        'a"b',
        "a'b",
        "back\\slash",
        "new\nline\ttab\rcr\0nul",
        "\u2028sep",
        "é ü 漢字",
        "\u0301combining",
    ],
)
def test_cedar_uid_is_the_form_cedar_insists_on(identifier: str) -> None:
    # Partial evaluation takes uids as text only, and refuses any but the normalized form.
    uid = cedar_uid("User", identifier)
    entities = [{"uid": {"type": "User", "id": identifier}, "attrs": {}, "parents": []}]
    policy = f"permit (principal == {uid}, action, resource);"
    result = cedarpy.is_authorized_partial(
        {"principal": uid, "action": 'Action::"a"', "resource": 'Server::"s"', "context": "{}"},
        policy,
        json.dumps(entities),
    )
    assert result.diagnostics.errors == []
    assert result.allowed
