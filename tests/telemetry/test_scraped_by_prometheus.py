"""A real Prometheus (Debian's package, installed by scripts/install-apt-tools) scrapes the
gateway's metrics listener; its query API proves the series exist and count right."""

from __future__ import annotations

import shutil
import subprocess
import threading
from pathlib import Path

import httpx

from ..support.gateway import AuditFeed, post_mcp
from ..support.issuer import running_issuer
from ..support.observed import observed_gateway
from ..support.recording_upstream import RecordingUpstream
from ..support.servers import bind_loopback, serve_asgi

SCRAPE_TIMEOUT_S = 30.0


class ScrapeWatch:
    """Counts the scrapes the metrics listener answers (wraps the exposition it serves)."""

    def __init__(self) -> None:
        self.count = 0
        self.changed = threading.Condition()

    def wait_for(self, count: int) -> None:
        with self.changed:
            assert self.changed.wait_for(lambda: self.count >= count, SCRAPE_TIMEOUT_S), (
                "Prometheus never scraped"
            )


def test_prometheus_scrapes_the_metrics_listener_and_counts_right(tmp_path: Path) -> None:
    binary = shutil.which("prometheus")
    assert binary is not None, "Debian's prometheus is missing: run scripts/install-apt-tools (as root)"
    upstream = RecordingUpstream()
    with (
        running_issuer() as issuer,
        serve_asgi(upstream) as up,
        observed_gateway(
            issuer.issuer, {"rec": f"{up.base_url}/mcp"}, telemetry={"metrics": {"enabled": True}}
        ) as gw,
        httpx.Client(timeout=10) as http,
    ):
        token = issuer.token(audience=gw.url("rec"), scopes="tools.read")
        body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
        for _ in range(3):
            assert post_mcp(http, gw.url("rec"), body, token=token).status_code == 200
        for _ in range(2):
            assert post_mcp(http, gw.url("rec"), body, token=None).status_code == 401
        assert isinstance(gw.audit, AuditFeed)
        gw.audit.wait_count(5)

        watch = ScrapeWatch()
        metrics = gw.telemetry.metrics
        assert metrics is not None
        expose = metrics.exposition

        def counted() -> bytes:
            text = expose()
            with watch.changed:
                watch.count += 1
                watch.changed.notify_all()
            return text

        metrics.exposition = counted  # type: ignore[method-assign]  # observes, serves the same bytes
        target = gw.metrics_url.removeprefix("http://").removesuffix("/metrics")
        config = tmp_path / "prometheus.yml"
        config.write_text(
            "global: {scrape_interval: 200ms, scrape_timeout: 150ms}\n"
            "scrape_configs:\n"
            f"  - job_name: mcp-bastion\n    static_configs: [{{targets: ['{target}']}}]\n"
        )
        web = bind_loopback()
        web_port = web.getsockname()[1]
        web.close()  # Prometheus binds it itself
        log = (tmp_path / "prometheus.log").open("wb")
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'data'}",
                f"--web.listen-address=127.0.0.1:{web_port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            # The second scrape starts only after the first one's samples were committed.
            watch.wait_for(2)

            def query(promql: str) -> list[dict[str, object]]:
                answer = http.get(f"http://127.0.0.1:{web_port}/api/v1/query", params={"query": promql})
                assert answer.status_code == 200, answer.text
                result: list[dict[str, object]] = answer.json()["data"]["result"]
                return result

            def scalar(promql: str) -> float:
                (sample,) = query(promql)
                value = sample["value"]
                assert isinstance(value, list)
                return float(value[1])

            assert scalar('up{job="mcp-bastion"}') == 1
            allowed = (
                'mcp_bastion_requests_total{server="rec",method="tools/list",decision="allow",reason="ok"}'
            )
            assert scalar(allowed) == 3
            assert scalar('sum(mcp_bastion_requests_total{decision="deny",reason="missing_token"})') == 2
            assert scalar('sum(mcp_bastion_request_duration_seconds_count{server="rec"})') == 5
            assert (
                scalar('mcp_bastion_request_duration_seconds_bucket{server="rec",decision="allow",le="+Inf"}')
                == 3
            )
            assert scalar('mcp_bastion_jwks_keys_loaded{idp="test"}') == 1
        finally:
            process.terminate()
            process.wait(timeout=30)
            log.close()
