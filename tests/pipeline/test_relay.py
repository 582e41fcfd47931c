"""Relaying an upstream answer: the headers that pass, the session id sealed, bodies framed anew.

Only content-type, cache-control and x-accel-buffering of an upstream's headers reach the
client; a cookie, a Location or a challenge never do (UP-03). Content-Length is the
gateway's own for the bytes it actually sends. A session-era upstream session id reaches
the client only sealed for the caller (TS-03, TS-04).
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from mcp_bastion.errors import RequestRejected, UpstreamError
from mcp_bastion.mcp.era import Era
from mcp_bastion.mcp.sessions import SessionSealer, subject_digest
from mcp_bastion.pipeline.exchange import Exchange
from mcp_bastion.pipeline.relay import Relay
from mcp_bastion.upstream.responses import ResponseGuard

from .fakes import ISSUER, CannedResponse, Sent, exchange, principal, route

NOW = 1_700_000_000.0
SEALER = SessionSealer(b"s" * 32, ttl_seconds=3600)
RELAY = Relay(SEALER, lambda: NOW, max_event_bytes=4096)
LEGACY = Era("legacy", "2025-11-25")
MODERN = Era("modern", "2026-07-28")
NOISE = [
    (b"set-cookie", b"upstream=1"),
    (b"location", b"http://169.254.169.254/latest/meta-data/"),
    (b"www-authenticate", b'Bearer realm="upstream"'),
    (b"server", b"internal-host-7.corp"),
    (b"access-control-allow-origin", b"*"),
    (b"transfer-encoding", b"chunked"),
]


def _exchange(era: Era = LEGACY) -> tuple[Exchange, Sent]:
    sent = Sent()
    ex = exchange(route(), send=sent)
    ex.principal = principal()
    ex.era = era
    return ex, sent


def _guard(ids: set[str | int] | None = None) -> ResponseGuard:
    def no_list(result: dict[str, Any]) -> None:
        raise AssertionError("no tools/list in these tests")

    return ResponseGuard({1} if ids is None else ids, None, no_list)


async def test_send_empty_relays_the_status_with_no_body_and_no_length() -> None:
    ex, sent = _exchange()
    upstream = CannedResponse(202, [(b"content-length", b"0"), (b"cache-control", b"no-store"), *NOISE])
    await RELAY.send_empty(ex, upstream)
    assert sent.status == 202
    assert ex.status == 202
    assert sent.header_names == [b"cache-control"]
    assert sent.body == b""
    assert sent.finished


async def test_send_json_frames_the_checked_body_with_its_own_length() -> None:
    ex, sent = _exchange()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", b"999"),  # the upstream's framing, not ours
        (b"x-accel-buffering", b"no"),
        *NOISE,
    ]
    body = b'{"jsonrpc":"2.0","id":1,"result":{}}'
    await RELAY.send_json(ex, CannedResponse(200, headers), body)
    assert sent.status == 200
    assert sorted(sent.header_names) == [b"content-length", b"content-type", b"x-accel-buffering"]
    assert sent.headers[b"content-length"] == str(len(body)).encode()
    assert sent.body == body
    assert sent.finished


async def test_a_session_era_upstream_session_reaches_the_client_only_sealed() -> None:
    ex, sent = _exchange()
    upstream = CannedResponse(200, [(b"content-type", b"application/json"), (b"mcp-session-id", b"up-42")])
    await RELAY.send_json(ex, upstream, b"{}")
    sealed = sent.headers[b"mcp-session-id"]
    assert b"up-42" not in sealed
    opened = SEALER.unseal(sealed.decode(), subject_digest(ISSUER, "alice"), "demo", NOW)
    assert opened.upstream_id == "up-42"
    with pytest.raises(RequestRejected, match="Session not found"):
        SEALER.unseal(sealed.decode(), subject_digest(ISSUER, "mallory"), "demo", NOW)


async def test_a_modern_era_upstream_session_id_is_dropped() -> None:
    ex, sent = _exchange(MODERN)
    upstream = CannedResponse(200, [(b"content-type", b"application/json"), (b"mcp-session-id", b"up-42")])
    await RELAY.send_json(ex, upstream, b"{}")
    assert b"mcp-session-id" not in sent.headers


@pytest.mark.parametrize(
    "value",
    [
        b"has space",
        b"tab\there",
        b"\x7f",
        "caf\xe9".encode("latin-1"),
        b"",
        b"x" * 257,  # past the gateway's bound on what it seals
    ],
)
async def test_an_invalid_upstream_session_id_is_an_upstream_error(value: bytes) -> None:
    # Transports §Session Management: visible ASCII (0x21-0x7E) only.
    ex, sent = _exchange()
    upstream = CannedResponse(200, [(b"mcp-session-id", value)])
    with pytest.raises(UpstreamError):
        await RELAY.send_json(ex, upstream, b"{}")
    assert sent.messages == []


async def test_an_upstream_session_id_of_256_visible_characters_is_sealed() -> None:
    ex, sent = _exchange()
    await RELAY.send_empty(ex, CannedResponse(202, [(b"mcp-session-id", b"~" * 256)]))
    assert b"mcp-session-id" in sent.headers


def _event(doc: Any) -> bytes:
    return b"data: " + orjson.dumps(doc) + b"\n\n"


async def test_stream_sse_relays_events_through_the_guard_as_they_come() -> None:
    ex, sent = _exchange()
    note = {"jsonrpc": "2.0", "method": "notifications/progress", "params": {}}
    foreign = {"jsonrpc": "2.0", "id": 99, "result": {"secret": "someone else's"}}
    answer = {"jsonrpc": "2.0", "id": 1, "result": {"ok": True}}
    chunks = [b"id: 1\ndata: \n\n", _event(note)[:10], _event(note)[10:] + _event(foreign), _event(answer)]
    upstream = CannedResponse(
        200, [(b"content-type", b"text/event-stream"), (b"content-length", b"5")], chunks
    )
    await RELAY.stream_sse(ex, upstream, _guard(), cap=1 << 20)
    assert sent.status == 200
    assert sent.header_names == [b"content-type"]  # streamed: no length
    assert sent.body == b"id: 1\ndata: \n\n" + _event(note) + _event(answer)
    assert b"someone else" not in sent.body
    assert sent.finished
    assert all(m.get("more_body") for m in sent.messages[1:-1])


async def test_stream_sse_past_its_cap_fails_after_the_start() -> None:
    ex, sent = _exchange()
    chunk = _event({"jsonrpc": "2.0", "method": "notifications/progress"})
    upstream = CannedResponse(200, [(b"content-type", b"text/event-stream")], [chunk] * 5)
    with pytest.raises(UpstreamError):
        await RELAY.stream_sse(ex, upstream, _guard(), cap=len(chunk) * 3)
    # Started, so the gateway can only end the stream (gateway.py); nothing past the cap went out.
    assert ex.status == 200
    assert sent.body == chunk * 3
    assert not sent.finished


async def test_stream_sse_without_a_cap_relays_everything() -> None:
    ex, sent = _exchange()
    chunk = _event({"jsonrpc": "2.0", "method": "notifications/progress"})
    upstream = CannedResponse(200, [(b"content-type", b"text/event-stream")], [chunk] * 50)
    await RELAY.stream_sse(ex, upstream, _guard(), cap=None)
    assert sent.body == chunk * 50


@pytest.mark.parametrize(
    ("tail", "relayed"),
    [
        (_event({"jsonrpc": "2.0", "id": 1, "result": {}})[:-1], True),  # one newline short
        (_event({"jsonrpc": "2.0", "id": 99, "result": {}})[:-2], False),  # for another request
    ],
)
async def test_an_unterminated_last_event_is_checked_like_the_others(tail: bytes, relayed: bool) -> None:
    ex, sent = _exchange()
    note = _event({"jsonrpc": "2.0", "method": "notifications/progress"})
    upstream = CannedResponse(200, [(b"content-type", b"text/event-stream")], [note, tail])
    await RELAY.stream_sse(ex, upstream, _guard(), cap=None)
    assert sent.body == note + (tail if relayed else b"")
    assert sent.finished
