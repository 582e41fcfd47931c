"""The upstream client the forwarding stage uses: pooled HTTP/1.1 with streamed responses.

One pool for the gateway's lifetime: connections are reused across calls and users (no
per-request client, SSL context or upstream session). Transport failures surface as
UpstreamError / UpstreamTimeout, from the one module that talks to sockets (`http11.py`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from ..config.model import LimitsConfig
from .http11 import Http11Pool, Origin, RawResponse

__all__ = ["ResponseHeaders", "UpstreamClient", "UpstreamResponse"]


class ResponseHeaders:
    """An upstream's response headers: names lower-cased, first value wins on lookup."""

    def __init__(self, raw: list[tuple[bytes, bytes]]) -> None:
        self.raw = raw

    def first(self, name: bytes) -> bytes | None:
        """The raw value of a header by lower-case name (the hot path's form: no decoding)."""
        for header, value in self.raw:
            if header == name:
                return value
        return None

    def get(self, name: str, default: str | None = None) -> str | None:
        key = name.encode("latin-1")
        for header, value in self.raw:
            if header == key:
                return value.decode("latin-1")
        return default


class UpstreamResponse:
    def __init__(self, response: RawResponse, read_timeout: float | None) -> None:
        self._response = response
        self._read_timeout = read_timeout
        self.status = response.status
        self.headers = ResponseHeaders(response.headers)

    def chunks(self) -> AsyncIterator[bytes]:
        return self._response.chunks(self._read_timeout)

    async def read_all(self, cap: int) -> bytes | None:
        return await self._response.read_all(self._read_timeout, cap)


class UpstreamClient:
    def __init__(self, limits: LimitsConfig) -> None:
        self._pool = Http11Pool(
            max_per_origin=limits.upstream_pool_size, connect_timeout=limits.upstream_connect_timeout_seconds
        )
        self._origins: dict[str, Origin] = {}

    async def open(
        self,
        method: str,
        url: str,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
        read_timeout: float | None,
    ) -> UpstreamResponse:
        """Send a request; the caller must `close()` the response (the hot path's form)."""
        origin = self._origins.get(url)
        if origin is None:
            origin = self._origins[url] = Origin.parse(url)
        raw = await self._pool.send(origin, method.encode("ascii"), headers, body, read_timeout)
        return UpstreamResponse(raw, read_timeout)

    def close(self, response: UpstreamResponse) -> None:
        self._pool.release(response._response)  # reused only if read to the end; otherwise closed

    @asynccontextmanager
    async def stream(
        self,
        method: str,
        url: str,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
        read_timeout: float | None,
    ) -> AsyncIterator[UpstreamResponse]:
        response = await self.open(method, url, headers, body, read_timeout)
        try:
            yield response
        finally:
            self.close(response)

    async def aclose(self) -> None:
        await self._pool.aclose()
