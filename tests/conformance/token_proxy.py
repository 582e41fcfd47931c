"""A loopback reverse proxy that adds one bearer token: the conformance suite's missing credential.

The official suite tests a *server* and cannot present a token, so a run through the gateway
puts this proxy in front of it::

    suite ──> TokenProxy (localhost:P) ──Authorization: Bearer T──> gateway ──> fixture upstream

It plays the network, or a load balancer, between a client and the gateway: the request goes
on as it came (method, path, query, body, and every end-to-end header, ``Host`` and ``Origin``
included, so the gateway's rebinding checks see what the client sent), plus the token. The
answer comes back chunk by chunk as the gateway sends it (an SSE stream is never buffered),
and a client that hangs up closes the gateway connection too, as a real proxy would.

Hop-by-hop headers (RFC 9110 section 7.6.1) belong to one connection and are not forwarded;
``Content-Length`` is recomputed by the HTTP client from the same body.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

__all__ = ["TokenProxy"]

Message = dict[str, Any]

# RFC 9110 section 7.6.1: meaningful for one connection only. Content-Length is set again by
# httpx from the body it sends; Authorization is the proxy's to set.
_HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)
_NOT_FORWARDED = _HOP_BY_HOP | {b"content-length", b"authorization"}
# An SSE GET stream stays open as long as the client keeps it: no read deadline on the hop.
_TIMEOUT = httpx.Timeout(None, connect=5.0).as_dict()


class TokenProxy:
    """A raw ASGI app forwarding every HTTP request to ``target`` with ``Authorization: Bearer token``.

    ``target`` is the gateway's socket (``http://127.0.0.1:PORT``); the path and query come from
    the request. One HTTP client serves the proxy's lifetime: it is opened and closed by the
    ASGI lifespan, so serve the app with lifespan on (``serve_asgi`` does).
    """

    def __init__(self, target: str, token: str) -> None:
        self._target = target.rstrip("/")
        self._authorization = f"Bearer {token}".encode("ascii")
        self._http: httpx.AsyncClient | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._proxy(scope, receive, send)

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self._http = httpx.AsyncClient(trust_env=False, follow_redirects=False)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._http is not None:
                    await self._http.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _proxy(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        body = await _read_body(receive)
        if body is None:
            return  # the client left before its request was complete
        relay = asyncio.ensure_future(self._relay(scope, body, send))
        hangup = asyncio.ensure_future(_wait_disconnect(receive))
        try:
            await asyncio.wait((relay, hangup), return_when=asyncio.FIRST_COMPLETED)
        finally:
            hangup.cancel()
            if not relay.done():
                relay.cancel()  # the client hung up: close the gateway connection as well
        await asyncio.gather(relay, hangup, return_exceptions=True)
        if relay.done() and not relay.cancelled() and (error := relay.exception()) is not None:
            raise error

    async def _relay(self, scope: dict[str, Any], body: bytes, send: Any) -> None:
        assert self._http is not None, "TokenProxy serves requests only between lifespan startup and shutdown"
        # httpx.Request, not client.build_request: the client's default headers (Accept,
        # User-Agent, Accept-Encoding) must not fill in what the client chose to leave out.
        request = httpx.Request(
            scope["method"],
            self._url(scope),
            headers=self._request_headers(scope["headers"]),
            content=body,
            extensions={"timeout": _TIMEOUT},
        )
        response = await self._http.send(request, stream=True)
        try:
            headers = [(k, v) for k, v in response.headers.raw if k.lower() not in _HOP_BY_HOP]
            await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
            # Raw bytes, as they arrive: no decoding, no re-chunking, no buffering.
            async for chunk in response.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            await response.aclose()

    def _url(self, scope: dict[str, Any]) -> str:
        # raw_path keeps the client's percent-encoding; path is its decoded form.
        path: bytes = scope.get("raw_path") or scope["path"].encode()
        query: bytes = scope.get("query_string") or b""
        return self._target + path.decode("latin-1") + ("?" + query.decode("latin-1") if query else "")

    def _request_headers(self, raw: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
        headers = [(name, value) for name, value in raw if name.lower() not in _NOT_FORWARDED]
        headers.append((b"authorization", self._authorization))
        return headers


async def _read_body(receive: Any) -> bytes | None:
    body = bytearray()
    while True:
        message: Message = await receive()
        if message["type"] == "http.disconnect":
            return None
        body += message.get("body", b"")
        if not message.get("more_body", False):
            return bytes(body)


async def _wait_disconnect(receive: Any) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
