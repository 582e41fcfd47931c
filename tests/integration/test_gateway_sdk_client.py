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
async def test_read_scope_lists_and_calls_only_read_tools(
    stack: tuple[LocalIssuer, RunningGateway], mode: str
) -> None:
    issuer, gw = stack
    token = issuer.token(audience=gw.url("demo"), scopes="tools.read")
    async with _client(gw.url("demo"), token, mode) as client:
        tools = await client.list_tools()
        names = {t.name for t in tools.tools}
        assert names == {"echo", "add"}
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
