"""SL-04: the audit sink full or down. Never a silent drop: a bounded buffer plus an alert
(and /readyz and /healthz say so), or, with `audit.on_failure: refuse`, no request served unrecorded."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from mcp_bastion.app import build_gateway
from mcp_bastion.audit import StreamSink
from mcp_bastion.config import LoadedConfig, parse_config

from ..support.gateway import gateway_config, serve_gateway
from ..support.issuer import LocalIssuer, running_issuer
from ..support.recording_upstream import RecordingUpstream
from ..support.servers import bind_loopback, serve_asgi

HEADERS = {"content-type": "application/json", "accept": "application/json, text/event-stream"}


class BrokenDisk(io.RawIOBase):
    """A stream that fails like a full disk until repaired."""

    def __init__(self) -> None:
        self.broken = True
        self.written = bytearray()
        self.lock = threading.Lock()

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        with self.lock:
            if self.broken:
                raise OSError(28, "No space left on device")
            self.written += bytes(data)
            return len(data)


@contextlib.contextmanager
def gateway_with(disk: BrokenDisk, on_failure: str) -> Iterator[tuple[LocalIssuer, str, httpx.Client]]:
    with running_issuer() as issuer, serve_asgi(RecordingUpstream()) as up:
        sock = bind_loopback()
        base = f"http://127.0.0.1:{sock.getsockname()[1]}"
        config = parse_config(
            gateway_config(
                base,
                issuer.issuer,
                {"rec": f"{up.base_url}/mcp"},
                audit={"sink": "stdout", "on_failure": on_failure},
            )
        )
        gateway = build_gateway(LoadedConfig(config, {}), audit=StreamSink(disk))  # type: ignore[arg-type]
        with (
            serve_gateway(gateway, sock, config),
            httpx.Client(timeout=10) as http,
        ):
            yield issuer, base, http


def _ping(issuer: LocalIssuer, base: str, http: httpx.Client, rid: int) -> httpx.Response:
    token = issuer.token(audience=f"{base}/rec/mcp")
    body = json.dumps({"jsonrpc": "2.0", "id": rid, "method": "ping"})
    return http.post(f"{base}/rec/mcp", content=body, headers={**HEADERS, "authorization": f"Bearer {token}"})


def _wait(condition: Any, timeout: float = 5.0) -> bool:
    pause = threading.Event()
    for _ in range(int(timeout / 0.02)):
        if condition():
            return True
        pause.wait(0.02)
    return bool(condition())


def test_sl04_buffered_while_down_alerted_and_written_once_back(caplog: pytest.LogCaptureFixture) -> None:
    disk = BrokenDisk()
    caplog.set_level(logging.ERROR, logger="mcp_bastion.audit")
    with gateway_with(disk, "buffer") as (issuer, base, http):
        assert [_ping(issuer, base, http, i).status_code for i in (1, 2, 3)] == [200, 200, 200]
        # Alerted: not ready (taken out of rotation), and /healthz says why while it stays 200
        # (a liveness restart would lose the events held in memory).
        assert _wait(lambda: http.get(f"{base}/readyz").status_code == 503)
        health = http.get(f"{base}/healthz")
        assert (health.status_code, health.json()) == (200, {"status": "degraded", "audit": "failing"})
        assert any("audit sink failing" in r.getMessage() for r in caplog.records)
        disk.broken = False  # the disk is repaired: the retry writes everything that waited
        assert _wait(lambda: disk.written.count(b"\n") >= 3)
        assert http.get(f"{base}/healthz").json() == {"status": "ok"}
        assert http.get(f"{base}/readyz").status_code == 200
    lines = [json.loads(line) for line in disk.written.splitlines()]
    assert [line["method"] for line in lines] == ["ping", "ping", "ping"]


def test_sl04_refuse_mode_serves_nothing_unrecorded() -> None:
    disk = BrokenDisk()
    with gateway_with(disk, "refuse") as (issuer, base, http):
        assert _ping(issuer, base, http, 1).status_code == 200  # its event is what fails to write
        assert _wait(lambda: http.get(f"{base}/readyz").status_code == 503)
        refused = _ping(issuer, base, http, 2)
        assert refused.status_code == 503
        assert refused.json()["error"]["message"] == "audit unavailable"
        disk.broken = False
        assert _wait(lambda: _ping(issuer, base, http, 3).status_code == 200)


class FillingDisk(io.RawIOBase):
    """Takes 10 bytes of the first write, then fails (a disk filling up), until repaired."""

    def __init__(self) -> None:
        self.room: int | None = 10
        self.written = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        if self.room is None:
            self.written += bytes(data)
            return len(data)
        if self.room == 0:
            raise OSError(28, "No space left on device")
        taken = bytes(data)[: self.room]
        self.room -= len(taken)
        self.written += taken
        return len(taken)


def test_sl04_a_short_write_is_completed_after_recovery() -> None:
    from mcp_bastion.audit import AuditEvent

    disk = FillingDisk()
    sink = StreamSink(disk)  # type: ignore[arg-type]
    for i in range(3):
        sink.emit(AuditEvent(0.0, "t" * 32, "s", "ping", None, "allow", "ok", 200, 1.0, subject=f"u{i}"))
    assert not sink.healthy
    disk.room = None  # space again
    sink.flush()
    assert sink.healthy
    assert [json.loads(line)["subject"] for line in disk.written.splitlines()] == ["u0", "u1", "u2"]
