"""Client ID Metadata Documents: fetching, validation, and the SSRF guard."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from mcp_bastion.devidp import IdpEvent
from mcp_bastion.devidp._cimd import (
    ClientMetadataDocuments,
    Resolver,
    address_allowed,
    cache_seconds,
    client_from_document,
    resolve_host,
)
from mcp_bastion.errors import OAuthError
from tests.support.servers import RunningServer, serve_asgi

from .conftest import REDIRECT, MakeIdp, RunningIdp, query_of

HITS: list[str] = []


def _document(request: Request, **changes: Any) -> dict[str, Any]:
    return {
        "client_id": str(request.url),
        "client_name": "Metadata Client",
        "redirect_uris": [REDIRECT],
        "grant_types": ["authorization_code", "refresh_token"],
        "token_endpoint_auth_method": "none",
        **changes,
    }


async def _serve_document(request: Request) -> Response:
    HITS.append(request.url.path)
    name = request.path_params["name"]
    documents: dict[str, Any] = {
        "client.json": _document(request),
        "mismatch.json": _document(request, client_id="https://other.example/client.json"),
        "secret.json": _document(request, client_secret="s"),
        "machine.json": _document(request, grant_types=["client_credentials"], redirect_uris=[]),
        "bad-redirects.json": _document(request, redirect_uris=["javascript:alert(1)"]),
        "array.json": [1],
    }
    if name in documents:
        return JSONResponse(documents[name])
    if name == "redirect.json":
        return RedirectResponse("/client.json", status_code=302)
    if name == "big.json":
        return JSONResponse(_document(request, padding="x" * 70_000))
    if name == "notjson":
        return Response("hello")
    return Response(status_code=404)


@pytest.fixture
def documents() -> Iterator[RunningServer]:
    HITS.clear()
    with serve_asgi(Starlette(routes=[Route("/{name}", _serve_document)])) as server:
        yield server


@pytest.fixture
def cimd_idp(make_idp: MakeIdp) -> RunningIdp:
    return make_idp(allow_http_cimd=True)


def test_cimd_full_flow(cimd_idp: RunningIdp, documents: RunningServer) -> None:
    client_id = f"{documents.base_url}/client.json"
    code = cimd_idp.get_code(client_id)
    tokens = cimd_idp.redeem(client_id, code).json()
    assert cimd_idp.claims(tokens["access_token"])["client_id"] == client_id
    refreshed = cimd_idp.token(
        grant_type="refresh_token",
        refresh_token=tokens["refresh_token"],
        client_id=client_id,
        resource=cimd_idp.resource,
    )
    assert refreshed.status_code == 200
    assert HITS == ["/client.json"]  # fetched for the authorization only


def test_cimd_client_name_on_the_consent_page(make_idp: MakeIdp, documents: RunningServer) -> None:
    running = make_idp(allow_http_cimd=True, auto_approve=None)
    page = running.authorize(f"{documents.base_url}/client.json")
    assert page.status_code == 200
    assert "Metadata Client" in page.text


def test_cimd_redirect_uri_must_be_in_the_document(cimd_idp: RunningIdp, documents: RunningServer) -> None:
    response = cimd_idp.authorize(
        f"{documents.base_url}/client.json", redirect_uri="http://127.0.0.1/elsewhere"
    )
    assert response.status_code == 400
    assert "location" not in response.headers


def test_cimd_loopback_port_may_vary(cimd_idp: RunningIdp, documents: RunningServer) -> None:
    response = cimd_idp.authorize(
        f"{documents.base_url}/client.json", redirect_uri="http://127.0.0.1:4242/callback"
    )
    assert "code" in query_of(response)


@pytest.mark.parametrize(
    "name",
    [
        "mismatch.json",
        "secret.json",
        "machine.json",
        "bad-redirects.json",
        "array.json",
        "big.json",
        "notjson",
        "404",
    ],
)
def test_cimd_bad_documents_show_an_error_page(
    cimd_idp: RunningIdp, documents: RunningServer, name: str
) -> None:
    response = cimd_idp.authorize(f"{documents.base_url}/{name}")
    assert response.status_code == 400
    assert "location" not in response.headers
    assert "invalid_client" in response.text


def test_cimd_redirects_are_not_followed(cimd_idp: RunningIdp, documents: RunningServer) -> None:
    response = cimd_idp.authorize(f"{documents.base_url}/redirect.json")
    assert response.status_code == 400
    assert HITS == ["/redirect.json"]


def test_cimd_http_loopback_refused_without_the_test_switch(
    running: RunningIdp, documents: RunningServer
) -> None:
    response = running.authorize(f"{documents.base_url}/client.json")
    assert response.status_code == 400
    assert HITS == []


@pytest.mark.parametrize(
    "client_id",
    [
        "https://10.0.0.1/client.json",
        "https://169.254.169.254/latest/meta-data",
        "https://[::ffff:10.0.0.1]/client.json",
        "https://[fd00::1]/client.json",
        "https://127.0.0.1/client.json",
        "https://localhost/client.json",
        "https://0.0.0.0/client.json",
        "https://app.example.com/",
        "https://app.example.com",
        "https://app.example.com/a/../client.json",
        "https://user@app.example.com/client.json",
        "https://app.example.com/client.json#x",
    ],
)
def test_cimd_ssrf_and_shape_refused_without_fetching(running: RunningIdp, client_id: str) -> None:
    response = running.authorize(client_id)
    assert response.status_code == 400
    assert "invalid_client" in response.text


@pytest.mark.parametrize(
    ("address", "allow_loopback", "allowed"),
    [
        ("93.184.216.34", False, True),
        ("2606:2800:220:1:248:1893:25c8:1946", False, True),
        ("10.0.0.1", False, False),
        ("172.16.0.1", False, False),
        ("192.168.1.1", False, False),
        ("169.254.169.254", False, False),
        ("100.64.0.1", False, False),
        ("0.0.0.0", False, False),
        ("224.0.0.1", False, False),
        ("::ffff:10.0.0.1", False, False),
        ("::ffff:93.184.216.34", False, True),
        ("fe80::1%eth0", False, False),
        ("fd00::1", False, False),
        ("127.0.0.1", False, False),
        ("::1", False, False),
        ("127.0.0.1", True, True),
        ("::1", True, True),
        ("10.0.0.1", True, False),
    ],
)
def test_address_allowed_table(address: str, allow_loopback: bool, allowed: bool) -> None:
    assert address_allowed(address, allow_loopback=allow_loopback) is allowed


@pytest.mark.parametrize(
    ("client_id", "allow", "expected"),
    [
        ("https://app.example.com/c.json", False, True),
        ("http://127.0.0.1:8000/c.json", False, False),
        ("http://127.0.0.1:8000/c.json", True, True),
        ("http://[::1]/c.json", True, True),
        ("http://localhost:1/c.json", True, True),
        ("http://127.0.0.1.nip.io/c.json", True, False),
        ("http://app.example.com/c.json", True, False),
        ("my-client", True, False),
    ],
)
def test_is_document_url(client_id: str, allow: bool, expected: bool) -> None:
    fetcher = ClientMetadataDocuments(httpx.AsyncClient(), allow_loopback_http=allow)
    assert fetcher.is_document_url(client_id) is expected


def _fixed(addresses: list[str]) -> Resolver:
    async def resolve(host: str, port: int) -> list[str]:
        return addresses

    return resolve


async def test_fetch_refuses_a_name_with_any_private_address() -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(500)

    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    fetcher = ClientMetadataDocuments(http, resolve=_fixed(["93.184.216.34", "10.0.0.1"]))
    with pytest.raises(OAuthError) as raised:
        await fetcher.fetch("https://app.example.com/client.json")
    assert raised.value.error == "invalid_client"
    assert calls == []
    await http.aclose()


async def test_fetch_connects_to_the_checked_address_with_the_real_host() -> None:
    seen: list[httpx.Request] = []
    client_id = "https://app.example.com:8443/client.json"

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(
            200, json={"client_id": client_id, "redirect_uris": ["https://app.example.com/cb"]}
        )

    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    fetcher = ClientMetadataDocuments(http, resolve=_fixed(["93.184.216.34"]))
    client = await fetcher.fetch(client_id)
    assert client.redirect_uris == ("https://app.example.com/cb",)
    (request,) = seen
    assert request.url.host == "93.184.216.34"
    assert request.headers["host"] == "app.example.com:8443"
    assert request.extensions["sni_hostname"] == "app.example.com"
    await http.aclose()


async def test_fetch_times_out() -> None:
    async def hang(request: httpx.Request) -> httpx.Response:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    http = httpx.AsyncClient(transport=httpx.MockTransport(hang))
    fetcher = ClientMetadataDocuments(http, resolve=_fixed(["93.184.216.34"]), timeout_s=0.05)
    with pytest.raises(OAuthError) as raised:
        await fetcher.fetch("https://app.example.com/client.json")
    assert raised.value.error == "invalid_client"
    await http.aclose()


async def test_resolve_host_returns_ip_literals_unchanged() -> None:
    assert await resolve_host("10.0.0.1", 443) == ["10.0.0.1"]
    assert await resolve_host("::1", 443) == ["::1"]


async def test_resolve_host_resolves_localhost_locally() -> None:
    addresses = await resolve_host("localhost", 443)
    assert addresses
    assert all(not address_allowed(address, allow_loopback=False) for address in addresses)


async def test_streamed_document_without_length_is_capped() -> None:
    client_id = "https://app.example.com/client.json"

    async def chunks() -> Any:
        for _ in range(100):
            yield b" " * 1024

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=chunks())

    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    fetcher = ClientMetadataDocuments(http, resolve=_fixed(["93.184.216.34"]))
    with pytest.raises(OAuthError, match="too large"):
        await fetcher.fetch(client_id)
    await http.aclose()


def test_client_from_document_requires_matching_client_id() -> None:
    with pytest.raises(OAuthError):
        client_from_document("https://a.example/c.json", b'{"client_id": "https://b.example/c.json"}')
    client = client_from_document(
        "https://a.example/c.json",
        b'{"client_id": "https://a.example/c.json", "redirect_uris": ["https://a.example/cb"]}',
    )
    assert client.client_id == "https://a.example/c.json"
    assert client.grant_types == frozenset({"authorization_code"})


def test_a_valid_document_is_cached_for_a_while(cimd_idp: RunningIdp, documents: RunningServer) -> None:
    client_id = f"{documents.base_url}/client.json"
    cimd_idp.get_code(client_id)
    cimd_idp.get_code(client_id)
    assert HITS == ["/client.json"]  # the second authorization reused the document
    cimd_idp.clock.advance(301)  # past CIMD_CACHE_TTL_S: a changed document is seen again
    cimd_idp.get_code(client_id)
    assert HITS == ["/client.json", "/client.json"]


def test_a_document_is_one_registration_event_per_fetch_not_per_authorization(
    make_idp: MakeIdp, documents: RunningServer
) -> None:
    # The audit feed's `facade.registration` says a document was fetched and accepted; a cache
    # hit registers nothing new, so it is no event (an event per authorization buried the fetches).
    events: list[IdpEvent] = []
    idp = make_idp(allow_http_cimd=True, events=SimpleNamespace(record=events.append))
    client_id = f"{documents.base_url}/client.json"
    idp.get_code(client_id)
    idp.get_code(client_id)
    assert [e.kind for e in events if e.kind == "registration"] == ["registration"]
    idp.clock.advance(301)  # the cache expired: fetched, and told, again
    idp.get_code(client_id)
    assert [e.kind for e in events if e.kind == "registration"] == ["registration"] * 2


@pytest.mark.parametrize(
    ("cache_control", "seconds"),
    [
        (None, 300),
        ("max-age=60", 60),
        ("public, max-age=86400", 300),  # capped
        ('max-age="30"', 30),
        ("no-store", 0),
        ("max-age=600, no-cache", 0),
        ("private", 300),
    ],
)
def test_cache_seconds(cache_control: str | None, seconds: float) -> None:
    assert cache_seconds(cache_control) == seconds


async def test_allow_loopback_admits_loopback_over_https_only() -> None:
    # `allow_loopback_cimd` (the facade's `cimd.allow_loopback`, for tests): 127.0.0.1 is
    # fetched, http stays refused, and every other private address stays refused.
    seen: list[httpx.Request] = []
    client_id = "https://127.0.0.1:8443/client.json"

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"client_id": client_id, "redirect_uris": [REDIRECT]})

    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    loopback = ClientMetadataDocuments(http, allow_loopback=True)
    assert (await loopback.fetch(client_id)).client_id == client_id
    assert not loopback.is_document_url("http://127.0.0.1:8080/client.json")
    for private in ("https://10.0.0.1/client.json", "https://[fd00::1]/client.json"):
        with pytest.raises(OAuthError, match="not a public address"):
            await loopback.fetch(private)
    with pytest.raises(OAuthError, match="not a public address"):
        await ClientMetadataDocuments(http).fetch(client_id)  # the default refuses loopback
    assert len(seen) == 1
    await http.aclose()
