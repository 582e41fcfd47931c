"""Two users at once on one shared `@modelcontextprotocol/server-everything` process, each through
the official SDK client: each sees only its own answers, though both use the same request ids."""

from __future__ import annotations

import asyncio

import pytest
from mcp.client.client import Client

from ..support.node import NODE_DIR, node_bin_dir
from ..support.sdk_client import bearer_client
from .plugins import stdio_gateway

pytestmark = pytest.mark.e2e

EVERYTHING = NODE_DIR / "node_modules" / "@modelcontextprotocol" / "server-everything" / "dist" / "index.js"


async def _echoes(client: Client, who: str) -> list[str]:
    answers = await asyncio.gather(*(client.call_tool("echo", {"message": f"{who}-{i}"}) for i in range(15)))
    return [str(answer.content[0].text) for answer in answers]  # type: ignore[union-attr]


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_two_users_share_one_process_and_see_only_their_answers(mode: str) -> None:
    server = {
        "name": "everything",
        "command": [str(node_bin_dir() / "node"), str(EVERYTHING), "stdio"],
        "stdio": {"process": "shared"},
    }
    with stdio_gateway(server) as stack:
        url = stack.gw.url("everything")
        alice_token = stack.issuer.token(audience=url, subject="alice")
        bob_token = stack.issuer.token(audience=url, subject="bob")
        async with bearer_client(url, alice_token, mode) as alice, bearer_client(url, bob_token, mode) as bob:
            alice_saw, bob_saw = await asyncio.gather(_echoes(alice, "alice"), _echoes(bob, "bob"))
        [pool] = [r.transport._pool for r in stack.gw.gateway.routes.values()]  # type: ignore[attr-defined]
        processes = len(pool.processes)
    assert processes == 1
    assert alice_saw == [f"Echo: alice-{i}" for i in range(15)]
    assert bob_saw == [f"Echo: bob-{i}" for i in range(15)]
