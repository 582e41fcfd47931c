"""The HTTP upstream transport: pooled HTTP/1.1 with streamed responses.

One pool for the gateway's lifetime, shared by every HTTP upstream: connections are reused
across calls and users (no per-request client, SSL context or upstream session). Transport
failures surface as UpstreamError / UpstreamTimeout, from the one module that talks to
sockets (`http11.py`).
"""

from __future__ import annotations

import ssl
from types import TracebackType

from ..asgi import Headers
from ..config.edge import UpstreamTlsConfig
from ..config.model import LimitsConfig
from .http11 import BodyChunks, Http11Pool, Origin, RawResponse
from .tls import UpstreamContexts
from .transport import ResponseHeaders, UpstreamResponse, UpstreamTransport

__all__ = ["HttpResponse", "HttpTransport", "Streamed", "UpstreamClient"]


class HttpResponse:
    __slots__ = ("_read_timeout", "_response", "headers", "status")

    def __init__(self, response: RawResponse, read_timeout: float | None) -> None:
        self._response = response
        self._read_timeout = read_timeout
        self.status = response.status
        self.headers = ResponseHeaders(response.headers)

    def chunks(self) -> BodyChunks:
        return self._response.chunks(self._read_timeout)

    async def read_all(self, cap: int) -> bytes | None:
        return await self._response.read_all(self._read_timeout, cap)


class UpstreamClient:
    """The shared HTTP/1.1 pool; `transport(url)` binds it to one upstream."""

    def __init__(self, limits: LimitsConfig) -> None:
        self._pool = Http11Pool(
            max_per_origin=limits.upstream_pool_size, connect_timeout=limits.upstream_connect_timeout_seconds
        )
        self._tls = UpstreamContexts()

    def transport(self, url: str, tls: UpstreamTlsConfig | None = None) -> HttpTransport:
        context = self._tls(tls) if tls is not None and url.lower().startswith("https:") else None
        return HttpTransport(self._pool, url, context)

    async def aclose(self) -> None:
        await self._pool.aclose()


class HttpTransport:
    __slots__ = ("_origin", "_pool", "_tls", "target")

    def __init__(self, pool: Http11Pool, url: str, tls: ssl.SSLContext | None = None) -> None:
        self._pool = pool
        self._origin = Origin.parse(url)
        self._tls = tls
        self.target = url

    async def open(
        self, method: str, headers: Headers, body: bytes, read_timeout: float | None
    ) -> HttpResponse:
        raw = await self._pool.send(
            self._origin, method.encode("ascii"), headers, body, read_timeout, self._tls
        )
        return HttpResponse(raw, read_timeout)

    def close(self, response: UpstreamResponse) -> None:
        if isinstance(response, HttpResponse):
            self._pool.release(response._response)  # reused only if read to the end; otherwise closed


class Streamed:
    """`async with Streamed(transport, ...) as response:` closes the response on the way out
    (a class, not `asynccontextmanager`: the compiled build cannot compile async generators)."""

    __slots__ = ("_request", "_response", "_transport")

    def __init__(
        self,
        transport: UpstreamTransport,
        method: str,
        headers: Headers,
        body: bytes,
        read_timeout: float | None,
    ) -> None:
        self._transport = transport
        self._request = (method, headers, body, read_timeout)
        self._response: UpstreamResponse | None = None

    async def __aenter__(self) -> UpstreamResponse:
        self._response = await self._transport.open(*self._request)
        return self._response

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._response is not None:
            self._transport.close(self._response)
            self._response = None
