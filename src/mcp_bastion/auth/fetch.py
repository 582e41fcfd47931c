"""Fetching JSON documents from an IdP: no redirects, a size cap, a timeout, one error type.

Server-side request forgery (DM-06, RFC 9728 §7.7): a discovered `jwks_uri` is chosen by
whoever serves the metadata. So the URL is checked (https only; plain http only to a
loopback host in development mode), and every connection is checked where it is made:
before connecting, the host must resolve only to public addresses (not loopback, private,
link-local, shared, reserved or multicast, also when wrapped in IPv4-mapped, NAT64, 6to4 or
Teredo IPv6 forms); once connected, the peer address itself is checked again, before a
single byte is sent, so a DNS answer that changes between the two (rebinding) is caught.
The name stays in the URL, so `Host`, TLS SNI and certificate checks are unchanged.
Development mode (`allow_insecure_http`) also admits loopback addresses; `allow_private_network`
admits private (RFC 1918, ULA) addresses for an on-premises IdP; link-local addresses (cloud
metadata services) are never fetched from.

httpx errors are translated here into KeySourceError and go no further.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson

from ..errors import KeySourceError
from ..urls import IPAddress, Reach, address_literal, fetchable, is_loopback

__all__ = ["MAX_DOCUMENT_BYTES", "check_fetch_target", "check_fetch_url", "fetch_json", "fetchable_address"]

MAX_DOCUMENT_BYTES = 1_048_576  # DM-03: a 50 MB JWKS is an attack, not a key set


def check_fetch_url(url: str, *, allow_insecure_http: bool) -> None:
    """HTTPS only; plain http only to loopback when explicitly allowed (DM-06)."""
    try:
        parts = urlsplit(url)
        hostname = parts.hostname  # parsing of the netloc (brackets, port) happens here
        parts.port  # noqa: B018  (raises ValueError for a port that is not 0-65535: refuse it here)
    except ValueError:
        raise KeySourceError("refusing a URL that does not parse") from None
    if not hostname or parts.username or parts.password:
        raise KeySourceError("refusing a URL without a host or with credentials")
    if parts.scheme == "https":
        return
    if parts.scheme == "http" and allow_insecure_http and is_loopback(hostname):
        return
    raise KeySourceError(f"refusing to fetch a non-https URL from {hostname}")


async def check_fetch_target(
    url: str, *, timeout: float, allow_insecure_http: bool, allow_private_network: bool = False
) -> None:
    """check_fetch_url, and the host may not resolve to an address we refuse to fetch from: for
    a URL learned from a document, so a bad one is refused before it is ever used (DM-06). A
    name that does not resolve now is left to the fetch, which checks again when it connects."""
    check_fetch_url(url, allow_insecure_http=allow_insecure_http)
    parts = urlsplit(url)
    assert parts.hostname is not None  # check_fetch_url refused host-less URLs
    try:
        addresses = await _resolve(parts.hostname, parts.port or 443, timeout)
    except KeySourceError:
        return
    _refuse_internal(parts.hostname, addresses, Reach(allow_insecure_http, allow_private_network))


async def fetch_json(
    client: httpx.AsyncClient,
    url: str,
    *,
    timeout: float,
    allow_insecure_http: bool,
    allow_private_network: bool = False,
) -> Any:
    check_fetch_url(url, allow_insecure_http=allow_insecure_http)
    try:
        # One deadline for the whole fetch: httpx's timeout applies per step, and a JWKS sent a
        # byte at a time would otherwise hold every request waiting on this shared fetch.
        async with (
            asyncio.timeout(timeout),
            client.stream(
                "GET",
                url,
                timeout=timeout,
                follow_redirects=False,
                headers={"accept": "application/json"},
                extensions={
                    "trace": _connection_guard(timeout, Reach(allow_insecure_http, allow_private_network))
                },
            ) as response,
        ):
            if response.status_code != 200:
                raise KeySourceError(f"{_host(url)} answered HTTP {response.status_code}")
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_DOCUMENT_BYTES:
                    raise KeySourceError(f"{_host(url)} sent a document over {MAX_DOCUMENT_BYTES} bytes")
    except (httpx.TimeoutException, TimeoutError):
        raise KeySourceError(f"{_host(url)} did not answer within {timeout:g} s") from None
    except httpx.HTTPError as exc:
        raise KeySourceError(f"cannot reach {_host(url)} ({type(exc).__name__})") from None
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        raise KeySourceError(f"{_host(url)} sent a document that is not JSON") from None


def _connection_guard(timeout: float, reach: Reach) -> Callable[[str, dict[str, Any]], Awaitable[None]]:
    """An httpcore trace hook: vets the host before each new connection and the peer after it."""

    async def guard(event: str, info: dict[str, Any]) -> None:
        if event == "connection.connect_tcp.started":
            await fetchable_address(info["host"], info["port"], timeout, reach=reach)
        elif event == "connection.connect_tcp.complete":
            stream = info["return_value"]
            peer = stream.get_extra_info("server_addr")
            address = address_literal(str(peer[0])) if isinstance(peer, tuple) and peer else None
            if address is None or not fetchable(address, reach):
                await stream.aclose()
                raise KeySourceError("refusing to fetch: the connection went to a non-public address")

    return guard


async def fetchable_address(host: str, port: int, timeout: float, *, reach: Reach) -> IPAddress:
    """The first address of `host`, when every address it resolves to may be fetched from."""
    addresses = await _resolve(host, port, timeout)
    _refuse_internal(host, addresses, reach)
    return addresses[0]


async def _resolve(host: str, port: int, timeout: float) -> list[IPAddress]:
    literal = address_literal(host)
    if literal is not None:
        return [literal]
    if not host.isascii():
        # An IdP's document named a raw non-ASCII host (IDNs travel punycoded): the resolver's
        # IDNA step would raise UnicodeError rather than fail like a lookup does.
        raise KeySourceError(f"cannot resolve {host!r}: not an ASCII host name")
    try:
        async with asyncio.timeout(timeout):
            infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except TimeoutError:
        raise KeySourceError(f"cannot resolve {host} within {timeout:g} s") from None
    except (OSError, UnicodeError):  # UnicodeError: an ASCII label the IDNA codec refuses (too long)
        raise KeySourceError(f"cannot resolve {host}") from None
    addresses = [a for a in (address_literal(str(info[4][0])) for info in infos) if a is not None]
    if not addresses:
        raise KeySourceError(f"cannot resolve {host}")
    return addresses


def _refuse_internal(host: str, addresses: list[IPAddress], reach: Reach) -> None:
    if not all(fetchable(a, reach) for a in addresses):
        raise KeySourceError(f"refusing to fetch from {host}: it resolves to a non-public address")


def _host(url: str) -> str:
    return urlsplit(url).hostname or "the IdP"
