"""Reading a request body under a byte cap (JR-02) and a time cap (JR-10), after the caller is
authenticated.

uvicorn bounds neither how long a body may take to arrive nor how long a connection may sit
between bytes, so a client sending one byte every few seconds would hold a task here forever
(slowloris). The whole body must arrive within the read timeout, or the answer is 408.
"""

from __future__ import annotations

import asyncio

from ..errors import RequestRejected
from .exchange import Exchange

__all__ = ["DEFAULT_READ_TIMEOUT_SECONDS", "ReadBody"]

DEFAULT_READ_TIMEOUT_SECONDS = 10.0  # keep equal to LimitsConfig.body_read_timeout_seconds


class ReadBody:
    def __init__(self, max_bytes: int, read_timeout: float = DEFAULT_READ_TIMEOUT_SECONDS) -> None:
        self._max = max_bytes
        self._timeout = read_timeout

    async def __call__(self, ex: Exchange) -> None:
        if ex.http_method != "POST":
            return
        cycle = ex.cycle
        if cycle is not None and cycle.body_complete:
            if cycle.gone:
                raise RequestRejected("client went away", status=499)  # nothing to answer to
            ex.body = await self._read(ex)  # all here already: no wait, so no deadline to arm
            return
        try:
            async with asyncio.timeout(self._timeout):
                ex.body = await self._read(ex)
        except TimeoutError:
            raise RequestRejected(
                f"request body not received within {self._timeout:g} s", status=408
            ) from None

    async def _read(self, ex: Exchange) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await ex.receive()
            if message["type"] == "http.disconnect":
                raise RequestRejected("client went away", status=499)
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self._max:
                raise RequestRejected("request body too large", status=413)
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)
