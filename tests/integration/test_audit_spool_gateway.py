"""Fail closed with a spool: the destination down long enough to fill the spool, with
`audit.on_failure: refuse`, MCP requests get 503 (no decision unrecorded); once the destination
is back and the spool drains, requests are served again and every recorded event arrives."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import httpx

from mcp_bastion.app import build_gateway
from mcp_bastion.audit import Spool, SpooledSink
from mcp_bastion.audit.spool import Batch
from mcp_bastion.config import LoadedConfig, parse_config

from ..support.gateway import post_mcp, serve_gateway
from ..support.recording_upstream import RecordingUpstream
from ..support.servers import bind_loopback, serve_asgi


class Destination:
    """Fails while `down`; keeps the lines it took."""

    def __init__(self) -> None:
        self.down = True
        self.lines: list[bytes] = []

    async def deliver(self, batch: Batch) -> None:
        if self.down:
            raise OSError(28, "No space left on device")
        self.lines += batch.lines

    async def aclose(self) -> None:
        return None


def _until(condition: Any, timeout: float = 15) -> bool:
    pause = threading.Event()
    for _ in range(int(timeout / 0.02)):
        if condition():
            return True
        pause.wait(0.02)
    return bool(condition())


def test_a_full_spool_refuses_requests_until_the_destination_drains_it(tmp_path: Path) -> None:
    destination = Destination()
    spool = Spool(tmp_path, max_bytes=20_000, segment_bytes=4_096, drop_oldest=False)
    sink = SpooledSink(spool, destination, fsync="never", retry_max=0.05)
    with serve_asgi(RecordingUpstream()) as up:
        sock = bind_loopback()
        base = f"http://127.0.0.1:{sock.getsockname()[1]}"
        config = parse_config(
            {
                "public_base_url": base,
                "servers": [{"name": "rec", "upstream": f"{up.base_url}/mcp", "auth": False}],
                "audit": {"on_failure": "refuse"},
            }
        )
        gateway = build_gateway(LoadedConfig(config, {}), audit=sink)
        ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
        with serve_gateway(gateway, sock, config), httpx.Client(timeout=10) as http:
            served = 0
            while (status := post_mcp(http, f"{base}/rec/mcp", ping).status_code) == 200:
                served += 1
                assert served < 1000, "the spool never filled"
            assert served > 10  # the spool took events until it was full
            assert status == 503  # fail closed: the spool is full, nothing goes unrecorded
            health = http.get(f"{base}/healthz")  # alive (a restart would lose what waits), degraded
            assert (health.status_code, health.json()["audit"]) == (200, "failing")
            destination.down = False
            assert _until(lambda: post_mcp(http, f"{base}/rec/mcp", ping).status_code == 200)
        # Shut down: the spool delivered what it held.
    events = [json.loads(line) for line in destination.lines]
    assert len(events) >= served + 1  # each served request's event (and the one after recovery)
    assert len({e["id"] for e in events}) == len(events)
    assert sink.lost == 0
