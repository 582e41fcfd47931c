"""A stdio plug-in behind the `UpstreamTransport` seam: HTTP in, newline-delimited JSON-RPC out.

The rest of the gateway sees an MCP server that speaks Streamable HTTP: a POST of requests
gets a 200 JSON answer with their responses, a POST of only notifications or responses a
202, a GET or DELETE a 405 (no server-initiated stream, no session to end). What cannot be
forwarded as is, the transport answers itself from the process's own `initialize` result:

- `initialize` (session era): the plug-in was initialized once, by the gateway; a client's
  `initialize` gets that result, at the older of the client's and the plug-in's versions.
- `server/discover` (2026-07-28): the same result in the discover shape, listing the modern
  version beside the plug-in's own, so both eras reach a plug-in that knows only one.
- a client's notifications (`notifications/initialized`, …) and responses stop here: the
  gateway is the plug-in's client, and never relays a plug-in's requests. The exception is
  `notifications/cancelled`, forwarded for the caller's own call in flight (`process.py`).

A POST whose calls may receive notifications (a `progressToken`; logs asked for from a
per-subject process) is answered with an event stream (`relay.py`): the calls run while it
streams, their notifications go out as they come, then their responses.

Every other request is written to the caller's process with a gateway-unique id, the
caller's identity token in `_meta` (`identity.py`) and, from a 2026-07-28 client, without the
per-request `io.modelcontextprotocol/*` envelope, which a session-era connection refuses.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import orjson

from ..asgi import Headers
from ..errors import UpstreamError
from ..mcp.era import LEGACY_VERSIONS, MODERN_VERSIONS
from ..upstream.transport import ResponseHeaders, UpstreamResponse
from .identity import SubjectBook, bearer_of
from .pool import ProcessPool
from .process import IDENTITY_META, PluginProcess, error_response
from .relay import MODERN_LOG_LEVEL, NoteStream, StreamedAnswer

__all__ = ["StdioAnswer", "StdioTransport"]

_JSON: Headers = [(b"content-type", b"application/json")]
MODERN_META = "io.modelcontextprotocol/"
_MODERN = frozenset(v.encode() for v in MODERN_VERSIONS)
# 2026-07-28 caching.mdx: these results carry caching hints; a session-era plug-in sends none.
_CACHEABLE = frozenset(
    ("tools/list", "prompts/list", "resources/list", "resources/templates/list", "resources/read")
)


class StdioAnswer:
    """An answer made whole before it is returned (a plug-in's answers are single lines)."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, body: bytes = b"", headers: Headers | None = None) -> None:
        self.status = status
        self.body = body
        self.headers = ResponseHeaders(headers or [])

    async def _once(self) -> AsyncIterator[bytes]:
        if self.body:
            yield self.body

    def chunks(self) -> AsyncIterator[bytes]:
        return self._once()

    async def read_all(self, cap: int) -> bytes | None:
        return self.body if len(self.body) <= cap else None


class StdioTransport:
    def __init__(self, pool: ProcessPool, book: SubjectBook) -> None:
        self._pool = pool
        self._book = book
        self.target = f"stdio:{pool.spec.server}"

    async def open(
        self, method: str, headers: Headers, body: bytes, read_timeout: float | None
    ) -> StdioAnswer | StreamedAnswer:
        if method != "POST":
            return StdioAnswer(405)
        token = bearer_of(headers)
        subject = self._book.get(token) if token is not None else None
        if token is None or subject is None:
            raise UpstreamError("no caller identity for the stdio plug-in")  # fails closed
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise UpstreamError("the request for the stdio plug-in is not JSON") from None
        batch = isinstance(parsed, list)
        requests = [
            m
            for m in (parsed if batch else [parsed])
            if isinstance(m, dict) and isinstance(m.get("method"), str) and "id" in m
        ]
        if not requests:
            await self._cancels(parsed if batch else [parsed], subject)
            return StdioAnswer(202)
        modern = _header(headers, b"mcp-protocol-version") in _MODERN
        pool = self._pool
        pool.enter(subject)
        streamed = False
        try:
            identity = token.decode("ascii")
            process = await pool.process(pool.key_for(subject), identity)
            log_level = _log_level(process, requests[0], modern)
            if log_level is not None or any(_progress_asked(r) for r in requests):
                streamed = True
                return self._streamed(process, requests, identity, subject, read_timeout, modern, log_level)
            if len(requests) == 1:  # the usual case: no task per request
                answers = [await self._one(process, requests[0], identity, read_timeout, modern, subject)]
            else:
                answers = await asyncio.gather(
                    *(
                        self._one(process, request, identity, read_timeout, modern, subject)
                        for request in requests
                    )
                )
        finally:
            if not streamed:
                pool.leave(subject)
        return StdioAnswer(200, orjson.dumps(answers if batch else answers[0]), _JSON)

    def _streamed(
        self,
        process: PluginProcess,
        requests: list[dict[str, Any]],
        identity: str,
        subject: str,
        timeout: float | None,
        modern: bool,
        log_level: str | None,
    ) -> StreamedAnswer:
        stream = NoteStream(log_level)

        async def run(request: dict[str, Any]) -> None:
            try:
                answer = await self._one(process, request, identity, timeout, modern, subject, stream)
            except UpstreamError as exc:
                # The stream has begun: a timeout is told in it, as the call's JSON-RPC error (the
                # gateway's own message, never the plug-in's), not by an answer cut short.
                answer = error_response(request["id"], str(exc))
            stream.answer(answer)

        async def work() -> None:
            try:
                if len(requests) == 1:  # the usual case: no task per request
                    await run(requests[0])
                else:
                    await asyncio.gather(*(run(request) for request in requests))
            finally:
                self._pool.leave(subject)  # the caller's calls are in flight until the stream ends

        return StreamedAnswer(stream, work())

    async def _cancels(self, messages: list[Any], subject: str) -> None:
        """Forward each `notifications/cancelled` to the caller's process, for the caller's own
        call only; no process is started for a cancel."""
        for message in messages:
            if not (isinstance(message, dict) and message.get("method") == "notifications/cancelled"):
                continue
            params = message.get("params")
            process = self._pool.processes.get(self._pool.key_for(subject))
            if isinstance(params, dict) and process is not None:
                await process.cancel_for(subject, params.get("requestId"), params.get("reason"))

    def close(self, response: UpstreamResponse) -> None:
        if isinstance(response, StreamedAnswer):
            response.close()  # calls still running are cancelled, and the plug-in told

    async def _one(
        self,
        process: PluginProcess,
        request: dict[str, Any],
        token: str,
        timeout: float | None,
        modern: bool,
        subject: str | None = None,
        stream: NoteStream | None = None,
    ) -> dict[str, Any]:
        method, request_id = request["method"], request["id"]
        params = request.get("params")
        if method == "initialize":
            return _result(request_id, initialize_result(process, params))
        if method == "server/discover":
            return _result(request_id, discover_result(process))
        if isinstance(params, dict):
            meta = params.get("_meta")
            # The 2026-07-28 envelope (protocol version, client info and capabilities per
            # request) is the gateway's concern: the plug-in was initialized in the session era
            # and an SDK server refuses a modern envelope on such a connection.
            meta = (
                {k: v for k, v in meta.items() if not k.startswith(MODERN_META)}
                if isinstance(meta, dict)
                else {}
            )
            meta[IDENTITY_META] = token  # set, never taken from the client: it cannot be forged
            params = {**params, "_meta": meta}
        elif params is None:
            params = {"_meta": {IDENTITY_META: token}}
        answer = await process.call(method, params, request_id, timeout, owner=subject, stream=stream)
        if modern:
            modern_result(method, answer)
        return answer


def _progress_asked(request: dict[str, Any]) -> bool:
    params = request.get("params")
    meta = params.get("_meta") if isinstance(params, dict) else None
    return isinstance(meta, dict) and "progressToken" in meta


def _log_level(process: PluginProcess, request: dict[str, Any], modern: bool) -> str | None:
    """The log level this POST's stream accepts (`relay.NoteStream`), None for no logs: only a
    per-subject process's logs are the caller's; a 2026-07-28 caller asks per request
    (`_meta` logLevel, logging.mdx), a session-era one by `logging/setLevel` on its process."""
    if not process.notifications.per_subject:
        return None
    if not modern:
        return "" if process.logs_wanted else None
    params = request.get("params")
    meta = params.get("_meta") if isinstance(params, dict) else None
    level = meta.get(MODERN_LOG_LEVEL) if isinstance(meta, dict) else None
    return level if isinstance(level, str) else None


def _header(headers: Headers, name: bytes) -> bytes | None:
    return next((value for key, value in headers if key == name), None)


def modern_result(method: str, answer: dict[str, Any]) -> None:
    """A session-era result in the 2026-07-28 shape: `resultType`, and for cacheable results
    the most conservative caching hints (stale at once, private to the caller)."""
    result = answer.get("result")
    if not isinstance(result, dict):
        return
    result.setdefault("resultType", "complete")
    if method in _CACHEABLE:
        result.setdefault("ttlMs", 0)
        result.setdefault("cacheScope", "private")


def _result(request_id: Any, result: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "result": result}


def initialize_result(process: PluginProcess, params: Any) -> dict[str, Any]:
    asked = params.get("protocolVersion") if isinstance(params, dict) else None
    version = process.protocol_version
    if asked in LEGACY_VERSIONS and str(asked) < version:
        version = str(asked)  # ISO dates: the older of the two, which both sides speak
    return {**process.initialize_result, "protocolVersion": version}


def discover_result(process: PluginProcess) -> dict[str, Any]:
    init = process.initialize_result
    result: dict[str, Any] = {
        "resultType": "complete",
        "supportedVersions": [*MODERN_VERSIONS, process.protocol_version],
        "capabilities": init.get("capabilities") or {},
        "_meta": {"io.modelcontextprotocol/serverInfo": init.get("serverInfo") or {}},
        "ttlMs": 0,
        "cacheScope": "private",
    }
    if isinstance(init.get("instructions"), str):
        result["instructions"] = init["instructions"]
    return result
