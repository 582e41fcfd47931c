"""The terminal stage: send the request upstream with the gateway's credential, relay the answer.

- Only an allow-list of request headers goes upstream; the client's Authorization, cookies
  and session id never do (TS-08). The upstream session id travels sealed to the client.
- SSE answers stream through event by event; a JSON answer (one object) is checked whole.
  Either way, only responses to this exchange's requests pass (`responses.py`), a
  `tools/list` result is filtered to the tools the caller may call, and the body is capped.
- An upstream 5xx, an unexpected content type or a non-JSON body becomes the gateway's own
  error: nothing of the upstream's text reaches the client (UP-03).
- A client that disconnects cancels the upstream request.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from ..errors import UpstreamError
from ..exchange import Exchange
from ..mcp.era import MODERN_VERSIONS
from ..mcp.sessions import SessionSealer, subject_digest, valid_upstream_session_id
from ..mcp.sse import SseRewriter
from ..policy.scopes import ScopeRegistry
from .client import UpstreamClient, UpstreamResponse
from .responses import ResponseGuard

__all__ = ["Forward"]

log = logging.getLogger("mcp_bastion.upstream")
_PASSED_REQUEST_HEADERS = tuple(
    (name, name.encode())
    for name in ("mcp-protocol-version", "mcp-method", "mcp-name", "last-event-id", "tracestate")
)
_PASSED_RESPONSE_HEADERS = frozenset(
    {b"content-type", b"cache-control", b"x-accel-buffering", b"content-length"}
)
_FRAMING = frozenset({b"content-length"})  # recomputed for a body the gateway rewrites or streams
USER_AGENT = b"mcp-bastion/0.1"


class Forward:
    def __init__(
        self,
        client: UpstreamClient,
        sealer: SessionSealer,
        registry: ScopeRegistry,
        clock: Callable[[], float],
        *,
        max_response_bytes: int,
        max_event_bytes: int,
    ) -> None:
        self._client = client
        self._sealer = sealer
        self._registry = registry
        self._clock = clock
        self._max_response = max_response_bytes
        self._max_event = max_event_bytes

    async def __call__(self, ex: Exchange) -> None:
        # The relay runs in this task and is cancelled if the client goes away (JR-12), which
        # closes the upstream connection. The gateway's server calls back on a disconnect;
        # under another ASGI server a watcher task waits in receive() for it.
        task = asyncio.current_task()
        assert task is not None
        gone = False

        def client_gone() -> None:
            nonlocal gone
            gone = True
            task.cancel()

        cycle = ex.cycle
        watcher = None
        if cycle is not None:
            if cycle.gone:
                ex.reason, ex.status = "client disconnected", 499  # nothing is sent upstream
                return
            cycle.on_disconnect(client_gone)
        else:
            watcher = asyncio.ensure_future(_watch_disconnect(ex, client_gone))
        try:
            await self._relay(ex)
        except asyncio.CancelledError:
            if not gone:
                raise  # a cancellation that is not ours (shutdown): let it through
            task.uncancel()
            ex.reason = "client disconnected"
            ex.status = ex.status or 499
        finally:
            if cycle is not None:
                cycle.forget_disconnect(client_gone)
            if watcher is not None:
                watcher.cancel()

    async def _relay(self, ex: Exchange) -> None:
        method = ex.http_method
        timeout = None if method == "GET" else ex.route.config.timeout_seconds
        headers, credential = self._request_headers(ex)
        upstream = await self._client.open(method, ex.route.upstream, headers, ex.body, timeout)
        try:
            status = upstream.status
            if status in (401, 403):
                # The upstream refused *our* credential; its challenge means nothing to the client.
                raise UpstreamError("upstream refused the gateway's credential")
            if status >= 500:
                raise UpstreamError(f"upstream failed (HTTP {status})")
            content_type = _media_type(upstream.headers.first(b"content-type"))
            # GET streams are long-lived notification channels: no byte cap, just the read loop.
            cap = self._max_response if method == "POST" else None
            if status in (202, 204):
                await self._send_empty(ex, upstream)  # accepted notifications carry no body
            elif content_type == "application/json":
                await self._send_json(ex, upstream, self._guard(ex, credential))
            elif content_type == "text/event-stream":
                sse = SseRewriter(self._guard(ex, credential).sse_data, max_event_bytes=self._max_event)
                await self._stream(ex, upstream, sse, cap)
            elif content_type:
                raise UpstreamError("upstream answered with an unexpected content type")
            else:
                await self._send_untyped(ex, upstream)
        finally:
            self._client.close(upstream)

    def _request_headers(self, ex: Exchange) -> tuple[list[tuple[bytes, bytes]], bytes | None]:
        source = ex.headers
        headers: list[tuple[bytes, bytes]] = [
            (b"accept", (source.get("accept") or "application/json, text/event-stream").encode("latin-1")),
            (b"accept-encoding", b"identity"),  # relay bytes as they are; no re-compression
            (b"user-agent", USER_AGENT),
            (b"traceparent", ex.trace.header()),
        ]
        if ex.http_method == "POST":
            headers.append((b"content-type", b"application/json"))
        for name, encoded in _PASSED_REQUEST_HEADERS:
            value = source.get(name)
            if value is not None:
                headers.append((encoded, value.encode("latin-1")))
        headers.extend(source.params)
        if ex.upstream_session is not None:
            headers.append((b"mcp-session-id", ex.upstream_session.encode("ascii")))
        assert ex.principal is not None
        credential = ex.route.credential.header(ex.principal, _call_scopes(ex))
        if credential is None:
            return headers, None
        headers.append(credential)
        secret = credential[1]
        # The secret part of the header value: what an upstream could quote back (SL-02).
        return headers, secret.split(b" ", 1)[1] if secret[:7].lower() == b"bearer " else secret

    def _response_headers(
        self, ex: Exchange, upstream: UpstreamResponse, drop_length: bool
    ) -> list[tuple[bytes, bytes]]:
        passed = _PASSED_RESPONSE_HEADERS - _FRAMING if drop_length else _PASSED_RESPONSE_HEADERS
        out = [(name, value) for name, value in upstream.headers.raw if name in passed]
        session_value = upstream.headers.first(b"mcp-session-id")
        session = session_value.decode("latin-1") if session_value is not None else None
        if session is not None and ex.era is not None and ex.era.name == "legacy":
            if not valid_upstream_session_id(session):
                raise UpstreamError("upstream sent an invalid session id")
            assert ex.principal is not None
            subject = subject_digest(ex.principal.issuer, ex.principal.subject)
            sealed = self._sealer.seal(session, subject, ex.route.name, self._clock())
            out.append((b"mcp-session-id", sealed.encode("ascii")))
        return out

    async def _stream(
        self, ex: Exchange, upstream: UpstreamResponse, sse: SseRewriter | None, cap: int | None
    ) -> None:
        headers = self._response_headers(ex, upstream, drop_length=sse is not None)
        await ex.send({"type": "http.response.start", "status": upstream.status, "headers": headers})
        ex.status = upstream.status
        received = 0
        async for chunk in upstream.chunks():
            received += len(chunk)
            if cap is not None and received > cap:
                raise UpstreamError("upstream answer exceeds limits.max_response_bytes")  # UP-02
            out = sse.feed(chunk) if sse is not None else chunk
            if out:
                await ex.send({"type": "http.response.body", "body": out, "more_body": True})
        tail = sse.finish() if sse is not None else b""
        await ex.send({"type": "http.response.body", "body": tail, "more_body": False})

    async def _send_empty(self, ex: Exchange, upstream: UpstreamResponse) -> None:
        headers = self._response_headers(ex, upstream, drop_length=True)
        await ex.send({"type": "http.response.start", "status": upstream.status, "headers": headers})
        ex.status = upstream.status
        await ex.send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _send_untyped(self, ex: Exchange, upstream: UpstreamResponse) -> None:
        """An answer without Content-Type may only be empty (a 405 to GET, say): a body of
        unknown type is never relayed (UP-03; it could quote the gateway's credential)."""
        body = await upstream.read_all(self._max_response)
        if body:
            raise UpstreamError("upstream answered with a body of no declared type")
        await self._send_empty(ex, upstream)

    async def _send_json(self, ex: Exchange, upstream: UpstreamResponse, guard: ResponseGuard) -> None:
        body = await upstream.read_all(self._max_response)
        if body is None:
            raise UpstreamError("upstream answer exceeds limits.max_response_bytes")  # UP-02
        out = guard.check_json(body) if body else b""
        headers = self._response_headers(ex, upstream, drop_length=True)
        headers.append((b"content-length", str(len(out)).encode()))
        await ex.send({"type": "http.response.start", "status": upstream.status, "headers": headers})
        ex.status = upstream.status
        await ex.send({"type": "http.response.body", "body": out, "more_body": False})

    def _guard(self, ex: Exchange, credential: bytes | None) -> ResponseGuard:
        ids = {c.id for c in ex.calls if c.id is not None and c.method} if ex.http_method == "POST" else None
        listing = next((c.id for c in ex.calls if c.method == "tools/list"), None)
        return ResponseGuard(ids, listing, lambda result: self._filter_tools(ex, result), credential)

    def _filter_tools(self, ex: Exchange, result: dict[str, Any]) -> None:
        route = ex.route
        known = route.catalog.learn(result["tools"])
        assert ex.principal is not None
        if route.auth:
            # Only the tools this caller may call; malformed entries are dropped either way.
            granted = self._registry.expand(ex.principal.scopes)
            requirement = route.policy.tool_requirement
            result["tools"] = [
                tool
                for tool, name, annotations in known
                if granted.issuperset(requirement(name, annotations))
            ]
        if ex.era is not None and ex.era.version in MODERN_VERSIONS:
            # caching.mdx: a list that differs per caller must not be shared across tokens.
            result["cacheScope"] = "private"


def _call_scopes(ex: Exchange) -> tuple[str, ...]:
    """The scopes a minted upstream token carries: what this request's calls need, nothing more."""
    if len(ex.required) == 1:
        return ex.required[0]
    return tuple(dict.fromkeys(scope for needed in ex.required for scope in needed))


async def _watch_disconnect(ex: Exchange, client_gone: Callable[[], None]) -> None:
    while (await ex.receive())["type"] != "http.disconnect":
        pass
    client_gone()


def _media_type(value: bytes | None) -> str:
    """`application/json; charset=utf-8` → `application/json` (from a memo: upstreams repeat it)."""
    if value is None:
        return ""
    known = _MEDIA_TYPES.get(value)
    if known is None:
        known = value.decode("latin-1").split(";")[0].strip().lower()
        if len(_MEDIA_TYPES) < 64:
            _MEDIA_TYPES[value] = known
    return known


_MEDIA_TYPES: dict[bytes, str] = {}
