"""Two users at once on one shared `@modelcontextprotocol/server-everything` process, each through the
official SDK client, each running its long-running operation with progress: the SDK uses the request id
as the progress token and both clients count ids alike, so the tokens collide too, and still each
client's callback sees only its own operation's steps."""

from __future__ import annotations

import asyncio

import pytest
from mcp.client.client import Client

from ..support.node import node_bin_dir
from ..support.sdk_client import bearer_client
from .plugins import stdio_gateway
from .test_shared_real_server import EVERYTHING

pytestmark = pytest.mark.e2e

OPERATION = "trigger-long-running-operation"


async def _operations(client: Client, steps: tuple[int, ...]) -> list[list[tuple[float, float | None]]]:
    seen: list[list[tuple[float, float | None]]] = [[] for _ in steps]

    async def run(i: int, n: int) -> None:
        async def progress(done: float, total: float | None, message: str | None) -> None:
            seen[i].append((done, total))

        result = await client.call_tool(
            OPERATION, {"duration": 0.2 * n, "steps": n}, progress_callback=progress
        )
        assert f"Steps: {n}." in str(result.content[0].text)  # type: ignore[union-attr]

    await asyncio.gather(*(run(i, n) for i, n in enumerate(steps)))
    return seen


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_two_users_on_one_shared_process_each_see_only_their_own_progress(mode: str) -> None:
    server = {
        "name": "everything",
        "command": [str(node_bin_dir() / "node"), str(EVERYTHING), "stdio"],
        "stdio": {"process": "shared"},
    }
    alice_steps, bob_steps = (2, 3, 4), (5, 6, 7)  # each total names its operation
    with stdio_gateway(server) as stack:
        url = stack.gw.url("everything")
        alice_token = stack.issuer.token(audience=url, subject="alice")
        bob_token = stack.issuer.token(audience=url, subject="bob")
        async with bearer_client(url, alice_token, mode) as alice, bearer_client(url, bob_token, mode) as bob:
            alice_saw, bob_saw = await asyncio.gather(
                _operations(alice, alice_steps), _operations(bob, bob_steps)
            )
        [route] = stack.gw.gateway.routes.values()
        [process] = route.transport._pool.processes.values()  # type: ignore[attr-defined]
        dropped = process.notifications.dropped
    for steps, saw in ((alice_steps, alice_saw), (bob_steps, bob_saw)):
        assert saw == [[(float(i), float(n)) for i in range(1, n + 1)] for n in steps]
    assert dropped == 0
