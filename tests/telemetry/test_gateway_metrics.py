"""/metrics over real HTTP on its own listener, in front of a real upstream and a real issuer:
what is counted, per which labels, and that hostile input cannot mint series."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from ..support.gateway import AuditFeed, post_mcp
from ..support.issuer import LocalIssuer, running_issuer
from ..support.observed import ObservedGateway, observed_gateway
from ..support.prometheus import Exposition, parse_exposition
from ..support.recording_upstream import RecordingUpstream
from ..support.servers import refused_port, serve_asgi

METRICS_ON = {"metrics": {"enabled": True, "stage_histograms": True}}


@dataclass
class Stack:
    issuer: LocalIssuer
    upstream: RecordingUpstream
    gateway: ObservedGateway
    http: httpx.Client

    def token(self, scopes: str = "tools.read") -> str:
        return self.issuer.token(audience=self.gateway.url("rec"), scopes=scopes)

    def call(self, method: str, params: dict[str, object], *, token: str | None) -> httpx.Response:
        body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
        return post_mcp(self.http, self.gateway.url("rec"), body, token=token)

    def scrape(self, *, after: int) -> Exposition:
        """The metrics once `after` exchanges have ended (each is counted just before its audit
        event, which may come just after the client has its answer)."""
        audit = self.gateway.audit
        assert isinstance(audit, AuditFeed)
        audit.wait_count(after)
        answer = self.http.get(self.gateway.metrics_url)
        assert answer.status_code == 200
        assert answer.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
        return parse_exposition(answer.text)


@pytest.fixture
def stack() -> Iterator[Stack]:
    upstream = RecordingUpstream()
    with running_issuer() as issuer, serve_asgi(upstream) as up:
        servers = [{"name": "rec", "upstream": f"{up.base_url}/mcp", "timeout_seconds": 2}]
        with (
            observed_gateway(issuer.issuer, {}, telemetry=METRICS_ON, servers=servers) as gw,
            httpx.Client(timeout=10) as http,
        ):
            yield Stack(issuer, upstream, gw, http)


def test_requests_are_counted_by_server_method_decision_and_reason(stack: Stack) -> None:
    token = stack.token()
    assert stack.call("tools/list", {}, token=token).status_code == 200
    assert stack.call("tools/call", {"name": "read_thing"}, token=token).status_code == 200
    assert stack.call("tools/call", {"name": "write_thing"}, token=token).status_code == 403
    assert stack.call("tools/list", {}, token=None).status_code == 401
    assert stack.call("tools/list", {}, token="not-a-jwt").status_code == 401
    metrics = stack.scrape(after=5)
    requests = "mcp_bastion_requests_total"
    assert metrics.value(requests, server="rec", method="tools/list", decision="allow", reason="ok") == 1
    assert metrics.value(requests, server="rec", method="tools/call", decision="allow", reason="ok") == 1
    assert (
        metrics.value(
            requests, server="rec", method="tools/call", decision="deny", reason="insufficient_scope"
        )
        == 1
    )
    assert metrics.value(requests, server="rec", method="POST", decision="deny", reason="missing_token") == 1
    assert metrics.value(requests, server="rec", method="POST", decision="deny", reason="invalid_token") == 1
    # One end-to-end observation per HTTP exchange, one per stage that ran.
    assert metrics.total("mcp_bastion_request_duration_seconds_count", server="rec") == 5
    assert metrics.value("mcp_bastion_stage_duration_seconds_count", server="rec", stage="Authenticate") == 5
    assert metrics.value("mcp_bastion_stage_duration_seconds_count", server="rec", stage="ReadBody") == 3
    assert metrics.value("mcp_bastion_stage_duration_seconds_count", server="rec", stage="Forward") == 2
    assert metrics.value("mcp_bastion_jwks_refreshes_total", idp="test", result="ok") >= 1
    assert metrics.value("mcp_bastion_jwks_keys_loaded", idp="test") == 1


def test_hostile_tool_and_method_names_cannot_mint_series(stack: Stack) -> None:
    # A caller cycling through random tool and method names: each is one more request, never
    # one more time series (labels.py). The raw names appear nowhere in the exposition.
    token = stack.token()
    for i in range(40):
        stack.call("tools/call", {"name": f"evil_tool_{i}\n"}, token=token)
        stack.call(f"evil/method_{i}", {}, token=token)
    stack.scrape(after=80)
    text = stack.http.get(stack.gateway.metrics_url).text
    assert "evil" not in text
    metrics = parse_exposition(text)
    series = metrics.series("mcp_bastion_requests_total")
    assert len(series) <= 4, series
    assert {s["method"] for s in series} <= {"tools/call", "other"}
    assert metrics.total("mcp_bastion_requests_total") == 80


def test_upstream_errors_timeouts_and_event_streams_are_counted(stack: Stack) -> None:
    token = stack.token()
    assert stack.call("tools/call", {"name": "stream_thing"}, token=token).status_code == 200
    assert stack.call("tools/call", {"name": "hang"}, token=token).status_code == 504  # timeout_seconds: 2
    metrics = stack.scrape(after=2)
    assert metrics.value("mcp_bastion_upstream_errors_total", server="rec", kind="timeout") == 1
    assert metrics.value("mcp_bastion_open_sse_streams", server="rec") == 0  # opened, then closed
    assert metrics.value("mcp_bastion_open_connections") == 1  # this test's keep-alive connection
    assert (
        metrics.value(
            "mcp_bastion_requests_total",
            server="rec",
            method="tools/call",
            decision="error",
            reason="upstream_timeout",
        )
        == 1
    )


def test_upstream_that_is_down_counts_as_an_upstream_error() -> None:
    with running_issuer() as issuer, refused_port() as sock_port:
        servers = [{"name": "rec", "upstream": f"http://127.0.0.1:{sock_port}/mcp"}]
        with (
            observed_gateway(issuer.issuer, {}, telemetry=METRICS_ON, servers=servers) as gw,
            httpx.Client() as http,
        ):
            token = issuer.token(audience=gw.url("rec"), scopes="tools.read")
            body = {"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {}}
            assert post_mcp(http, gw.url("rec"), body, token=token).status_code == 502
            assert isinstance(gw.audit, AuditFeed)
            gw.audit.wait_count(1)
            metrics = parse_exposition(http.get(gw.metrics_url).text)
    assert metrics.value("mcp_bastion_upstream_errors_total", server="rec", kind="error") == 1


def test_metrics_listener_serves_only_metrics_and_the_mcp_listener_never_does(stack: Stack) -> None:
    base = stack.gateway.metrics_url.removesuffix("/metrics")
    assert stack.http.get(f"{base}/rec/mcp").status_code == 404
    assert stack.http.post(stack.gateway.metrics_url).status_code == 405
    assert stack.http.get(f"{stack.gateway.base_url}/metrics").status_code == 404


def test_quota_rejections_are_counted_by_rule() -> None:
    upstream = RecordingUpstream()
    rule = {"name": "per-user", "key": ["subject"], "rate": 1, "per_seconds": 3600, "burst": 1}
    with running_issuer() as issuer, serve_asgi(upstream) as up:
        servers = [{"name": "rec", "upstream": f"{up.base_url}/mcp"}]
        with (
            observed_gateway(
                issuer.issuer, {}, telemetry=METRICS_ON, servers=servers, quotas={"rules": [rule]}
            ) as gw,
            httpx.Client(timeout=10) as http,
        ):
            stack = Stack(issuer, upstream, gw, http)
            token = stack.token()
            answers = [stack.call("tools/call", {"name": "read_thing"}, token=token) for _ in range(3)]
            assert [a.status_code for a in answers] == [200, 429, 429]
            metrics = stack.scrape(after=3)
    assert (
        metrics.value("mcp_bastion_quota_rejections_total", server="rec", quota="per-user", result="exceeded")
        == 2
    )
    assert metrics.types["mcp_bastion_quota_rejections_total"] == "counter"
