"""A collector's answer is read under a cap (audit/collector.py): a collector that streams an
endless body cannot make the gateway hold it, and the batch it took still counts as taken."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from mcp_bastion.audit.collector import MAX_ANSWER_BYTES, post_batch

from ..support.servers import read_body, serve_asgi

CHUNK = b"x" * 65_536


class EndlessAnswer:
    """Takes the POST, answers 200, then streams its body until the client hangs up (or ~1 GiB)."""

    def __init__(self) -> None:
        self.sent = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await read_body(receive)
        gone = asyncio.Event()

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            gone.set()

        watcher = asyncio.ensure_future(watch())
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]}
        )
        while not gone.is_set() and self.sent < 1 << 30:
            await send({"type": "http.response.body", "body": CHUNK, "more_body": True})
            self.sent += len(CHUNK)
            await asyncio.sleep(0.001)
        watcher.cancel()


async def test_an_endless_answer_is_read_up_to_the_cap_and_the_post_counts() -> None:
    collector = EndlessAnswer()
    with serve_asgi(collector) as server:
        async with httpx.AsyncClient(timeout=5, trust_env=False) as http:
            # Read whole, this answer would take the gateway's memory, then its event loop, for
            # as long as the collector likes: the cap ends it after the first chunks.
            answer = await asyncio.wait_for(post_batch(http, f"{server.base_url}/ingest", b"{}\n"), 10)
    assert answer.status == 200
    assert answer.body is None  # past the cap: not read further
    assert collector.sent < 64 * MAX_ANSWER_BYTES


async def test_a_short_answer_is_read_whole() -> None:
    async def ok(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await read_body(receive)
        headers = [(b"content-type", b"application/x-protobuf")]
        await send({"type": "http.response.start", "status": 202, "headers": headers})
        await send({"type": "http.response.body", "body": b"\x0a\x00"})

    with serve_asgi(ok) as server:
        async with httpx.AsyncClient(timeout=5, trust_env=False) as http:
            answer = await post_batch(http, f"{server.base_url}/v1/logs", b"x")
    assert answer == (202, "application/x-protobuf", b"\x0a\x00")
