"""An HTTP collector the audit destinations POST batches to (the webhook and OTLP logs).

One client per destination, set up once: the header secret on every request, never a redirect
followed (the secret would go wherever the collector points), no proxy from the environment.
The collector's answer is read under a cap: an answer is a status and a few bytes, and a
hostile or broken collector must not make the gateway hold an endless body in memory.
"""

from __future__ import annotations

from typing import NamedTuple

import httpx

__all__ = ["MAX_ANSWER_BYTES", "Collector", "CollectorAnswer", "CollectorRefused", "post_batch"]

MAX_ANSWER_BYTES = 65_536


class CollectorAnswer(NamedTuple):
    status: int
    content_type: str
    body: bytes | None  # None: longer than the cap, and not read past it


class CollectorRefused(Exception):
    """The collector answered something other than 2xx: the batch is offered again."""

    def __init__(self, name: str, status: int) -> None:
        super().__init__(f"the {name} answered {status}")
        self.status = status


class Collector:
    """POSTs batches to `url`; `name` says which collector in errors ("audit collector")."""

    def __init__(
        self,
        name: str,
        url: str,
        *,
        content_type: str,
        secret_header: tuple[str, str] | None,
        timeout: float,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.name = name
        self._url = url
        headers = {"content-type": content_type}
        if secret_header is not None:
            headers[secret_header[0]] = secret_header[1]
        self._http = httpx.AsyncClient(
            headers=headers, timeout=timeout, follow_redirects=False, trust_env=False, transport=transport
        )

    async def post(self, body: bytes) -> CollectorAnswer:
        """POST one batch; its 2xx answer, or raise ConnectionError / CollectorRefused."""
        try:
            answer = await post_batch(self._http, self._url, body)
        except httpx.HTTPError as exc:
            # Translated here: httpx's errors never reach the logs with a request attached.
            raise ConnectionError(f"the {self.name} is unreachable ({type(exc).__name__})") from None
        if not 200 <= answer.status < 300:
            raise CollectorRefused(self.name, answer.status)
        return answer

    async def aclose(self) -> None:
        await self._http.aclose()


async def post_batch(
    http: httpx.AsyncClient, url: str, body: bytes, max_answer_bytes: int = MAX_ANSWER_BYTES
) -> CollectorAnswer:
    """POST `body`; the answer's status and at most `max_answer_bytes` of its body. Raw bytes:
    an answer in a content-encoding is not inflated (no decompression bomb), so it does not
    parse, which the callers treat as saying nothing. httpx's errors go to the caller."""
    async with http.stream("POST", url, content=body) as response:
        content_type = response.headers.get("content-type", "")
        kept = bytearray()
        async for chunk in response.aiter_raw():
            kept += chunk
            if len(kept) > max_answer_bytes:
                return CollectorAnswer(response.status_code, content_type, None)  # closed unread
        return CollectorAnswer(response.status_code, content_type, bytes(kept))
