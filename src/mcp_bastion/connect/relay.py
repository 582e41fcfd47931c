"""The stdio side: newline-delimited JSON-RPC in on stdin, out on stdout, to and from the server.

Each message from the client is POSTed to the remote Streamable HTTP endpoint with the
headers its era needs (session era: ``Mcp-Session-Id`` and the negotiated
``MCP-Protocol-Version``; 2026-07-28: ``MCP-Protocol-Version`` from the body's ``_meta``,
``Mcp-Method`` and ``Mcp-Name`` on every request), and every message of the answer (one
JSON body, or the events of an SSE stream) is written back as one line. A request that
cannot be forwarded gets a JSON-RPC error, never silence.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Final

import httpx

from ..mcp.calls import NAMED_METHODS
from ..mcp.era import META_VERSION, MODERN_VERSIONS
from ._errors import ConnectError
from .discovery import Challenge, parse_challenge
from .oauth import Authorizer

__all__ = ["Relay", "encode_line"]

log = logging.getLogger(__name__)

# A 401 renews the token at most twice (no token -> the stored one -> refreshed or a new
# login); a 403 insufficient_scope may step up twice (a server that keeps asking for more
# is not followed forever: conformance scope-retry-limit). A DPoP nonce demand (RFC 9449
# §9) is answered once per request: a server that keeps changing its nonce is not chased.
MAX_RENEWALS: Final = 2
MAX_NONCE_RETRIES: Final = 1
MAX_STEP_UPS: Final = 2
MAX_EVENT_BYTES: Final = 16 * 1024 * 1024
INTERNAL_ERROR: Final = -32603
# The session era's GET stream: reopened after it ends, a few times in a row at most.
MAX_STREAM_FAILURES: Final = 5
STREAM_RETRY_S: Final = 1.0
_PLAIN: Final = re.compile(r"^[\x20-\x7e]*\Z")

Writer = Callable[[Any], Awaitable[None]]


def encode_line(message: Any) -> bytes:
    """One message as one line: JSON escapes every newline inside strings."""
    return json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n"


class Relay:
    def __init__(self, http: httpx.AsyncClient, url: str, authorizer: Authorizer, write: Writer) -> None:
        self._http = http
        self._url = url
        self._auth = authorizer
        self._write = write
        self._session: str | None = None
        self._version: str | None = None
        self._listener: asyncio.Task[None] | None = None

    async def forward(self, message: Any) -> None:
        """Send one client message (or batch) and relay whatever comes back."""
        try:
            await self._forward(message)
        except ConnectError as exc:
            log.error("%s", exc.message)
            await self._fail(message, exc.message)
        except httpx.HTTPError as exc:
            log.error("the remote server could not be reached: %s", type(exc).__name__)
            await self._fail(message, f"the remote MCP server could not be reached ({type(exc).__name__})")

    async def close(self) -> None:
        """End the session (session era), as a client should when it goes away."""
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        if self._session is None:
            return
        with contextlib.suppress(httpx.HTTPError):
            await self._http.delete(self._url, headers=await self._headers(None))

    async def _forward(self, message: Any) -> None:
        renewals = step_ups = nonce_retries = 0
        while True:
            token = await self._auth.token()
            headers = await self._headers(message, token)
            async with self._http.stream("POST", self._url, json=message, headers=headers) as response:
                new_nonce = self._auth.note_nonce(self._url, response.headers)
                if response.status_code == 401 and _challenge(response).error == "use_dpop_nonce":
                    if not new_nonce or nonce_retries >= MAX_NONCE_RETRIES:
                        raise ConnectError(
                            "the remote server keeps demanding a DPoP nonce it does not accept: refused"
                        )
                    nonce_retries += 1
                    continue
                if response.status_code == 401 and renewals < MAX_RENEWALS:
                    renewals += 1
                    await self._auth.on_unauthorized(_challenge(response), token)
                    continue
                challenge = _challenge(response)
                if (
                    response.status_code == 403
                    and challenge.error == "insufficient_scope"
                    and step_ups < MAX_STEP_UPS
                ):
                    step_ups += 1
                    await self._auth.on_insufficient_scope(challenge, token)
                    continue
                await self._relay(message, response)
                return

    async def _headers(self, message: Any, token: str | None = None, method: str = "POST") -> dict[str, str]:
        headers = {"accept": "application/json, text/event-stream", "content-type": "application/json"}
        if token is not None:
            headers.update(self._auth.authorization(token, method, self._url))
        if self._session is not None:
            headers["mcp-session-id"] = self._session
        version = _body_version(message) or self._version
        if version is not None:
            headers["mcp-protocol-version"] = version
        if (
            version in MODERN_VERSIONS
            and isinstance(message, dict)
            and isinstance(message.get("method"), str)
        ):
            # 2026-07-28 streamable-http: the method, and the target of named methods, mirrored.
            method = message["method"]
            headers["mcp-method"] = method
            field = NAMED_METHODS.get(method)
            params = message.get("params")
            value = params.get(field) if field is not None and isinstance(params, dict) else None
            if isinstance(value, str):
                headers["mcp-name"] = _header_value(value)
        return headers

    async def _relay(self, message: Any, response: httpx.Response) -> None:
        if response.status_code in (200, 202):
            self._note_session(response)
        if response.status_code == 202:
            if _method(message) == "notifications/initialized" and self._session is not None:
                self._listener = self._listener or asyncio.create_task(self._listen())
            return
        kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
        if response.status_code == 404 and self._session is not None:
            self._session = None
            raise ConnectError("the remote server ended the session (404); reconnect the client")
        if kind == "text/event-stream" and response.status_code == 200:
            answered = False
            async for event in _sse_messages(response):
                answered = answered or _answers(message, event)
                await self._emit(message, event)
            if not answered and _request_ids(message):
                # Without resumption, a client would wait for this answer forever.
                raise ConnectError("the remote server's event stream ended before the answer")
            return
        body = await response.aread()
        try:
            parsed = json.loads(body) if kind == "application/json" else None
        except ValueError:
            parsed = None
        if _is_jsonrpc(parsed):
            await self._emit(message, parsed)
            return
        if response.status_code in (401, 403):
            raise ConnectError(
                f"the remote server refused the request ({response.status_code}) after re-authorizing"
            )
        raise ConnectError(
            f"the remote server answered HTTP {response.status_code} without a JSON-RPC message"
        )

    async def _listen(self) -> None:
        """The session's GET stream (transports §Listening for Messages from the Server)."""
        cursor = _Cursor()
        failures = 0
        while failures < MAX_STREAM_FAILURES and self._session is not None:
            headers = await self._headers(None, await self._auth.token(), "GET")
            headers["accept"] = "text/event-stream"
            del headers["content-type"]
            if cursor.last_id is not None:
                headers["last-event-id"] = cursor.last_id  # resume where the stream broke
            try:
                async with self._http.stream("GET", self._url, headers=headers) as response:
                    kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
                    if response.status_code != 200 or kind != "text/event-stream":
                        log.debug("the server offers no GET stream (%d)", response.status_code)
                        return  # 405: none offered; anything else: not ours to retry
                    async for event in _sse_messages(response, cursor):
                        failures = 0
                        await self._write(event)
            except (httpx.HTTPError, ConnectError) as exc:
                log.info("the server's GET stream broke (%s)", type(exc).__name__)
            failures += 1
            await asyncio.sleep(cursor.retry_s)

    def _note_session(self, response: httpx.Response) -> None:
        session = response.headers.get("mcp-session-id")
        if session is not None and _PLAIN.match(session):
            self._session = session

    async def _emit(self, request: Any, answer: Any) -> None:
        if isinstance(request, dict) and request.get("method") == "initialize" and isinstance(answer, dict):
            result = answer.get("result")
            version = result.get("protocolVersion") if isinstance(result, dict) else None
            if isinstance(version, str) and _PLAIN.match(version):
                self._version = version  # transports §Protocol Version Header, on every later request
        await self._write(answer)

    async def _fail(self, message: Any, text: str) -> None:
        for request_id in _request_ids(message):
            await self._write(
                {"jsonrpc": "2.0", "id": request_id, "error": {"code": INTERNAL_ERROR, "message": text}}
            )


class _Cursor:
    """Where an SSE stream stands: the last event id and the server's retry interval."""

    def __init__(self) -> None:
        self.last_id: str | None = None
        self.retry_s = STREAM_RETRY_S


def _request_ids(message: Any) -> list[Any]:
    """The ids of the requests in a message or batch (only requests await an answer)."""
    items = message if isinstance(message, list) else [message]
    return [m["id"] for m in items if isinstance(m, dict) and m.get("id") is not None and "method" in m]


def _answers(request: Any, event: Any) -> bool:
    """Whether ``event`` is the response to (one of) ``request``'s requests."""
    if not isinstance(event, dict) or not ("result" in event or "error" in event):
        return False
    return any(event.get("id") == request_id for request_id in _request_ids(request))


def _method(message: Any) -> str | None:
    method = message.get("method") if isinstance(message, dict) else None
    return method if isinstance(method, str) else None


def _challenge(response: httpx.Response) -> Challenge:
    return parse_challenge(response.status_code, response.headers.get("www-authenticate"))


def _body_version(message: Any) -> str | None:
    params = message.get("params") if isinstance(message, dict) else None
    meta = params.get("_meta") if isinstance(params, dict) else None
    version = meta.get(META_VERSION) if isinstance(meta, dict) else None
    return version if isinstance(version, str) and _PLAIN.match(version) else None


def _header_value(value: str) -> str:
    """The 2026-07-28 value encoding: plain printable ASCII as is, anything else base64."""
    if _PLAIN.match(value) and not (value.startswith("=?base64?") and value.endswith("?=")):
        return value
    return "=?base64?" + base64.b64encode(value.encode("utf-8")).decode("ascii") + "?="


def _is_jsonrpc(value: Any) -> bool:
    if isinstance(value, list):
        return bool(value) and all(_is_jsonrpc(v) for v in value)
    return isinstance(value, dict) and value.get("jsonrpc") == "2.0"


async def _sse_messages(response: httpx.Response, cursor: _Cursor | None = None) -> AsyncIterator[Any]:
    """The JSON-RPC messages of an SSE stream (``message`` events; priming events have no data)."""
    cursor = cursor if cursor is not None else _Cursor()
    data: list[str] = []
    size = 0
    event = "message"
    async for line in response.aiter_lines():
        if line == "":
            if data and event == "message":
                try:
                    parsed = json.loads("\n".join(data))
                except ValueError:
                    log.warning("the server sent an SSE event that is not JSON; dropped")
                else:
                    if _is_jsonrpc(parsed):
                        yield parsed
            data, size, event = [], 0, "message"
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "data":
            size += len(value)
            if size > MAX_EVENT_BYTES:
                raise ConnectError("the server sent an SSE event over 16 MiB")
            data.append(value)
        elif field == "event":
            event = value or "message"
        elif field == "id" and _PLAIN.match(value):
            cursor.last_id = value
        elif field == "retry" and value.isdigit() and value.isascii():
            cursor.retry_s = min(int(value), 60_000) / 1000
