"""What to register at the IdP, checked against what a running gateway publishes."""

from __future__ import annotations

from typing import Any

import httpx

from mcp_bastion.app import build_gateway
from mcp_bastion.audit import NullSink
from mcp_bastion.config import LoadedConfig, parse_config
from mcp_bastion.demo.stack import DemoOptions, build_demo_stack
from mcp_bastion.registry import published_resources

from ..support.gateway import serve_gateway
from ..support.servers import bind_loopback

SERVERS: list[dict[str, Any]] = [
    {
        "name": "github",
        "title": "GitHub",
        "upstream": "http://10.0.0.5:8080/mcp",
        "tools": {
            "delete_repository": {"scopes": ["admin"]},
            "merge": {"scopes": ["gh.merge", "tools.write"]},
        },
        "scopes": ["gh.extra", "gh.merge", "offline_access"],
        # gh.destroy is defined through `scopes.implies` only (below), not in `scopes`.
        "destructive_scopes": ["tools.write", "gh.destroy"],
    },
    {"name": "wiki", "upstream": "http://10.0.0.6:9000/mcp", "trust_annotations": False},
]


IMPLIES = {
    "admin": ["tools.write", "tools.read"],
    "tools.write": ["tools.read"],
    "gh.destroy": ["tools.write"],
}


def config(base: str, **extra: Any) -> dict[str, Any]:
    return {
        "public_base_url": base,
        "identity_providers": [{"name": "idp", "issuer": "https://idp.example"}],
        "servers": SERVERS,
        "scopes": {"implies": IMPLIES},
        **extra,
    }


def test_resources_are_byte_identical_to_the_running_gateways_metadata() -> None:
    sock = bind_loopback()
    port = sock.getsockname()[1]
    # Upper-case host and a trailing slash: the gateway canonicalizes; the export must agree.
    parsed = parse_config(config(f"HTTP://127.0.0.1:{port}/Edge/"))
    gateway = build_gateway(LoadedConfig(parsed, {}), audit=NullSink())
    exported = {r.server: r for r in published_resources(parsed)}

    with serve_gateway(gateway, sock, parsed), httpx.Client(trust_env=False) as http:
        documents = {
            name: http.get(
                f"http://127.0.0.1:{port}/.well-known/oauth-protected-resource/Edge/{name}/mcp"
            ).json()
            for name in ("github", "wiki")
        }

    for name, document in documents.items():
        assert exported[name].resource == document["resource"]
        assert exported[name].resource == f"http://127.0.0.1:{port}/Edge/{name}/mcp"
        scopes = [s.value for s in exported[name].scopes]
        assert set(document["scopes_supported"]) <= set(scopes)
    # The metadata's scopes, in its order, destructive_scopes included even when they are
    # defined only through `scopes.implies` (a call needs them; a client must be able to ask).
    github = [s.value for s in exported["github"].scopes]
    assert github == documents["github"]["scopes_supported"]
    assert github == ["tools.read", "tools.write", "admin", "gh.extra", "gh.merge", "gh.destroy"]
    assert [s.value for s in exported["wiki"].scopes] == documents["wiki"]["scopes_supported"]


def test_each_scope_says_what_it_allows_on_that_server() -> None:
    github, wiki = published_resources(parse_config(config("https://mcp.example.com")))

    described = {s.value: (s.description, s.admin) for s in github.scopes}
    assert described == {
        "tools.read": ("GitHub: read-only tools, resources, prompts and completions", False),
        "tools.write": (
            "GitHub: tools that change data; tools that may destroy data (annotated destructive, "
            "or not annotated); the tool merge; includes tools.read",
            False,
        ),
        "admin": (
            "GitHub: MCP methods the gateway does not classify; the tool delete_repository; "
            "includes tools.read, tools.write",
            True,
        ),
        "gh.extra": ("GitHub: a scope this server defines", False),
        "gh.merge": ("GitHub: the tool merge", False),
        "gh.destroy": (
            "GitHub: tools that may destroy data (annotated destructive, or not annotated); "
            "includes tools.read, tools.write",
            False,
        ),
    }
    assert wiki.title == "wiki"
    assert {s.value: s.description for s in wiki.scopes}["tools.write"] == (
        "wiki: every tool without a per-tool scope (this server's annotations are not trusted); "
        "includes tools.read"
    )


def test_a_custom_registry_and_hierarchy_are_what_is_published() -> None:
    custom = config(
        "https://mcp.example.com",
        scopes={
            "read": "mcp:read",
            "write": "mcp:write",
            "admin": "mcp:admin",
            "implies": {"mcp:write": ["mcp:read"]},
        },
    )
    custom["servers"] = [{"name": "one", "upstream": "http://10.0.0.5/mcp"}]

    [one] = published_resources(parse_config(custom))

    assert [(s.value, s.admin) for s in one.scopes] == [
        ("mcp:read", False),
        ("mcp:write", False),
        ("mcp:admin", True),
    ]
    assert one.scopes[1].description.endswith("; includes mcp:read")
    assert "includes" not in one.scopes[2].description  # this hierarchy gives admin nothing


def test_the_demos_resources_are_the_urls_it_tells_clients_to_use() -> None:
    stack = build_demo_stack(
        DemoOptions(), {"demo": "http://127.0.0.1:1/mcp", "notes": "http://127.0.0.1:2/mcp"}, port=8000
    )

    published = published_resources(stack.config)

    urls = {name: entry["url"] for name, entry in stack.client_config()["mcpServers"].items()}
    assert {r.server: r.resource for r in published} == urls
    assert all([s.value for s in r.scopes] == ["tools.read", "tools.write", "admin"] for r in published)
