"""The official MCP SDK client's full OAuth flow through the gateway, against panva's oidc-provider.

A third-party authorization server the gateway knows only by configuration: the gateway
discovers its keys from its metadata; the SDK finds it through the gateway's protected
resource metadata and runs the authorization code flow with PKCE and resource indicators
(the provider's scripted interactions approve as alice); the provider's RFC 9068 tokens
(``typ: at+jwt``, ``aud`` = the server URL) are what the gateway verifies.

Most tests use a pre-registered public client (the first entry of the MCP client
registration order); ``test_dynamic_registration_with_the_challenged_scope`` runs the same
flow with Dynamic Client Registration at the provider.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from mcp_bastion.app import build_gateway
from mcp_bastion.config import LoadedConfig, parse_config
from mcp_bastion.pipeline.listing import MISSING_SCOPES_META

from ..support.gateway import AuditFeed, serve_gateway
from ..support.servers import bind_loopback
from .demo_stack import running_demo_upstreams
from .oidc_provider.fixture import DEFAULT_CLIENTS, OidcProvider, StaticClient, start_oidc_provider
from .sdk_oauth import (
    REDIRECT_URI,
    MemoryTokenStorage,
    oauth_client,
    post_tools_list,
    preregistered,
)

pytestmark = [pytest.mark.e2e, pytest.mark.node]

MODES = ["legacy", "2026-07-28"]
SCOPES = ("tools.read", "tools.write", "admin")
# What an MCP client registers: public (PKCE, no secret), a loopback redirect URI.
SDK_CLIENT = StaticClient(
    "mcp-sdk-e2e",
    grant_types=("authorization_code", "refresh_token"),
    token_endpoint_auth_method="none",
    redirect_uris=(REDIRECT_URI,),
)


@dataclass(frozen=True)
class Stack:
    base_url: str
    op: OidcProvider
    audit: AuditFeed

    def url(self, name: str) -> str:
        return f"{self.base_url}/{name}/mcp"


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    # The gateway's socket is bound first: its server URLs are the provider's resources.
    sock = bind_loopback()
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    resources = {f"{base}/{name}/mcp": SCOPES for name in ("demo", "notes")}
    clients = (*DEFAULT_CLIENTS, SDK_CLIENT)
    with running_demo_upstreams() as upstreams, start_oidc_provider(resources, clients=clients) as op:
        config = {
            "public_base_url": base,
            "identity_providers": [{"name": "op", "issuer": op.issuer, "allow_insecure_http": True}],
            "servers": [{"name": name, "upstream": url} for name, url in upstreams.items()],
            "audit": {"sink": "none"},
        }
        audit = AuditFeed()
        parsed = parse_config(config)
        gateway = build_gateway(LoadedConfig(parsed, {}), audit=audit)
        with serve_gateway(gateway, sock, parsed):
            yield Stack(base, op, audit)


def sdk_storage() -> MemoryTokenStorage:
    return MemoryTokenStorage(preregistered(SDK_CLIENT.client_id))


@pytest.mark.parametrize("mode", MODES)
async def test_full_oauth_flow_lists_tools_and_calls_a_read_only_tool(stack: Stack, mode: str) -> None:
    url = stack.url("demo")
    async with oauth_client(url, mode=mode, storage=sdk_storage()) as (client, flow):
        tools = (await client.list_tools()).tools
        result = await client.call_tool("echo", {"text": "through oidc-provider"})
    names = {t.name for t in tools if MISSING_SCOPES_META not in (t.meta or {})}

    assert names == {"echo", "add"}  # a tools.read token may call only the read-only tools
    assert not result.is_error
    assert result.structured_content == {"result": "through oidc-provider"}
    assert (
        "GET",
        f"{stack.base_url}/.well-known/oauth-protected-resource/demo/mcp",
    ) in flow.requests
    assert flow.registrations == []  # pre-registered (see the module docstring)
    [authorization] = flow.authorizations
    assert authorization.url.startswith(f"{stack.op.authorization_endpoint}?")
    # The challenge's scope, plus offline_access because the provider lists it.
    assert authorization.scopes == {"tools.read", "offline_access"}
    assert authorization.resource == url
    [token_request] = flow.token_requests
    assert token_request.url == stack.op.token_endpoint
    assert token_request.grant_type == "authorization_code"
    assert token_request.resource == url
    version = "2025-11-25" if mode == "legacy" else mode
    echo = stack.audit.wait_for(
        lambda e: e.method == "tools/call" and e.target == "echo" and e.protocol_version == version
    )
    assert echo.decision == "allow"
    assert echo.issuer == stack.op.issuer
    assert echo.subject == stack.op.account
    assert echo.client_id == SDK_CLIENT.client_id


@pytest.mark.parametrize("mode", MODES)
async def test_write_tool_steps_up_to_tools_write(stack: Stack, mode: str) -> None:
    url = stack.url("notes")
    storage = sdk_storage()
    async with oauth_client(url, mode=mode, storage=storage) as (client, flow):
        listed = await client.call_tool("list_notes", {})
        assert len(flow.authorizations) == 1
        # 403 insufficient_scope → the SDK authorizes again for tools.write and retries.
        added = await client.call_tool("add_note", {"title": "step-up", "body": "granted"})

    assert not listed.is_error
    assert not added.is_error
    assert added.structured_content is not None
    assert added.structured_content["title"] == "step-up"
    [step_up] = [c for c in flow.challenges if c.status == 403]
    assert (step_up.param("error"), step_up.param("scope")) == ("insufficient_scope", "tools.write")
    first, second = flow.authorizations
    assert "tools.read" in first.scopes
    assert "tools.write" not in first.scopes
    assert "tools.write" in second.scopes
    assert second.resource == url
    assert [t.resource for t in flow.token_requests] == [url, url]
    assert storage.tokens is not None
    assert storage.tokens.scope is not None
    assert {"tools.read", "tools.write"} <= set(storage.tokens.scope.split())


async def test_token_for_one_server_is_refused_at_another(stack: Stack) -> None:
    storage = sdk_storage()
    async with oauth_client(stack.url("demo"), mode="legacy", storage=storage) as (client, _):
        await client.list_tools()

    response = await post_tools_list(stack.url("notes"), storage.access_token)

    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


@pytest.mark.parametrize("mode", MODES)
async def test_dynamic_registration_with_the_challenged_scope(stack: Stack, mode: str) -> None:
    async with oauth_client(stack.url("demo"), mode=mode) as (client, flow):
        tools = (await client.list_tools()).tools
    assert {t.name for t in tools if MISSING_SCOPES_META not in (t.meta or {})} == {"echo", "add"}
    assert flow.registrations == [stack.op.registration_endpoint]
