"""The seam between the gateway and an upstream MCP server: one request out, one answer back.

The forwarding stage, the catalog fetcher and the CLI speak to every upstream through
`UpstreamTransport`; HTTP (`client.HttpTransport`) is the one implementation today, stdio
processes come next. A transport is bound to one upstream (its URL, or its process
pool). The answer streams: `chunks()` yields the body as it arrives, `read_all()` takes
it whole under a cap; the caller must `close()` every answer it opened.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

from ..asgi import Headers

__all__ = ["ResponseHeaders", "UpstreamResponse", "UpstreamTransport"]


class ResponseHeaders:
    """An upstream's response headers: names lower-cased, first value wins on lookup."""

    __slots__ = ("raw",)

    def __init__(self, raw: Headers) -> None:
        self.raw = raw

    def first(self, name: bytes) -> bytes | None:
        """The raw value of a header by lower-case name (the hot path's form: no decoding)."""
        for header, value in self.raw:
            if header == name:
                return value
        return None

    def get(self, name: str, default: str | None = None) -> str | None:
        value = self.first(name.encode("latin-1"))
        return value.decode("latin-1") if value is not None else default


class UpstreamResponse(Protocol):
    @property
    def status(self) -> int: ...
    @property
    def headers(self) -> ResponseHeaders: ...
    def chunks(self) -> AsyncIterator[bytes]: ...
    async def read_all(self, cap: int) -> bytes | None:
        """The whole body, or None when it exceeds `cap` bytes."""
        ...


class UpstreamTransport(Protocol):
    @property
    def target(self) -> str:
        """Where requests go, for logs and the minted token's default audience (a URL)."""
        ...

    async def open(
        self, method: str, headers: Headers, body: bytes, read_timeout: float | None
    ) -> UpstreamResponse:
        """Send one request; UpstreamError / UpstreamTimeout when there is no answer."""
        ...

    def close(self, response: UpstreamResponse) -> None:
        """Done with an answer (read to the end or not)."""
        ...
