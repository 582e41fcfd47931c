"""Sending an upstream's answer on to the client: its headers filtered, its body checked.

A JSON answer (one object or a batch) is read whole and checked by the `ResponseGuard`;
an SSE answer streams event by event through the same guard; an answer the transport
defines as empty goes out empty. The upstream's session id is sealed for the caller before
the client sees it. Nothing here decides whether an answer may be relayed at all: that is
`mcp.statuses` and the forwarding stage.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from ..asgi import Headers
from ..errors import UpstreamError
from ..mcp.sessions import SessionSealer, subject_digest, valid_upstream_session_id
from ..mcp.sse import SseRewriter
from ..upstream.responses import ResponseGuard
from ..upstream.transport import UpstreamResponse
from .exchange import Exchange

__all__ = ["Relay"]

_PASSED_RESPONSE_HEADERS: Final = frozenset(
    {b"content-type", b"cache-control", b"x-accel-buffering", b"content-length"}
)
_FRAMING: Final = frozenset({b"content-length"})  # recomputed for a body the gateway rewrites or streams


class Relay:
    def __init__(self, sealer: SessionSealer, clock: Callable[[], float], *, max_event_bytes: int) -> None:
        self._sealer = sealer
        self._clock = clock
        self._max_event = max_event_bytes

    async def send_empty(self, ex: Exchange, upstream: UpstreamResponse) -> None:
        headers = self._headers(ex, upstream, drop_length=True)
        await ex.send({"type": "http.response.start", "status": upstream.status, "headers": headers})
        ex.status = upstream.status
        await ex.send({"type": "http.response.body", "body": b"", "more_body": False})

    async def send_json(self, ex: Exchange, upstream: UpstreamResponse, body: bytes) -> None:
        """`body` already checked (`ResponseGuard.check_json`)."""
        headers = self._headers(ex, upstream, drop_length=True)
        headers.append((b"content-length", str(len(body)).encode()))
        await ex.send({"type": "http.response.start", "status": upstream.status, "headers": headers})
        ex.status = upstream.status
        await ex.send({"type": "http.response.body", "body": body, "more_body": False})

    async def stream_sse(
        self, ex: Exchange, upstream: UpstreamResponse, guard: ResponseGuard, cap: int | None
    ) -> None:
        """Relay an event stream; past `cap` bytes (None: no cap, a GET stream) it fails (UP-02)."""
        sse = SseRewriter(guard.sse_data, max_event_bytes=self._max_event)
        headers = self._headers(ex, upstream, drop_length=True)
        await ex.send({"type": "http.response.start", "status": upstream.status, "headers": headers})
        ex.status = upstream.status
        received = 0
        async for chunk in upstream.chunks():
            received += len(chunk)
            if cap is not None and received > cap:
                raise UpstreamError("upstream answer exceeds limits.max_response_bytes")
            out = sse.feed(chunk)
            while sse.held:  # a result the safety filters read: screened in order, then on
                out += sse.resume(await guard.release())
            if out:
                await ex.send({"type": "http.response.body", "body": out, "more_body": True})
        tail = sse.finish()
        while sse.held:
            tail += sse.resume(await guard.release())
        await ex.send({"type": "http.response.body", "body": tail, "more_body": False})

    def _headers(self, ex: Exchange, upstream: UpstreamResponse, drop_length: bool) -> Headers:
        passed = _PASSED_RESPONSE_HEADERS - _FRAMING if drop_length else _PASSED_RESPONSE_HEADERS
        out = [(name, value) for name, value in upstream.headers.raw if name in passed]
        session_value = upstream.headers.first(b"mcp-session-id")
        if session_value is not None and ex.era is not None and ex.era.name == "legacy":
            session = session_value.decode("latin-1")
            if not valid_upstream_session_id(session):
                raise UpstreamError("upstream sent an invalid session id")
            assert ex.principal is not None
            subject = subject_digest(ex.principal.issuer, ex.principal.subject)
            sealed = self._sealer.seal(session, subject, ex.route.name, self._clock())
            out.append((b"mcp-session-id", sealed.encode("ascii")))
        return out
