"""Reading a request body under a byte cap (JR-02), after the caller is authenticated."""

from __future__ import annotations

from ..errors import RequestRejected
from ..exchange import Exchange

__all__ = ["ReadBody"]


class ReadBody:
    def __init__(self, max_bytes: int) -> None:
        self._max = max_bytes

    async def __call__(self, ex: Exchange) -> None:
        if ex.http_method != "POST":
            return
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
                break
        ex.body = b"".join(chunks)
