"""The terminal stage: send the request upstream with the gateway's credential, relay the answer.

The pieces, each in its own module: what goes out (`outbound.py`), which upstream statuses
mean something for this request (`mcp/statuses.py`), which messages may come back
(`upstream/responses.py`), the `tools/list` filter (`listing.py`), sealing an upstream's
`requestState` (`request_state.py`) and the relaying itself (`relay.py`). This stage strings them together and watches the client: a client that
disconnects cancels the upstream request (JR-12).

An upstream failure (5xx, a redirect, a status the transport does not define for this
request, an unexpected content type, a non-JSON body) becomes the gateway's own error:
nothing of the upstream's text reaches the client (UP-03).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from ..cache import BoundedCache
from ..errors import ProtocolError, UpstreamError
from ..mcp.request_state import RequestStateSealer
from ..mcp.statuses import status_use
from ..upstream.responses import ResponseGuard
from ..upstream.transport import UpstreamResponse
from .exchange import Exchange
from .listing import filter_tool_list
from .outbound import outbound_request
from .relay import Relay
from .request_state import seal_input_required
from .screen import screen_results

__all__ = ["SESSION_NOT_FOUND", "Forward"]

SESSION_NOT_FOUND = -32001  # what the MCP SDKs answer with their 404 for an unknown session


class Forward:
    def __init__(
        self,
        relay: Relay,
        *,
        max_response_bytes: int,
        request_states: RequestStateSealer | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._relay = relay
        self._max_response = max_response_bytes
        self._request_states = request_states
        self._clock = clock

    async def __call__(self, ex: Exchange) -> None:
        # The relay runs in this task and is cancelled if the client goes away, which closes
        # the upstream connection. The gateway's server calls back on a disconnect; under
        # another ASGI server a watcher task waits in receive() for it.
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
            await self._forward(ex)
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

    async def _forward(self, ex: Exchange) -> None:
        method = ex.http_method
        timeout = None if method == "GET" else ex.route.config.timeout_seconds
        outbound = await outbound_request(ex)
        transport = ex.route.transport
        upstream = await transport.open(method, outbound.headers, ex.body, timeout)
        try:
            await self._answer(ex, upstream, outbound.secret)
        finally:
            transport.close(upstream)

    async def _answer(self, ex: Exchange, upstream: UpstreamResponse, secret: bytes | None) -> None:
        method, status = ex.http_method, upstream.status
        expects_response = any(call.id is not None and call.method for call in ex.calls)
        use = status_use(
            method, status, expects_response=expects_response, has_session=ex.upstream_session is not None
        )
        if use == "refuse":
            if status in (401, 403):
                # The upstream refused *our* credential; its challenge means nothing to the client.
                raise UpstreamError("upstream refused the gateway's credential")
            raise UpstreamError(f"upstream answered HTTP {status}")
        if use == "empty":
            await self._relay.send_empty(ex, upstream)
            return
        if use == "session-gone":
            raise ProtocolError("Session not found", code=SESSION_NOT_FOUND, status=404)
        content_type = _media_type(upstream.headers.first(b"content-type"))
        guard = self._guard(ex, secret)
        if content_type == "application/json":
            body = await upstream.read_all(self._max_response)
            if body is None:
                raise UpstreamError("upstream answer exceeds limits.max_response_bytes")  # UP-02
            if not body:
                if expects_response or use == "rpc-errors":
                    raise UpstreamError("upstream sent no response for this request")
                await self._relay.send_json(ex, upstream, b"")
                return
            checked = guard.check_json(body) if use == "answer" else guard.check_errors(body)
            if guard.screening:
                checked = await guard.screen_json(checked)
            await self._relay.send_json(ex, upstream, checked)
        elif content_type == "text/event-stream" and use == "answer":
            # GET streams are long-lived notification channels: no byte cap, just the read loop.
            cap = self._max_response if method == "POST" else None
            await self._relay.stream_sse(ex, upstream, guard, cap)
        elif content_type:
            raise UpstreamError("upstream answered with an unexpected content type")
        else:
            # No Content-Type: only an empty answer to a request that expects none (UP-03:
            # a body of unknown type is never relayed; it could quote the gateway's credential).
            body = await upstream.read_all(self._max_response)
            if body or expects_response or use == "rpc-errors":
                raise UpstreamError("upstream answered without a declared content type")
            await self._relay.send_empty(ex, upstream)

    def _guard(self, ex: Exchange, secret: bytes | None) -> ResponseGuard:
        ids = {c.id for c in ex.calls if c.id is not None and c.method} if ex.http_method == "POST" else None
        listing = next((c.id for c in ex.calls if c.method == "tools/list"), None)
        states = self._request_states
        rewrite = seal_input_required(ex, states, self._clock) if states is not None else None
        results = screen_results(ex) if ex.route.safety is not None else None
        return ResponseGuard(
            ids, listing, lambda result: filter_tool_list(ex, result), secret, rewrite, results
        )


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
        _MEDIA_TYPES.put(value, known)
    return known


_MEDIA_TYPES: BoundedCache[bytes, str] = BoundedCache(64)
