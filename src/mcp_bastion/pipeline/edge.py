"""The edge stage: checks on the request line and headers, before any token or body is looked at.

DNS rebinding (MCP transports §Security): a present Origin must be allowed (403) and the
Host must be ours (421). Content negotiation: POST bodies are JSON (415) and clients must
accept both JSON and SSE answers (406). A declared oversized body is refused unread (413).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from ..cache import BoundedCache
from ..config.model import BastionConfig
from ..errors import RequestRejected
from .exchange import Exchange

__all__ = ["EdgeChecks"]

ALLOWED_METHODS = frozenset({"POST", "GET", "DELETE"})


class EdgeChecks:
    def __init__(self, config: BastionConfig) -> None:
        public = config.public_base_url
        scheme, _, rest = public.partition("://")
        netloc = rest.split("/", 1)[0]
        self._hosts = frozenset(
            {netloc, *_default_port_forms(scheme, netloc), *(h.lower() for h in config.allowed_hosts)}
        )
        self._origins = frozenset({_serialized_origin(scheme, netloc), *config.origins.allow})
        self._proxies = tuple(ipaddress.ip_network(p, strict=False) for p in config.trusted_proxies)
        self._max_body = config.limits.max_body_bytes

    async def __call__(self, ex: Exchange) -> None:
        method = ex.http_method
        if method not in ALLOWED_METHODS:
            raise RequestRejected(f"method {method} is not allowed on an MCP endpoint", status=405)
        self._check_host(ex)
        origin = ex.headers.get("origin")
        if origin is not None and origin not in self._origins:
            raise RequestRejected("origin not allowed", status=403)
        accept = ex.headers.get("accept") or ""
        if method == "POST":
            _check_post(ex, accept, self._max_body)
        elif method == "GET" and not _accepts(accept, "text/event-stream"):
            raise RequestRejected("GET needs Accept: text/event-stream", status=406)

    def _check_host(self, ex: Exchange) -> None:
        host = (ex.headers.get("host") or "").lower()
        forwarded = ex.headers.get("x-forwarded-host")
        if forwarded is not None and self._from_trusted_proxy(ex):
            # Proxies append the Host they received: only the last value is the trusted peer's
            # own; any before it came from its caller, who could be the attacker (DNS rebinding).
            host = forwarded.rsplit(",", 1)[-1].strip().lower()
        if host not in self._hosts:
            raise RequestRejected("unknown Host for this gateway", status=421)

    def _from_trusted_proxy(self, ex: Exchange) -> bool:
        client = ex.scope.get("client")
        if not client or not self._proxies:
            return False
        try:
            address = ipaddress.ip_address(client[0])
        except ValueError:
            return False
        # A dual-stack listener (`::`) sees an IPv4 proxy as ::ffff:a.b.c.d (RFC 4291 §2.5.5.2):
        # judged as the IPv4 address it is, against IPv4 ranges.
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self._proxies)


def _check_post(ex: Exchange, accept: str, max_body: int) -> None:
    if not _is_json(ex.headers.get("content-type") or ""):
        raise RequestRejected("Content-Type must be application/json", status=415)
    if not (_accepts(accept, "application/json") and _accepts(accept, "text/event-stream")):
        raise RequestRejected("Accept must list application/json and text/event-stream", status=406)
    length = ex.headers.get("content-length")
    # isdigit() alone accepts "²" and 5,000-digit strings that int() refuses: ASCII, 20 digits max.
    if length is not None and (
        not (length.isascii() and length.isdigit() and len(length) <= 20) or int(length) > max_body
    ):
        raise RequestRejected("request body too large", status=413)


def _is_json(content_type: str) -> bool:
    # Clients send the same Content-Type on every call: answer from a small memo.
    known = _JSON_MEMO.get(content_type)
    if known is None:
        known = content_type.split(";")[0].strip().lower() == "application/json"
        _JSON_MEMO.put(content_type, known)
    return known


_JSON_MEMO: BoundedCache[str, bool] = BoundedCache(256)


def _accepts(accept: str, media_type: str) -> bool:
    # Clients send the same Accept value on every call: answer from a small memo.
    key = (accept, media_type)
    known = _ACCEPT_MEMO.get(key)
    if known is None:
        known = _accepts_uncached(accept, media_type)
        _ACCEPT_MEMO.put(key, known)
    return known


_ACCEPT_MEMO: BoundedCache[tuple[str, str], bool] = BoundedCache(256)


def _accepts_uncached(accept: str, media_type: str) -> bool:
    major = media_type.split("/")[0]
    for item in accept.split(","):
        value = item.split(";")[0].strip().lower()
        if value in (media_type, "*/*", f"{major}/*"):
            return True
    return False


def _default_port_forms(scheme: str, netloc: str) -> Iterable[str]:
    # "host" and "host:443" name the same origin for https (and :80 for http).
    default = ":443" if scheme == "https" else ":80"
    if netloc.endswith(default):
        yield netloc[: -len(default)]
    elif ":" not in netloc.rsplit("]", 1)[-1]:
        yield netloc + default


def _serialized_origin(scheme: str, netloc: str) -> str:
    # RFC 6454 §6.1: the Origin a browser sends leaves out the scheme's default port, even
    # when public_base_url spells it out.
    default = ":443" if scheme == "https" else ":80"
    return f"{scheme}://{netloc[: -len(default)] if netloc.endswith(default) else netloc}"
