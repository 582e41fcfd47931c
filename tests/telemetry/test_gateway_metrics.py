"""/metrics over real HTTP on its own listener, in front of a real upstream and a real issuer:
what is counted, per which labels, and that hostile input cannot mint series."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from mcp_bastion.audit import Spool, SpooledSink
from mcp_bastion.audit.spool import Batch

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


class FlakyCollector:
    """An audit destination that refuses batches while `down`."""

    def __init__(self) -> None:
        self.down = True
        self.lines: list[bytes] = []

    async def deliver(self, batch: Batch) -> None:
        if self.down:
            raise ConnectionError("the audit collector is unreachable")
        self.lines += batch.lines

    async def aclose(self) -> None:
        return None


def _eventually(condition: Callable[[], bool], timeout: float = 15) -> bool:
    pause = threading.Event()
    for _ in range(int(timeout / 0.02)):
        if condition():
            return True
        pause.wait(0.02)
    return condition()


def test_the_audit_feeds_health_delivery_and_losses_are_scraped(tmp_path: Path) -> None:
    # An operator alerts on these, not on a liveness probe: the gateway stays alive (a restart
    # would lose what waits in memory) and says what is wrong.
    collector = FlakyCollector()
    spool = Spool(tmp_path, max_bytes=6_000, segment_bytes=2_048, drop_oldest=False)
    sink = SpooledSink(spool, collector, fsync="never", retry_max=0.05)
    with running_issuer() as issuer, serve_asgi(RecordingUpstream()) as up:
        servers = [{"name": "rec", "upstream": f"{up.base_url}/mcp"}]
        with (
            observed_gateway(issuer.issuer, {}, telemetry=METRICS_ON, servers=servers, audit=sink) as gw,
            httpx.Client(timeout=10) as http,
        ):
            token = issuer.token(audience=gw.url("rec"), scopes="tools.read")
            ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}

            def scrape() -> Exposition:
                return parse_exposition(http.get(gw.metrics_url).text)

            sent = 0
            while http.get(f"{gw.base_url}/healthz").json()["status"] == "ok":
                assert post_mcp(http, gw.url("rec"), ping, token=token).status_code == 200
                sent += 1
                assert sent < 500, "the spool never filled"
            failing = scrape()
            assert http.get(f"{gw.base_url}/healthz").status_code == 200  # alive, degraded
            collector.down = False
            assert _eventually(lambda: scrape().value("mcp_bastion_audit_healthy") == 1)
            assert _eventually(lambda: scrape().value("mcp_bastion_audit_events_delivered_total") >= sent)
            recovered = scrape()
    # value() reads a missing series as 0: each series is first shown to exist.
    for name in ("healthy", "destination_up", "spool_bytes", "events_delivered_total"):
        assert failing.series(f"mcp_bastion_audit_{name}") == [{}], name
    assert {"cause": "memory_full"} in failing.series("mcp_bastion_audit_events_lost_total")
    assert failing.value("mcp_bastion_audit_healthy") == 0
    assert failing.value("mcp_bastion_audit_destination_up") == 0
    assert failing.value("mcp_bastion_audit_spool_bytes") > 0
    assert failing.value("mcp_bastion_audit_events_delivered_total") == 0
    assert failing.value("mcp_bastion_audit_events_lost_total", cause="memory_full") == 0
    assert recovered.value("mcp_bastion_audit_destination_up") == 1
    assert recovered.value("mcp_bastion_audit_events_lost_total", cause="spool_full") == 0
    assert recovered.types["mcp_bastion_audit_events_lost_total"] == "counter"
    assert len(collector.lines) >= sent


def test_a_sink_without_a_spool_has_no_spool_series(stack: Stack) -> None:
    metrics = stack.scrape(after=0)
    assert metrics.value("mcp_bastion_audit_healthy") == 1
    assert metrics.series("mcp_bastion_audit_spool_bytes") == []
    assert metrics.series("mcp_bastion_audit_events_lost_total") == []  # a feed in memory loses nothing
