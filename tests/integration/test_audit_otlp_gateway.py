"""A real gateway whose config says `audit.sink: otlp`: each MCP request's event reaches a real
OTLP/HTTP receiver on loopback as a LogRecord carrying the caller's W3C trace id, sent with
the configured header secret through the spool."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import httpx
import orjson

from mcp_bastion.app import build_gateway
from mcp_bastion.audit import SpooledSink, sink_for
from mcp_bastion.config import LoadedConfig, parse_config

from ..support.gateway import post_mcp, serve_gateway
from ..support.otlp import OtlpReceiver, logs_receiver_on
from ..support.recording_upstream import RecordingUpstream
from ..support.servers import bind_loopback, serve_asgi

SECRET = "Bearer otlp-gw-51e0c3"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


def _until(condition: Callable[[], bool], timeout: float = 15) -> bool:
    pause = threading.Event()
    for _ in range(int(timeout / 0.02)):
        if condition():
            return True
        pause.wait(0.02)
    return condition()


def test_each_request_arrives_at_the_otlp_receiver_with_its_trace_id(tmp_path: Path) -> None:
    receiver = OtlpReceiver()
    sock = bind_loopback()
    port = sock.getsockname()[1]
    receiver_port = bind_loopback()
    logs_port = receiver_port.getsockname()[1]
    receiver_port.close()
    with serve_asgi(RecordingUpstream()) as up, logs_receiver_on(logs_port, receiver) as logs_url:
        base = f"http://127.0.0.1:{port}"
        config = parse_config(
            {
                "public_base_url": base,
                "servers": [{"name": "rec", "upstream": f"{up.base_url}/mcp", "auth": False}],
                "audit": {
                    "sink": "otlp",
                    "spool": {"dir": str(tmp_path / "spool"), "fsync": "never"},
                    "otlp": {"endpoint": logs_url, "header": "X-Otlp-Key", "secret": {"env": "K"}},
                },
            }
        )
        loaded = LoadedConfig(config, {"audit.otlp.secret": SECRET})
        sink = sink_for(config.audit, loaded.secrets)  # as build_gateway makes it; kept to watch it
        assert isinstance(sink, SpooledSink)
        gateway = build_gateway(loaded, audit=sink)
        with serve_gateway(gateway, sock, config), httpx.Client(timeout=10) as http:
            for n in range(3):
                traceparent = f"00-{TRACE_ID}-00f067aa0ba902b{n}-01"
                ping = {"jsonrpc": "2.0", "id": n, "method": "ping"}
                response = post_mcp(http, f"{base}/rec/mcp", ping, headers={"traceparent": traceparent})
                assert response.status_code == 200
            assert receiver.wait_for_logs(3)
            # Stopped only once the answer arrived: a POST cut off by the shutdown before its
            # answer is sent again at close (at least once, with the same ids: docs/audit.md).
            assert _until(lambda: sink.delivered == 3)
    events = [orjson.loads(record.body) for record in receiver.logs]
    assert [(e["server"], e["method"], e["decision"]) for e in events] == [("rec", "ping", "allow")] * 3
    assert [record.trace_id for record in receiver.logs] == [TRACE_ID] * 3
    assert len({e["id"] for e in events}) == 3
    assert all(headers["x-otlp-key"] == SECRET for headers in receiver.log_headers)
