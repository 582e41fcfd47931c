"""Two gateway replicas sharing `sessions.key`: a session sealed by one is valid on the other."""

from __future__ import annotations

import base64
import json
import os

import httpx
import pytest

from ..support.gateway import running_gateway
from ..support.issuer import running_issuer
from ..support.recording_upstream import RecordingUpstream
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
