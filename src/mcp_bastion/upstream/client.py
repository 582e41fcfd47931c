"""The pooled HTTP client for upstream MCP servers.

One client for the gateway's lifetime: connections are reused across calls and users
(no per-request client, SSL context or upstream session). httpx errors are translated
here into UpstreamError / UpstreamTimeout.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx

from ..config.model import LimitsConfig
from ..errors import UpstreamError, UpstreamTimeout

__all__ = ["UpstreamClient", "UpstreamResponse"]


@dataclass(slots=True)
class UpstreamResponse:
    status: int
    headers: httpx.Headers
    _response: httpx.Response

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.aiter_raw():
                yield chunk
        except httpx.TimeoutException:
            raise UpstreamTimeout("upstream stopped sending within the timeout") from None
        except httpx.HTTPError:
            raise UpstreamError("upstream connection failed mid-response") from None


class UpstreamClient:
    def __init__(self, limits: LimitsConfig) -> None:
        self._connect_timeout = limits.upstream_connect_timeout_seconds
        self._http = httpx.AsyncClient(
            limits=httpx.Limits(
                max_connections=limits.upstream_pool_size, max_keepalive_connections=limits.upstream_pool_size
            ),
            follow_redirects=False,
            trust_env=False,  # no proxy or netrc picked up from the environment
            timeout=httpx.Timeout(60, connect=self._connect_timeout),
        )

    @asynccontextmanager
    async def stream(
        self,
        method: str,
        url: str,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
        read_timeout: float | None,
    ) -> AsyncIterator[UpstreamResponse]:
        timeout = httpx.Timeout(read_timeout, connect=self._connect_timeout, pool=self._connect_timeout)
        request = self._http.build_request(
            method, url, headers=headers, content=body or None, timeout=timeout
        )
        try:
            response = await self._http.send(request, stream=True)
        except httpx.TimeoutException:
            raise UpstreamTimeout("upstream did not answer within the timeout") from None
        except httpx.HTTPError:
            raise UpstreamError("upstream is unreachable") from None
        try:
            yield UpstreamResponse(response.status_code, response.headers, response)
        finally:
            await response.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()
