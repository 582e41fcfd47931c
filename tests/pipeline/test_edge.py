"""The edge stage, unit by unit: a few rules the socket-level tests do not pin down.

Origin, Host, media types and sizes against a real gateway are in
tests/security/test_transport_and_sessions.py (TS-01, TS-02, TS-06) and
tests/security/test_jsonrpc_and_limits.py (JR-02); random header values in
tests/properties/test_request_headers.py. Here: the order of the checks, the default-port
forms of Host and Origin, which X-Forwarded-Host value counts, and from whom.
"""

from __future__ import annotations

from typing import Any

import pytest

from mcp_bastion.config import BastionConfig
from mcp_bastion.errors import RequestRejected
from mcp_bastion.pipeline.edge import EdgeChecks

from .fakes import POST_HEADERS, config, exchange, route

ROUTE = route()


def _edge(**overrides: Any) -> EdgeChecks:
    return EdgeChecks(config(**overrides))


async def _status(edge: EdgeChecks, method: str = "POST", client: str = "203.0.113.9", **headers: str) -> int:
    given = {**POST_HEADERS, **{k.replace("_", "-"): v for k, v in headers.items()}}
    try:
        await edge(exchange(ROUTE, method, given, client=client))
    except RequestRejected as err:
        return err.status
    return 200


async def test_the_method_is_checked_before_host_and_origin() -> None:
    edge = _edge()
    assert await _status(edge, "PUT", host="attacker.example", origin="https://evil.example") == 405
    assert await _status(edge, "PATCH") == 405
    # Host before Origin, Origin before content negotiation (DNS rebinding is refused first).
    assert await _status(edge, host="attacker.example", origin="https://evil.example") == 421
    assert await _status(edge, origin="https://evil.example", content_type="text/plain") == 403


@pytest.mark.parametrize(
    ("public", "host", "status"),
    [
        ("https://gw.example", "gw.example", 200),
        ("https://gw.example", "GW.Example", 200),  # host names are case-insensitive (RFC 9110 §4.2.3)
        ("https://gw.example", "gw.example:443", 200),  # the default port, spelled out
        ("https://gw.example", "gw.example:80", 421),  # not https's default
        ("https://gw.example", "gw.example:8443", 421),
        ("https://gw.example:443", "gw.example", 200),
        ("http://gw.example", "gw.example:80", 200),
        ("http://gw.example", "gw.example:443", 421),
        ("http://127.0.0.1:8000", "127.0.0.1:8000", 200),
        ("http://127.0.0.1:8000", "127.0.0.1", 421),  # the right address, the wrong port
        ("http://127.0.0.1:8000", "localhost:8000", 421),  # another name for it is another host
        ("http://[::1]:8000", "[::1]:8000", 200),
        ("http://[::1]", "[::1]:80", 200),
        ("https://gw.example", "", 421),
    ],
)
async def test_host_forms(public: str, host: str, status: int) -> None:
    edge = _edge(public_base_url=public)
    assert await _status(edge, host=host) == status


async def test_allowed_hosts_are_matched_case_insensitively() -> None:
    edge = _edge(allowed_hosts=["Internal.LB:8080"])
    assert await _status(edge, host="internal.lb:8080") == 200
    assert await _status(edge, host="internal.lb") == 421


@pytest.mark.parametrize("public", ["https://gw.example", "https://gw.example:443"])
async def test_the_gateways_own_origin_passes_in_its_serialized_form(public: str) -> None:
    # RFC 6454 §6.1: a browser's Origin omits the scheme's default port. A public_base_url
    # that spells out :443 must not make the gateway refuse its own pages.
    edge = _edge(public_base_url=public)
    assert await _status(edge, host="gw.example", origin="https://gw.example") == 200
    assert await _status(edge, host="gw.example", origin="http://gw.example") == 403


PROXIED: dict[str, Any] = {"trusted_proxies": ["10.0.0.0/8"]}


@pytest.mark.parametrize(
    ("client", "forwarded", "status"),
    [
        ("10.1.2.3", "gw.example", 200),
        ("10.1.2.3", "GW.EXAMPLE", 200),
        # The last value counts: an appending proxy adds the Host it received at the end, so
        # earlier values may be the client's own (a rebound page naming our host first).
        ("10.1.2.3", "gw.example, attacker.example", 421),
        ("10.1.2.3", "attacker.example, gw.example", 200),
        ("10.1.2.3", "x, gw.example ", 200),
        ("10.1.2.3", "", 421),
        ("203.0.113.9", "gw.example", 421),  # not a trusted proxy: its X-Forwarded-Host is ignored
        ("not-an-address", "gw.example", 421),  # a peer that does not parse is trusted for nothing
        ("", "gw.example", 421),
        # A dual-stack listener sees IPv4 peers as IPv4-mapped IPv6 addresses.
        ("::ffff:10.1.2.3", "gw.example", 200),
        ("::ffff:203.0.113.9", "gw.example", 421),
        ("::10.1.2.3", "gw.example", 421),  # IPv4-compatible (deprecated) is not a mapped IPv4 peer
    ],
)
async def test_which_forwarded_host_counts(client: str, forwarded: str, status: int) -> None:
    edge = _edge(**PROXIED)
    assert await _status(edge, client=client, host="lb.internal", x_forwarded_host=forwarded) == status


async def test_forwarded_host_is_ignored_without_trusted_proxies() -> None:
    edge = _edge()
    assert await _status(edge, client="10.1.2.3", host="lb.internal", x_forwarded_host="gw.example") == 421
    assert (
        await _status(edge, client="10.1.2.3", host="gw.example", x_forwarded_host="attacker.example") == 200
    )


async def test_a_forwarded_host_replaces_the_host_it_does_not_add_to_it() -> None:
    # From a trusted proxy the Host header is the proxy's business; only the forwarded one counts.
    edge = _edge(**PROXIED)
    assert (
        await _status(edge, client="10.1.2.3", host="gw.example", x_forwarded_host="attacker.example") == 421
    )


def _limits(cfg: BastionConfig) -> int:
    return cfg.limits.max_body_bytes


async def test_a_declared_length_at_the_cap_passes_one_more_is_413() -> None:
    cfg = config(limits={"max_body_bytes": 2048})
    edge = EdgeChecks(cfg)
    assert await _status(edge, content_length=str(_limits(cfg))) == 200
    assert await _status(edge, content_length=str(_limits(cfg) + 1)) == 413
    assert await _status(edge, content_length="+1") == 413  # not 1*DIGIT (RFC 9110 §8.6)
    assert await _status(edge, content_length="0x10") == 413
