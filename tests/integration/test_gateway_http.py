"""The gateway over real HTTP on loopback, in front of a recording upstream.

Each test names the behaviour and, where one applies, the spec clause or catalog row.
"""

from __future__ import annotations

import base64
import json
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest

from mcp_bastion.pipeline.listing import MISSING_SCOPES_META, REQUIRED_SCOPES_META

from ..support.gateway import RunningGateway, post_mcp, running_gateway
from ..support.issuer import LocalIssuer, running_issuer
from ..support.recording_upstream import RecordingUpstream
from ..support.servers import serve_asgi

ACCEPT = "application/json, text/event-stream"
MODERN = "2026-07-28"


@dataclass
class Stack:
    issuer: LocalIssuer
    upstream: RecordingUpstream
    upstream_url: str
    gateway: RunningGateway
    http: httpx.Client

    @property
    def url(self) -> str:
        return self.gateway.url("rec")

    def token(self, scopes: str = "tools.read", **kw: object) -> str:
        return self.issuer.token(audience=self.url, scopes=scopes, **kw)  # type: ignore[arg-type]

    def post(
        self, body: object, *, token: str | None = None, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        return post_mcp(self.http, self.url, body, token=token, headers=headers)


@pytest.fixture
def stack() -> Iterator[Stack]:
    upstream = RecordingUpstream()
    with running_issuer() as issuer, serve_asgi(upstream) as up:
        overrides = {"servers": [{"name": "rec", "upstream": f"{up.base_url}/mcp", "timeout_seconds": 2}]}
        with running_gateway(issuer.issuer, {}, **overrides) as gw, httpx.Client(timeout=10) as http:
            yield Stack(issuer, upstream, f"{up.base_url}/mcp", gw, http)


def rpc(method: str, params: dict[str, object] | None = None, id: object = 1) -> dict[str, object]:
    return {"jsonrpc": "2.0", "id": id, "method": method, "params": params or {}}


def modern(method: str, params: dict[str, object] | None = None, id: object = 1) -> dict[str, object]:
    p = dict(params or {})
    p["_meta"] = {"io.modelcontextprotocol/protocolVersion": MODERN}
    return rpc(method, p, id)


def modern_headers(method: str, name: str | None = None) -> dict[str, str]:
    h = {"mcp-protocol-version": MODERN, "mcp-method": method}
    if name is not None:
        h["mcp-name"] = name
    return h


# --- RFC 9728 and the 401 challenge -------------------------------------------------------


def test_prm_resource_is_byte_identical_to_the_public_url(stack: Stack) -> None:
    doc = stack.http.get(f"{stack.gateway.base_url}/.well-known/oauth-protected-resource/rec/mcp").json()
    assert doc["resource"] == stack.url
    assert doc["authorization_servers"] == [stack.issuer.issuer]
    assert doc["bearer_methods_supported"] == ["header"]
    assert "offline_access" not in doc["scopes_supported"]


def test_no_token_gets_401_without_error_code_but_with_scope_and_metadata(stack: Stack) -> None:
    response = stack.post(rpc("tools/list"))
    assert response.status_code == 401
    www = response.headers["www-authenticate"]
    assert www.startswith("Bearer ")
    assert "error=" not in www
    assert 'scope="tools.read"' in www
    assert f'resource_metadata="{stack.gateway.base_url}/.well-known/oauth-protected-resource/rec/mcp"' in www
    assert stack.upstream.seen == []


def test_bad_token_gets_invalid_token(stack: Stack) -> None:
    response = stack.post(rpc("tools/list"), token=stack.token(ttl=-3600))
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    assert stack.upstream.seen == []


def test_token_for_another_resource_is_refused(stack: Stack) -> None:
    token = stack.issuer.token(audience=f"{stack.gateway.base_url}/other/mcp")
    assert stack.post(rpc("tools/list"), token=token).status_code == 401


def test_token_in_query_string_is_ignored(stack: Stack) -> None:
    token = stack.token()
    response = stack.http.post(
        stack.url,
        params={"access_token": token},
        content=json.dumps(rpc("ping")),
        headers={"content-type": "application/json", "accept": ACCEPT},
    )
    assert response.status_code == 401


# --- Scopes -----------------------------------------------------------------------------


def test_tools_list_shows_callable_tools_and_marks_those_a_step_up_would_unlock(stack: Stack) -> None:
    response = stack.post(rpc("tools/list"), token=stack.token("tools.read"))
    assert response.status_code == 200
    tools = {t["name"]: t["_meta"] for t in response.json()["result"]["tools"]}
    # Every tool of the fixture needs tools.read or tools.write, both published by the server.
    assert tools["read_thing"] == {REQUIRED_SCOPES_META: ["tools.read"]}
    assert tools["write_thing"] == {
        REQUIRED_SCOPES_META: ["tools.write"],
        MISSING_SCOPES_META: ["tools.write"],
    }
    callable_now = [name for name, meta in tools.items() if MISSING_SCOPES_META not in meta]
    assert callable_now == ["read_thing", "stream_thing", "hang"]


def test_tools_list_in_callable_mode_shows_only_what_the_token_may_call() -> None:
    upstream = RecordingUpstream()
    with running_issuer() as issuer, serve_asgi(upstream) as up:
        server = {"name": "rec", "upstream": f"{up.base_url}/mcp", "tools_list": "callable"}
        with running_gateway(issuer.issuer, {}, servers=[server]) as gw, httpx.Client(timeout=10) as http:
            token = issuer.token(audience=gw.url("rec"), scopes="tools.read")
            response = post_mcp(http, gw.url("rec"), rpc("tools/list"), token=token)
    names = [t["name"] for t in response.json()["result"]["tools"]]
    assert names == ["read_thing", "stream_thing", "hang"]


def test_tools_list_answered_as_sse_is_filtered_too(stack: Stack) -> None:
    stack.upstream.answer_as_sse = True
    response = stack.post(rpc("tools/list", id=3), token=stack.token("tools.read"))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    data = [line[5:] for line in response.text.splitlines() if line.startswith("data:")]
    assert len(data) == 1
    answer = json.loads(data[0])
    assert answer["id"] == 3
    tools = answer["result"]["tools"]
    assert [t["name"] for t in tools if MISSING_SCOPES_META not in t["_meta"]] == [
        "read_thing",
        "stream_thing",
        "hang",
    ]
    assert "id: 1" in response.text.splitlines()  # the event's framing is kept


def test_tools_list_in_2026_is_marked_private(stack: Stack) -> None:
    response = stack.post(
        modern("tools/list"), token=stack.token("tools.write"), headers=modern_headers("tools/list")
    )
    result = response.json()["result"]
    assert result["cacheScope"] == "private"
    assert {t["name"] for t in result["tools"]} >= {"write_thing", "drop_thing", "unannotated"}


def test_insufficient_scope_names_the_tools_scope_and_upstream_is_untouched(stack: Stack) -> None:
    stack.post(rpc("tools/list"), token=stack.token("tools.read"))
    before = len(stack.upstream.seen)
    response = stack.post(
        rpc("tools/call", {"name": "write_thing", "arguments": {}}), token=stack.token("tools.read")
    )
    assert response.status_code == 403
    www = response.headers["www-authenticate"]
    assert 'error="insufficient_scope"' in www
    assert 'scope="tools.write"' in www
    assert "resource_metadata=" in www
    assert len(stack.upstream.seen) == before
    denied = stack.gateway.audit.wait_for(lambda e: e.decision == "deny")
    assert denied.target == "write_thing"


def test_unknown_tool_annotations_are_fetched_from_upstream_before_deciding(stack: Stack) -> None:
    response = stack.post(
        rpc("tools/call", {"name": "read_thing", "arguments": {}}), token=stack.token("tools.read")
    )
    assert response.status_code == 200
    assert stack.upstream.calls("tools/list"), "the gateway should have loaded the catalog"


def test_write_scope_implies_read(stack: Stack) -> None:
    response = stack.post(
        rpc("tools/call", {"name": "read_thing", "arguments": {}}), token=stack.token("tools.write")
    )
    assert response.status_code == 200
    assert response.json()["result"]["content"][0]["text"] == "called read_thing"


def test_batch_elements_are_authorized_each(stack: Stack) -> None:
    batch = [rpc("tools/call", {"name": "read_thing"}, 1), rpc("tools/call", {"name": "drop_thing"}, 2)]
    stack.post(rpc("tools/list"), token=stack.token("tools.write"))
    response = stack.post(batch, token=stack.token("tools.read"))
    assert response.status_code == 403
    assert 'scope="tools.write"' in response.headers["www-authenticate"]
    allowed = stack.post(batch, token=stack.token("tools.write"))
    assert allowed.status_code == 200
    assert [a["id"] for a in allowed.json()] == [1, 2]


def test_batches_are_refused_once_a_2025_06_version_is_in_use(stack: Stack) -> None:
    batch = [rpc("ping", id=1), rpc("ping", id=2)]
    response = stack.post(batch, token=stack.token(), headers={"mcp-protocol-version": "2025-11-25"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == -32600


# --- No token passthrough, trace context --------------------------------------------------


def test_client_credentials_never_reach_the_upstream(stack: Stack) -> None:
    token = stack.token("tools.read")
    traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    stack.post(
        rpc("ping"),
        token=token,
        headers={"cookie": "sid=secret", "traceparent": traceparent, "x-custom": "1"},
    )
    seen = stack.upstream.seen[-1]
    assert token not in json.dumps(seen.headers)
    assert "cookie" not in seen.headers
    assert "x-custom" not in seen.headers
    assert seen.headers["traceparent"].startswith("00-0af7651916cd43dd8448eb211c80319c-")
    assert seen.headers["traceparent"] != traceparent  # the gateway's own span is the parent
    minted = seen.headers["authorization"].removeprefix("Bearer ")
    payload = json.loads(base64.urlsafe_b64decode(minted.split(".")[1] + "=="))
    assert (
        payload["aud"] == stack.upstream_url
        if hasattr(stack, "upstream_url")
        else payload["aud"].endswith("/mcp")
    )
    assert payload["sub"] == "alice"
    assert payload["act"] == {"sub": stack.gateway.base_url}
    assert payload["exp"] - payload["iat"] <= 60
    assert (
        stack.gateway.audit.wait_for(lambda e: e.method == "ping").trace_id
        == "0af7651916cd43dd8448eb211c80319c"
    )


# --- Sessions -----------------------------------------------------------------------------


def test_session_ids_are_sealed_and_bound_to_the_subject(stack: Stack) -> None:
    init = rpc(
        "initialize",
        {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
    )
    response = stack.post(init, token=stack.token(subject="alice"))
    sealed = response.headers["mcp-session-id"]
    assert sealed != stack.upstream.session_id
    assert stack.upstream.session_id not in sealed
    assert all(0x21 <= ord(c) <= 0x7E for c in sealed)
    headers = {"mcp-session-id": sealed, "mcp-protocol-version": "2025-11-25"}
    ok = stack.post(rpc("ping", id=2), token=stack.token(subject="alice"), headers=headers)
    assert ok.status_code == 200
    assert stack.upstream.seen[-1].headers["mcp-session-id"] == stack.upstream.session_id
    hijack = stack.post(rpc("ping", id=3), token=stack.token(subject="mallory"), headers=headers)
    assert hijack.status_code == 404
    delete = stack.http.delete(
        stack.url, headers={**headers, "authorization": f"Bearer {stack.token(subject='mallory')}"}
    )
    assert delete.status_code == 404


def test_malformed_session_id_is_400(stack: Stack) -> None:
    response = stack.post(rpc("ping"), token=stack.token(), headers={"mcp-session-id": "x" * 2000})
    assert response.status_code == 400


# --- 2026-07-28 header rules --------------------------------------------------------------


def test_header_body_mismatch_is_32020(stack: Stack) -> None:
    body = modern("tools/call", {"name": "read_thing", "arguments": {}}, id=7)
    response = stack.post(body, token=stack.token(), headers=modern_headers("tools/call", "write_thing"))
    assert response.status_code == 400
    assert response.json()["error"]["code"] == -32020
    assert response.json()["id"] == 7


def test_base64_encoded_mcp_name_is_decoded_before_comparing(stack: Stack) -> None:
    body = modern("tools/call", {"name": "read_thing", "arguments": {}})
    encoded = "=?base64?" + base64.b64encode(b"read_thing").decode() + "?="
    response = stack.post(body, token=stack.token(), headers=modern_headers("tools/call", encoded))
    assert response.status_code == 200


def test_unsupported_protocol_version_is_32022(stack: Stack) -> None:
    response = stack.post(rpc("ping"), token=stack.token(), headers={"mcp-protocol-version": "2099-01-01"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == -32022
    assert MODERN in error["data"]["supported"]


def test_modern_get_is_405(stack: Stack) -> None:
    response = stack.http.get(
        stack.url,
        headers={
            "accept": "text/event-stream",
            "mcp-protocol-version": MODERN,
            "authorization": f"Bearer {stack.token()}",
        },
    )
    assert response.status_code == 405


# --- Edge -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"origin": "https://evil.example"}, 403),
        ({"origin": "null"}, 403),
        ({"host": "attacker.example"}, 421),
        ({"content-type": "text/plain"}, 415),
        ({"accept": "application/json"}, 406),
    ],
)
def test_edge_refusals(stack: Stack, headers: dict[str, str], status: int) -> None:
    response = stack.post(rpc("ping"), token=stack.token(), headers=headers)
    assert response.status_code == status
    assert stack.upstream.seen == []


def test_oversized_body_is_413(stack: Stack) -> None:
    body = json.dumps(rpc("ping", {"pad": "x" * 2_000_000})).encode()
    assert stack.post(body, token=stack.token()).status_code == 413


def test_deep_json_is_parse_error(stack: Stack) -> None:
    response = stack.post(b"[" * 100_000, token=stack.token())
    assert response.status_code == 400
    assert response.json()["error"]["code"] == -32700


# --- Streaming and faults ---------------------------------------------------------------


def test_sse_responses_stream_through(stack: Stack) -> None:
    body = rpc("tools/call", {"name": "stream_thing", "arguments": {}}, id=9)
    response = stack.post(body, token=stack.token())
    assert response.headers["content-type"].startswith("text/event-stream")
    events = [json.loads(line[5:]) for line in response.text.splitlines() if line.startswith("data:")]
    assert [e.get("id") for e in events] == [None, None, None, 9]


def test_upstream_timeout_becomes_jsonrpc_error_with_the_request_id(stack: Stack) -> None:
    response = stack.post(
        rpc("tools/call", {"name": "hang", "arguments": {}}, id="call-42"), token=stack.token()
    )
    assert response.status_code == 504
    assert response.json()["id"] == "call-42"
    assert response.json()["error"]["code"] == -32001
    assert stack.gateway.audit.wait_for(lambda e: e.target == "hang").decision == "error"


def test_client_disconnect_cancels_the_upstream_call(stack: Stack) -> None:
    body = json.dumps(rpc("tools/call", {"name": "hang", "arguments": {}})).encode()
    host, port = stack.gateway.server.host, stack.gateway.server.port
    request = (
        f"POST /rec/mcp HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"Accept: {ACCEPT}\r\nAuthorization: Bearer {stack.token()}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    with socket.create_connection((host, port), timeout=5) as conn:
        conn.sendall(request)
        # The call must reach the upstream before we hang up.
        assert _eventually(
            lambda: any(r.json["params"]["name"] == "hang" for r in stack.upstream.calls("tools/call"))
        )
    assert stack.upstream.cancelled.wait(5), "the upstream request was not cancelled after the client left"
    stack.gateway.audit.wait_for(lambda e: e.reason == "client disconnected")


def _eventually(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Poll a condition set by another thread (the server's), bounded in time."""
    pause = threading.Event()
    for _ in range(int(timeout / 0.01)):
        if condition():
            return True
        pause.wait(0.01)
    return condition()


def test_calls_arriving_during_the_first_catalog_fetch_wait_for_it(stack: Stack) -> None:
    """A fresh replica: 20 read-only calls at once, before any tools/list went through. None may
    be decided without annotations (which would demand the write scope)."""
    import concurrent.futures

    token = stack.token("tools.read")

    def one(i: int) -> int:
        return stack.post(
            rpc("tools/call", {"name": "read_thing", "arguments": {}}, id=i), token=token
        ).status_code

    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        statuses = list(pool.map(one, range(20)))
    assert statuses == [200] * 20
    assert len(stack.upstream.calls("tools/list")) == 1
