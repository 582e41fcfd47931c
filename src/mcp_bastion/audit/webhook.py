"""A SIEM's HTTP collector as an audit destination: one POST per batch, a 2xx takes it.

Anything else (a refused connection, a timeout, a 5xx, a 4xx) raises, and the spool offers
the same batch again after a backoff: batches arrive in order, each once, except when a POST
reached the collector but its answer did not reach us (a timeout, a crash): that batch is
sent again, with the same event ids. The header secret never appears in a log or error.
"""

from __future__ import annotations

import httpx

from ..config.audit import WebhookConfig
from .collector import Collector
from .spool import Batch

__all__ = ["WebhookDestination"]


class WebhookDestination:
    def __init__(
        self, config: WebhookConfig, secret: str | None, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self._array = config.format == "array"
        self._collector = Collector(
            "audit collector",
            config.url,
            content_type="application/json" if self._array else "application/x-ndjson",
            secret_header=(config.header, secret) if secret is not None else None,
            timeout=config.timeout_seconds,
            transport=transport,
        )

    async def deliver(self, batch: Batch) -> None:
        if self._array:
            body = b"[" + b",".join(line.rstrip(b"\n") for line in batch.lines) + b"]"
        else:
            body = b"".join(batch.lines)
        await self._collector.post(body)

    async def aclose(self) -> None:
        await self._collector.aclose()
