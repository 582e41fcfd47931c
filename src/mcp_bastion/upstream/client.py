"""The upstream client the forwarding stage uses: pooled HTTP/1.1 with streamed responses.

One pool for the gateway's lifetime: connections are reused across calls and users (no
per-request client, SSL context or upstream session). Transport failures surface as
UpstreamError / UpstreamTimeout, from the one module that talks to sockets (`http11.py`).
"""

from __future__ import annotations

from types import TracebackType

from ..config.model import LimitsConfig
from .http11 import BodyChunks, Http11Pool, Origin, RawResponse

__all__ = ["ResponseHeaders", "Streamed", "UpstreamClient", "UpstreamResponse"]


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

    def chunks(self) -> BodyChunks:
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

    def stream(
        self,
        method: str,
        url: str,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
        read_timeout: float | None,
    ) -> Streamed:
        """`async with client.stream(...) as response:` closes the response on the way out."""
        return Streamed(self, (method, url, headers, body, read_timeout))

    async def aclose(self) -> None:
        await self._pool.aclose()


class Streamed:
    """The context manager behind `UpstreamClient.stream` (a class, not `asynccontextmanager`:
    the compiled build cannot compile async generators)."""

    __slots__ = ("_client", "_request", "_response")

    def __init__(
        self,
        client: UpstreamClient,
        request: tuple[str, str, list[tuple[bytes, bytes]], bytes, float | None],
    ) -> None:
        self._client = client
        self._request = request
        self._response: UpstreamResponse | None = None

    async def __aenter__(self) -> UpstreamResponse:
        self._response = await self._client.open(*self._request)
        return self._response

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._response is not None:
            self._client.close(self._response)
            self._response = None
