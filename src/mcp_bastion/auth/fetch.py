"""Fetching JSON documents from an IdP: no redirects, a size cap, a timeout, one error type.

httpx errors are translated here into KeySourceError and go no further.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson

from ..config.model import _is_loopback
from ..errors import KeySourceError

__all__ = ["MAX_DOCUMENT_BYTES", "check_fetch_url", "fetch_json"]

MAX_DOCUMENT_BYTES = 1_048_576  # DM-03: a 50 MB JWKS is an attack, not a key set


def check_fetch_url(url: str, *, allow_insecure_http: bool) -> None:
    """HTTPS only; plain http only to loopback when explicitly allowed (DM-06)."""
    parts = urlsplit(url)
    if not parts.hostname or parts.username or parts.password:
        raise KeySourceError("refusing a URL without a host or with credentials")
    if parts.scheme == "https":
        return
    if parts.scheme == "http" and allow_insecure_http and _is_loopback(parts.hostname):
        return
    raise KeySourceError(f"refusing to fetch a non-https URL from {parts.hostname}")


async def fetch_json(
    client: httpx.AsyncClient, url: str, *, timeout: float, allow_insecure_http: bool
) -> Any:
    check_fetch_url(url, allow_insecure_http=allow_insecure_http)
    try:
        async with client.stream(
            "GET", url, timeout=timeout, follow_redirects=False, headers={"accept": "application/json"}
        ) as response:
            if response.status_code != 200:
                raise KeySourceError(f"{_host(url)} answered HTTP {response.status_code}")
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_DOCUMENT_BYTES:
                    raise KeySourceError(f"{_host(url)} sent a document over {MAX_DOCUMENT_BYTES} bytes")
    except httpx.TimeoutException:
        raise KeySourceError(f"{_host(url)} did not answer within {timeout:g} s") from None
    except httpx.HTTPError as exc:
        raise KeySourceError(f"cannot reach {_host(url)} ({type(exc).__name__})") from None
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        raise KeySourceError(f"{_host(url)} sent a document that is not JSON") from None


def _host(url: str) -> str:
    return urlsplit(url).hostname or "the IdP"
