"""Parameter parsing: duplicates (AS-10) and size/field caps (AS-16)."""

from __future__ import annotations

import socket

import pytest
from starlette.requests import Request

from mcp_bastion.devidp._params import parse_params, parse_query
from mcp_bastion.errors import OAuthError

from .conftest import RunningIdp

# -- AS-10 ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["state", "redirect_uri", "code_challenge", "client_id", "response_type", "scope"]
)
def test_as10_duplicate_parameter_at_authorize_is_invalid_request_page(
    running: RunningIdp, name: str
) -> None:
    client_id = running.register()["client_id"]
    params = list(running.authorize_params(client_id).items())
    value = dict(params)[name]
    response = running.http.get("/idp/authorize", params=[*params, (name, value if name != "state" else "b")])
    assert response.status_code == 400
    assert "location" not in response.headers
    assert "invalid_request" in response.text


@pytest.mark.parametrize("name", ["grant_type", "code", "code_verifier", "redirect_uri", "client_id"])
def test_as10_duplicate_parameter_at_token_is_invalid_request(running: RunningIdp, name: str) -> None:
    client_id = running.register()["client_id"]
    code = running.get_code(client_id)
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "client_id": client_id,
        "redirect_uri": "http://127.0.0.1/callback",
        "code_verifier": running.verifier,
        "resource": running.resource,
    }
    body = "&".join(f"{k}={v}" for k, v in [*form.items(), (name, form[name])])
    response = running.http.post(
        "/idp/token", content=body, headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    # The refused request never reached the code.
    assert running.redeem(client_id, code).status_code == 200


def test_as10_parse_table() -> None:
    assert parse_params("a=1&b=2&resource=x&resource=y").resources == ("x", "y")
    assert parse_params("a=&b=2").get("a") is None  # empty means omitted (RFC 6749 §3.1)
    for raw in ("state=a&state=b", "state=&state=b", "a=1&a=1"):
        with pytest.raises(OAuthError) as raised:
            parse_params(raw)
        assert raised.value.error == "invalid_request"


@pytest.mark.parametrize(
    "raw",
    ["&".join(f"f{n}=1" for n in range(101)), "a=%ff%fe", "a=" + "x" * 5000],
    ids=["101-fields", "bad-utf8", "too-long"],
)
def test_parse_refuses_abuse(raw: str) -> None:
    with pytest.raises(OAuthError) as raised:
        parse_params(raw)
    assert raised.value.error == "invalid_request"


# -- AS-16 ------------------------------------------------------------------------------


def _raw_exchange(running: RunningIdp, head: str, body: bytes) -> bytes:
    host, port = running.base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(head.encode() + b"\r\n" + body)
        return sock.recv(65536)


def test_as16_declared_50mb_body_is_refused_before_reading(running: RunningIdp) -> None:
    head = (
        "POST /idp/token HTTP/1.1\r\nHost: x\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {50 * 1024 * 1024}\r\n"
    )
    reply = _raw_exchange(running, head, b"grant_type=client_credentials&")
    assert reply.startswith(b"HTTP/1.1 413")


def test_as16_chunked_body_past_the_cap_is_413(running: RunningIdp) -> None:
    head = (
        "POST /idp/token HTTP/1.1\r\nHost: x\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n"
    )
    chunk = b"a" * 16384
    body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(5))
    reply = _raw_exchange(running, head, body)
    assert reply.startswith(b"HTTP/1.1 413")


def test_as16_ten_thousand_fields_is_400(running: RunningIdp) -> None:
    body = "&".join(f"{n % 10}=1" for n in range(10_000))  # 40 KB: under the size cap
    response = running.http.post(
        "/idp/token", content=body, headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_as16_multipart_is_never_parsed(running: RunningIdp) -> None:
    response = running.http.post(
        "/idp/token",
        files={"file": ("", b"x" * 1000)},
        data={"grant_type": "client_credentials"},
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_as16_oversized_consent_post_is_413(running: RunningIdp) -> None:
    response = running.http.post("/idp/consent", data={"x": "y" * (70 * 1024)})
    assert response.status_code == 413


def test_non_ascii_query_is_refused() -> None:
    # uvicorn refuses raw non-ASCII request targets itself; the parser does not rely on it.
    request = Request(
        {"type": "http", "method": "GET", "path": "/", "headers": [], "query_string": b"a=\xff"}
    )
    with pytest.raises(OAuthError) as raised:
        parse_query(request)
    assert raised.value.error == "invalid_request"
