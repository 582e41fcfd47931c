"""Posting a batch of audit events to a collector (the webhook and OTLP destinations), with
the collector's answer read under a cap: an answer is a status and a few bytes, and a hostile or
broken collector must not make the gateway hold an endless body in memory."""

from __future__ import annotations

from typing import NamedTuple

import httpx

__all__ = ["MAX_ANSWER_BYTES", "CollectorAnswer", "post_batch"]

MAX_ANSWER_BYTES = 65_536


class CollectorAnswer(NamedTuple):
    status: int
    content_type: str
    body: bytes | None  # None: longer than the cap, and not read past it


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
