"""The sample upstreams, served by real uvicorn on loopback, driven by the official SDK client.

Every test runs once per protocol era: ``legacy`` (2025-11-25: initialize + session) and the
client's default, which discovers 2026-07-28 (stateless).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from mcp.client.client import Client
from mcp.shared.exceptions import MCPError
from mcp_types import CallToolResult, TextContent, TextResourceContents

from mcp_bastion.demo.upstreams import build_demo_upstream, build_notes_upstream
from tests.support.servers import serve_asgi

MODES = {"legacy": "2025-11-25", "auto": "2026-07-28"}


@pytest.fixture(params=list(MODES), ids=lambda mode: f"{mode}->{MODES[mode]}")
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@asynccontextmanager
async def connected(build: Any, mode: str) -> AsyncIterator[Client]:
    """A fresh upstream app under uvicorn and an SDK client connected to its ``/mcp``."""
    with serve_asgi(build()) as server:
        async with Client(f"{server.base_url}/mcp", mode=mode) as client:
            assert client.protocol_version == MODES[mode]
            yield client


def text_of(result: CallToolResult) -> str:
    assert not result.is_error, result
    block = result.content[0]
    assert isinstance(block, TextContent)
    return block.text


async def annotations_by_tool(client: Client) -> dict[str, tuple[bool | None, bool | None]]:
    hints = {}
    for tool in (await client.list_tools()).tools:
        assert tool.annotations is not None, f"{tool.name} has no annotations"
        hints[tool.name] = (tool.annotations.read_only_hint, tool.annotations.destructive_hint)
    return hints


async def test_demo_lists_tools_with_their_risk_annotations(mode: str) -> None:
    async with connected(build_demo_upstream, mode) as client:
        assert client.server_info is not None
        assert client.server_info.name == "demo"
        assert await annotations_by_tool(client) == {
            "echo": (True, False),
            "add": (True, False),
            "set_greeting": (False, False),
            "reset_greeting": (False, True),
        }


async def test_demo_tools_resource_and_prompt(mode: str) -> None:
    async with connected(build_demo_upstream, mode) as client:
        assert text_of(await client.call_tool("echo", {"text": "ping"})) == "ping"
        assert text_of(await client.call_tool("add", {"a": 2, "b": 40})) == "42"
        assert text_of(await client.call_tool("set_greeting", {"greeting": "Ahoy"})) == "Ahoy"

        contents = (await client.read_resource("demo://greeting", cache_mode="bypass")).contents
        assert contents == [TextResourceContents(uri="demo://greeting", mime_type="text/plain", text="Ahoy")]

        prompt = await client.get_prompt("greet", {"name": "Ada"})
        message = prompt.messages[0].content
        assert isinstance(message, TextContent)
        assert "Ada" in message.text
        assert "Ahoy" in message.text

        assert text_of(await client.call_tool("reset_greeting", {})) == "Hello"
        contents = (await client.read_resource("demo://greeting", cache_mode="bypass")).contents
        assert isinstance(contents[0], TextResourceContents)
        assert contents[0].text == "Hello"


async def test_notes_lists_tools_with_their_risk_annotations(mode: str) -> None:
    async with connected(build_notes_upstream, mode) as client:
        assert client.server_info is not None
        assert client.server_info.name == "notes"
        assert await annotations_by_tool(client) == {
            "list_notes": (True, False),
            "read_note": (True, False),
            "add_note": (False, False),
            "delete_note": (False, True),
        }


async def test_notes_lifecycle_template_and_prompt(mode: str) -> None:
    async with connected(build_notes_upstream, mode) as client:
        added = await client.call_tool("add_note", {"title": "Groceries", "body": "milk, eggs"})
        note = json.loads(text_of(added))
        assert note == {"id": "1", "title": "Groceries", "body": "milk, eggs"}

        listed = await client.call_tool("list_notes", {})
        assert listed.structured_content == {"result": [{"id": "1", "title": "Groceries"}]}
        assert json.loads(text_of(await client.call_tool("read_note", {"note_id": "1"}))) == note

        templates = (await client.list_resource_templates()).resource_templates
        assert [t.uri_template for t in templates] == ["notes://{note_id}"]
        contents = (await client.read_resource("notes://1")).contents
        assert isinstance(contents[0], TextResourceContents)
        assert contents[0].text == "# Groceries\n\nmilk, eggs\n"

        prompt = await client.get_prompt("summarize_note", {"note_id": "1"})
        message = prompt.messages[0].content
        assert isinstance(message, TextContent)
        assert "notes://1" in message.text

        assert text_of(await client.call_tool("delete_note", {"note_id": "1"})) == "1"
        missing = await client.call_tool("read_note", {"note_id": "1"})
        assert missing.is_error
        with pytest.raises(MCPError, match="No note with id '1'"):
            await client.read_resource("notes://1", cache_mode="bypass")


async def test_each_notes_app_has_its_own_notebook() -> None:
    async with connected(build_notes_upstream, "auto") as client:
        await client.call_tool("add_note", {"title": "only here", "body": "."})
    async with connected(build_notes_upstream, "auto") as client:
        listed = await client.call_tool("list_notes", {})
        assert listed.structured_content == {"result": []}


def test_upstream_ignores_foreign_host_and_forwarded_bearer_token() -> None:
    """Behind the gateway the upstream sees the gateway's Host (or the public one) and a minted JWT."""
    discover = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "server/discover",
        "params": {
            "_meta": {
                "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                "io.modelcontextprotocol/clientCapabilities": {},
            }
        },
    }
    headers = {
        "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": "2026-07-28",
        "Mcp-Method": "server/discover",
        "Host": "bastion.example.com",
        "Origin": "https://bastion.example.com",
        "Authorization": "Bearer eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhZGEifQ.c2ln",
    }
    with serve_asgi(build_demo_upstream()) as server:
        response = httpx.post(f"{server.base_url}/mcp", json=discover, headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    assert "2026-07-28" in response.text
