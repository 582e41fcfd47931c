"""The official MCP SDK client with a bearer token, as the integration tests drive it."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import httpx2
from mcp.client.client import Client
from mcp.client.streamable_http import streamable_http_client

__all__ = ["bearer_client"]


@contextlib.asynccontextmanager
async def bearer_client(url: str, token: str, mode: str) -> AsyncIterator[Client]:
    """An SDK client at `url` in `mode` (`legacy`: the session era; `2026-07-28`), sending
    `token` on every request (the OAuth flow itself is the e2e tests' business)."""
    async with httpx2.AsyncClient(headers={"authorization": f"Bearer {token}"}, timeout=30) as http:
        async with Client(streamable_http_client(url, http_client=http), mode=mode) as client:
            yield client
