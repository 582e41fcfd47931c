"""Fetching an IdP's documents (DM-03, DM-06): which URLs, which addresses, what comes back.

The rules, as stated here:

- a URL is fetched only over https, or plain http to a loopback host in development mode,
  and never with credentials in it; a URL that does not parse is refused, not a crash;
- every address a host resolves to must be public (loopback in development mode, private
  with `allow_private_network`, link-local never), judged on the IPv4 address inside the
  IPv4-mapped, 6to4, Teredo and NAT64 (64:ff9b::/96, 64:ff9b:1::/48) forms; a raw non-ASCII
  host name is refused without a lookup; a lookup that fails, times out or yields no address
  is a KeySourceError, like everything else that goes wrong;
- a document is a 200 whose body, at most 1 MiB, is JSON; errors name the host.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from mcp_bastion.auth.fetch import (
    _connection_guard,
    check_fetch_target,
    check_fetch_url,
    fetch_json,
    fetchable_address,
)
from mcp_bastion.errors import KeySourceError
from mcp_bastion.urls import Reach, fetchable

PUBLIC, DEV, ON_PREM = Reach(False, False), Reach(True, False), Reach(False, True)
MIB = 1_048_576  # the document cap


# --- URLs -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "dev", "ok"),
    [
        ("https://idp.example/jwks", False, True),
        ("https://idp.example:8443/jwks", False, True),
        ("http://idp.example/jwks", False, False),
        ("http://idp.example/jwks", True, False),  # development mode admits loopback hosts only
        ("http://127.0.0.1:8080/jwks", True, True),
        ("http://localhost:8080/jwks", True, True),
        ("http://[::1]:8080/jwks", True, True),
        ("http://127.0.0.1:8080/jwks", False, False),
        ("ftp://idp.example/jwks", True, False),
        ("file:///etc/passwd", True, False),
        ("https:///jwks", False, False),
        ("https://user:pass@idp.example/jwks", False, False),
        ("https://user@idp.example/jwks", False, False),
        ("https://:secret@idp.example/jwks", False, False),
        ("https://[::1", False, False),
        ("https://[idp.example/jwks", False, False),
        ("http://]/", True, False),
    ],
)
def test_which_urls_may_be_fetched(url: str, dev: bool, ok: bool) -> None:
    if ok:
        check_fetch_url(url, allow_insecure_http=dev)
        return
    with pytest.raises(KeySourceError, match="refusing"):
        check_fetch_url(url, allow_insecure_http=dev)


async def test_a_target_with_an_internal_address_is_refused_by_default() -> None:
    for url in ("https://10.0.0.1/jwks", "https://192.168.1.5/jwks", "https://169.254.169.254/jwks"):
        with pytest.raises(KeySourceError, match="non-public address"):
            await check_fetch_target(url, timeout=1, allow_insecure_http=False)
    await check_fetch_target(
        "https://10.0.0.1/jwks", timeout=1, allow_insecure_http=False, allow_private_network=True
    )
    await check_fetch_target("https://93.184.216.34/jwks", timeout=1, allow_insecure_http=False)


async def test_a_target_whose_name_does_not_resolve_now_is_left_to_the_fetch(resolver: Resolver) -> None:
    resolver.answer = OSError("no such host")
    await check_fetch_target("https://idp.example/jwks", timeout=1, allow_insecure_http=False)
    assert resolver.asked == ["idp.example"]


# --- addresses --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "public", "dev", "on_prem"),
    [
        # NAT64 (RFC 6052 well-known prefix, RFC 8215 local-use prefix): the IPv4 address inside.
        ("64:ff9b::5db8:d822", True, True, True),  # 93.184.216.34
        ("64:ff9b::a9fe:a9fe", False, False, False),  # 169.254.169.254
        ("64:ff9b:1::a9fe:a9fe", False, False, False),
        ("64:ff9b:1::a00:1", False, False, True),  # 10.0.0.1
        ("64:ff9b:1::5db8:d822", True, True, True),
        # 6to4 (2002::/16): the IPv4 address in bits 16-47.
        ("2002:5db8:d822::1", True, True, True),
        ("2002:a9fe:a9fe::1", False, False, False),
        ("2002:7f00:1::1", False, True, False),  # 127.0.0.1
        # Teredo (2001::/32): the client's IPv4 address, stored inverted in the last 32 bits.
        ("2001:0:4136:e378:8000:63bf:a247:27dd", True, True, True),  # client 93.184.216.34
        ("2001:0:4136:e378:8000:63bf:5601:5601", False, False, False),  # client 169.254.169.254
        # IPv4-mapped.
        ("::ffff:93.184.216.34", True, True, True),
        ("::ffff:127.0.0.1", False, True, False),
        # Plain IPv6.
        ("2606:4700::1111", True, True, True),
        ("::1", False, True, False),
        ("fd12:3456::1", False, False, True),
        ("ff02::1", False, False, False),
        ("::", False, False, False),
    ],
)
def test_embedded_ipv4_addresses_are_judged_on_the_ipv4_address(
    address: str, public: bool, dev: bool, on_prem: bool
) -> None:
    ip = ipaddress.ip_address(address)
    assert (fetchable(ip, PUBLIC), fetchable(ip, DEV), fetchable(ip, ON_PREM)) == (public, dev, on_prem)


class Resolver:
    """Stands in for the event loop's getaddrinfo: records the names asked, answers as told."""

    def __init__(self) -> None:
        self.asked: list[str] = []
        self.answer: list[str] | Exception | None = []

    async def __call__(self, host: str, port: int, **_: Any) -> list[tuple[Any, ...]]:
        self.asked.append(host)
        if self.answer is None:
            await asyncio.Event().wait()  # never answers
        if isinstance(self.answer, Exception):
            raise self.answer
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in self.answer]


@pytest.fixture
async def resolver(monkeypatch: pytest.MonkeyPatch) -> Resolver:
    fake = Resolver()
    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", fake)
    return fake


async def test_the_first_resolved_address_is_the_one_connected_to(resolver: Resolver) -> None:
    resolver.answer = ["93.184.216.34", "93.184.216.35"]
    address = await fetchable_address("idp.example", 443, 1, reach=PUBLIC)
    assert address == ipaddress.ip_address("93.184.216.34")
    assert resolver.asked == ["idp.example"]


async def test_an_address_literal_is_not_looked_up(resolver: Resolver) -> None:
    assert await fetchable_address("127.0.0.1", 443, 1, reach=DEV) == ipaddress.ip_address("127.0.0.1")
    assert await fetchable_address("::1", 443, 1, reach=DEV) == ipaddress.ip_address("::1")
    assert resolver.asked == []


async def test_one_internal_address_among_public_ones_refuses_the_host(resolver: Resolver) -> None:
    resolver.answer = ["93.184.216.34", "10.0.0.7"]
    with pytest.raises(KeySourceError, match="non-public address"):
        await fetchable_address("idp.example", 443, 1, reach=PUBLIC)


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (OSError("Name or service not known"), "cannot resolve idp.example"),
        (UnicodeError("label too long"), "cannot resolve idp.example"),
        ([], "cannot resolve idp.example"),
        (["not-an-address", "also/not"], "cannot resolve idp.example"),
        (None, "cannot resolve idp.example within 0.05 s"),
    ],
)
async def test_a_failed_lookup_is_a_key_source_error(resolver: Resolver, answer: Any, message: str) -> None:
    resolver.answer = answer
    with pytest.raises(KeySourceError) as refused:
        await fetchable_address("idp.example", 443, 0.05, reach=PUBLIC)
    assert refused.value.message == message


@pytest.mark.parametrize("host", ["idp.\u00e9xample", "\u0456dp.example", "idp\u3002example"])
async def test_a_raw_non_ascii_host_is_refused_without_a_lookup(resolver: Resolver, host: str) -> None:
    # IDNs travel punycoded: a raw one in a document is not looked up under any spelling.
    with pytest.raises(KeySourceError, match="not an ASCII host name"):
        await fetchable_address(host, 443, 1, reach=PUBLIC)
    assert resolver.asked == []


class Stream:
    def __init__(self, peer: object) -> None:
        self.peer, self.closed = peer, False

    def get_extra_info(self, name: str) -> object:
        return self.peer if name == "server_addr" else None

    async def aclose(self) -> None:
        self.closed = True


@pytest.mark.parametrize(
    "peer",
    [
        None,
        (),
        "93.184.216.34",
        ["93.184.216.34", 443],  # only a TCP socket's (host, port) tuple names a peer
        ("not-an-address", 443),
        ("10.0.0.1", 443),
    ],
)
async def test_a_connection_whose_peer_cannot_be_vouched_for_is_closed(peer: object) -> None:
    stream = Stream(peer)
    guard = _connection_guard(1.0, PUBLIC)
    with pytest.raises(KeySourceError, match="non-public address"):
        await guard("connection.connect_tcp.complete", {"return_value": stream})
    assert stream.closed


async def test_a_connection_to_a_public_peer_is_kept() -> None:
    stream = Stream(("93.184.216.34", 443))
    await _connection_guard(1.0, PUBLIC)("connection.connect_tcp.complete", {"return_value": stream})
    assert not stream.closed


# --- documents --------------------------------------------------------------------------------


def serving(handler: Callable[[httpx.Request], httpx.Response]) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


async def fetch(handler: Callable[[httpx.Request], httpx.Response]) -> Any:
    async with serving(handler) as http:
        return await fetch_json(http, "https://idp.example/jwks", timeout=2, allow_insecure_http=False)


def padded(size: int) -> bytes:
    body = b'{"keys": []}'
    return body[:-1] + b" " * (size - len(body)) + b"}"


async def test_a_document_of_exactly_the_cap_is_read() -> None:
    assert await fetch(lambda _: httpx.Response(200, content=padded(MIB))) == {"keys": []}


async def test_a_document_one_byte_over_the_cap_is_refused() -> None:
    with pytest.raises(KeySourceError, match=r"idp\.example sent a document over 1048576 bytes"):
        await fetch(lambda _: httpx.Response(200, content=padded(MIB + 1)))


@pytest.mark.parametrize("body", [b"not json", b"", b"{", b"\xff\xfe{}"])
async def test_a_body_that_is_not_json_is_refused(body: bytes) -> None:
    with pytest.raises(KeySourceError, match=r"idp\.example sent a document that is not JSON"):
        await fetch(lambda _: httpx.Response(200, content=body))


@pytest.mark.parametrize("status", [201, 204, 301, 302, 304, 404, 500])
async def test_only_a_200_is_a_document(status: int) -> None:
    answer = httpx.Response(status, content=b'{"keys": []}', headers={"location": "http://169.254.169.254/"})
    with pytest.raises(KeySourceError, match=rf"idp\.example answered HTTP {status}"):
        await fetch(lambda _: answer)


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        (httpx.ReadTimeout("slow"), "idp.example did not answer within 2 s"),
        (httpx.ConnectTimeout("slow"), "idp.example did not answer within 2 s"),
        (httpx.ConnectError("refused"), "cannot reach idp.example (ConnectError)"),
        (httpx.RemoteProtocolError("bad"), "cannot reach idp.example (RemoteProtocolError)"),
    ],
)
async def test_transport_failures_are_key_source_errors_naming_the_host(
    fault: Exception, message: str
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise fault

    with pytest.raises(KeySourceError) as refused:
        await fetch(handler)
    assert refused.value.message == message


async def test_fetch_refuses_private_addresses_by_default() -> None:
    # The connection guard runs on real connections: the address is refused before connecting.
    async with httpx.AsyncClient(trust_env=False) as http:
        with pytest.raises(KeySourceError, match="non-public address"):
            await fetch_json(http, "https://10.0.0.1:1/jwks", timeout=1, allow_insecure_http=False)


@pytest.mark.parametrize(
    "url", ["HTTPS://0:65536", "https://idp.example:99999/jwks", "https://idp.example:x/jwks"]
)
def test_a_url_whose_port_does_not_parse_is_a_key_source_error(url: str) -> None:
    # Found by tests/properties/test_key_documents.py: urlsplit().port raised ValueError later.
    with pytest.raises(KeySourceError):
        check_fetch_url(url, allow_insecure_http=False)
