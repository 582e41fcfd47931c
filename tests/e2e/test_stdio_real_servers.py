"""Stdio MCP servers nobody here wrote, behind `mcp-bastion wrap`'s stack, through the official
SDK client running its whole OAuth flow (dev IdP, auto-approved), in both protocol eras.

`mcp-server-time` (PyPI), `@modelcontextprotocol/server-everything` and
`@modelcontextprotocol/server-filesystem` (npm, on Node 22 from tests/node), and
`mcp-server-fetch` (PyPI) reading a page on loopback: each is spawned
by the gateway as a `command:` server, initialized by it, and reached over HTTP.
"""

from __future__ import annotations

import contextlib
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mcp_bastion.stdio.wrap import WrapOptions, WrapStack, build_wrap_stack

from ..support.node import NODE_DIR, node_bin_dir
from ..support.servers import bind_loopback, serve_asgi
from ..support.website import ROBOTS_ALLOW_ALL, running_website
from .sdk_oauth import oauth_client

pytestmark = pytest.mark.e2e

MODES = ["legacy", "2026-07-28"]
NPM = NODE_DIR / "node_modules" / "@modelcontextprotocol"


@contextlib.contextmanager
def wrapped(*command: str, process: str = "per_subject") -> Iterator[WrapStack]:
    """What `mcp-bastion wrap --auto-approve alice -- COMMAND` serves, on a free loopback port."""
    sock = bind_loopback()
    options = WrapOptions(tuple(command), auto_approve="alice", process=process)
    stack = build_wrap_stack(options, port=sock.getsockname()[1])
    with serve_asgi(stack.app, sock=sock, lifespan="on"):
        yield stack


def _time_server() -> str:
    found = shutil.which("mcp-server-time", path=str(Path(sys.executable).parent))
    assert found is not None, "mcp-server-time is in the test extra"
    return found


def _node(package: str) -> tuple[str, str]:
    return str(node_bin_dir() / "node"), str(NPM / package / "dist" / "index.js")


@pytest.mark.parametrize("mode", MODES)
async def test_mcp_server_time_through_the_oauth_flow(mode: str) -> None:
    with wrapped(_time_server()) as stack:
        async with oauth_client(stack.url, mode=mode) as (client, flow):
            tools = {tool.name for tool in (await client.list_tools()).tools}
            result = await client.call_tool("get_current_time", {"timezone": "Etc/UTC"})
    assert {"get_current_time", "convert_time"} <= tools
    assert not result.is_error
    assert result.structured_content is not None
    assert result.structured_content["timezone"] == "Etc/UTC"
    assert flow.authorizations[0].resource == stack.url


@pytest.mark.parametrize("mode", MODES)
async def test_server_everything_through_the_oauth_flow(mode: str) -> None:
    with wrapped(*_node("server-everything"), "stdio") as stack:
        async with oauth_client(stack.url, mode=mode) as (client, _):
            tools = {tool.name for tool in (await client.list_tools()).tools}
            result = await client.call_tool("echo", {"message": "through the bastion"})
    assert "echo" in tools
    assert not result.is_error
    assert "through the bastion" in str(result.content[0])


@pytest.mark.parametrize("mode", MODES)
async def test_server_filesystem_reads_only_its_folder(mode: str, tmp_path: Path) -> None:
    (tmp_path / "note.txt").write_text("hello from disk")
    with wrapped(*_node("server-filesystem"), str(tmp_path)) as stack:
        async with oauth_client(stack.url, mode=mode) as (client, _):
            listing = await client.call_tool("list_directory", {"path": str(tmp_path)})
            outside = await client.call_tool("list_directory", {"path": "/etc"})
    assert not listing.is_error
    assert "note.txt" in str(listing.content[0])
    assert outside.is_error  # the server's own sandbox, reached through the gateway unchanged


@pytest.mark.parametrize("mode", MODES)
async def test_mcp_server_fetch_through_the_oauth_flow(mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # wrap gives the plug-in its own PATH: only the virtualenv's bin, so readabilipy finds no
    # `node` and never runs `npm install` (a download) at first use. --allow-private-ips: the
    # page is on loopback, which mcp-server-fetch refuses by default.
    bin_dir = Path(sys.executable).parent
    command = shutil.which("mcp-server-fetch", path=str(bin_dir))
    assert command is not None, "mcp-server-fetch is in the test extra"
    monkeypatch.setenv("PATH", str(bin_dir))
    pages = {"/robots.txt": ("text/plain", ROBOTS_ALLOW_ALL), "/hello": ("text/html", HELLO_PAGE)}
    with running_website(pages) as (site, base), wrapped(command, "--allow-private-ips") as stack:
        async with oauth_client(stack.url, mode=mode) as (client, flow):
            result = await client.call_tool("fetch", {"url": f"{base}/hello"})
    assert not result.is_error
    assert "# Hello from loopback" in str(result.content[0])
    assert site.paths() == ["/robots.txt", "/hello"]
    assert flow.authorizations[0].resource == stack.url


HELLO_PAGE = "<html><body><article><h1>Hello from loopback</h1><p>A page for the fetch plug-in.</p></article></body></html>"
