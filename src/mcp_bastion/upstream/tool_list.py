"""An upstream's whole tool list, fetched as an MCP client of our own, for reports.

`mcp-bastion tools` shows operators what each upstream offers. Unlike the gateway's own
catalog fetch (`upstream/catalog.py`, which only learns annotations and keeps going when an
upstream fails), this returns every tool definition and raises when it cannot: the operator
wants to see the failure. It tries the stateless era (2026-07-28) first, then an `initialize`
session (2025-11-25), as the gateway does, through the server's `UpstreamTransport` (HTTP
today, stdio next). The caller attaches the credential.

Everything the upstream sends is hostile input: the answer is size-capped, pages are capped,
and only JSON objects with a string `name` count as tools. Errors are our own words; nothing
of the upstream's text is repeated.
"""

from __future__ import annotations

from typing import Any

import orjson

from ..asgi import Headers
from ..errors import BastionError, UpstreamError
from .client import Streamed
from .transport import UpstreamResponse, UpstreamTransport

__all__ = ["MAX_TOOLS", "fetch_tool_list"]

MAX_PAGES = 20
MAX_TOOLS = 10_000  # the gateway's catalog bound (policy/catalog.py)
MAX_BYTES = 16 * 1_048_576  # per answer, as the gateway's catalog fetch
_ID = "mcp-bastion-tools"
_CLIENT_INFO = {"name": "mcp-bastion", "version": "0.1.0"}
Header = tuple[bytes, bytes]


async def fetch_tool_list(
    transport: UpstreamTransport, credential: Header | None, timeout: float
) -> list[dict[str, Any]]:
    """Every tool the upstream lists (its definitions as sent), or UpstreamError."""
    base: Headers = [(b"accept", b"application/json, text/event-stream")]
    if credential is not None:
        base.append(credential)
    fetch = _Fetch(transport, base, timeout)
    try:
        return await fetch.stateless()
    except BastionError as modern:
        try:
            return await fetch.session()
        except BastionError as legacy:
            if legacy.message == modern.message:
                raise UpstreamError(legacy.message) from None
            raise UpstreamError(f"2026-07-28: {modern.message}; 2025-11-25: {legacy.message}") from None


class _Fetch:
    def __init__(self, transport: UpstreamTransport, base: Headers, timeout: float) -> None:
        self._transport = transport
        self._base = base
        self._timeout = timeout

    async def stateless(self) -> list[dict[str, Any]]:
        meta = {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientInfo": _CLIENT_INFO,
            "io.modelcontextprotocol/clientCapabilities": {},
        }
        headers = [(b"mcp-protocol-version", b"2026-07-28"), (b"mcp-method", b"tools/list")]
        return await self._pages(headers, {"_meta": meta})

    async def session(self) -> list[dict[str, Any]]:
        init = {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": _CLIENT_INFO}
        _, session = await self._post([], _request("initialize", init))
        headers = [(b"mcp-protocol-version", b"2025-11-25")]
        if session is not None:
            headers.append((b"mcp-session-id", session))
        await self._post(headers, orjson.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}))
        try:
            return await self._pages(headers, {})
        finally:
            if session is not None:
                await self._end(headers)

    async def _end(self, headers: Headers) -> None:
        try:
            async with Streamed(self._transport, "DELETE", [*self._base, *headers], b"", 5):
                pass
        except BastionError:
            pass  # ending the session is a courtesy: the list is what was asked for

    async def _pages(self, headers: Headers, params: dict[str, Any]) -> list[dict[str, Any]]:
        tools: list[dict[str, Any]] = []
        cursor: object = None
        for _ in range(MAX_PAGES):
            page_params = dict(params, cursor=cursor) if isinstance(cursor, str) else params
            result, _ = await self._post(headers, _request("tools/list", page_params))
            page = result.get("tools")
            if not isinstance(page, list):
                raise UpstreamError("the tools/list result has no list of tools")
            tools.extend(t for t in page if isinstance(t, dict) and isinstance(t.get("name"), str))
            if len(tools) >= MAX_TOOLS:
                return tools[:MAX_TOOLS]
            cursor = result.get("nextCursor")
            if not isinstance(cursor, str):
                break
        return tools

    async def _post(self, extra: Headers, body: bytes) -> tuple[dict[str, Any], bytes | None]:
        headers = [*self._base, *extra, (b"content-type", b"application/json")]
        async with Streamed(self._transport, "POST", headers, body, self._timeout) as up:
            data = await up.read_all(MAX_BYTES)
            if data is None:
                raise UpstreamError(f"the answer is larger than {MAX_BYTES} bytes")
            session = up.headers.first(b"mcp-session-id")
            if up.status == 202:
                return {}, session
            if up.status != 200:
                raise UpstreamError(f"upstream answered HTTP {up.status}")
            return _result_of(data, _content_type(up)), session


def _content_type(up: UpstreamResponse) -> str:
    return (up.headers.get("content-type") or "").split(";", 1)[0].strip().lower()


def _request(method: str, params: dict[str, Any]) -> bytes:
    return orjson.dumps({"jsonrpc": "2.0", "id": _ID, "method": method, "params": params})


def _result_of(data: bytes, content_type: str) -> dict[str, Any]:
    if content_type == "text/event-stream":
        candidates = _sse_data(data)
    elif content_type == "application/json":
        candidates = [data]
    else:
        raise UpstreamError("upstream answered with neither JSON nor an event stream")
    for candidate in candidates:
        try:
            doc = orjson.loads(candidate)
        except orjson.JSONDecodeError:
            continue
        if isinstance(doc, dict) and doc.get("id") == _ID:
            result = doc.get("result")
            if isinstance(result, dict):
                return result
            raise UpstreamError("upstream answered tools/list with an error")
    raise UpstreamError("upstream sent no tools/list result")


def _sse_data(data: bytes) -> list[bytes]:
    """The data of each event of a whole SSE body (WHATWG HTML §9.2.6: `data` lines joined
    by LF, events ended by a blank line; CRLF, CR and LF all end a line)."""
    events: list[bytes] = []
    lines: list[bytes] = []
    for line in data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n"):
        if not line:
            if lines:
                events.append(b"\n".join(lines))
                lines = []
        elif line.startswith(b"data:"):
            value = line[5:]
            lines.append(value[1:] if value.startswith(b" ") else value)
    if lines:
        events.append(b"\n".join(lines))
    return events
