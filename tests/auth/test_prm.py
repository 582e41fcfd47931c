"""Protected Resource Metadata (RFC 9728): where it lives and what it says."""

from __future__ import annotations

import orjson
import pytest

from mcp_bastion.auth import metadata_document, metadata_url


@pytest.mark.parametrize(
    ("resource", "url"),
    [
        (
            "https://gw.example/demo/mcp",
            "https://gw.example/.well-known/oauth-protected-resource/demo/mcp",
        ),
        ("https://gw.example/mcp", "https://gw.example/.well-known/oauth-protected-resource/mcp"),
        (
            "https://gw.example:8443/tenant/a/mcp",
            "https://gw.example:8443/.well-known/oauth-protected-resource/tenant/a/mcp",
        ),
        (
            "http://127.0.0.1:8000/demo/mcp",
            "http://127.0.0.1:8000/.well-known/oauth-protected-resource/demo/mcp",
        ),
        # §3.1: a terminating slash right after the host is removed ...
        ("https://gw.example/", "https://gw.example/.well-known/oauth-protected-resource"),
        ("https://gw.example", "https://gw.example/.well-known/oauth-protected-resource"),
        # ... while a path keeps its own (the URL must name exactly this resource).
        ("https://gw.example/demo/mcp/", "https://gw.example/.well-known/oauth-protected-resource/demo/mcp/"),
        ("https://[::1]:8000/demo/mcp", "https://[::1]:8000/.well-known/oauth-protected-resource/demo/mcp"),
    ],
)
def test_metadata_url_inserts_the_well_known_path(resource: str, url: str) -> None:
    assert metadata_url(resource) == url


def test_distinct_resources_get_distinct_metadata_urls() -> None:
    resources = [
        "https://gw.example/demo/mcp",
        "https://gw.example/demo/mcp/",
        "https://gw.example/notes/mcp",
    ]
    assert len({metadata_url(r) for r in resources}) == 3


def test_metadata_document_fields() -> None:
    document = orjson.loads(
        metadata_document(
            "https://gw.example/demo/mcp",
            ["https://idp.example", "https://idp2.example/tenant"],
            ["tools.read", "tools.write", "admin"],
            "Demo tools",
        )
    )
    assert document == {
        "resource": "https://gw.example/demo/mcp",
        "authorization_servers": ["https://idp.example", "https://idp2.example/tenant"],
        "scopes_supported": ["tools.read", "tools.write", "admin"],
        "bearer_methods_supported": ["header"],
        "resource_name": "Demo tools",
    }


def test_resource_is_byte_identical() -> None:
    resource = "https://GW.example:443/Demo/mcp"
    assert (
        orjson.loads(metadata_document(resource, ["https://idp.example"], [], None))["resource"] == resource
    )


@pytest.mark.parametrize(
    ("scopes", "listed"),
    [
        (["tools.read", "offline_access", "tools.write"], ["tools.read", "tools.write"]),
        (["offline_access"], []),
        (["tools.read", "tools.read", "admin", "tools.read"], ["tools.read", "admin"]),
        ([], []),
    ],
)
def test_scopes_supported_deduplicated_and_never_offline_access(scopes: list[str], listed: list[str]) -> None:
    document = orjson.loads(
        metadata_document("https://gw.example/x/mcp", ["https://idp.example"], scopes, "x")
    )
    assert document["scopes_supported"] == listed
    assert "offline_access" not in document["scopes_supported"]


@pytest.mark.parametrize("name", [None, ""])
def test_empty_resource_name_is_omitted(name: str | None) -> None:
    document = orjson.loads(metadata_document("https://gw.example/x/mcp", ["https://idp.example"], [], name))
    assert "resource_name" not in document
