"""Which addresses an IdP fetch may go to, per provider setting (DM-06, allow_private_network)."""

from __future__ import annotations

import ipaddress

import pytest

from mcp_bastion.auth.fetch import fetchable_address
from mcp_bastion.errors import KeySourceError
from mcp_bastion.urls import Reach, fetchable

PUBLIC, DEV, ON_PREM = Reach(False, False), Reach(True, False), Reach(False, True)


@pytest.mark.parametrize(
    ("address", "public", "dev", "on_prem"),
    [
        ("93.184.216.34", True, True, True),
        ("127.0.0.1", False, True, False),
        ("10.1.2.3", False, False, True),
        ("192.168.0.10", False, False, True),
        ("172.16.5.5", False, False, True),
        ("fd00::1", False, False, True),
        ("169.254.169.254", False, False, False),  # cloud metadata: never
        ("fe80::1", False, False, False),
        ("::ffff:169.254.169.254", False, False, False),
        ("::ffff:10.0.0.1", False, False, True),
        ("224.0.0.1", False, False, False),
        ("0.0.0.0", False, False, False),
    ],
)
def test_reach_table(address: str, public: bool, dev: bool, on_prem: bool) -> None:
    ip = ipaddress.ip_address(address)
    assert (fetchable(ip, PUBLIC), fetchable(ip, DEV), fetchable(ip, ON_PREM)) == (public, dev, on_prem)


@pytest.mark.parametrize("host", ["\x80", "idp.\u00e9xample", "a" * 64 + ".example", "."])
async def test_a_host_the_resolver_cannot_encode_is_a_key_source_error(host: str) -> None:
    """Found by tests/properties/test_key_documents.py: a jwks_uri of "HTTPS://\\xc2\\x80" made
    getaddrinfo raise UnicodeError from its IDNA step, escaping as a crash, not a verdict."""
    with pytest.raises(KeySourceError, match="cannot resolve"):
        await fetchable_address(host, 443, 2, reach=Reach(loopback=False, private=False))
