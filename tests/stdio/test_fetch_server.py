"""`mcp-server-fetch` (PyPI, written by others) as a `command:` server of the gateway, fetching
pages from a small site on 127.0.0.1 for the official SDK client, in both eras.

The plug-in is started the way a deployment would start it: robots.txt is honoured (the site
serves one allowing everything, and the plug-in reads it before the page), and
`--allow-private-ips` is given only because the site is on loopback, which the plug-in refuses
by default (its own guard, below). Its `PATH` is the virtualenv's bin directory: with `node`
on its path, readabilipy would `npm install` Readability.js at first use (a download), so the
plug-in runs its pure-Python extractor, as on a host without Node.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
from mcp.types import CallToolResult, TextContent

from mcp_bastion.pipeline.listing import REQUIRED_SCOPES_META

from ..support.sdk_client import bearer_client
from ..support.website import ROBOTS_ALLOW_ALL, running_website
from .plugins import stdio_gateway

MODES = ["legacy", "2026-07-28"]
BIN = Path(sys.executable).parent
PAGE = (
    "<html><head><title>Notes</title></head><body><article><h1>Field notes</h1>"
    "<p>The heron stood <em>very</em> still in the reeds by the weir for an hour.</p>"
    "<p>Then it flew off towards the <a href='/mill'>old mill</a>.</p></article></body></html>"
)
# JWT-shaped, with underscores: rendered to markdown, each comes back as `\_`.
UNDERSCORED_JWT = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZV9fIn0.c2ln_bmF0_dXJl"
SITE = {"/robots.txt": ("text/plain", ROBOTS_ALLOW_ALL), "/notes": ("text/html; charset=utf-8", PAGE)}


def fetch_server(*flags: str, name: str = "fetch", **options: Any) -> dict[str, Any]:
    command = shutil.which("mcp-server-fetch", path=str(BIN))
    assert command is not None, "mcp-server-fetch is in the test extra"
    return {"name": name, "command": [command, *flags], "env": {"PATH": str(BIN)}, **options}


def text_of(result: CallToolResult) -> str:
    content = result.content[0]
    assert isinstance(content, TextContent), content
    return content.text


@pytest.mark.parametrize("mode", MODES)
async def test_mcp_server_fetch_reads_a_loopback_page_as_markdown(mode: str) -> None:
    with running_website(SITE) as (site, base), stdio_gateway(fetch_server("--allow-private-ips")) as stack:
        url = stack.gw.url("fetch")
        token = stack.issuer.token(audience=url, subject="alice", scopes="tools.read")
        async with bearer_client(url, token, mode) as client:
            tools = (await client.list_tools()).tools
            result = await client.call_tool("fetch", {"url": f"{base}/notes"})
        event = stack.gw.audit.wait_for(lambda e: e.method == "tools/call")
    # readOnlyHint: true (openWorldHint too, which asks for no more): tools.read is enough.
    assert {t.name: (t.meta or {}).get(REQUIRED_SCOPES_META) for t in tools} == {"fetch": ["tools.read"]}
    assert not result.is_error
    text = text_of(result)
    assert text.startswith(f"Contents of {base}/notes:\n")
    assert "# Field notes" in text  # an ATX heading: the page came back as markdown, not HTML
    assert "The heron stood very still in the reeds by the weir for an hour." in text
    assert "<" not in text  # no tag of the page survived
    # robots.txt first (RFC 9309), then the page; the site never sees a credential of anyone's.
    requests = site.requests()
    assert [path for path, _ in requests] == ["/robots.txt", "/notes"]
    for _, headers in requests:
        assert "authorization" not in headers
        assert not any("eyJ" in value for value in headers.values())
        assert headers["user-agent"].startswith("ModelContextProtocol/1.0 (Autonomous;")
    assert (event.target, event.decision, event.subject) == ("fetch", "allow", "alice")
    assert event.scopes_required == ("tools.read",)


async def test_a_token_on_a_fetched_page_reaches_the_client_unless_a_secrets_filter_is_set() -> None:
    # The page a plug-in fetches is anyone's text, here a leaked access token (the caller's
    # own). The gateway redacts only its own credential by default (SL-02); a third party's
    # token is redacted where the server configures the built-in `secrets` filter
    # (docs/safety.md): in a text/plain page returned raw, and in an HTML page rendered as
    # markdown, where each `_` comes back escaped as `\_`.
    filtered = fetch_server("--allow-private-ips", filters=[{"id": "secrets", "type": "secrets"}])
    plain = fetch_server("--allow-private-ips", name="plain")
    with stdio_gateway(filtered, plain) as stack:
        tokens = {
            name: stack.issuer.token(audience=stack.gw.url(name), subject="alice", scopes="tools.read")
            for name in ("fetch", "plain")
        }
        leak = tokens["fetch"]
        site_pages = {
            **SITE,
            "/deploy.env": ("text/plain", f"DEPLOY_TOKEN={leak}\nREGION=eu-west-3\n"),
            "/deploy.html": ("text/html", f"<html><body><p>token {UNDERSCORED_JWT}</p></body></html>"),
        }
        texts = {}
        with running_website(site_pages) as (_, base):
            for name, token in tokens.items():
                async with bearer_client(stack.gw.url(name), token, "legacy") as client:
                    result = await client.call_tool("fetch", {"url": f"{base}/deploy.env"})
                assert not result.is_error
                texts[name] = text_of(result)
            async with bearer_client(stack.gw.url("fetch"), tokens["fetch"], "legacy") as client:
                rendered = text_of(await client.call_tool("fetch", {"url": f"{base}/deploy.html"}))
        event = stack.gw.audit.wait_for(lambda e: e.method == "tools/call" and e.server == "fetch")
    assert leak not in texts["fetch"]
    assert "DEPLOY_TOKEN=[redacted:jwt]\nREGION=eu-west-3" in texts["fetch"]
    assert event.filters == ("result:secrets:redact:jwt",)
    assert f"DEPLOY_TOKEN={leak}\n" in texts["plain"]  # no filter: the page as it was
    assert "token [redacted:jwt]" in rendered
    assert "bmF0" not in rendered  # no part of the markdown-escaped token is left


async def test_the_plugin_refuses_loopback_itself_without_allow_private_ips() -> None:
    # The gateway does not restrict where a plug-in fetches (docs/stdio.md): this refusal is
    # mcp-server-fetch's own default guard, relayed as the tool error it is.
    with running_website(SITE) as (site, base), stdio_gateway(fetch_server()) as stack:
        url = stack.gw.url("fetch")
        token = stack.issuer.token(audience=url, subject="alice", scopes="tools.read")
        async with bearer_client(url, token, "legacy") as client:
            result = await client.call_tool("fetch", {"url": f"{base}/notes"})
    assert result.is_error
    assert "which is not a public address" in text_of(result)
    assert site.paths() == []
