"""A SIEM's HTTP collector as an audit destination: one POST per batch, a 2xx takes it.

Anything else (a refused connection, a timeout, a 5xx, a 4xx) raises, and the spool offers
the same batch again after a backoff: batches arrive in order, each once, except when a POST
reached the collector but its answer did not reach us (a timeout, a crash): that batch is
sent again, with the same event ids. The header secret never appears in a log or error.
"""

from __future__ import annotations

import httpx

from ..config.audit import WebhookConfig
from .collector import post_batch
from .spool import Batch

__all__ = ["WebhookDestination", "WebhookRefused"]


class WebhookRefused(Exception):
    """The collector answered something other than 2xx."""

    def __init__(self, status: int) -> None:
        super().__init__(f"the audit collector answered {status}")
        self.status = status


class WebhookDestination:
    def __init__(
        self, config: WebhookConfig, secret: str | None, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self._url = config.url
        self._array = config.format == "array"
        headers = {"content-type": "application/json" if self._array else "application/x-ndjson"}
        if secret is not None:
            headers[config.header] = secret
        # Never follow a redirect: the secret would go wherever the collector points.
        self._http = httpx.AsyncClient(
            headers=headers,
            timeout=config.timeout_seconds,
            follow_redirects=False,
            trust_env=False,
            transport=transport,
        )

    async def deliver(self, batch: Batch) -> None:
        if self._array:
            body = b"[" + b",".join(line.rstrip(b"\n") for line in batch.lines) + b"]"
        else:
            body = b"".join(batch.lines)
        try:
            answer = await post_batch(self._http, self._url, body)
        except httpx.HTTPError as exc:
            # Translated here: httpx's errors never reach the logs with a request attached.
            raise ConnectionError(f"the audit collector is unreachable ({type(exc).__name__})") from None
        if not 200 <= answer.status < 300:
            raise WebhookRefused(answer.status)

    async def aclose(self) -> None:
        await self._http.aclose()
