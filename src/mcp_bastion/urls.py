"""URLs and addresses: where a protected resource lives, and where the gateway may connect.

One module for the rules every part shares: the public URL of a protected MCP endpoint
(byte-identical in the PRM `resource`, a token's `aud` and the 401 challenge), what counts
as loopback, and which addresses an outbound fetch may reach (SSRF, DM-06).
"""

from __future__ import annotations

import ipaddress
from typing import NamedTuple
from urllib.parse import urlsplit

__all__ = [
    "IPAddress",
    "Reach",
    "address_literal",
    "fetchable",
    "is_loopback",
    "path_of",
    "resource_url",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def resource_url(public_base_url: str, server_name: str) -> str:
    """The public MCP URL of one configured server: `{public_base_url}/{name}/mcp`."""
    return f"{public_base_url}/{server_name}/mcp"


def path_of(url: str) -> str:
    """The path of an absolute URL, as a request line names it (`/github/mcp`)."""
    return urlsplit(url).path or "/"


def is_loopback(host: str) -> bool:
    """`localhost` or a loopback address literal (brackets allowed): never a DNS lookup."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class Reach(NamedTuple):
    """Which non-public addresses an outbound fetch may go to."""

    loopback: bool  # development mode (`allow_insecure_http`)
    private: bool  # an on-premises IdP (`allow_private_network`); never link-local


_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))


def address_literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])  # an IPv6 zone index is not part of it
    except ValueError:
        return None


def fetchable(address: IPAddress, reach: Reach) -> bool:
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        return fetchable(embedded, reach)
    if address.is_loopback:
        return reach.loopback
    if address.is_link_local or address.is_multicast or address.is_unspecified:
        return False  # cloud metadata (169.254.169.254) and friends: never, whatever the config
    if reach.private and address.is_private:
        return True  # an on-premises IdP, allowed by `allow_private_network`
    return address.is_global


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if any(address in net for net in _NAT64):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None
