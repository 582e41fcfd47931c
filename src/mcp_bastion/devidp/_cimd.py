"""Client ID Metadata Documents: a ``client_id`` that is an https URL names its own metadata.

A valid document is cached for at most ``CIMD_CACHE_TTL_S`` (shorter with ``max-age``, not
at all with ``no-store`` or ``no-cache``). A fetch is guarded against SSRF: https only
(http on loopback only when ``allow_http_cimd`` is set, for tests); every address the host
resolves to must be public (loopback too only with ``allow_http_cimd`` or ``allow_loopback_cimd``,
for tests); the server's certificate verified (against ``cimd_ca_file`` alone when set); the connection goes to the address that was checked (no
second lookup for a DNS-rebinding answer); no redirects; a total time limit; a body cap.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import orjson

from ..errors import OAuthError
from ._clients import RegisteredClient
from ._policy import CIMD_CACHE_ENTRIES, CIMD_CACHE_TTL_S, CIMD_MAX_BYTES, CIMD_TIMEOUT_S
from ._rfc7591 import parse_client_metadata
from ._stores import ExpiringMap

Resolver = Callable[[str, int], Awaitable[list[str]]]
_LOOPBACK_NAMES = ("127.0.0.1", "[::1]", "localhost")


async def resolve_host(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (an IP literal resolves to itself)."""
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        pass
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise OAuthError("invalid_client", "the client_id host does not resolve") from exc
    return [str(info[4][0]) for info in infos]


def address_allowed(address: str, *, allow_loopback: bool) -> bool:
    """Whether the IdP may connect to ``address``: public unicast, or loopback if allowed."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:10.0.0.1 is 10.0.0.1 (DM-06)
    if ip.is_loopback:
        return allow_loopback
    return ip.is_global and not ip.is_multicast


class ClientMetadataDocuments:
    """Fetches and validates Client ID Metadata Documents with one shared HTTP client."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        allow_loopback_http: bool = False,
        allow_loopback: bool = False,
        resolve: Resolver = resolve_host,
        timeout_s: float = CIMD_TIMEOUT_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._http = http
        self._allow_loopback_http = allow_loopback_http
        # http on loopback implies loopback addresses; loopback alone keeps https required.
        self._allow_loopback = allow_loopback_http or allow_loopback
        self._resolve = resolve
        self._timeout_s = timeout_s
        self._clock = clock
        self._cache: ExpiringMap[str, RegisteredClient] = ExpiringMap(clock, CIMD_CACHE_ENTRIES)

    def is_document_url(self, client_id: str) -> bool:
        """Whether ``client_id`` names a metadata document (https, or loopback http if allowed)."""
        if client_id.startswith("https://"):
            return True
        return self._allow_loopback_http and any(
            client_id.startswith(f"http://{host}:") or client_id.startswith(f"http://{host}/")
            for host in _LOOPBACK_NAMES
        )

    def cached(self, client_id: str) -> RegisteredClient | None:
        """The client of a document fetched and accepted a short while ago (no I/O)."""
        return self._cache.get(client_id)

    async def fetch(self, client_id: str) -> RegisteredClient:
        """Fetch (or reuse), check and convert the document; any failure is ``invalid_client``."""
        cached = self._cache.get(client_id)
        if cached is not None:
            return cached
        url = _document_url(client_id)
        address = await self._checked_address(url)
        try:
            async with asyncio.timeout(self._timeout_s):
                body, cache_control = await self._get(url, address)
        except (httpx.HTTPError, TimeoutError) as exc:
            raise OAuthError("invalid_client", "the client metadata document could not be fetched") from exc
        client = client_from_document(client_id, body)
        ttl = cache_seconds(cache_control)
        if ttl > 0:
            self._cache.set(client_id, client, self._clock() + ttl)
        return client

    async def _checked_address(self, url: httpx.URL) -> str:
        addresses = await self._resolve(url.host, url.port or (443 if url.scheme == "https" else 80))
        # Every answer must pass: a name resolving to one public and one private address
        # is refused, since the connection could go to either.
        if not addresses or not all(
            address_allowed(address, allow_loopback=self._allow_loopback) for address in addresses
        ):
            raise OAuthError("invalid_client", "the client_id host is not a public address")
        return addresses[0]

    async def _get(self, url: httpx.URL, address: str) -> tuple[bytes, str | None]:
        request = self._http.build_request(
            "GET",
            url.copy_with(host=address),  # pinned to the checked address
            headers={
                "Host": url.netloc.decode("ascii"),
                "Accept": "application/json",
                "Accept-Encoding": "identity",  # the cap then bounds what is decoded
            },
            extensions={"sni_hostname": url.host},  # TLS still verifies the real name
        )
        response = await self._http.send(request, stream=True, follow_redirects=False)
        try:
            if response.status_code != 200:
                raise OAuthError("invalid_client", "the client metadata document URL did not answer 200")
            return await _read_capped(response), response.headers.get("cache-control")
        finally:
            await response.aclose()


def cache_seconds(cache_control: str | None) -> float:
    """How long a document may be reused: ``CIMD_CACHE_TTL_S``, less with ``max-age``, 0 with
    ``no-store``/``no-cache`` (RFC 9111 §5.2.2)."""
    directives = (cache_control or "").lower()
    if re.search(r"(?:^|[\s,])no-(?:store|cache)\b", directives):
        return 0
    max_age = re.search(r"(?:^|[\s,])max-age=\"?(\d{1,10})\"?", directives)
    return min(CIMD_CACHE_TTL_S, int(max_age.group(1))) if max_age else CIMD_CACHE_TTL_S


def _document_url(client_id: str) -> httpx.URL:
    try:
        url = httpx.URL(client_id)
    except httpx.InvalidURL as exc:
        raise OAuthError("invalid_client", "client_id is not a valid URL") from exc
    segments = url.path.split("/")
    # CIMD: an https URL with a path, no fragment, no userinfo, no dot segments.
    if url.fragment or "#" in client_id or url.userinfo or not url.host:
        raise OAuthError("invalid_client", "a client_id URL must have a host and no fragment or userinfo")
    if url.path in ("", "/") or "." in segments or ".." in segments:
        raise OAuthError("invalid_client", "a client_id URL needs a path without dot segments")
    return url


async def _read_capped(response: httpx.Response) -> bytes:
    declared = response.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > CIMD_MAX_BYTES:
        raise OAuthError("invalid_client", "the client metadata document is too large")
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > CIMD_MAX_BYTES:
            raise OAuthError("invalid_client", "the client metadata document is too large")
        chunks.append(chunk)
    return b"".join(chunks)


def client_from_document(client_id: str, body: bytes) -> RegisteredClient:
    """Validate a fetched document and turn it into a public client (pure)."""
    try:
        doc: Any = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise OAuthError("invalid_client", "the client metadata document is not JSON") from exc
    if not isinstance(doc, dict) or doc.get("client_id") != client_id:
        raise OAuthError("invalid_client", "the document's client_id must equal its URL")
    if "client_secret" in doc:
        raise OAuthError("invalid_client", "a client metadata document must not carry a secret")
    try:
        metadata = parse_client_metadata(doc)
    except OAuthError as exc:
        raise OAuthError("invalid_client", f"client metadata document: {exc.message}") from exc
    if metadata.machine:
        raise OAuthError("invalid_client", "a metadata-document client must use the authorization code flow")
    return RegisteredClient(
        client_id=client_id,
        redirect_uris=metadata.redirect_uris,
        grant_types=frozenset(metadata.grant_types),
        client_name=metadata.client_name,
    )
