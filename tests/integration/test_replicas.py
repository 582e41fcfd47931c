"""Two gateway replicas sharing `sessions.key`: a session sealed by one is valid on the other."""

from __future__ import annotations

import base64
import json
import os

import httpx
import pytest

from ..support.gateway import running_gateway
from ..support.issuer import running_issuer
from ..support.recording_upstream import UPSTREAM_STATE, RecordingUpstream
from ..support.servers import bind_loopback, serve_asgi

HEADERS = {"content-type": "application/json", "accept": "application/json, text/event-stream"}


@pytest.mark.parametrize(("same_key", "status"), [(True, 200), (False, 404)])
def test_session_sealed_by_one_replica_opens_on_another(same_key: bool, status: int) -> None:
    key = base64.b64encode(os.urandom(32)).decode()
    other = key if same_key else base64.b64encode(os.urandom(32)).decode()
    upstream = RecordingUpstream()
    public = bind_loopback()  # the load balancer's address: both replicas publish it
    base = f"http://127.0.0.1:{public.getsockname()[1]}"
    with running_issuer() as issuer, serve_asgi(upstream) as up:
        overrides = {
            "public_base_url": base,
            "allowed_hosts": ["127.0.0.1"],
            "servers": [{"name": "rec", "upstream": f"{up.base_url}/mcp"}],
            "sessions": {"key": {"env": "UNUSED"}},
        }
        with (
            running_gateway(issuer.issuer, {}, {"sessions.key": key}, **overrides) as a,
            running_gateway(issuer.issuer, {}, {"sessions.key": other}, **overrides) as b,
            httpx.Client(timeout=10) as http,
        ):
            token = issuer.token(audience=f"{base}/rec/mcp")
            auth = {**HEADERS, "authorization": f"Bearer {token}", "host": "127.0.0.1"}
            init = {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "initialize",
                "params": {"protocolVersion": "2025-11-25"},
            }
            sealed = http.post(f"{a.base_url}/rec/mcp", content=json.dumps(init), headers=auth).headers[
                "mcp-session-id"
            ]
            ping = {"jsonrpc": "2.0", "id": 2, "method": "ping"}
            headers = {**auth, "mcp-session-id": sealed, "mcp-protocol-version": "2025-11-25"}
            response = http.post(f"{b.base_url}/rec/mcp", content=json.dumps(ping), headers=headers)
    public.close()
    assert response.status_code == status
    if same_key:
        assert upstream.seen[-1].headers["mcp-session-id"] == upstream.session_id
    else:
        assert len(upstream.seen) == 1  # only the initialize reached the upstream


@pytest.mark.parametrize(("same_key", "resumed"), [(True, True), (False, False)])
def test_a_request_state_sealed_by_one_replica_opens_on_another(same_key: bool, resumed: bool) -> None:
    """2026-07-28 multi round-trip requests: the retry carrying the sealed requestState may land
    on any replica that shares sessions.key (issue 12, part 3), and on no other."""
    key = base64.b64encode(os.urandom(32)).decode()
    other = key if same_key else base64.b64encode(os.urandom(32)).decode()
    upstream = RecordingUpstream()
    public = bind_loopback()
    base = f"http://127.0.0.1:{public.getsockname()[1]}"
    modern = "2026-07-28"
    with running_issuer() as issuer, serve_asgi(upstream) as up:
        overrides = {
            "public_base_url": base,
            "allowed_hosts": ["127.0.0.1"],
            "servers": [{"name": "rec", "upstream": f"{up.base_url}/mcp"}],
            "sessions": {"key": {"env": "UNUSED"}},
        }
        with (
            running_gateway(issuer.issuer, {}, {"sessions.key": key}, **overrides) as a,
            running_gateway(issuer.issuer, {}, {"sessions.key": other}, **overrides) as b,
            httpx.Client(timeout=10) as http,
        ):
            token = issuer.token(audience=f"{base}/rec/mcp", scopes="tools.write")
            headers = {
                **HEADERS,
                "authorization": f"Bearer {token}",
                "host": "127.0.0.1",
                "mcp-protocol-version": modern,
                "mcp-method": "tools/call",
                "mcp-name": "ask_thing",
            }

            def call(replica: str, rid: int, state: str | None = None) -> httpx.Response:
                params: dict[str, object] = {
                    "name": "ask_thing",
                    "arguments": {},
                    "_meta": {"io.modelcontextprotocol/protocolVersion": modern},
                }
                if state is not None:
                    params["requestState"] = state
                body = {"jsonrpc": "2.0", "id": rid, "method": "tools/call", "params": params}
                return http.post(f"{replica}/rec/mcp", content=json.dumps(body), headers=headers)

            first = call(a.base_url, 1)
            state = first.json()["result"]["requestState"]
            assert UPSTREAM_STATE not in state  # sealed by replica a
            retry = call(b.base_url, 2, state)
    public.close()
    forwarded = [r.json["params"].get("requestState") for r in upstream.calls("tools/call")]
    if resumed:
        assert retry.status_code == 200
        assert retry.json()["result"]["content"][0]["text"] == f"resumed with {UPSTREAM_STATE}"
        assert forwarded == [None, UPSTREAM_STATE]
    else:
        assert retry.status_code == 400  # another key: refused, never forwarded
        assert forwarded == [None]


@pytest.mark.parametrize(("previous", "status"), [(True, 200), (False, 404)])
def test_a_rotated_replica_opens_sessions_the_old_key_sealed(previous: bool, status: int) -> None:
    """A rolling key rotation: replica b runs the new sessions.key with the old one in
    previous_keys, so sessions sealed by replica a (still on the old key) go on working."""
    old, new = (base64.b64encode(os.urandom(32)).decode() for _ in range(2))
    upstream = RecordingUpstream()
    public = bind_loopback()
    base = f"http://127.0.0.1:{public.getsockname()[1]}"
    with running_issuer() as issuer, serve_asgi(upstream) as up:
        common = {
            "public_base_url": base,
            "allowed_hosts": ["127.0.0.1"],
            "servers": [{"name": "rec", "upstream": f"{up.base_url}/mcp"}],
        }
        rotated = {"key": {"env": "NEW"}, "previous_keys": [{"env": "OLD"}] if previous else []}
        secrets_b = {"sessions.key": new, **({"sessions.previous_keys[0]": old} if previous else {})}
        with (
            running_gateway(
                issuer.issuer, {}, {"sessions.key": old}, sessions={"key": {"env": "OLD"}}, **common
            ) as a,
            running_gateway(issuer.issuer, {}, secrets_b, sessions=rotated, **common) as b,
            httpx.Client(timeout=10) as http,
        ):
            token = issuer.token(audience=f"{base}/rec/mcp")
            auth = {**HEADERS, "authorization": f"Bearer {token}", "host": "127.0.0.1"}
            init = {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "initialize",
                "params": {"protocolVersion": "2025-11-25"},
            }
            sealed = http.post(f"{a.base_url}/rec/mcp", content=json.dumps(init), headers=auth).headers[
                "mcp-session-id"
            ]
            ping = {"jsonrpc": "2.0", "id": 2, "method": "ping"}
            headers = {**auth, "mcp-session-id": sealed, "mcp-protocol-version": "2025-11-25"}
            response = http.post(f"{b.base_url}/rec/mcp", content=json.dumps(ping), headers=headers)
    public.close()
    assert response.status_code == status
