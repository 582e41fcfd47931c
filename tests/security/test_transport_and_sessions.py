"""Catalog section D (TS): transport and session rules, against the real gateway over loopback."""

from __future__ import annotations

import base64
import json
import socket
from collections.abc import Iterator

import pytest

from mcp_bastion.config import parse_config

from .support import (
    ACCEPT,
    MODERN,
    Stack,
    call,
    initialize,
    jsonrpc_error,
    read_response,
    request_head,
    rpc,
    stack,
)

APP_ORIGIN = "https://app.example"


@pytest.fixture(scope="module")
def ts() -> Iterator[Stack]:
    extra = [{"name": "other", "upstream": "http://127.0.0.1:1/mcp"}]
    with stack(origins={"allow": [APP_ORIGIN]}, extra_servers=extra) as s:
        yield s


def open_session(s: Stack, subject: str = "alice") -> str:
    response = s.post(initialize(), token=s.token(subject=subject))
    assert response.status_code == 200
    return response.headers["mcp-session-id"]


def legacy(session: str) -> dict[str, str]:
    return {"mcp-session-id": session, "mcp-protocol-version": "2025-11-25"}


def raw_post(s: Stack, header_lines: bytes, body: bytes) -> int:
    with socket.create_connection((s.host, s.port), timeout=5) as conn:
        conn.sendall(request_head(s, s.token(), body_length=len(body)) + header_lines + b"\r\n" + body)
        status, _, _ = read_response(conn)
    return status


# --- TS-01 ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "origin",
    [
        "https://evil.example",
        "null",
        "http://127.0.0.1:1",
        "https://app.example.evil.example",
        "HTTPS://APP.EXAMPLE",
        "",
    ],
)
def test_ts01_foreign_origin_is_403(ts: Stack, origin: str) -> None:
    mark = ts.mark()
    for token in (None, ts.token()):  # before authentication: no token needed to be refused
        response = ts.post(rpc("ping"), token=token, headers={"origin": origin})
        assert response.status_code == 403
    for method in ("GET", "DELETE"):
        response = ts.http.request(
            method,
            ts.url,
            headers={
                "origin": origin,
                "accept": "text/event-stream",
                "authorization": f"Bearer {ts.token()}",
            },
        )
        assert response.status_code == 403
    assert ts.since(mark) == []


@pytest.mark.parametrize("origin", [APP_ORIGIN, "own", None])
def test_ts01_control_allowed_origins_pass(ts: Stack, origin: str | None) -> None:
    headers = {} if origin is None else {"origin": ts.gateway.base_url if origin == "own" else origin}
    assert ts.post(rpc("ping"), token=ts.token(), headers=headers).status_code == 200


# --- TS-02 ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {"host": "attacker.example"},
        {"host": "localhost"},
        {"host": "127.0.0.1"},  # the right address, the wrong port
        {"host": "attacker.example", "x-forwarded-host": "{own}"},  # XFH from an untrusted peer is ignored
    ],
)
def test_ts02_foreign_host_is_421(ts: Stack, headers: dict[str, str]) -> None:
    own = f"{ts.host}:{ts.port}"
    mark = ts.mark()
    response = ts.post(
        rpc("ping"), token=ts.token(), headers={k: v.format(own=own) for k, v in headers.items()}
    )
    assert response.status_code == 421
    assert ts.since(mark) == []


def test_ts02_untrusted_forwarded_host_cannot_override_and_default_bind_is_loopback(ts: Stack) -> None:
    response = ts.post(rpc("ping"), token=ts.token(), headers={"x-forwarded-host": "attacker.example"})
    assert response.status_code == 200  # ignored: the Host header is ours
    config = parse_config(
        {
            "public_base_url": "https://gw.example",
            "servers": [{"name": "a", "upstream": "https://u.example", "auth": False}],
        }
    )
    assert config.listen.host == "127.0.0.1"


def test_ts02_trusted_proxy_forwarded_host_is_checked_too() -> None:
    with stack(trusted_proxies=["127.0.0.1/32"]) as s:
        own = f"{s.host}:{s.port}"
        response = s.post(rpc("ping"), token=s.token(), headers={"x-forwarded-host": "attacker.example"})
        assert response.status_code == 421
        response = s.post(
            rpc("ping"), token=s.token(), headers={"host": "lb.internal", "x-forwarded-host": own}
        )
        assert response.status_code == 200


# --- TS-03 ---------------------------------------------------------------------------------


def test_ts03_a_session_never_authenticates_and_is_bound_to_its_subject(ts: Stack) -> None:
    session = open_session(ts, "alice")
    mark = ts.mark()
    # B's token with A's session.
    response = ts.post(rpc("ping", id=2), token=ts.token(subject="bob"), headers=legacy(session))
    assert response.status_code == 404
    # A's session with no token, and with an expired one.
    response = ts.post(rpc("ping", id=3), headers=legacy(session))
    assert response.status_code == 401
    assert "error=" not in response.headers["www-authenticate"]
    response = ts.post(rpc("ping", id=4), token=ts.token(subject="alice", ttl=-3600), headers=legacy(session))
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    # B's DELETE and GET of A's session.
    for method in ("DELETE", "GET"):
        response = ts.http.request(
            method,
            ts.url,
            headers={
                **legacy(session),
                "accept": "text/event-stream",
                "authorization": f"Bearer {ts.token(subject='bob')}",
            },
        )
        assert response.status_code == 404
    assert ts.since(mark) == []
    # A, with A's token, still has the session (another client of A's is still A).
    response = ts.post(
        rpc("ping", id=5), token=ts.token(subject="alice", client_id="other-client"), headers=legacy(session)
    )
    assert response.status_code == 200
    assert ts.since(mark)[-1].headers["mcp-session-id"] == ts.upstream.session_id
    response = ts.http.delete(
        ts.url, headers={**legacy(session), "authorization": f"Bearer {ts.token(subject='alice')}"}
    )
    assert response.status_code == 200
    assert ts.since(mark)[-1].method == "DELETE"


# --- TS-04 ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "status"),
    [
        (b"abc\x00def", 400),  # refused by the HTTP parser
        (b"abc\r\nx-injected: 1", None),  # a second header line: the gateway sees an unknown id
        (b"abc\rdef", 400),
        (b"caf\xc3\xa9-session", 400),  # non-ASCII
        (b"with space", 400),
        (b"x" * 10_000, 400),
        (b"AQ" + b"A" * 60, 404),  # well-formed, never issued
    ],
)
def test_ts04_malformed_or_unknown_session_ids(ts: Stack, value: bytes, status: int | None) -> None:
    mark = ts.mark()
    body = json.dumps(rpc("ping")).encode()
    got = raw_post(ts, b"MCP-Protocol-Version: 2025-11-25\r\nMcp-Session-Id: " + value + b"\r\n", body)
    assert got == (status or 404)
    assert ts.since(mark) == []


def test_ts04_session_ids_are_unguessable_visible_ascii_and_bound_to_their_server(ts: Stack) -> None:
    first, second = open_session(ts), open_session(ts)
    assert first != second  # same user, same upstream session: still a fresh random id
    for sealed in (first, second):
        assert all(0x21 <= ord(c) <= 0x7E for c in sealed)
        assert len(base64.urlsafe_b64decode(sealed + "==")) >= 16 + 12  # a 128-bit tag and a 96-bit nonce
    mark = ts.mark()
    tampered = first[:-2] + ("A" if first[-2] != "A" else "B") + first[-1]
    assert ts.post(rpc("ping"), token=ts.token(), headers=legacy(tampered)).status_code == 404
    other = ts.gateway.url("other")
    response = ts.http.post(
        other,
        content=json.dumps(rpc("ping")).encode(),
        headers={
            **legacy(first),
            "content-type": "application/json",
            "accept": ACCEPT,
            "authorization": f"Bearer {ts.idp.token(other)}",
        },
    )
    assert response.status_code == 404  # sealed for "rec": the server name is bound into it
    assert ts.since(mark) == []


def test_ts04_session_id_is_required_where_the_gateway_can_tell(ts: Stack) -> None:
    """DELETE needs the id (400 without). A POST without one is forwarded without one: whether
    the upstream keeps sessions at all is the upstream's to say (stateless servers exist), and
    the gateway never invents or reuses a session for it."""
    mark = ts.mark()
    response = ts.http.delete(
        ts.url, headers={"authorization": f"Bearer {ts.token()}", "mcp-protocol-version": "2025-11-25"}
    )
    assert response.status_code == 400
    assert ts.since(mark) == []
    response = ts.post(rpc("ping"), token=ts.token(), headers={"mcp-protocol-version": "2025-11-25"})
    assert response.status_code == 200
    assert "mcp-session-id" not in ts.since(mark)[-1].headers


# --- TS-06 ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"mcp-protocol-version": "2099-01-01"}, 400),
        ({"mcp-protocol-version": "2025-11-2"}, 400),
        ({"mcp-protocol-version": "2026-07-28-draft"}, 400),
        ({"content-type": "text/plain"}, 415),
        ({"content-type": "application/x-www-form-urlencoded"}, 415),
        ({"content-type": "multipart/form-data; boundary=x"}, 415),
        ({"content-type": "application/jsonx"}, 415),
        ({"content-type": ""}, 415),
        ({"accept": "application/json"}, 406),
        ({"accept": "text/event-stream"}, 406),
        ({"accept": ""}, 406),
    ],
)
def test_ts06_version_content_type_and_accept(ts: Stack, headers: dict[str, str], status: int) -> None:
    mark = ts.mark()
    response = ts.post(rpc("ping", id="req-6"), token=ts.token(), headers=headers)
    assert response.status_code == status
    if "mcp-protocol-version" in headers:
        assert jsonrpc_error(response) == (-32022, "req-6")
        assert MODERN in response.json()["error"]["data"]["supported"]
    assert ts.since(mark) == []


def test_ts06_get_without_event_stream_accept_is_406(ts: Stack) -> None:
    mark = ts.mark()
    response = ts.http.get(
        ts.url, headers={"accept": "application/json", "authorization": f"Bearer {ts.token()}"}
    )
    assert response.status_code == 406
    assert ts.since(mark) == []


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "APPLICATION/JSON"])
def test_ts06_control_media_type_parameters_and_case(ts: Stack, content_type: str) -> None:
    assert ts.post(rpc("ping"), token=ts.token(), headers={"content-type": content_type}).status_code == 200


# --- TS-08 ---------------------------------------------------------------------------------


def test_ts08_client_credentials_and_session_ids_never_go_upstream(ts: Stack) -> None:
    session = open_session(ts)
    token = ts.token()
    mark = ts.mark()
    hostile = {
        **legacy(session),
        "cookie": "sid=secret-cookie",
        "proxy-authorization": "Basic c2VjcmV0",
        "x-api-key": "secret-key",
        "forwarded": "for=1.2.3.4",
        "x-forwarded-for": "1.2.3.4",
    }
    assert ts.post(call("read_thing"), token=token, headers=hostile).status_code == 200
    seen = ts.since(mark)[-1].headers
    assert seen["mcp-session-id"] == ts.upstream.session_id  # the upstream's own id, unsealed
    assert session not in json.dumps(seen)
    assert token not in json.dumps(seen)
    assert seen["authorization"].startswith("Bearer ")
    assert seen["authorization"] != f"Bearer {token}"
    for name in ("cookie", "proxy-authorization", "x-api-key", "forwarded", "x-forwarded-for"):
        assert name not in seen
    assert "secret" not in json.dumps(seen)


def test_ts08_modern_era_session_header_is_not_forwarded(ts: Stack) -> None:
    mark = ts.mark()
    body = rpc(
        "tools/call",
        {"name": "read_thing", "arguments": {}, "_meta": {"io.modelcontextprotocol/protocolVersion": MODERN}},
    )
    headers = {
        "mcp-protocol-version": MODERN,
        "mcp-method": "tools/call",
        "mcp-name": "read_thing",
        "mcp-session-id": "client-chosen",
    }
    assert ts.post(body, token=ts.token(), headers=headers).status_code == 200
    assert "mcp-session-id" not in ts.since(mark)[-1].headers


def test_ts08_upstream_sessions_stay_with_their_user(ts: Stack) -> None:
    alice, bob = open_session(ts, "alice"), open_session(ts, "bob")
    assert alice != bob
    mark = ts.mark()
    ok = ts.post(rpc("ping"), token=ts.token(subject="bob"), headers=legacy(bob))
    assert ok.status_code == 200
    assert ts.post(rpc("ping"), token=ts.token(subject="bob"), headers=legacy(alice)).status_code == 404
    assert len(ts.since(mark)) == 1
