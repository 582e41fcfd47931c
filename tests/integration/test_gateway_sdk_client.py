"""The official MCP SDK client through the real gateway to a real SDK upstream, both eras.

Tokens come from a test-controlled issuer (real keys, JWKS served over loopback); the
OAuth flow itself is covered in tests/e2e.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator

import httpx2
import pytest
from mcp.client.client import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from mcp_bastion.demo.upstreams import build_demo_upstream
from mcp_bastion.pipeline.listing import MISSING_SCOPES_META

from ..support.gateway import RunningGateway, running_gateway
from ..support.issuer import LocalIssuer, running_issuer
from ..support.servers import serve_asgi


@pytest.fixture
def stack() -> Iterator[tuple[LocalIssuer, RunningGateway]]:
    with running_issuer() as issuer, serve_asgi(build_demo_upstream()) as upstream:
        with running_gateway(issuer.issuer, {"demo": f"{upstream.base_url}/mcp"}) as gw:
            yield issuer, gw


@contextlib.asynccontextmanager
async def _client(url: str, token: str, mode: str) -> AsyncIterator[Client]:
    async with httpx2.AsyncClient(headers={"authorization": f"Bearer {token}"}, timeout=30) as http:
        async with Client(streamable_http_client(url, http_client=http), mode=mode) as client:
            yield client


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_read_scope_sees_write_tools_marked_but_calls_only_read_tools(
    stack: tuple[LocalIssuer, RunningGateway], mode: str
) -> None:
    issuer, gw = stack
    token = issuer.token(audience=gw.url("demo"), scopes="tools.read")
    async with _client(gw.url("demo"), token, mode) as client:
        tools = await client.list_tools()
        missing = {t.name: (t.meta or {}).get(MISSING_SCOPES_META) for t in tools.tools}
        assert {name for name, lacks in missing.items() if lacks is None} == {"echo", "add"}
        assert missing["set_greeting"] == ["tools.write"]  # the SDK's model keeps our _meta
        result = await client.call_tool("add", {"a": 2, "b": 3})
        assert not result.is_error
        with pytest.raises(MCPError):
            await client.call_tool("set_greeting", {"greeting": "hi"})


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_write_scope_calls_write_tools(stack: tuple[LocalIssuer, RunningGateway], mode: str) -> None:
    issuer, gw = stack
    token = issuer.token(audience=gw.url("demo"), scopes="tools.write")
    async with _client(gw.url("demo"), token, mode) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert {"echo", "add", "set_greeting", "reset_greeting"} <= names
        result = await client.call_tool("set_greeting", {"greeting": "hi"})
        assert not result.is_error
    event = gw.audit.wait_for(lambda e: e.method == "tools/call" and e.target == "set_greeting")
    assert event.decision == "allow"


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_strict_listing_hides_what_the_token_cannot_call(mode: str) -> None:
    # `tools_list: callable`: the SDK client with a tools.read token never sees the write tools
    # (so it has nothing to step up for); calling one by name is still refused.
    with running_issuer() as issuer, serve_asgi(build_demo_upstream()) as upstream:
        server = {"name": "demo", "upstream": f"{upstream.base_url}/mcp", "tools_list": "callable"}
        with running_gateway(issuer.issuer, {}, servers=[server]) as gw:
            token = issuer.token(audience=gw.url("demo"), scopes="tools.read")
            async with _client(gw.url("demo"), token, mode) as client:
                names = {t.name for t in (await client.list_tools()).tools}
                with pytest.raises(MCPError):
                    await client.call_tool("set_greeting", {"greeting": "hi"})
    assert names == {"echo", "add"}
