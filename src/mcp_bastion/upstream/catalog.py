"""Fetching an upstream's tool list for the catalog, as an MCP client of our own.

Used when a call names a tool whose annotations the gateway has not seen yet (for example
on a fresh replica). Tries the stateless era first, then an `initialize` session. The
fetch is rate-limited per server so unknown tool names cannot make it an amplifier.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import orjson

from ..asgi import Headers
from ..auth.principal import Principal
from ..errors import BastionError, UpstreamError
from ..route import ServerRoute
from .client import Streamed
from .transport import UpstreamResponse

__all__ = ["CatalogFetcher"]

log = logging.getLogger("mcp_bastion.upstream")
MIN_INTERVAL_S = 10.0
MAX_PAGES = 20
MAX_BYTES = 16 * 1_048_576
_CLIENT_INFO = {"name": "mcp-bastion", "version": "0.1.0"}


class CatalogFetcher:
    """`await fetcher(route, principal)` loads the route's tool list into its catalog, with
    the route's upstream credential for that principal (the catalog itself is shared)."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock

    async def __call__(self, route: ServerRoute, principal: Principal) -> None:
        catalog = route.catalog
        if catalog.loading is not None:
            # A fetch is under way (a fresh replica's first calls arrive together): wait for it
            # rather than decide without annotations. Shielded: one caller leaving must not
            # cancel the fetch the others wait on.
            await asyncio.shield(catalog.loading)
            return
        now = self._clock()
        if catalog.refreshed_at is not None and now - catalog.refreshed_at < MIN_INTERVAL_S:
            return
        catalog.refreshed_at = now
        task = catalog.loading = asyncio.ensure_future(self._load(_Target(route, principal)))
        task.add_done_callback(lambda _: setattr(catalog, "loading", None))
        await asyncio.shield(task)

    async def _load(self, ex: _Target) -> None:
        catalog = ex.route.catalog
        try:
            try:
                tools = await self._modern(ex)
            except BastionError:
                tools = await self._legacy(ex)
        except BastionError as exc:
            log.warning("could not load the tool list of %s: %s", ex.route.name, exc.message)
            return
        catalog.learn(tools)

    async def _modern(self, ex: _Target) -> list[Any]:
        meta = {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientInfo": _CLIENT_INFO,
            "io.modelcontextprotocol/clientCapabilities": {},
        }
        headers = [(b"mcp-protocol-version", b"2026-07-28"), (b"mcp-method", b"tools/list")]
        return await self._pages(ex, headers, {"_meta": meta})

    async def _legacy(self, ex: _Target) -> list[Any]:
        init = {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": _CLIENT_INFO,
        }
        _, headers, _ = await self._post(ex, [], _request("initialize", init))
        session = headers.get("mcp-session-id")
        base = [(b"mcp-protocol-version", b"2025-11-25")]
        if session is not None:
            base.append((b"mcp-session-id", session.encode("latin-1")))
        note = orjson.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"})
        await self._post(ex, base, note)
        try:
            return await self._pages(ex, base, {})
        finally:
            if session is not None:
                async with Streamed(ex.route.transport, "DELETE", await self._headers(ex, base), b"", 5):
                    pass

    async def _pages(
        self, ex: _Target, headers: list[tuple[bytes, bytes]], params: dict[str, Any]
    ) -> list[Any]:
        tools: list[Any] = []
        cursor = None
        for _ in range(MAX_PAGES):
            page_params = dict(params, cursor=cursor) if cursor else params
            _, _, result = await self._post(ex, headers, _request("tools/list", page_params))
            page = result.get("tools")
            if not isinstance(page, list):
                raise UpstreamError("tools/list result has no tools")
            tools.extend(page)
            cursor = result.get("nextCursor")
            if not isinstance(cursor, str):
                break
        return tools

    async def _post(
        self, ex: _Target, extra: list[tuple[bytes, bytes]], body: bytes
    ) -> tuple[int, dict[str, str], dict[str, Any]]:
        headers = [*await self._headers(ex, extra), (b"content-type", b"application/json")]
        async with Streamed(ex.route.transport, "POST", headers, body, ex.route.config.timeout_seconds) as up:
            data = bytearray()
            async for chunk in up.chunks():
                data += chunk
                if len(data) > MAX_BYTES:
                    raise UpstreamError("tool list too large")
            if up.status == 202:
                return up.status, _header_map(up), {}
            if up.status != 200:
                raise UpstreamError(f"upstream answered HTTP {up.status}")
            return up.status, _header_map(up), _result_of(bytes(data), up.headers.get("content-type") or "")

    async def _headers(self, ex: _Target, extra: Headers) -> Headers:
        headers = [(b"accept", b"application/json, text/event-stream"), *extra]
        credential = await ex.route.credential.header(ex.principal, ())
        if credential is not None:
            headers.append(credential)
        return headers


class _Target:
    __slots__ = ("principal", "route")

    def __init__(self, route: ServerRoute, principal: Principal) -> None:
        self.route = route
        self.principal = principal


def _header_map(up: UpstreamResponse) -> dict[str, str]:
    return {name.decode("latin-1"): value.decode("latin-1") for name, value in reversed(up.headers.raw)}


def _request(method: str, params: dict[str, Any]) -> bytes:
    return orjson.dumps({"jsonrpc": "2.0", "id": "mcp-bastion-catalog", "method": method, "params": params})


def _result_of(data: bytes, content_type: str) -> dict[str, Any]:
    candidates = [data]
    if content_type.startswith("text/event-stream"):
        candidates = [line[5:].strip() for line in data.splitlines() if line.startswith(b"data:")]
    for candidate in candidates:
        try:
            doc = orjson.loads(candidate)
        except orjson.JSONDecodeError:
            continue
        if isinstance(doc, dict) and doc.get("id") == "mcp-bastion-catalog":
            result = doc.get("result")
            if isinstance(result, dict):
                return result
            raise UpstreamError("upstream answered tools/list with an error")
    raise UpstreamError("upstream sent no tools/list result")
