"""The parse stage: which era a request speaks, what its calls are, and whose session it names.

The session era (no or a 2025 `MCP-Protocol-Version`) has sessions, a GET stream and DELETE;
2026-07-28 has none of them and needs `_meta` on every message (transports §Backward
Compatibility, basic §_meta). A sealed session id opens only for the subject it was sealed
for, on the server it was sealed for, within its lifetime, by the clock the stage is given.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from mcp_bastion.config.model import LimitsConfig
from mcp_bastion.errors import ProtocolError, RequestRejected
from mcp_bastion.mcp.sessions import SessionSealer, subject_digest
from mcp_bastion.pipeline.exchange import Exchange
from mcp_bastion.pipeline.parse import ParseMcp

from .fakes import ISSUER, POST_HEADERS, exchange, principal, route

ROUTE = route()
TTL = 3600
NOW = 1_700_000_000.0
SEALER = SessionSealer(b"k" * 32, ttl_seconds=TTL)
MODERN = "2026-07-28"
META = {"io.modelcontextprotocol/protocolVersion": MODERN}


def _parse(clock: float = NOW) -> ParseMcp:
    return ParseMcp(LimitsConfig(), SEALER, lambda: clock)


def _post(body: Any, **headers: str) -> Exchange:
    ex = exchange(ROUTE, headers={**POST_HEADERS, **headers})
    ex.body = body if isinstance(body, bytes) else orjson.dumps(body)
    ex.principal = principal("tools.read")
    return ex


def _sealed(upstream_id: str, subject: str = "alice", server: str = "demo", at: float = NOW) -> str:
    return SEALER.seal(upstream_id, subject_digest(ISSUER, subject), server, at)


def _call(rid: int, name: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": rid, "method": "tools/call", "params": {"name": name}}


async def test_a_request_without_a_version_header_is_the_2025_03_26_session_era() -> None:
    ex = _post(_call(7, "search"))
    await _parse()(ex)
    assert ex.era is not None
    assert (ex.era.name, ex.era.version) == ("legacy", "2025-03-26")
    assert [c[:3] for c in ex.calls] == [("tools/call", "search", 7)]
    assert [m.kind for m in ex.messages] == ["request"]
    assert ex.upstream_session is None


async def test_a_batch_is_one_call_per_message_in_2025_03_26() -> None:
    notification = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    response = {"jsonrpc": "2.0", "id": "srv-1", "result": {}}
    ex = _post([_call(1, "a"), notification, response, _call(2, "b")])
    await _parse()(ex)
    assert [c[:3] for c in ex.calls] == [
        ("tools/call", "a", 1),
        ("notifications/initialized", None, None),
        ("", None, "srv-1"),  # a client's response to a server request
        ("tools/call", "b", 2),
    ]


async def test_a_batch_is_refused_after_2025_03_26() -> None:
    ex = _post([_call(1, "a")], **{"mcp-protocol-version": "2025-11-25"})
    with pytest.raises(ProtocolError) as caught:
        await _parse()(ex)
    assert caught.value.code == -32600  # JSON-RPC 2.0 Invalid Request
    assert ex.calls == ()


async def test_an_unknown_version_is_refused_with_the_request_id() -> None:
    ex = _post(_call(41, "a"), **{"mcp-protocol-version": "2099-01-01"})
    with pytest.raises(ProtocolError) as caught:
        await _parse()(ex)
    assert (caught.value.code, caught.value.request_id) == (-32022, 41)
    assert caught.value.status == 400


async def test_an_unknown_version_with_an_unreadable_body_has_no_id() -> None:
    ex = _post(b'{"jsonrpc":"2.0","id":41,', **{"mcp-protocol-version": "2099-01-01"})
    with pytest.raises(ProtocolError) as caught:
        await _parse()(ex)
    assert (caught.value.code, caught.value.request_id) == (-32022, None)


async def test_an_unknown_version_with_a_batch_body_has_no_id() -> None:
    # A batch names no one request the error could be about (JSON-RPC 2.0 §5: null id).
    ex = _post([_call(41, "a")], **{"mcp-protocol-version": "2099-01-01"})
    with pytest.raises(ProtocolError) as caught:
        await _parse()(ex)
    assert (caught.value.code, caught.value.request_id) == (-32022, None)


async def test_a_modern_message_without_meta_is_invalid_params() -> None:
    headers = {"mcp-protocol-version": MODERN, "mcp-method": "tools/call", "mcp-name": "a"}
    ex = _post(_call(3, "a"), **headers)
    with pytest.raises(ProtocolError) as caught:
        await _parse()(ex)
    assert (caught.value.code, caught.value.request_id) == (-32602, 3)


async def test_a_modern_request_with_meta_and_matching_headers_is_parsed() -> None:
    body = {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "a", "_meta": META}}
    headers = {"mcp-protocol-version": MODERN, "mcp-method": "tools/call", "mcp-name": "a"}
    ex = _post(body, **headers)
    await _parse()(ex)
    assert ex.era is not None
    assert ex.era.name == "modern"
    assert [c[:3] for c in ex.calls] == [("tools/call", "a", 3)]


async def test_a_modern_request_whose_name_header_disagrees_is_refused() -> None:
    # An intermediary deciding on the body must reject a header that says otherwise
    # (streamable-http §Server Validation): a load balancer may route on the header.
    body = {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "a", "_meta": META}}
    headers = {"mcp-protocol-version": MODERN, "mcp-method": "tools/call", "mcp-name": "b"}
    with pytest.raises(ProtocolError) as caught:
        await _parse()(_post(body, **headers))
    assert (caught.value.code, caught.value.request_id) == (-32020, 3)


async def test_a_modern_request_ignores_a_session_header_whatever_it_holds() -> None:
    body = {"jsonrpc": "2.0", "id": 3, "method": "ping", "params": {"_meta": META}}
    headers = {"mcp-protocol-version": MODERN, "mcp-method": "ping", "mcp-session-id": "not sealed at all"}
    ex = _post(body, **headers)
    await _parse()(ex)
    assert ex.upstream_session is None


@pytest.mark.parametrize("method", ["GET", "DELETE"])
async def test_get_and_delete_are_not_part_of_the_modern_era(method: str) -> None:
    ex = exchange(ROUTE, method, {"host": "gw.example", "mcp-protocol-version": MODERN})
    ex.principal = principal()
    with pytest.raises(RequestRejected) as caught:
        await _parse()(ex)
    assert caught.value.status == 405


async def test_delete_needs_a_session_get_does_not() -> None:
    get = exchange(ROUTE, "GET", {"host": "gw.example"})
    get.principal = principal()
    await _parse()(get)
    assert get.upstream_session is None
    delete = exchange(ROUTE, "DELETE", {"host": "gw.example"})
    delete.principal = principal()
    with pytest.raises(RequestRejected) as caught:
        await _parse()(delete)
    assert caught.value.status == 400


@pytest.mark.parametrize("method", ["POST", "GET", "DELETE"])
async def test_a_sealed_session_opens_to_the_upstream_id_for_its_subject(method: str) -> None:
    headers = {**POST_HEADERS, "mcp-session-id": _sealed("upstream-session-1")}
    ex = exchange(ROUTE, method, headers)
    ex.body = orjson.dumps(_call(1, "a")) if method == "POST" else b""
    ex.principal = principal()
    await _parse()(ex)
    assert ex.upstream_session == "upstream-session-1"


@pytest.mark.parametrize(
    ("sealed", "clock"),
    [
        (_sealed("s-1", subject="mallory"), NOW),  # another user's session (session hijacking)
        (_sealed("s-1", server="other"), NOW),  # sealed for another server of this gateway
        (_sealed("s-1"), NOW + TTL + 1),  # expired by the stage's own clock
    ],
)
async def test_a_session_that_is_not_the_callers_is_404(sealed: str, clock: float) -> None:
    ex = _post(_call(1, "a"), **{"mcp-session-id": sealed})
    with pytest.raises(RequestRejected) as caught:
        await _parse(clock)(ex)
    assert caught.value.status == 404
    assert ex.upstream_session is None


async def test_a_session_within_its_lifetime_opens() -> None:
    ex = _post(_call(1, "a"), **{"mcp-session-id": _sealed("s-1")})
    await _parse(NOW + TTL)(ex)
    assert ex.upstream_session == "s-1"
