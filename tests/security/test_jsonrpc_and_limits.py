"""Catalog section E (JR): JSON-RPC parsing and resource limits, against the real gateway over
loopback. Bodies go out as raw bytes, so nothing is "fixed" by a client library on the way."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from .support import (
    MODERN,
    Stack,
    call,
    closed_by_peer,
    initialize,
    jsonrpc_error,
    read_response,
    request_head,
    rpc,
    stack,
)


@pytest.fixture(scope="module")
def jr() -> Iterator[Stack]:
    with stack() as s:
        yield s


def refused(s: Stack, body: bytes, code: int, rid: object, *, status: int = 400, **headers: str) -> None:
    mark = s.mark()
    response = s.post(body, token=s.token(), headers=headers)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert jsonrpc_error(response) == (code, rid)
    assert s.since(mark) == []


# --- JR-01 ---------------------------------------------------------------------------------


def test_jr01_batches(jr: Stack) -> None:
    huge = json.dumps([rpc("ping", id=i) for i in range(10_000)]).encode()
    refused(jr, huge, -32600, None)
    refused(jr, json.dumps([rpc("ping", id=i) for i in range(65)]).encode(), -32600, None)
    mark = jr.mark()
    response = jr.post(b"[]", token=jr.token())
    assert response.status_code == 400
    assert response.json() == {"jsonrpc": "2.0", "id": None, "error": response.json()["error"]}  # one object
    assert response.json()["error"]["code"] == -32600
    for version in ("2025-06-18", "2025-11-25", MODERN):
        refused(
            jr,
            json.dumps([rpc("ping", id=1), rpc("ping", id=2)]).encode(),
            -32600,
            None,
            **{"mcp-protocol-version": version},
        )
    assert jr.since(mark) == []


def test_jr01_batch_at_the_cap_is_authorized_element_by_element(jr: Stack) -> None:
    jr.post(rpc("tools/list"), token=jr.token("tools.write"))  # the catalog knows the annotations
    mark = jr.mark()
    mixed = [call("read_thing", 1)] * 32 + [call("drop_thing", 2)] + [rpc("ping", id=3)] * 31
    response = jr.post(mixed, token=jr.token("tools.read"))
    assert response.status_code == 403
    assert 'scope="tools.write"' in response.headers["www-authenticate"]
    assert jr.tool_calls_since(mark) == []
    assert jr.since(mark) == []
    allowed = jr.post([call("read_thing", i) for i in range(64)], token=jr.token("tools.read"))
    assert allowed.status_code == 200
    assert [a["id"] for a in allowed.json()] == list(range(64))


# --- JR-02 ---------------------------------------------------------------------------------


@pytest.mark.parametrize("with_token", [True, False])
def test_jr02_declared_huge_body_is_413_without_reading_it(jr: Stack, with_token: bool) -> None:
    mark = jr.mark()
    head = request_head(jr, jr.token() if with_token else None, body_length=100 * 1_048_576) + b"\r\n"
    started = time.monotonic()
    with socket.create_connection((jr.host, jr.port), timeout=5) as conn:
        conn.sendall(head)  # headers only: the 100 MB never comes
        status, _, body = read_response(conn, timeout=3)
    assert status == 413
    assert json.loads(body)["error"]["code"] == -32600
    assert time.monotonic() - started < 2
    assert jr.since(mark) == []


def test_jr02_undeclared_oversized_body_is_413(jr: Stack) -> None:
    """Chunked, no Content-Length: counted while read, refused at the first byte over the cap."""
    mark = jr.mark()
    head = (
        request_head(jr, jr.token()).replace(b"Content-Length", b"X-Nothing")
        + b"Transfer-Encoding: chunked\r\n\r\n"
    )
    chunk = b"x" * 65536
    with socket.create_connection((jr.host, jr.port), timeout=5) as conn:
        conn.sendall(head)
        try:
            for _ in range(40):  # 2.5 MiB offered against a 1 MiB cap
                conn.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
        except OSError:
            pass  # the gateway may answer and close before all of it is sent
        status, _, _ = read_response(conn, timeout=5)
    assert status == 413
    assert jr.since(mark) == []


# --- JR-04 ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000,
        b'{"a":' * 50_000,
        json.dumps(rpc("ping", {"x": json.loads("[" * 70 + "]" * 70)})).encode(),  # depth over 64, valid JSON
        b"[" * 100_000 + b"]" * 100_000,
    ],
    ids=["open-brackets", "open-objects", "deep-params", "deep-balanced"],
)
def test_jr04_deep_nesting_is_a_parse_error(jr: Stack, body: bytes) -> None:
    refused(jr, body, -32700, None)


def test_jr04_control_nesting_under_the_cap_passes(jr: Stack) -> None:
    body = rpc("ping", {"x": json.loads("[" * 60 + "]" * 60)})
    assert jr.post(body, token=jr.token()).status_code == 200


# --- JR-05 ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw_id", "code"),
    [
        (b"1" + b"0" * 4999, -32700),  # 5,000 digits
        (b"null", -32600),
        (b'{"a":1}', -32600),
        (b"[1]", -32600),
        (b"1.5", -32600),
        (b"1e3", -32600),
        (b"18446744073709551616", -32600),  # 2**64: a float after parsing
        (b"true", -32600),
        (b'"' + b"i" * 257 + b'"', -32600),
    ],
    ids=["5000-digits", "null", "object", "array", "float", "exponent", "2**64", "bool", "long-string"],
)
def test_jr05_bad_ids(jr: Stack, raw_id: bytes, code: int) -> None:
    body = b'{"jsonrpc":"2.0","id":' + raw_id + b',"method":"ping","params":{}}'
    refused(jr, body, code, None)


@pytest.mark.parametrize("rid", [0, -1, 9223372036854775807, "", "x" * 256])
def test_jr05_control_ids_that_are_fine(jr: Stack, rid: object) -> None:
    response = jr.post(rpc("ping", id=rid), token=jr.token())
    assert response.status_code == 200
    assert response.json()["id"] == rid


def test_jr05_id_reused_in_a_session_is_forwarded_never_500(jr: Stack) -> None:
    """The gateway keeps no per-session id ledger (it holds no session state at all): a reused id
    is the upstream's to refuse. Each HTTP exchange carries its own answer, so a reuse can never
    deliver one caller's result to another; and the gateway never fails on it."""
    session = jr.post(initialize(), token=jr.token()).headers["mcp-session-id"]
    headers = {"mcp-session-id": session, "mcp-protocol-version": "2025-11-25"}
    mark = jr.mark()
    for _ in range(2):
        response = jr.post(call("read_thing", 7), token=jr.token(), headers=headers)
        assert response.status_code == 200
        assert response.json()["id"] == 7
    assert len(jr.tool_calls_since(mark)) == 2


# --- JR-06 ---------------------------------------------------------------------------------

_PING = json.dumps(rpc("ping")).encode()


@pytest.mark.parametrize(
    "body",
    [
        _PING.replace(b'"ping"', b'"pi\xffng"'),
        b"\xff" + _PING,
        _PING.decode().encode("utf-16"),  # with its BOM
        _PING.decode().encode("utf-16-le"),
        b"\xef\xbb\xbf" + _PING,  # a UTF-8 BOM
        _PING.replace(b'"ping"', b'"pi\\ud800ng"'),  # a lone surrogate, escaped
        _PING.replace(b'"ping"', b'"pi\xed\xa0\x80ng"'),  # a lone surrogate, raw (CESU)
        _PING.replace(b'"ping"', b'"pi\xc0\xafng"'),  # overlong encoding of "/"
        _PING.replace(b"{}", b'{"x":NaN}'),
        _PING.replace(b"{}", b'{"x":Infinity}'),
        _PING.replace(b"{}", b'{"x":-Infinity}'),
        _PING + b"\x00",
        _PING + b" trailing",
        b"",
    ],
    ids=[
        "ff-inside",
        "ff-first",
        "utf16-bom",
        "utf16-le",
        "utf8-bom",
        "escaped-lone-surrogate",
        "raw-surrogate",
        "overlong",
        "nan",
        "infinity",
        "minus-infinity",
        "nul-after",
        "trailing-garbage",
        "empty",
    ],
)
def test_jr06_not_utf8_json_is_a_parse_error_and_never_forwarded(jr: Stack, body: bytes) -> None:
    refused(jr, body, -32700, None)


# --- JR-09 ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "code", "rid"),
    [
        ({"jsonrpc": "1.0", "id": 9, "method": "ping"}, -32600, 9),
        ({"id": 9, "method": "ping"}, -32600, 9),
        ({"jsonrpc": 2.0, "id": 9, "method": "ping"}, -32600, 9),
        ({"jsonrpc": "2.0", "id": 9, "method": "ping", "params": 5}, -32602, 9),
        ({"jsonrpc": "2.0", "id": 9, "method": "ping", "params": "x"}, -32602, 9),
        ({"jsonrpc": "2.0", "id": 9, "method": "ping", "params": [1]}, -32602, 9),
        ({"jsonrpc": "2.0", "id": 9, "method": 5}, -32600, 9),
        ({"jsonrpc": "2.0", "id": 9, "method": ""}, -32600, 9),
        ({"jsonrpc": "2.0", "id": 9}, -32600, 9),
        ({"jsonrpc": "2.0", "id": None, "result": {}}, -32600, None),  # a response without an id
        ({"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": {"name": 5}}, -32602, 9),
        ({"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": {}}, -32602, 9),
        (5, -32600, None),
        ("ping", -32600, None),
        (None, -32600, None),
    ],
)
def test_jr09_malformed_messages(jr: Stack, body: object, code: int, rid: object) -> None:
    refused(jr, json.dumps(body).encode(), code, rid)


def test_jr09_client_response_objects(jr: Stack) -> None:
    """Session era: a client's response (to a server's sampling or elicitation request) is
    forwarded; 2026-07-28 has no such thing on a POST, so it is refused (-32020, the era's
    header rules) with its id."""
    mark = jr.mark()
    response = jr.post({"jsonrpc": "2.0", "id": "srv-1", "result": {}}, token=jr.token())
    assert response.status_code == 202  # the upstream's answer to a response (transports §POST)
    assert jr.since(mark)[-1].json == {"jsonrpc": "2.0", "id": "srv-1", "result": {}}
    mark = jr.mark()
    body = {"jsonrpc": "2.0", "id": "srv-2", "result": {}}
    refused(jr, json.dumps(body).encode(), -32020, "srv-2", **{"mcp-protocol-version": MODERN})
    assert jr.since(mark) == []


# --- members another parser could read differently (issue 9) ----------------------------------
# The gateway authorizes what it parsed and forwards the bytes it received. An upstream whose
# decoder folds case (the Go SDK before CVE-2026-27896) or keeps the first of a repeated member
# would otherwise run a call the gateway never authorized.

_DROP = b'"params":{"name":"drop_thing","arguments":{}}'


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b'{"jsonrpc":"2.0","id":7,"Method":"tools/call","method":"tools/list","params":{}}', -32600),
        (
            '{"jsonrpc":"2.0","id":7,"method":"tools/list","params":{},"param\u017f":{"name":"drop_thing"}}'.encode(),
            -32600,
        ),
        # First-wins parsers read tools/call drop_thing; orjson keeps the last, an open ping.
        (b'{"jsonrpc":"2.0","id":7,"method":"tools/call",' + _DROP + b',"method":"ping"}', -32600),
        (b'{"jsonrpc":"2.0","id":7,"method":"tools/call",' + _DROP + b',"\\u006dethod":"ping"}', -32600),
        # The tool name decides the scope: a read token must not reach drop_thing through a repeat.
        (
            b'{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"drop_thing","name":"read_thing"}}',
            -32600,
        ),
        (
            b'{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"Name":"drop_thing","name":"read_thing"}}',
            -32602,
        ),
        (b'{"jsonrpc":"2.0","id":7,"result":{},"error":{"code":1,"message":"no"}}', -32600),
        (b'{"jsonrpc":"2.0","id":7,"result":{},"method":"tools/call"}', -32600),
    ],
    ids=[
        "Method",
        "param-long-s",
        "repeated-method",
        "repeated-method-escaped",
        "repeated-name",
        "Name",
        "result-and-error",
        "response-with-method",
    ],
)
def test_members_another_parser_could_read_differently_are_refused(jr: Stack, body: bytes, code: int) -> None:
    refused(jr, body, code, 7)


def test_an_unknown_member_in_a_batch_element_is_refused(jr: Stack) -> None:
    batch = (
        b'[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","id":2,"method":"ping","Method":"x"}]'
    )
    refused(jr, batch, -32600, 2)  # the element's id, as for its other errors


def test_control_read_names_inside_arguments_are_forwarded_byte_for_byte(jr: Stack) -> None:
    body = (
        b'{"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"name":"read_thing",'
        b'"arguments":{"name":"method","Method":"id","Params":[{"name":"x"}],"text":"a \\"name\\"\\n"}}}'
    )
    mark = jr.mark()
    response = jr.post(body, token=jr.token())
    assert response.status_code == 200, response.text
    assert [seen.body for seen in jr.tool_calls_since(mark)] == [body]


# --- HTTP/1.1 framing the gateway cannot serve (RFC 9112, issue 9) -------------------------------


_PING_BODY = json.dumps(rpc("ping")).encode()


def _chunked(body: bytes, size_line_end: bytes = b"\r\n") -> bytes:
    return b"%x" % len(body) + size_line_end + body + b"\r\n0\r\n\r\n"


@pytest.mark.parametrize(
    ("framing", "status"),
    [
        (b"Transfer-Encoding: gzip\r\n\r\n" + _PING_BODY, 400),  # §6.3: no final chunked
        (b"Transfer-Encoding: gzip, chunked\r\n\r\n" + _chunked(_PING_BODY), 501),  # §6.1
        (b"Transfer-Encoding: chunked\r\n\r\n" + _chunked(_PING_BODY, b"\n"), 400),  # §7.1: bare LF
    ],
    ids=["te-gzip", "te-gzip-chunked", "bare-lf-chunk-line"],
)
def test_framing_the_gateway_cannot_read_gets_an_answer_then_a_close(
    jr: Stack, framing: bytes, status: int
) -> None:
    """These closed the connection without a word (or, for `gzip, chunked`, handed the app a
    body still encoded); the client now learns why, and the upstream sees nothing."""
    mark = jr.mark()
    with socket.create_connection((jr.host, jr.port), timeout=5) as conn:
        conn.sendall(request_head(jr, jr.token()) + framing)
        got, headers, _ = read_response(conn)
        assert (got, headers.get("connection")) == (status, "close")
        assert closed_by_peer(conn, 3)
    assert jr.since(mark) == []


def test_an_http11_request_without_host_gets_400_not_421(jr: Stack) -> None:
    """RFC 9112 §3.2: a missing Host is a malformed request (400), not a misdirected one."""
    head = request_head(jr, jr.token(), body_length=len(_PING_BODY)).replace(
        f"Host: {jr.host}:{jr.port}\r\n".encode(), b""
    )
    mark = jr.mark()
    with socket.create_connection((jr.host, jr.port), timeout=5) as conn:
        conn.sendall(head + b"\r\n" + _PING_BODY)
        status, _, _ = read_response(conn)
    assert status == 400
    assert jr.since(mark) == []


# --- JR-10 ---------------------------------------------------------------------------------


def _trickle(conn: socket.socket, data: bytes, interval: float, stop: threading.Event) -> None:
    for byte in data:
        if stop.wait(interval):
            return
        try:
            conn.send(bytes([byte]))
        except OSError:
            return


def test_jr10_slow_body_gets_408_within_the_read_timeout(jr: Stack) -> None:
    """One byte every 0.2 s: the body never completes within the (default, 10 s) read timeout.
    The gateway answers 408 and the request's task ends; the upstream never sees it."""
    mark = jr.mark()
    body = json.dumps(rpc("ping", {"pad": "x" * 200})).encode()
    stop = threading.Event()
    with socket.create_connection((jr.host, jr.port), timeout=15) as conn:
        conn.sendall(request_head(jr, jr.token(), body_length=len(body)) + b"\r\n")
        started = time.monotonic()
        sender = threading.Thread(target=_trickle, args=(conn, body, 0.2, stop), daemon=True)
        sender.start()
        try:
            status, _, reply = read_response(conn, timeout=14)
        finally:
            stop.set()
            sender.join(2)
    elapsed = time.monotonic() - started
    assert status == 408
    assert json.loads(reply)["error"]["code"] == -32600
    assert 9.5 < elapsed < 12
    assert jr.since(mark) == []
    jr.gateway.audit.wait_for(lambda e: e.status == 408)


def test_jr10_idle_and_slow_connections_do_not_hold_up_other_users(jr: Stack) -> None:
    stop = threading.Event()
    idle = [socket.create_connection((jr.host, jr.port), timeout=5) for _ in range(200)]
    slow = []
    senders = []
    try:
        for _ in range(20):
            conn = socket.create_connection((jr.host, jr.port), timeout=5)
            slow.append(conn)
            head = request_head(jr, jr.token(), body_length=100) + b"\r\n"
            sender = threading.Thread(target=_trickle, args=(conn, head, 0.2, stop), daemon=True)
            sender.start()
            senders.append(sender)
        started = time.monotonic()
        for _ in range(10):
            assert jr.post(call("read_thing"), token=jr.token()).status_code == 200
        assert time.monotonic() - started < 2
    finally:
        stop.set()
        for conn in idle + slow:
            conn.close()
        for sender in senders:
            sender.join(2)


# Slow or idle request heads, and closing the connection after a 408, are in
# test_jr10_connection_limits.py (the gateway's connection protocol, not its stages).


# --- JR-12 ---------------------------------------------------------------------------------


def test_jr12_client_gone_during_an_upstream_call_cancels_it(jr: Stack) -> None:
    body = json.dumps(call("hang", "gone-1")).encode()
    with socket.create_connection((jr.host, jr.port), timeout=5) as conn:
        conn.sendall(request_head(jr, jr.token(), body_length=len(body)) + b"\r\n" + body)
        assert jr.upstream.cancelled.is_set() is False
        event = threading.Event()
        deadline = time.monotonic() + 5
        while not any(r.json["params"]["name"] == "hang" for r in jr.upstream.calls("tools/call")):
            assert time.monotonic() < deadline, "the call never reached the upstream"
            event.wait(0.01)
    assert jr.upstream.cancelled.wait(5), "the upstream call outlived its client"
    gone = jr.gateway.audit.wait_for(lambda e: e.reason == "client disconnected")
    assert gone.target == "hang"


def test_jr12_client_gone_during_a_key_fetch_does_not_cancel_it_for_others() -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    from .support import es256_header, forge, standard_claims
    from .test_token_validation import ec_jwk, ec_signer

    key = ec.generate_private_key(ec.SECP256R1())
    with stack(idp={"jwks_refetch_cooldown_seconds": 0}) as s:
        assert s.post(rpc("ping"), token=s.token()).status_code == 200
        s.idp.keys.extra_keys.append(ec_jwk(key, "k-new", alg="ES256", use="sig"))
        gate = s.idp.gate = threading.Event()
        fetches = s.idp.jwks_requests
        body = json.dumps(rpc("ping", id="leaver")).encode()
        leaver = forge(es256_header(s.idp, kid="k-new"), standard_claims(s), signer=ec_signer(key))
        with socket.create_connection((s.host, s.port), timeout=5) as conn:
            conn.sendall(request_head(s, leaver, body_length=len(body)) + b"\r\n" + body)
            s.idp.wait_hits("/jwks", fetches + 1)  # its unknown kid started the fetch; now it leaves
        stayer = forge(es256_header(s.idp, kid="k-new"), standard_claims(s), signer=ec_signer(key))
        result: list[int] = []
        waiting = threading.Thread(
            target=lambda: result.append(s.post(rpc("ping"), token=stayer).status_code)
        )
        calls = s.clock.calls
        waiting.start()
        # The gateway reads its clock in verify() and in the key lookup: the stayer now waits on
        # the same held fetch.
        deadline = time.monotonic() + 5
        while s.clock.calls < calls + 2:
            assert time.monotonic() < deadline
            threading.Event().wait(0.005)
        gate.set()
        waiting.join(10)
        assert result == [200]  # the shared fetch finished for the one who stayed
        assert s.idp.jwks_requests == fetches + 1
        # The leaver's request ended too (no task left behind): one audit event, never a 500.
        left = s.gateway.audit.wait_for(lambda e: e.status == 499)
        assert left.reason == "client went away"
