"""``mcp-bastion connect`` against the real gateway and development IdP, driven by the SDK's stdio client.

The SDK client spawns ``connect --headless``; connect meets the gateway's 401, discovers the
dev IdP (RFC 9728, RFC 8414 path-inserted), registers (DCR), sends the login
URL to stderr, which the test's browser follows (the IdP auto-approves alice), exchanges the
code with PKCE and the resource, and relays MCP both ways, in both protocol eras.
"""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from mcp_bastion.demo.stack import DemoStack

from ..connect.stdio_connect import connect_client
from .demo_stack import running_demo_stack

pytestmark = pytest.mark.e2e

MODES = ["legacy", "2026-07-28"]


@pytest.fixture(scope="module")
def demo() -> Iterator[DemoStack]:
    with running_demo_stack() as stack:
        yield stack


@pytest.mark.parametrize("mode", MODES)
async def test_connect_logs_in_with_dcr_and_pkce_and_relays_tools(
    demo: DemoStack, mode: str, tmp_path: Path
) -> None:
    url = demo.server_url("demo")
    store = tmp_path / "tokens.json"
    # --debug: even the most talkative logging must not show a secret.
    async with connect_client(url, store, mode=mode, debug=True) as (client, browser):
        tools = (await client.list_tools()).tools
        result = await client.call_tool("add", {"a": 2, "b": 3})

    assert {tool.name for tool in tools} == {"echo", "add", "set_greeting", "reset_greeting"}
    assert not result.is_error
    assert result.structured_content == {"result": 5}
    [authorization] = browser.authorizations
    assert authorization["resource"] == url  # RFC 8707
    assert authorization["code_challenge_method"] == "S256"
    assert authorization["scope"].split() == ["tools.read"]  # what the 401 asked for
    assert authorization["redirect_uri"].startswith("http://127.0.0.1:")
    # The store: 0600, keyed by issuer and resource, and no token ever on stderr.
    assert stat.S_IMODE(store.stat().st_mode) == 0o600
    [entry] = json.loads(store.read_text()).values()
    assert entry["client"]["client_id"]
    [callback] = browser.callbacks
    assert callback["iss"] == demo.issuer  # RFC 9207, checked by connect
    for secret in (entry["tokens"]["access_token"], entry["tokens"]["refresh_token"], callback["code"]):
        assert secret not in browser.text
    assert "DEBUG" in browser.text  # the check above read debug logging
    assert browser.errors == []


async def test_a_second_run_uses_the_stored_token_without_a_login(demo: DemoStack, tmp_path: Path) -> None:
    url = demo.server_url("demo")
    store = tmp_path / "tokens.json"
    async with connect_client(url, store) as (client, first):
        await client.list_tools()
    async with connect_client(url, store) as (client, second):
        result = await client.call_tool("echo", {"text": "again"})

    assert len(first.authorizations) == 1
    assert second.authorizations == []
    assert not result.is_error


def _edit_tokens(store: Path, **changes: object) -> dict[str, object]:
    data = json.loads(store.read_text())
    [entry] = data.values()
    before = dict(entry["tokens"])
    entry["tokens"].update(changes)
    store.write_text(json.dumps(data))
    return before


async def test_an_expired_token_is_refreshed_without_a_login(demo: DemoStack, tmp_path: Path) -> None:
    url = demo.server_url("demo")
    store = tmp_path / "tokens.json"
    async with connect_client(url, store) as (client, _):
        await client.list_tools()
    before = _edit_tokens(store, expires_at=1.0)
    assert before["refresh_token"]
    async with connect_client(url, store) as (client, second):
        result = await client.call_tool("echo", {"text": "refreshed"})

    assert not result.is_error
    assert second.authorizations == []
    [entry] = json.loads(store.read_text()).values()
    assert entry["tokens"]["access_token"] != before["access_token"]
    assert entry["tokens"]["refresh_token"] != before["refresh_token"]  # the dev IdP rotates them


async def test_a_token_the_server_refuses_is_refreshed_after_its_401(demo: DemoStack, tmp_path: Path) -> None:
    # A stored token that looks fresh but is refused (revoked, or from another key): the
    # 401 for that very token leads to a refresh, not a login, and not a loop.
    url = demo.server_url("demo")
    store = tmp_path / "tokens.json"
    async with connect_client(url, store) as (client, _):
        await client.list_tools()
    _edit_tokens(store, access_token="not-a-token-the-gateway-accepts")
    async with connect_client(url, store) as (client, second):
        result = await client.call_tool("echo", {"text": "after 401"})

    assert not result.is_error
    assert second.authorizations == []


@pytest.mark.parametrize("mode", MODES)
async def test_connect_steps_up_on_insufficient_scope(demo: DemoStack, mode: str, tmp_path: Path) -> None:
    url = demo.server_url("demo")
    async with connect_client(url, tmp_path / "tokens.json", mode=mode) as (client, browser):
        await client.list_tools()
        result = await client.call_tool("set_greeting", {"greeting": "Bonjour"})

    assert not result.is_error
    assert result.structured_content == {"result": "Bonjour"}
    first, second = browser.authorizations
    assert first["scope"].split() == ["tools.read"]
    assert set(second["scope"].split()) >= {"tools.read", "tools.write"}  # the union (step-up)
