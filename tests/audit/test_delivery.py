"""The spooled sink: a destination outage costs disk, not memory; a spool that cannot store
holds a bounded number of events in memory and counts every one it loses; the old stream
buffer counts each event it drops (issue 12: 315,169 events were logged as "1 dropped")."""

from __future__ import annotations

import asyncio
import io
import logging
import os
import threading
import tracemalloc
from pathlib import Path
from typing import Any

import orjson
import pytest

from mcp_bastion.audit import AuditEvent, Spool, SpooledSink, StreamSink, sinks
from mcp_bastion.audit import delivery as delivery_module
from mcp_bastion.audit.spool import Batch


def _event(n: int) -> AuditEvent:
    return AuditEvent(0.0, "t" * 32, "s", "ping", None, "allow", "ok", 200, 1.0, subject=f"u{n}")


class Collector:
    """A destination that fails while `down`, and keeps what it took."""

    def __init__(self) -> None:
        self.down = False
        self.lines: list[bytes] = []
        self.arrived = asyncio.Event()

    async def deliver(self, batch: Batch) -> None:
        if self.down:
            raise OSError(28, "No space left on device")
        self.lines += batch.lines
        self.arrived.set()

    async def aclose(self) -> None:
        return None

    def subjects(self) -> list[str]:
        return [orjson.loads(line)["subject"] for line in self.lines]


def _sink(tmp_path: Path, collector: Collector, **spool: Any) -> SpooledSink:
    options: dict[str, Any] = {"max_bytes": 1 << 30, "segment_bytes": 1 << 20, "drop_oldest": False}
    options.update(spool)
    return SpooledSink(Spool(tmp_path, **options), collector, fsync="never", retry_max=0.05)


async def _wait_for(condition: Any, event: asyncio.Event, timeout: float = 10) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            event.clear()
            await event.wait()


async def test_a_long_destination_outage_waits_on_disk_not_in_memory(tmp_path: Path) -> None:
    collector = Collector()
    collector.down = True
    sink = _sink(tmp_path, collector)
    runner = asyncio.create_task(sink.run())
    count = 60_000  # about 24 MB of events
    tracemalloc.start()
    try:
        for n in range(count):
            sink.emit(_event(n))
            if n % 5000 == 0:
                await asyncio.sleep(0)  # let the deliverer fail and back off, as under load
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert sink.healthy  # nothing is at risk: the spool has room
    assert sink.spool.size > 20_000_000
    assert peak < 8_000_000  # bytes: the backlog is on disk
    collector.down = False
    await _wait_for(lambda: len(collector.lines) >= count, collector.arrived)
    assert collector.subjects() == [f"u{n}" for n in range(count)]  # each once, in order
    runner.cancel()
    await sink.aclose()


class FailingSpool(Spool):
    """The spool's own disk failing (simulated at the spool's boundary) while `broken`."""

    broken = False

    def append(self, line: bytes) -> None:
        if self.broken:
            raise OSError(5, "Input/output error")
        super().append(line)


async def test_a_failing_spool_holds_a_bounded_backlog_and_counts_each_lost_event(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="mcp_bastion.audit")
    line_bytes = len(_event(10_000).to_json())
    monkeypatch.setattr(delivery_module, "MAX_PENDING_BYTES", 100 * line_bytes)
    spool = FailingSpool(tmp_path, max_bytes=1 << 30, segment_bytes=1 << 20, drop_oldest=False)
    collector = Collector()
    sink = SpooledSink(spool, collector, fsync="never", retry_max=0.05)
    spool.broken = True
    for n in range(10_000, 10_250):  # 250 events, room for 100
        sink.emit(_event(n))
    assert not sink.healthy
    assert sink.lost == 150  # each one counted, none merged into a block
    assert any("audit events lost" in r.getMessage() for r in caplog.records)
    spool.broken = False
    sink.flush()  # the retry: what waited is stored, in order
    assert sink.healthy
    assert await sink.deliver_once()
    assert collector.subjects() == [f"u{n}" for n in range(10_150, 10_250)]
    await sink.aclose()


async def test_a_full_spool_makes_the_sink_unhealthy_until_delivery_frees_room(tmp_path: Path) -> None:
    collector = Collector()
    collector.down = True
    sink = _sink(tmp_path, collector, max_bytes=50_000, segment_bytes=10_000)
    stored = 0
    while sink.healthy:
        sink.emit(_event(stored))
        stored += 1
    assert sink.spool.size <= 50_000
    collector.down = False
    assert await sink.deliver_once()
    sink.flush()  # the retry finds room again; the event that waited is stored
    assert sink.healthy
    assert await sink.deliver_once()
    assert collector.subjects() == [f"u{n}" for n in range(stored)]
    assert sink.lost == 0
    await sink.aclose()


class FullDisk(io.RawIOBase):
    def __init__(self) -> None:
        self.room = 1000  # bytes taken before the disk is full

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        if self.room <= 0:
            raise OSError(28, "No space left on device")
        taken = min(self.room, len(data))
        self.room -= taken
        return taken


def test_stream_buffer_overflow_counts_every_dropped_event(monkeypatch: pytest.MonkeyPatch) -> None:
    # Before: after a failed retry the pending lines were merged into one block, and the cap
    # dropped that block whole while counting 1 (the measured "1 events dropped").
    line_bytes = len(_event(10_000).to_json())
    monkeypatch.setattr(sinks, "MAX_PENDING_BYTES", 50 * line_bytes)
    sink = StreamSink(FullDisk())  # type: ignore[arg-type]
    for n in range(10_000, 10_040):
        sink.emit(_event(n))
    sink.flush()  # a failed retry with 40 lines pending
    for n in range(10_040, 10_200):
        sink.emit(_event(n))
    written_lines = 1000 // line_bytes
    # 200 events: the whole lines written, the 50 that fit the cap, and every other one counted
    # (the one left half-written among them: its rest went first).
    assert sink.dropped == 200 - 50 - written_lines


@pytest.mark.parametrize(("policy", "synced"), [("every_batch", True), ("interval", False), ("never", False)])
async def test_the_fsync_policy_decides_when_the_segment_is_synced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, policy: str, synced: bool
) -> None:
    calls: list[int] = []
    real = os.fdatasync
    monkeypatch.setattr(os, "fdatasync", lambda fd: (calls.append(fd), real(fd))[1])
    spool = Spool(tmp_path, max_bytes=1 << 30, segment_bytes=1 << 20, drop_oldest=False)
    sink = SpooledSink(spool, Collector(), fsync=policy, fsync_interval=60.0)  # type: ignore[arg-type]
    for n in range(3):
        sink.emit(_event(n))
    for _ in range(5):  # a few loop turns: the end-of-turn sync, run in a worker thread, completes
        await asyncio.sleep(0)
    if sink._syncing is not None:
        await sink._syncing
    assert bool(calls) is synced  # interval: not before 60 s; never: not at all
    assert len(calls) <= 1  # one sync for the turn's three events
    await sink.aclose()


def test_shutdown_finishes_when_a_sync_has_just_completed(tmp_path: Path) -> None:
    # CI saw shutdown spin forever: the fdatasync had finished, its done-callback was queued,
    # and aclose awaited the finished future in a loop that never yielded to run it.
    finished: list[bool] = []

    async def scenario() -> None:
        sink = SpooledSink(
            Spool(tmp_path, max_bytes=1 << 30, segment_bytes=1 << 20, drop_oldest=False), Collector()
        )
        sink.emit(_event(1))
        syncing: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        sink._syncing = syncing
        syncing.add_done_callback(sink._synced)
        syncing.set_result(None)  # done, its callback queued and not yet run
        await sink.aclose()
        finished.append(sink.delivered == 1)

    # In a thread of its own: the bug never yields, so no timeout inside the loop could fire.
    thread = threading.Thread(target=asyncio.run, args=(scenario(),), daemon=True)
    thread.start()
    thread.join(timeout=10)
    assert finished == [True]
