"""The audit step: one event per JSON-RPC message, or one for an HTTP exchange without any.

It reads only what the stages recorded. The token never appears, only its hash
(RFC 6750 §5.3: bearer tokens are not to be logged); the principal is absent when
authentication failed.
"""

from __future__ import annotations

import time

import orjson

from mcp_bastion.audit import MemorySink
from mcp_bastion.mcp.calls import Call
from mcp_bastion.mcp.era import Era
from mcp_bastion.pipeline.audit import AuditStep
from mcp_bastion.pipeline.exchange import Exchange

from .fakes import ISSUER, POST_HEADERS, exchange, principal, route

TOKEN = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl"
TRACE = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
ROUTE = route()


def _exchange(method: str = "POST") -> Exchange:
    headers = {**POST_HEADERS, "authorization": f"Bearer {TOKEN}", "traceparent": TRACE}
    ex = exchange(ROUTE, method, headers)
    ex.principal = principal("tools.read", token_hash="3f1a2b")
    ex.era = Era("legacy", "2025-11-25")
    ex.status = 200
    return ex


def _audit(ex: Exchange) -> MemorySink:
    sink = MemorySink()
    AuditStep(sink)(ex)
    return sink


def test_one_event_per_call_with_its_own_target_and_scopes() -> None:
    ex = _exchange()
    ex.calls = (
        Call("tools/call", "search", 1),
        Call("notifications/progress", None, None),
        Call("", None, "srv-1"),
        Call("resources/read", "file:///a", 2),
    )
    ex.required = (("tools.read",), (), (), ("tools.read",))
    events = _audit(ex).events
    assert [(e.method, e.target, e.scopes_required) for e in events] == [
        ("tools/call", "search", ("tools.read",)),
        ("notifications/progress", None, ()),
        ("response", None, ()),  # a client's JSON-RPC response has no method of its own
        ("resources/read", "file:///a", ("tools.read",)),
    ]
    for event in events:
        assert (event.server, event.decision, event.reason, event.status) == ("demo", "allow", "ok", 200)
        assert (event.subject, event.client_id, event.issuer) == ("alice", "client-1", ISSUER)
        assert event.token_hash == "3f1a2b"
        assert event.protocol_version == "2025-11-25"
        assert event.trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"


def test_an_initialize_records_the_version_it_asks_for_when_the_gateway_knows_it() -> None:
    # Without a version header the transport assumes 2025-03-26; `initialize` names its own.
    ex = _exchange()
    ex.era = Era("legacy", "2025-03-26")
    ex.calls = (
        Call("initialize", None, 1, {"protocolVersion": "2025-11-25"}),
        Call("initialize", None, 2, {"protocolVersion": "1999-01-01\nforged"}),  # not recorded
        Call("ping", None, 3, {"protocolVersion": "2025-11-25"}),  # only initialize names one
    )
    versions = [e.protocol_version for e in _audit(ex).events]
    assert versions == ["2025-11-25", "2025-03-26", "2025-03-26"]


def test_calls_refused_before_authorization_have_no_scopes_recorded() -> None:
    ex = _exchange()
    ex.calls = (Call("tools/call", "a", 1), Call("tools/call", "b", 2))
    ex.required = ()  # refused before the authorize stage ran
    ex.outcome, ex.reason, ex.status = "deny", "origin not allowed", 403
    events = _audit(ex).events
    assert [(e.target, e.scopes_required, e.decision, e.reason) for e in events] == [
        ("a", (), "deny", "origin not allowed"),
        ("b", (), "deny", "origin not allowed"),
    ]


def test_one_event_for_an_exchange_without_messages() -> None:
    for method in ("GET", "DELETE", "POST"):  # a POST refused before its body was parsed too
        ex = _exchange(method)
        events = _audit(ex).events
        assert len(events) == 1
        assert (events[0].method, events[0].target, events[0].scopes_required) == (method, None, ())


def test_a_failed_authentication_has_no_principal_and_an_error_reason() -> None:
    ex = _exchange()
    ex.principal = None
    ex.era = None
    ex.outcome, ex.reason, ex.status = "deny", "token has expired", 401
    (event,) = _audit(ex).events
    assert (event.subject, event.client_id, event.issuer, event.token_hash) == (None, None, None, None)
    assert event.protocol_version is None
    assert (event.decision, event.reason, event.status) == ("deny", "token has expired", 401)


def test_an_error_outcome_without_a_reason_stays_without_one() -> None:
    ex = _exchange()
    ex.outcome, ex.status = "error", 502
    (event,) = _audit(ex).events
    assert (event.decision, event.reason) == ("error", "")  # "ok" is said only of an allowed call


def test_the_token_never_appears_only_its_hash() -> None:
    ex = _exchange()
    ex.calls = (Call("tools/call", "search", 1),)
    ex.required = (("tools.read",),)
    sink = _audit(ex)
    line = sink.events[0].to_json()
    assert TOKEN.encode() not in line
    for part in TOKEN.split("."):
        assert part.encode() not in line  # not even a segment of it
    assert orjson.loads(line)["token_hash"] == "3f1a2b"


def test_latency_is_measured_from_when_the_exchange_started() -> None:
    ex = _exchange()
    ex.started = time.perf_counter() - 1000  # in milliseconds: 1,000,000 and a little
    (event,) = _audit(ex).events
    assert 1_000_000 <= event.latency_ms < 1_000_500  # half a second of slack for a loaded machine
