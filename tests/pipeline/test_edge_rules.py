"""The edge checks, one rule at a time, as tables written out here (not read from the module).

- methods: POST, GET and DELETE (405 otherwise);
- Host (DNS rebinding, MCP transports §Security): the public host, in its default-port forms,
  or an `allowed_hosts` entry, case-insensitively (421 otherwise); `X-Forwarded-Host` counts
  only from a peer address inside `trusted_proxies`, and then its last value, the one the
  proxy added, is what is checked;
- Origin: absent, the public origin, or an `origins.allow` entry (403 otherwise);
- POST: `Content-Type: application/json` (415), an `Accept` naming JSON and SSE (406), a
  declared `Content-Length` of at most `limits.max_body_bytes` ASCII digits (413);
- GET: an `Accept` naming SSE (406).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from mcp_bastion.config import parse_config
from mcp_bastion.errors import RequestRejected
from mcp_bastion.pipeline import edge as edge_module
from mcp_bastion.pipeline.edge import EdgeChecks
from mcp_bastion.pipeline.exchange import Exchange, read_headers
from mcp_bastion.trace import TraceContext

from .fakes import route as fake_route

JSON = "application/json"
ROUTE = fake_route()
BOTH = "application/json, text/event-stream"
POST_HEADERS = {"content-type": JSON, "accept": BOTH}


def edge(public: str = "https://gw.example", **settings: Any) -> EdgeChecks:
    config = parse_config(
        {
            "public_base_url": public,
            "identity_providers": [{"name": "corp", "issuer": "https://idp.example"}],
            "servers": [{"name": "demo", "upstream": "http://127.0.0.1:9001/mcp"}],
            **settings,
        }
    )
    return EdgeChecks(config)


def status(
    checks: EdgeChecks,
    headers: dict[str, str],
    method: str = "POST",
    peer: tuple[str, int] | None = ("192.0.2.10", 40000),
    *,
    negotiated: bool = True,
) -> int:
    """200 when the request passes the edge, else the status it is refused with. A POST gets
    a JSON Content-Type and an Accept naming JSON and SSE unless `negotiated` is false."""
    if method == "POST" and negotiated:
        headers = {**POST_HEADERS, **headers}
    raw = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()]
    scope: dict[str, Any] = {"type": "http", "method": method, "headers": raw}
    if peer is not None:
        scope["client"] = peer
    # A real route: the compiled build checks every field's type (the edge reads none of it).
    ex = Exchange(scope, None, None, ROUTE, read_headers(raw, 1 << 20), TraceContext.from_header(None))  # type: ignore[arg-type]
    try:
        asyncio.run(checks(ex))
    except RequestRejected as refused:
        return refused.status
    return 200


DEFAULT = edge()


# --- methods ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "expected"),
    [
        ("POST", 200),
        ("GET", 200),
        ("DELETE", 200),
        ("PUT", 405),
        ("PATCH", 405),
        ("OPTIONS", 405),
        ("HEAD", 405),
        ("TRACE", 405),
        ("post", 405),
    ],
)
def test_methods(method: str, expected: int) -> None:
    headers = {"host": "gw.example", "accept": BOTH}
    assert status(DEFAULT, headers, method) == expected


# --- Host ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("public", "host", "expected"),
    [
        # https: the default port may be written or left out, in the URL and in Host.
        ("https://gw.example", "gw.example", 200),
        ("https://gw.example", "gw.example:443", 200),
        ("https://gw.example", "GW.Example:443", 200),
        ("https://gw.example:443", "gw.example", 200),
        ("https://gw.example:443", "gw.example:443", 200),
        ("https://gw.example", "gw.example:80", 421),
        ("https://gw.example", "gw.example:8443", 421),
        ("https://gw.example", "gw.example:4430", 421),
        ("https://gw.example", "gw.example:", 421),
        ("https://gw.example", "evil.example", 421),
        ("https://gw.example", "gw.example.evil.example", 421),
        ("https://gw.example", "", 421),
        # http: port 80.
        ("http://gw.example", "gw.example", 200),
        ("http://gw.example", "gw.example:80", 200),
        ("http://gw.example:80", "gw.example", 200),
        ("http://gw.example", "gw.example:443", 421),
        ("http://gw.example:443", "gw.example", 421),
        # Another port must be written out.
        ("https://gw.example:8443", "gw.example:8443", 200),
        ("https://gw.example:8443", "gw.example", 421),
        ("https://gw.example:8443", "gw.example:443", 421),
        ("http://127.0.0.1:8080", "127.0.0.1:8080", 200),
        ("http://127.0.0.1:8080", "127.0.0.1", 421),
        ("http://127.0.0.1:8080", "127.0.0.1:80", 421),
        ("http://gw.example:8443", "gw.example:8443:80", 421),
        # IPv6 literals: the port follows the bracket.
        ("https://[2001:db8::1]", "[2001:db8::1]", 200),
        ("https://[2001:db8::1]", "[2001:db8::1]:443", 200),
        ("https://[2001:db8::1]", "[2001:db8::1]:80", 421),
        ("http://[::1]:8080", "[::1]:8080", 200),
        ("http://[::1]:8080", "[::1]", 421),
        ("http://[::1]:8080", "[::1]:80", 421),
        # A path in the public URL is not part of the host.
        ("https://gw.example/tenant/a", "gw.example", 200),
        ("https://gw.example/tenant/a", "gw.example:443", 200),
    ],
)
def test_host_and_its_default_port_forms(public: str, host: str, expected: int) -> None:
    assert status(edge(public), {"host": host}) == expected


def test_a_request_without_host_is_refused() -> None:
    assert status(DEFAULT, {}) == 421


def test_allowed_hosts_are_matched_case_insensitively() -> None:
    checks = edge(allowed_hosts=["Internal.Example:8080", "lb.internal"])
    assert status(checks, {"host": "internal.example:8080"}) == 200
    assert status(checks, {"host": "LB.INTERNAL"}) == 200
    assert status(checks, {"host": "gw.example"}) == 200  # the public host still counts
    assert status(checks, {"host": "internal.example"}) == 421
    assert status(checks, {"host": "other.internal"}) == 421


# --- X-Forwarded-Host ---------------------------------------------------------------------------

PROXIED = edge(trusted_proxies=["10.0.0.0/8", "2001:db8:1::/48"])
PROXY = ("10.20.30.40", 51000)


@pytest.mark.parametrize(
    ("forwarded", "expected"),
    [
        ("gw.example", 200),
        ("GW.EXAMPLE:443", 200),
        (" gw.example ", 200),
        ("evil.example", 421),
        ("", 421),
        # Several values: each proxy appends the Host it received, so only the last one is
        # vouched for by the trusted peer; the ones before it came from whoever called that proxy.
        ("evil.example, gw.example", 200),
        ("evil.example,gw.example", 200),
        ("gw.example, evil.example", 421),
        ("gw.example,", 421),
    ],
)
def test_forwarded_host_from_a_trusted_proxy_is_the_host_checked(forwarded: str, expected: int) -> None:
    headers = {"host": "lb.internal", "x-forwarded-host": forwarded}
    assert status(PROXIED, headers, peer=PROXY) == expected
    # And it replaces Host rather than adding to it: our own Host does not rescue a bad value.
    assert status(PROXIED, {**headers, "host": "gw.example"}, peer=PROXY) == expected


@pytest.mark.parametrize(
    "peer",
    [
        ("192.0.2.10", 51000),  # outside every trusted network
        ("11.0.0.1", 51000),
        ("2001:db8:2::1", 51000),
        ("not-an-address", 0),  # a peer that does not parse is never a trusted proxy
        ("10.20.30.40%eth0", 0),
        ("", 0),
        ("/run/bastion.sock", 0),
        None,  # no peer address at all (a Unix socket under another ASGI server)
    ],
)
def test_forwarded_host_from_anyone_else_is_ignored(peer: tuple[str, int] | None) -> None:
    assert status(PROXIED, {"host": "lb.internal", "x-forwarded-host": "gw.example"}, peer=peer) == 421
    assert status(PROXIED, {"host": "gw.example", "x-forwarded-host": "evil.example"}, peer=peer) == 200


@pytest.mark.parametrize("peer", [("10.0.0.1", 1), ("10.255.255.255", 1), ("2001:db8:1:ffff::9", 1)])
def test_every_address_of_a_trusted_network_is_trusted(peer: tuple[str, int]) -> None:
    assert status(PROXIED, {"host": "lb.internal", "x-forwarded-host": "gw.example"}, peer=peer) == 200


def test_without_trusted_proxies_forwarded_host_is_ignored_from_any_peer() -> None:
    for peer in (PROXY, ("127.0.0.1", 1), ("::1", 1)):
        assert status(DEFAULT, {"host": "lb.internal", "x-forwarded-host": "gw.example"}, peer=peer) == 421
        assert status(DEFAULT, {"host": "gw.example", "x-forwarded-host": "evil.example"}, peer=peer) == 200


def test_a_trusted_network_given_as_a_host_address_is_that_network() -> None:
    # `10.1.2.3/8` names 10.0.0.0/8 (the host bits are ignored, as `ip route` would).
    checks = edge(trusted_proxies=["10.1.2.3/8"])
    assert status(checks, {"host": "lb.internal", "x-forwarded-host": "gw.example"}, peer=PROXY) == 200


# --- Origin -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("origin", "expected"),
    [
        (None, 200),  # non-browser clients send none
        ("https://gw.example", 200),  # the gateway's own origin
        ("https://app.example", 200),  # listed
        ("https://evil.example", 403),
        ("null", 403),
        ("", 403),
        ("https://gw.example:443", 403),  # browsers serialize origins without the default port
        ("http://gw.example", 403),
        ("https://app.example.evil.example", 403),
    ],
)
def test_origin(origin: str | None, expected: int) -> None:
    checks = edge(origins={"allow": ["https://app.example"]})
    headers = {"host": "gw.example"} if origin is None else {"host": "gw.example", "origin": origin}
    assert status(checks, headers) == expected
    assert status(checks, {**headers, "accept": "text/event-stream"}, "GET") == expected
    assert status(checks, headers, "DELETE") == expected


# --- content negotiation ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        ("application/json", 200),
        ("application/json; charset=utf-8", 200),
        ("Application/JSON", 200),
        (" application/json ;charset=UTF-8", 200),
        ("", 415),
        ("text/plain", 415),
        ("application/x-www-form-urlencoded", 415),
        ("application/jsonx", 415),
        ("application/json-seq", 415),
        ("application/*", 415),
        ("text/json", 415),
    ],
)
def test_post_content_type(content_type: str, expected: int) -> None:
    assert status(DEFAULT, {"host": "gw.example", "content-type": content_type}) == expected


def test_post_without_content_type_or_accept() -> None:
    assert status(DEFAULT, {"host": "gw.example", "accept": BOTH}, negotiated=False) == 415
    assert status(DEFAULT, {"host": "gw.example", "content-type": JSON}, negotiated=False) == 406


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        ("application/json, text/event-stream", 200),
        ("text/event-stream, application/json", 200),
        ("text/event-stream,application/json", 200),
        ("APPLICATION/JSON , Text/Event-Stream", 200),
        ("application/json;q=0.9, text/event-stream;q=1", 200),
        ("*/*", 200),
        ("application/*, text/*", 200),
        ("application/json, text/*", 200),
        ("application/*, text/event-stream", 200),
        ("application/json", 406),
        ("text/event-stream", 406),
        ("application/*", 406),
        ("text/*", 406),
        ("application/json, text/plain", 406),
        ("text/html, */json", 406),
        ("", 406),
    ],
)
def test_post_accept_must_name_json_and_sse(accept: str, expected: int) -> None:
    assert status(DEFAULT, {"host": "gw.example", "accept": accept}) == expected


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        ("text/event-stream", 200),
        ("TEXT/EVENT-STREAM; charset=utf-8", 200),
        ("text/*", 200),
        ("*/*", 200),
        ("application/json, text/event-stream", 200),
        ("application/json", 406),
        ("text/plain", 406),
        ("", 406),
    ],
)
def test_get_accept_must_name_sse(accept: str, expected: int) -> None:
    headers = {"host": "gw.example"} if not accept else {"host": "gw.example", "accept": accept}
    assert status(DEFAULT, headers, "GET") == expected


def test_delete_needs_neither_content_type_nor_accept() -> None:
    assert status(DEFAULT, {"host": "gw.example"}, "DELETE") == 200
    assert status(DEFAULT, {"host": "gw.example", "accept": "text/plain"}, "DELETE") == 200


# --- the declared body size ---------------------------------------------------------------------

SMALL = edge(limits={"max_body_bytes": 2048})


@pytest.mark.parametrize(
    ("length", "expected"),
    [
        ("0", 200),
        ("2047", 200),
        ("2048", 200),  # the cap itself is allowed
        ("2049", 413),
        ("02048", 200),
        ("00000000000000002048", 200),  # 20 digits
        ("000000000000000000001", 413),  # 21: refused before it is read as a number
        ("99999999999999999999", 413),
        ("-1", 413),
        ("+1", 413),
        ("1e3", 413),
        ("0x10", 413),
        ("1_000", 413),
        ("\xb2", 413),  # SUPERSCRIPT TWO: a digit to str.isdigit, not to HTTP
        ("", 413),
    ],
)
def test_declared_content_length(length: str, expected: int) -> None:
    assert status(SMALL, {"host": "gw.example", "content-length": length}) == expected


def test_no_declared_length_passes_the_edge() -> None:
    # A chunked body is counted while it is read (edge/body.py), not here.
    assert status(SMALL, {"host": "gw.example"}) == 200


# --- the order of the checks --------------------------------------------------------------------


def test_the_checks_answer_in_order_method_host_origin_type_accept_length() -> None:
    # A rebinding page must learn nothing past the Host check, whatever else is wrong.
    checks = edge(limits={"max_body_bytes": 2048})
    bad = {
        "host": "evil.example",
        "origin": "https://evil.example",
        "content-type": "text/plain",
        "accept": "text/html",
        "content-length": "4096",
    }
    assert status(checks, bad, "PUT") == 405
    assert status(checks, bad) == 421
    assert status(checks, bad | {"host": "gw.example"}) == 403
    assert status(checks, bad | {"host": "gw.example", "origin": "https://gw.example"}) == 415
    fixed = {"host": "gw.example", "origin": "https://gw.example", "content-type": JSON}
    assert status(checks, bad | fixed) == 406
    assert status(checks, bad | fixed | {"accept": BOTH}) == 413
    assert status(checks, bad | fixed | {"accept": BOTH, "content-length": "10"}) == 200


# --- the memos of Content-Type and Accept answers -----------------------------------------------


def test_the_answer_memos_stay_bounded_and_right_under_a_flood_of_distinct_values() -> None:
    # Header values are the client's: a memo keyed on them must not grow without bound.
    for i in range(1000):
        headers = {"host": "gw.example", "content-type": f"text/x-{i}", "accept": BOTH}
        assert status(DEFAULT, headers) == 415
        headers = {"host": "gw.example", "accept": f"application/json, text/x-{i}"}
        assert status(DEFAULT, headers) == 406
    assert len(edge_module._JSON_MEMO) == 256
    assert len(edge_module._ACCEPT_MEMO) == 256
    # Past the cap, new values are still judged right, and the memo stays at its bound.
    assert status(DEFAULT, {"host": "gw.example", "content-type": "application/json;v=9"}) == 200
    assert status(DEFAULT, {"host": "gw.example", "accept": "*/*;v=9"}) == 200
    assert status(DEFAULT, {"host": "gw.example", "accept": "text/*;v=9"}, "GET") == 200
    assert len(edge_module._JSON_MEMO) == 256
    assert len(edge_module._ACCEPT_MEMO) == 256
