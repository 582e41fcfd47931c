"""The webhook destination against a real HTTP collector on loopback (uvicorn): down, 500,
slow, back up: every event arrives once, in order, with the header secret; a POST that times
out is sent again with the same ids (the collector dedupes); a redirect is never followed."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from mcp_bastion.audit import AuditEvent, Spool, SpooledSink
from mcp_bastion.audit.webhook import WebhookDestination
from mcp_bastion.config.audit import WebhookConfig

from ..support.servers import bind_loopback, read_body, serve_asgi

SECRET = "Bearer hec-4f1d9c2e7a"


class Collector:
    """A SIEM's HTTP collector. `script` says how to answer the next POSTs ("500", "slow",
    "hang": answer 200 after the client gave up, "redirect"); then 200. Keeps what it accepted."""

    def __init__(self, script: list[str], redirect_to: str = "") -> None:
        self.script = script
        self.redirect_to = redirect_to
        self.accepted: list[dict[str, Any]] = []
        self.requests: list[dict[str, str]] = []
        self.changed = threading.Condition()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = await read_body(receive)
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        action = self.script.pop(0) if self.script else "ok"
        status, extra = 200, []
        if action == "500":
            status = 500
        elif action == "redirect":
            status, extra = 307, [(b"location", self.redirect_to.encode())]
        elif action in ("slow", "hang"):
            await asyncio.sleep(0.3 if action == "slow" else 1.0)
        if status == 200:
            if headers.get("content-type") == "application/json":
                events = orjson.loads(body)
            else:
                events = [orjson.loads(line) for line in body.splitlines()]
            self._record(headers, events)
        else:
            self._record(headers, [])
        await send({"type": "http.response.start", "status": status, "headers": extra})
        await send({"type": "http.response.body", "body": b""})

    def _record(self, headers: dict[str, str], events: list[dict[str, Any]]) -> None:
        with self.changed:
            self.requests.append(headers)
            self.accepted += events
            self.changed.notify_all()

    def wait_for(self, count: int, timeout: float = 20) -> bool:
        with self.changed:
            return self.changed.wait_for(lambda: len(self.accepted) >= count, timeout)


def _event(n: int) -> AuditEvent:
    return AuditEvent(0.0, "t" * 32, "s", "ping", None, "allow", "ok", 200, 1.0, subject=f"u{n}")


def _closed_port() -> int:
    sock = bind_loopback()
    port = int(sock.getsockname()[1])
    sock.close()  # nothing listens: the collector is down
    return port


@contextlib.contextmanager
def _collector_on(port: int, collector: Collector) -> Iterator[None]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(128)
    with serve_asgi(collector, sock=sock):
        yield


def _sink(tmp_path: Path, port: int, **webhook: Any) -> SpooledSink:
    config = WebhookConfig(url=f"http://127.0.0.1:{port}/ingest", **webhook)
    spool = Spool(tmp_path, max_bytes=1 << 30, segment_bytes=1 << 20, drop_oldest=False)
    return SpooledSink(
        spool, WebhookDestination(config, SECRET), fsync="never", batch_events=50, retry_max=0.1
    )


async def _until(condition: Any, timeout: float = 10) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)  # the deliverer runs on this loop: give it turns


async def test_down_then_500_then_slow_then_up_delivers_everything_once_in_order(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    port = _closed_port()
    sink = _sink(tmp_path, port)
    runner = asyncio.create_task(sink.run())
    for n in range(200):
        sink.emit(_event(n))
    await _until(lambda: sink.destination_failing)  # connection refused: waiting in the spool
    collector = Collector(["500", "500", "slow"])
    with _collector_on(port, collector):
        for n in range(200, 400):
            sink.emit(_event(n))
        assert await asyncio.to_thread(collector.wait_for, 400)
    runner.cancel()
    await sink.aclose()
    assert [e["subject"] for e in collector.accepted] == [f"u{n}" for n in range(400)]
    assert len({e["id"] for e in collector.accepted}) == 400
    assert all(r["authorization"] == SECRET for r in collector.requests)
    assert all(r["content-type"] == "application/x-ndjson" for r in collector.requests)
    assert len(collector.requests) >= 2 + 400 // 50  # the two 500s were retried
    assert "audit destination failing" in caplog.text
    assert "audit destination recovered" in caplog.text
    assert "hec-4f1d9c2e7a" not in caplog.text  # the secret is never logged


async def test_a_timed_out_post_is_sent_again_with_the_same_ids(tmp_path: Path) -> None:
    port = _closed_port()
    collector = Collector(["hang"])
    with _collector_on(port, collector):
        sink = _sink(tmp_path, port, timeout_seconds=0.3, format="array")
        runner = asyncio.create_task(sink.run())
        for n in range(10):
            sink.emit(_event(n))
        assert await asyncio.to_thread(collector.wait_for, 20)  # the batch twice
        runner.cancel()
        await sink.aclose()
    ids = [e["id"] for e in collector.accepted]
    assert ids[:10] == ids[10:20]  # the collector got it, we never heard: sent again, same ids
    unique = {e["id"]: e["subject"] for e in collector.accepted}
    assert list(unique.values()) == [f"u{n}" for n in range(10)]  # deduped by id: once, in order
    assert collector.requests[0]["content-type"] == "application/json"


async def test_a_redirect_is_not_followed_with_the_secret(tmp_path: Path) -> None:
    elsewhere = Collector([])
    other_port = _closed_port()
    port = _closed_port()
    with _collector_on(other_port, elsewhere):
        collector = Collector(["redirect"] * 1000, redirect_to=f"http://127.0.0.1:{other_port}/steal")
        with _collector_on(port, collector):
            sink = _sink(tmp_path, port)
            runner = asyncio.create_task(sink.run())
            sink.emit(_event(1))
            await _until(lambda: sink.destination_failing)
            runner.cancel()
            await sink.aclose()
    assert elsewhere.requests == []  # the secret did not follow the redirect
    assert collector.accepted == []
    assert sink.spool.backlog  # the event still waits in the spool
