"""The official MCP SDK client runs its whole OAuth flow through the gateway to the demo's dev IdP.

401 → protected resource metadata → authorization server metadata → dynamic registration
→ authorization code with PKCE (auto-approved as alice) → token for the resource → MCP,
in both protocol eras. Nothing is stubbed: the stack is the one ``mcp-bastion demo`` runs.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from mcp.types import Tool

from mcp_bastion.demo.stack import DemoStack
from mcp_bastion.pipeline.listing import MISSING_SCOPES_META, REQUIRED_SCOPES_META

from .demo_stack import running_demo_stack
from .sdk_oauth import MemoryTokenStorage, bearer_client, oauth_client, post_tools_list

pytestmark = pytest.mark.e2e

MODES = ["legacy", "2026-07-28"]


@pytest.fixture(scope="module")
def demo() -> Iterator[DemoStack]:
    with running_demo_stack() as stack:
        yield stack


@pytest.mark.parametrize("mode", MODES)
async def test_full_oauth_flow_lists_tools_and_calls_a_read_only_tool(demo: DemoStack, mode: str) -> None:
    url = demo.server_url("demo")
    async with oauth_client(url, mode=mode) as (client, flow):
        tools = (await client.list_tools()).tools
        result = await client.call_tool("add", {"a": 2, "b": 3})

    # A tools.read token may call the read-only tools; the write tools are listed for step-up.
    assert _callable_now(tools) == {"echo", "add"}
    assert {tool.name for tool in tools} == {"echo", "add", "set_greeting", "reset_greeting"}
    assert not result.is_error
    assert result.structured_content == {"result": 5}
    assert flow.registrations == [f"{demo.issuer}/register"]
    [challenge] = flow.challenges
    assert (challenge.status, challenge.param("scope")) == (401, "tools.read")
    [authorization] = flow.authorizations
    assert authorization.url.startswith(f"{demo.issuer}/authorize?")
    assert authorization.scopes == {"tools.read"}  # what the 401 challenge asked for
    assert authorization.resource == url
    assert authorization.params["code_challenge_method"] == "S256"
    [token_request] = flow.token_requests
    assert token_request.grant_type == "authorization_code"
    assert token_request.url == f"{demo.issuer}/token"
    assert token_request.resource == url
    assert "code_verifier" in token_request.form


@pytest.mark.parametrize("mode", MODES)
async def test_a_read_only_client_sees_a_write_tool_calls_it_and_steps_up(demo: DemoStack, mode: str) -> None:
    # The client asks for what the 401 names (tools.read), as the SDK does; nothing tells it
    # tools.write exists but the list. It picks a listed tool it cannot call yet, calls it,
    # follows the 403 insufficient_scope, and the call succeeds after one new authorization.
    url = demo.server_url("demo")
    async with oauth_client(url, mode=mode) as (client, flow):
        tools = (await client.list_tools()).tools
        [step_up_tool] = [t for t in tools if t.name == "set_greeting"]
        meta = step_up_tool.meta or {}
        assert meta[MISSING_SCOPES_META] == ["tools.write"]
        assert meta[REQUIRED_SCOPES_META] == ["tools.write"]
        result = await client.call_tool(step_up_tool.name, {"greeting": "Bonjour"})
        after = (await client.list_tools()).tools

    assert not result.is_error
    assert result.structured_content == {"result": "Bonjour"}
    first, second = flow.authorizations
    assert first.scopes == {"tools.read"}
    assert "tools.write" in second.scopes
    assert [c.status for c in flow.challenges] == [401, 403]
    assert _callable_now(after) == {"echo", "add", "set_greeting", "reset_greeting"}


def _callable_now(tools: list[Tool]) -> set[str]:
    return {t.name for t in tools if MISSING_SCOPES_META not in (t.meta or {})}


@pytest.mark.parametrize("mode", MODES)
async def test_write_tool_steps_up_to_tools_write(demo: DemoStack, mode: str) -> None:
    url = demo.server_url("demo")
    async with oauth_client(url, mode=mode) as (client, flow):
        before = await client.call_tool("echo", {"text": "hi"})
        assert len(flow.authorizations) == 1
        # 403 insufficient_scope → the SDK authorizes again for tools.write and retries.
        result = await client.call_tool("set_greeting", {"greeting": "Howdy"})
        names = {tool.name for tool in (await client.list_tools()).tools}

    assert not before.is_error
    assert not result.is_error
    assert result.structured_content == {"result": "Howdy"}
    [step_up] = [c for c in flow.challenges if c.status == 403]
    assert step_up.param("error") == "insufficient_scope"
    assert step_up.param("scope") == "tools.write"
    first, second = flow.authorizations
    assert first.scopes == {"tools.read"}
    assert "tools.write" in second.scopes
    assert second.resource == url
    assert [t.grant_type for t in flow.token_requests] == ["authorization_code", "authorization_code"]
    assert all(t.resource == url for t in flow.token_requests)
    assert len(flow.registrations) == 1  # the step-up reuses the registration
    assert {"set_greeting", "reset_greeting"} <= names


@pytest.mark.parametrize("mode", MODES)
async def test_token_for_one_server_is_refused_at_another(demo: DemoStack, mode: str) -> None:
    storage = MemoryTokenStorage()
    async with oauth_client(demo.server_url("demo"), mode=mode, storage=storage) as (client, _):
        await client.list_tools()
    token = storage.access_token

    response = await post_tools_list(demo.server_url("notes"), token)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("Bearer ")
    assert 'error="invalid_token"' in challenge
    assert f'resource_metadata="{demo.base_url}/.well-known/oauth-protected-resource/notes/mcp"' in challenge
    # ...while the same token still works where it belongs.
    async with bearer_client(demo.server_url("demo"), token, mode=mode) as client:
        assert _callable_now((await client.list_tools()).tools) == {"echo", "add"}


async def test_first_call_a_write_steps_up_on_the_notes_server(demo: DemoStack) -> None:
    url = demo.server_url("notes")
    async with oauth_client(url, mode="legacy") as (client, flow):
        added = await client.call_tool("add_note", {"title": "first", "body": "written"})
        read = await client.call_tool("read_note", {"note_id": added.structured_content["id"]})

    assert not added.is_error
    assert read.structured_content == added.structured_content
    assert read.structured_content["body"] == "written"
    assert [a.resource for a in flow.authorizations] == [url, url]
    assert [sorted(a.scopes) for a in flow.authorizations] == [["tools.read"], ["tools.read", "tools.write"]]


async def test_client_carrying_another_servers_token_is_authorized_again_for_this_one(
    demo: DemoStack,
) -> None:
    # One storage for both servers, as a client that keeps one record per authorization server.
    storage = MemoryTokenStorage()
    async with oauth_client(demo.server_url("demo"), mode="legacy", storage=storage) as (client, _):
        await client.list_tools()
    demo_token = storage.access_token

    notes = demo.server_url("notes")
    async with oauth_client(notes, mode="legacy", storage=storage) as (client, flow):
        listed = await client.call_tool("list_notes", {})

    assert not listed.is_error
    # The demo token got 401 invalid_token at notes; the SDK authorized again for notes.
    assert [a.resource for a in flow.authorizations] == [notes]
    assert [t.resource for t in flow.token_requests] == [notes]
    assert flow.registrations == []  # same authorization server: the registration is reused
    assert storage.access_token != demo_token
