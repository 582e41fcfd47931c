"""The generated Cedar schema: Cedar accepts it, it follows the config's claims, and the
example policies pass the validator against it."""

from __future__ import annotations

import json

import cedarpy
import pytest

from mcp_bastion.cedar.schema import ACTIONS, RESOURCE_TYPES, cedar_schema
from mcp_bastion.config.model import PolicyConfig
from mcp_bastion.policy.decide import OPEN_METHODS, READ_METHODS

from .build import AFTER_HOURS, BASELINE, DESTRUCTIVE, PATH_PREFIX


def _schema(policy: PolicyConfig | None = None) -> cedarpy.Schema:
    return cedarpy.Schema.from_json_str(json.dumps(cedar_schema(policy or PolicyConfig())))


def test_cedar_accepts_the_schema_and_it_names_every_action() -> None:
    text = str(_schema())
    for action in ACTIONS:
        assert f'"{action}"' in text


def test_every_method_the_scopes_know_has_its_own_action() -> None:
    # A method the decision point knows but the schema does not would be "other" to policies.
    known = (READ_METHODS | OPEN_METHODS | {"tools/call"}) - {""}
    assert known <= set(RESOURCE_TYPES)


def test_configured_claims_become_principal_attributes_of_their_type() -> None:
    policy = PolicyConfig(claims={"tenant": {"claim": "tid", "type": "string"}, "teams": {"claim": "t"}})
    attributes = cedar_schema(policy)[""]["entityTypes"]["User"]["shape"]["attributes"]
    assert attributes["tenant"] == {"type": "String"}
    assert attributes["teams"] == {"type": "Set", "element": {"type": "String"}}
    assert "groups" not in attributes  # a given mapping replaces the default
    assert {"subject", "issuer", "client", "scopes"} <= set(attributes)


@pytest.mark.parametrize("text", [BASELINE, DESTRUCTIVE, PATH_PREFIX, AFTER_HOURS])
def test_the_example_policies_pass_the_validator(text: str) -> None:
    result = cedarpy.validate_policies(text, _schema())
    assert result.validation_passed, [str(e) for e in result.errors]


@pytest.mark.parametrize(
    ("policy", "complaint"),
    [
        ('forbid (principal, action, resource) when { principal.grups.contains("x") };', "grups"),
        ('forbid (principal, action, resource) when { principal.groups == "ops" };', ""),
        (
            'forbid (principal, action == Action::"tools/call", resource) '
            'when { context.arguments.getTag("path") like "/x*" };',
            "path",
        ),
        ('forbid (principal, action == Action::"tools/list", resource) when { resource.destructive };', ""),
        ('forbid (principal, action == Action::"tools/call", resource) when { context.method == "x" };', ""),
        ('forbid (principal, action == Action::"tools/cal", resource);', ""),
    ],
)
def test_the_validator_refuses_what_would_never_match_or_fail_at_run_time(
    policy: str, complaint: str
) -> None:
    # A misspelt attribute, a set compared with a string, a tag read without hasTag, a tool's
    # attribute on a server, the `method` of a known action, an unknown action.
    result = cedarpy.validate_policies(policy, _schema())
    assert not result.validation_passed
    assert complaint in str(result.errors[0])
