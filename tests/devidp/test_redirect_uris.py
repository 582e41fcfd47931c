"""Redirect URIs: exact matching (AS-01), loopback ports (AS-02), registration rules (AS-03)."""

from __future__ import annotations

import pytest

from mcp_bastion.devidp._redirect_uris import check_registrable, matches
from mcp_bastion.errors import OAuthError

from .conftest import RunningIdp

REGISTERED = "https://app.example.com/cb"


def _assert_error_page(response_status: int, headers: dict[str, str], text: str) -> None:
    assert response_status == 400
    assert "location" not in headers
    assert headers["content-type"].startswith("text/html")
    assert headers["x-frame-options"] == "DENY"
    assert "Authorization failed" in text


# -- AS-01 ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "requested",
    [
        "https://evil.example/cb",
        "https://app.example.com/cb/",
        "https://APP.example.com/cb",
        "https://app.example.com/CB",
        "https://app.example.com/cb?x=1",
        "https://app.example.com/cb/extra",
        "https://app.example.com/cb#frag",
        "https://app.example.com:443/cb",
        "http://app.example.com/cb",
        "https://app.example.com.evil.example/cb",
        "https://user@app.example.com/cb",
    ],
)
def test_as01_unregistered_redirect_uri_shows_error_page(running: RunningIdp, requested: str) -> None:
    client_id = running.register(redirect_uris=[REGISTERED])["client_id"]
    response = running.authorize(client_id, redirect_uri=requested)
    _assert_error_page(response.status_code, dict(response.headers), response.text)


def test_as01_error_request_with_unregistered_uri_is_not_redirected(running: RunningIdp) -> None:
    # Even a request that is wrong in other ways (would be an error redirect) must not
    # redirect to an unregistered URI.
    client_id = running.register(redirect_uris=[REGISTERED])["client_id"]
    response = running.authorize(
        client_id, redirect_uri="https://evil.example/cb", response_type="token", code_challenge=None
    )
    _assert_error_page(response.status_code, dict(response.headers), response.text)


def test_as01_unknown_client_shows_error_page(running: RunningIdp) -> None:
    response = running.authorize("no-such-client", redirect_uri=REGISTERED)
    _assert_error_page(response.status_code, dict(response.headers), response.text)


def test_as01_missing_client_id_or_redirect_uri_shows_error_page(running: RunningIdp) -> None:
    client_id = running.register()["client_id"]
    for response in (running.authorize(None), running.authorize(client_id, redirect_uri=None)):
        _assert_error_page(response.status_code, dict(response.headers), response.text)


def test_as01_registered_uri_is_accepted(running: RunningIdp) -> None:
    client_id = running.register(redirect_uris=[REGISTERED])["client_id"]
    response = running.authorize(client_id, redirect_uri=REGISTERED)
    assert response.status_code == 302
    assert response.headers["location"].startswith(f"{REGISTERED}?code=")


# -- AS-02 ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("registered", "requested", "accepted"),
    [
        ("http://127.0.0.1/cb", "http://127.0.0.1:53117/cb", True),
        ("http://127.0.0.1/cb", "http://127.0.0.1/cb", True),
        ("http://127.0.0.1:1234/cb", "http://127.0.0.1:53117/cb", True),
        ("http://[::1]/cb", "http://[::1]:53117/cb", True),
        ("http://localhost/cb", "http://localhost:53117/cb", True),
        ("http://127.0.0.1/cb?a=1", "http://127.0.0.1:5/cb?a=1", True),
        ("http://127.0.0.1/cb", "http://127.0.0.1:53117/cb2", False),
        ("http://127.0.0.1/cb", "http://127.0.0.1:53117/cb/", False),
        ("http://127.0.0.1/cb", "http://127.0.0.1:53117/cb?x=1", False),
        ("http://127.0.0.1/cb", "http://localhost.evil.com:53117/cb", False),
        ("http://127.0.0.1/cb", "http://127.0.0.1.nip.io:53117/cb", False),
        ("http://127.0.0.1/cb", "http://127.0.0.1@evil.com/cb", False),
        ("http://127.0.0.1/cb", "http://127.0.0.1:80@evil.com/cb", False),
        ("http://127.0.0.1/cb", "http://localhost:53117/cb", False),
        ("http://127.0.0.1/cb", "https://127.0.0.1:53117/cb", False),
        ("http://127.0.0.1/cb", "http://127.0.0.1:99999/cb", False),
        ("http://127.0.0.1/cb", "http://127.0.0.1:0/cb", False),
        ("http://127.0.0.1/cb", "http://127.0.0.1:53117/cb#x", False),
        ("http://localhost/cb", "http://LOCALHOST:53117/cb", False),
        ("https://app.example.com/cb", "https://app.example.com:8443/cb", False),
    ],
)
def test_as02_only_the_loopback_port_may_vary(registered: str, requested: str, accepted: bool) -> None:
    assert matches((registered,), requested) is accepted


def test_as02_loopback_port_end_to_end(running: RunningIdp) -> None:
    client_id = running.register(redirect_uris=["http://127.0.0.1/cb"])["client_id"]
    accepted = running.authorize(client_id, redirect_uri="http://127.0.0.1:53117/cb")
    assert accepted.status_code == 302
    assert accepted.headers["location"].startswith("http://127.0.0.1:53117/cb?code=")
    for requested in (
        "http://127.0.0.1:53117/cb2",
        "http://localhost.evil.com/cb",
        "http://127.0.0.1.nip.io/cb",
    ):
        refused = running.authorize(client_id, redirect_uri=requested)
        _assert_error_page(refused.status_code, dict(refused.headers), refused.text)


# -- AS-03 ------------------------------------------------------------------------------

BAD_REDIRECT_URIS = [
    "javascript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "vbscript:msgbox(1)",
    "file:///etc/passwd",
    "blob:https://app.example.com/1",
    "about:blank",
    "#frag",
    "https://app.example.com/cb#frag",
    "http://app.example.com/cb",
    "http://10.0.0.1/cb",
    "http://127.0.0.1.nip.io/cb",
    "http://localhost.evil.com/cb",
    "https://a$(id)",
    "https://a b.example/cb",
    "https://app.example.com/c b",
    "https:///cb",
    "https://user:pw@app.example.com/cb",
    "https://app.example.com:99999/cb",
    "https://app.example.com/%zz",
    "https://app.example.com\\@evil.example/cb",
    "com.example.app:/callback",
    "/relative/cb",
    "",
    "https://" + "a" * 3000 + ".example/cb",
]


@pytest.mark.parametrize("uri", BAD_REDIRECT_URIS)
def test_as03_registration_refuses_bad_redirect_uri(running: RunningIdp, uri: str) -> None:
    response = running.http.post("/idp/register", json={"redirect_uris": [uri]})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_redirect_uri"


@pytest.mark.parametrize(
    "value",
    [["https://app.example.com/cb"] * 21, [], "x", [1], None],
    ids=["21-entries", "empty", "not-a-list", "not-strings", "missing"],
)
def test_as03_registration_refuses_bad_redirect_uri_lists(running: RunningIdp, value: object) -> None:
    body = {} if value is None else {"redirect_uris": value}
    response = running.http.post("/idp/register", json=body)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_redirect_uri"


def test_as03_ten_thousand_redirect_uris_hit_the_body_cap(running: RunningIdp) -> None:
    # 10,000 URIs do not fit in the 64 KB body cap: refused before any parsing.
    uris = [f"https://app.example.com/{n}" for n in range(10_000)]
    response = running.http.post("/idp/register", json={"redirect_uris": uris})
    assert response.status_code == 413


@pytest.mark.parametrize(
    "uri",
    [
        "https://app.example.com/cb",
        "https://app.example.com:8443/cb?x=1",
        "https://[2001:db8::1]/cb",
        "http://127.0.0.1/cb",
        "http://127.0.0.1:8765/callback",
        "http://[::1]/cb",
        "http://localhost:3000/oauth/callback",
    ],
)
def test_as03_registrable_redirect_uris(uri: str) -> None:
    assert check_registrable(uri) == uri


@pytest.mark.parametrize("uri", BAD_REDIRECT_URIS)
def test_as03_check_registrable_table(uri: str) -> None:
    with pytest.raises(OAuthError) as raised:
        check_registrable(uri)
    assert raised.value.error == "invalid_redirect_uri"
