"""Each IdP's export uses that IdP's own field names and values (docs/idp-setup.md cites them)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from mcp_bastion.config import parse_config
from mcp_bastion.registry import idp_document, published_resources
from mcp_bastion.registry.idp import IDPS, entra_scope_id

CONFIG: dict[str, Any] = {
    "public_base_url": "https://mcp.example.com",
    "identity_providers": [{"name": "idp", "issuer": "https://idp.example"}],
    "servers": [
        {
            "name": "github",
            "title": "GitHub <tools>",
            "upstream": "http://10.0.0.5/mcp",
            "scopes": ["gh.destroy"],
        },
        {"name": "wiki", "upstream": "http://10.0.0.6/mcp"},
    ],
}
GITHUB, WIKI = "https://mcp.example.com/github/mcp", "https://mcp.example.com/wiki/mcp"


def export(idp: str) -> dict[str, Any]:
    return idp_document(idp, published_resources(parse_config(CONFIG)))


def test_entra_one_manifest_fragment_per_resource_with_permission_scopes() -> None:
    document = export("entra")

    assert document["idp"] == "entra"
    github, wiki = document["applications"]
    assert (github["server"], github["displayName"]) == ("github", "GitHub <tools>")
    assert github["manifest"]["identifierUris"] == [GITHUB]
    assert wiki["manifest"]["identifierUris"] == [WIKI]
    api = github["manifest"]["api"]
    assert api["requestedAccessTokenVersion"] == 1  # v1.0 tokens: `aud` is the identifier URI
    read, _write, admin, extra = api["oauth2PermissionScopes"]
    assert read == {
        "id": entra_scope_id(GITHUB, "tools.read"),
        "value": "tools.read",
        "type": "User",
        "isEnabled": True,
        "adminConsentDisplayName": "GitHub <tools>: tools.read",
        "adminConsentDescription": "GitHub <tools>: read-only tools, resources, prompts and completions",
        "userConsentDisplayName": "GitHub <tools>: tools.read",
        "userConsentDescription": "GitHub <tools>: read-only tools, resources, prompts and completions",
    }
    assert (admin["value"], admin["type"]) == ("admin", "Admin")
    assert "userConsentDisplayName" not in admin  # only an administrator consents to it
    assert extra["value"] == "gh.destroy"


def test_entra_permission_ids_are_stable_uuids_unique_per_resource_and_scope() -> None:
    first, again = export("entra"), export("entra")
    ids = [
        scope["id"]
        for app in first["applications"]
        for scope in app["manifest"]["api"]["oauth2PermissionScopes"]
    ]

    assert first == again  # exporting again changes nothing an admin pasted
    assert len(set(ids)) == len(ids) == 7
    assert all(uuid.UUID(value).version == 5 for value in ids)
    assert entra_scope_id(GITHUB, "tools.read") == "989f2a8b-a41a-5e3d-93e6-c700c0c95e2f"  # fixed forever


def test_okta_one_authorization_server_per_resource_and_its_scope_objects() -> None:
    github, wiki = export("okta")["authorizationServers"]

    assert github["authorizationServer"] == {
        "name": "GitHub <tools>",
        "description": "MCP server github behind mcp-bastion",
        "audiences": [GITHUB],
    }
    assert wiki["authorizationServer"]["audiences"] == [WIKI]
    assert github["scopes"][0] == {
        "name": "tools.read",
        "displayName": "GitHub <tools>: tools.read",
        "description": "GitHub <tools>: read-only tools, resources, prompts and completions",
        "consent": "IMPLICIT",
        "metadataPublish": "ALL_CLIENTS",
        "default": False,
    }
    assert [s["name"] for s in github["scopes"]] == ["tools.read", "tools.write", "admin", "gh.destroy"]


def test_keycloak_client_scopes_carry_an_audience_mapper_per_resource() -> None:
    scopes = {s["name"]: s for s in export("keycloak")["clientScopes"]}

    assert list(scopes) == ["tools.read", "tools.write", "admin", "gh.destroy"]
    read = scopes["tools.read"]
    assert read["protocol"] == "openid-connect"
    assert read["attributes"]["include.in.token.scope"] == "true"
    assert read["attributes"]["display.on.consent.screen"] == "true"
    assert read["attributes"]["consent.screen.text"] == read["description"]
    assert read["description"] == (
        "GitHub <tools>: read-only tools, resources, prompts and completions; "
        "wiki: read-only tools, resources, prompts and completions"
    )
    assert [m["config"]["included.custom.audience"] for m in read["protocolMappers"]] == [GITHUB, WIKI]
    assert read["protocolMappers"][0] == {
        "name": "audience github",
        "protocol": "openid-connect",
        "protocolMapper": "oidc-audience-mapper",
        "consentRequired": False,
        "config": {
            "included.custom.audience": GITHUB,
            "access.token.claim": "true",
            "id.token.claim": "false",
        },
    }
    # A scope only one server has adds only that server's audience.
    assert [m["config"]["included.custom.audience"] for m in scopes["gh.destroy"]["protocolMappers"]] == [
        GITHUB
    ]


def test_auth0_resource_servers_as_the_management_api_takes_them() -> None:
    github, wiki = export("auth0")["resourceServers"]

    assert github == {
        "name": "GitHub tools",  # Auth0 refuses '<' and '>' in names
        "identifier": GITHUB,
        "scopes": [
            {
                "value": "tools.read",
                "description": "GitHub <tools>: read-only tools, resources, prompts and completions",
            },
            {"value": "tools.write", "description": github["scopes"][1]["description"]},
            {"value": "admin", "description": github["scopes"][2]["description"]},
            {"value": "gh.destroy", "description": "GitHub <tools>: a scope this server defines"},
        ],
        "signing_alg": "RS256",
        "token_dialect": "rfc9068_profile",
    }
    assert wiki["identifier"] == WIKI


def test_generic_lists_resources_and_their_scopes() -> None:
    document = export("generic")

    assert document["resources"][1] == {
        "server": "wiki",
        "name": "wiki",
        "resource": WIKI,
        "scopes": [
            {
                "scope": "tools.read",
                "description": "wiki: read-only tools, resources, prompts and completions",
            },
            {"scope": "tools.write", "description": document["resources"][1]["scopes"][1]["description"]},
            {"scope": "admin", "description": document["resources"][1]["scopes"][2]["description"]},
        ],
    }


@pytest.mark.parametrize("idp", sorted(IDPS))
def test_every_idp_names_every_resource(idp: str) -> None:
    text = str(export(idp))

    assert GITHUB in text
    assert WIKI in text
